"""Small secrets kept at rest under a server key (AES-256-GCM): a TOTP seed must not be readable from a
database dump (等保: authentication data protected in storage)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from Crypto.Cipher import AES

PREFIX = "v1."
NONCE_BYTES = 12


class SecretUnreadable(ValueError):
    """The stored value was not sealed under this key, or was altered."""


def derive_key(server_secret: str, purpose: str) -> bytes:
    """A key per purpose: a value sealed for one use never opens for another."""
    return hmac.new(server_secret.encode("utf-8"), f"sunshine/secret-box/{purpose}".encode(), hashlib.sha256).digest()


def seal(key: bytes, plaintext: str) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext.encode("utf-8"))
    return PREFIX + base64.urlsafe_b64encode(nonce + ciphertext + tag).decode("ascii")


def unseal(key: bytes, sealed: str) -> str:
    if not sealed.startswith(PREFIX):
        raise SecretUnreadable("not a sealed value")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
        nonce, ciphertext, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-16], raw[-16:]
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        return cipher.decrypt_and_verify(ciphertext, tag).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as error:
        raise SecretUnreadable("the sealed value does not open under this key") from error
