"""The signer key of the transparency log's checkpoints (and of exported history manifests).

A C2SP signed-note signer key (``PRIVATE+KEY+<name>+<id>+<key>``) in a file readable by its owner only. `sunshine
up` creates it on first start; nothing ever logs it. The verifier key (public) is what auditors are given.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from domain.transparency.signed_note import NoteSigner, generate_signer_key
from infra.settings import Settings


class SignerKeyMissing(RuntimeError):
    pass


def ensure_signer_key(settings: Settings) -> Path:
    """Create the key file if there is none (atomically, mode 0600); an existing one is never replaced."""
    path = settings.effective_transparency_key_file
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(generate_signer_key(settings.transparency_origin) + "\n")
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile: keep theirs
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def load_signer(settings: Settings) -> NoteSigner:
    path = settings.effective_transparency_key_file
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SignerKeyMissing(f"no transparency signer key at {path}: `sunshine up` creates it on first start "
                               "(or set SUNSHINE_TRANSPARENCY_KEY_FILE)") from None
    return NoteSigner.from_signer_key(text)
