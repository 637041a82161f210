"""Which code is running: recorded on every exported workflow history, and the casework worker's build id.

Auditors replay a history with the code that ran it (patches leave HEAD; temporal reference §7), so the
version must name a commit: ``SUNSHINE_CODE_VERSION`` when the deployment sets it (an image built without
``.git``), else the checkout's commit, with ``-dirty`` when tracked or untracked files differ from it (that code
cannot be checked out again), else the installed package's version.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

CODE_VERSION_ENV = "SUNSHINE_CODE_VERSION"
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
GIT_TIMEOUT_SECONDS = 10
PACKAGE = "sunshine"
DIRTY = "-dirty"


@cache
def code_version() -> str:
    configured = os.environ.get(CODE_VERSION_ENV, "").strip()
    if configured:
        return configured
    commit = _git_commit(REPOSITORY_ROOT)
    if commit is not None:
        return commit
    try:
        return f"{PACKAGE}-{metadata.version(PACKAGE)}"
    except metadata.PackageNotFoundError:
        return "unknown"


def _git_commit(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None
    try:
        commit = _git(root, "rev-parse", "HEAD")
        changes = _git(root, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None  # no git binary, or not a repository after all
    return commit + (DIRTY if changes else "")


def _git(root: Path, *arguments: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(root), *arguments], capture_output=True, text=True, check=True, timeout=GIT_TIMEOUT_SECONDS
    )
    return completed.stdout.strip()
