"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the checkpoint they carry (c2sp.org/tlog-checkpoint).

Keys use the text forms of Go's golang.org/x/mod/sumdb/note, so the log's notes check with the Go tooling and
any witness that speaks the spec:

  * signer key ``PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(0x01 ‖ 32-byte Ed25519 seed)>``;
  * verifier key ``<name>+<key id, 8 hex>+<base64(0x01 ‖ 32-byte Ed25519 public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.transparency.merkle import HASH_SIZE

# The spec asks verifiers to accept at least 16; Go's note package stops at 100.
MAX_SIGNATURES = 100

_ED25519 = b"\x01"
_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_KEY_ID_SIZE = 4
_SIGNATURE_PREFIX = "— "  # em dash U+2014, then a space
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline: never allowed in a note
_MAX_TREE_SIZE = 2**64 - 1


class InvalidNote(ValueError):
    """A malformed or unverifiable note, checkpoint or key; the message says why."""


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ED25519 + public_key).digest()[:_KEY_ID_SIZE]


def generate_signer_key(name: str) -> str:
    """A new Ed25519 signer key for ``name``, in the Go note text form (a secret: store it as one)."""
    _check_key_name(name)
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key().public_bytes_raw()
    seed = private_key.private_bytes_raw()
    return f"PRIVATE+KEY+{name}+{key_id(name, public_key).hex()}+{_b64(_ED25519 + seed)}"


class NoteSigner:
    """Signs note text with one Ed25519 key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name)
        self.name = name
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, self._public_key)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id.hex()!r})"

    @classmethod
    def from_signer_key(cls, text: str) -> NoteSigner:
        parts = text.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise InvalidNote("malformed signer key: expected PRIVATE+KEY+<name>+<key id>+<key>")
        _, _, name, hex_id, encoded = parts
        _check_key_name(name)
        seed = _decode_key(encoded, "signer")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if not _HEX_KEY_ID.fullmatch(hex_id) or bytes.fromhex(hex_id) != signer.key_id:
            raise InvalidNote(f"signer key id {hex_id!r} does not match its name and key")
        return signer

    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(_ED25519 + self._public_key)}"

    def sign(self, text: str) -> str:
        """The signed note: ``text``, a blank line, and this key's signature line."""
        _check_text(text)
        signature = self._private_key.sign(text.encode("utf-8"))
        return f"{text}\n{_SIGNATURE_PREFIX}{self.name} {_b64(self.key_id + signature)}\n"


class NoteVerifier:
    """Checks notes for a valid signature by one Ed25519 key; other keys' signatures are ignored."""

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_key_name(name)
        if len(public_key) != _KEY_SIZE:
            raise InvalidNote(f"an Ed25519 public key is {_KEY_SIZE} bytes, not {len(public_key)}")
        self.name = name
        self.key_id = key_id(name, public_key)
        self._public_key = Ed25519PublicKey.from_public_bytes(public_key)

    def __repr__(self) -> str:
        return f"NoteVerifier(name={self.name!r}, key_id={self.key_id.hex()!r})"

    @classmethod
    def from_verifier_key(cls, vkey: str) -> NoteVerifier:
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise InvalidNote("malformed verifier key: expected <name>+<key id>+<key>")
        name, hex_id, encoded = parts
        _check_key_name(name)
        if not _HEX_KEY_ID.fullmatch(hex_id):
            raise InvalidNote(f"malformed verifier key: key id {hex_id!r} is not 8 hex digits")
        verifier = cls(name, _decode_key(encoded, "verifier"))
        if bytes.fromhex(hex_id) != verifier.key_id:
            raise InvalidNote(f"verifier key id {hex_id} does not match its name and key")
        return verifier

    def verify(self, note: str) -> str:
        """The note's text, if this key signed it; InvalidNote otherwise."""
        text, signatures = _split_note(note)
        verified = False
        for name, signature in signatures:
            if name != self.name or signature[:_KEY_ID_SIZE] != self.key_id:
                continue  # another key's: the spec says to ignore it
            if verified:
                continue  # Go keeps the first signature of a key and drops repeats
            try:
                if len(signature) != _KEY_ID_SIZE + _SIGNATURE_SIZE:
                    raise InvalidSignature
                self._public_key.verify(signature[_KEY_ID_SIZE:], text.encode("utf-8"))
            except InvalidSignature:
                raise InvalidNote(f"bad signature by {self.name}+{self.key_id.hex()}") from None
            verified = True
        if not verified:
            raise InvalidNote(
                f"no signature by {self.name}+{self.key_id.hex()}: the note is signed by unknown keys only"
            )
        return text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    """Standard, padded base64 and nothing else (b64decode alone skips stray characters)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def _check_key_name(name: str) -> None:
    if not name:
        raise InvalidNote("key name is empty")
    if any(char.isspace() for char in name) or "+" in name:
        raise InvalidNote(f"key name {name!r} contains a space or '+'")
    if _CONTROL.search(name):
        raise InvalidNote(f"key name {name!r} contains a control character")


def _decode_key(encoded: str, kind: str) -> bytes:
    try:
        key = _b64decode(encoded)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidNote(f"malformed {kind} key: its key is not base64") from None
    if key[:1] != _ED25519:
        raise InvalidNote(f"unsupported {kind} key: algorithm byte is {key[:1].hex() or 'missing'}, not 01 (Ed25519)")
    if len(key) != 1 + _KEY_SIZE:
        raise InvalidNote(f"malformed {kind} key: {len(key) - 1} key bytes, not {_KEY_SIZE}")
    return key[1:]


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    if _CONTROL.search(text):
        raise ValueError("note text must not contain control characters other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("note text is not valid Unicode (lone surrogate)") from None


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The text and the (key name, key id ‖ signature) of each signature line; InvalidNote if malformed."""
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNote("malformed note: not valid Unicode") from None
    if _CONTROL.search(note):
        raise InvalidNote("malformed note: a control character other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise InvalidNote("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise InvalidNote("malformed note: no signature lines, or the last one lacks its newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidNote(f"malformed note: {len(lines)} signatures, more than {MAX_SIGNATURES}")
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIGNATURE_PREFIX):
            raise InvalidNote(f"malformed note: signature line {number} does not start with an em dash and a space")
        name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        try:
            _check_key_name(name)
            signature = _b64decode(encoded)
        except (InvalidNote, binascii.Error, UnicodeEncodeError):
            raise InvalidNote(f"malformed note: signature line {number} is not '— <key name> <base64>'") from None
        if len(signature) <= _KEY_ID_SIZE:
            raise InvalidNote(f"malformed note: signature line {number} is too short to hold a key id and signature")
        signatures.append((name, signature))
    return text, signatures


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head as tlog-checkpoint note text: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise InvalidNote(f"checkpoint tree size {self.size!r} is not an integer in 0..2^64-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise InvalidNote(f"checkpoint root hash is {len(self.root_hash)} bytes, not {HASH_SIZE}")
        for extension in self.extensions:
            _check_line("extension line", extension)

    def body(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root_hash), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        if not body.endswith("\n"):
            raise InvalidNote("checkpoint does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise InvalidNote(f"checkpoint has {len(lines)} line(s); it needs origin, tree size and root hash")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise InvalidNote(f"checkpoint tree size {size_text!r} is not a decimal number without leading zeroes")
        try:
            root = _b64decode(root_text)
        except (binascii.Error, UnicodeEncodeError):
            raise InvalidNote(f"checkpoint root hash {root_text!r} is not base64") from None
        if _b64(root) != root_text:
            raise InvalidNote(f"checkpoint root hash {root_text!r} is not in canonical base64")
        return cls(origin, int(size_text), root, tuple(extensions))


def _check_line(what: str, line: str) -> None:
    if not line:
        raise InvalidNote(f"checkpoint {what} is empty")
    if "\n" in line or _CONTROL.search(line):
        raise InvalidNote(f"checkpoint {what} {line!r} contains a newline or control character")
