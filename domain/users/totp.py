"""Time-based one-time passwords for the second sign-in factor (RFC 6238 over RFC 4226 HOTP).

The parameters are the ones every authenticator app assumes: HMAC-SHA-1, 6 digits, 30-second steps. They are
also spelled out in the provisioning URI, because a few apps ignore defaults they were not told.

``verify_totp`` answers the time-step counter that matched rather than a bool: a code stays valid for the whole
step (and the tolerated neighbours), so the caller stores the last accepted counter per user and refuses a
counter that is not greater, which stops a shoulder-surfed code from being replayed (RFC 6238 §5.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

import segno

STEP_SECONDS = 30
DEFAULT_DIGITS = 6
# 160 bits: the HMAC-SHA-1 block output length, the key size RFC 4226 §4 recommends.
SECRET_BYTES = 20
DEFAULT_ISSUER = "Sunshine"


def new_secret() -> str:
    """A fresh random shared secret, base32 without padding (160 bits encode to exactly 32 characters)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def totp_at(secret: str, for_time: float, *, digits: int = DEFAULT_DIGITS) -> str:
    """The code valid at ``for_time`` (seconds since the epoch), zero-padded to ``digits``."""
    return _hotp(_decode_secret(secret), time_step(for_time), digits=digits)


def time_step(for_time: float) -> int:
    """The RFC 6238 counter T = floor(unix time / 30)."""
    return int(for_time // STEP_SECONDS)


def verify_totp(
    secret: str,
    code: str,
    *,
    now: float | None = None,
    window: int = 1,
    digits: int = DEFAULT_DIGITS,
) -> int | None:
    """The time-step counter whose code equals ``code``, looking ``window`` steps either side of now; else None.

    Spaces are ignored because apps display codes as ``123 456``. Anything but ``digits`` ASCII digits is a
    mismatch, not an error: the input comes straight from a sign-in form.
    """
    if window < 0:
        raise ValueError("window must not be negative")
    candidate = "".join(code.split())
    if len(candidate) != digits or not (candidate.isascii() and candidate.isdigit()):
        return None
    key = _decode_secret(secret)
    current = time_step(time.time() if now is None else now)
    matched: int | None = None
    # Every step in the window is computed and compared, so the time taken does not reveal which one matched.
    for counter in sorted(range(current - window, current + window + 1), key=lambda step: abs(step - current)):
        expected = _hotp(key, counter, digits=digits)
        if hmac.compare_digest(expected.encode("ascii"), candidate.encode("ascii")) and matched is None:
            matched = counter
    return matched


def provisioning_uri(secret: str, *, account: str, issuer: str = DEFAULT_ISSUER) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app reads from the QR code (Google's Key URI format).

    The issuer goes both in the label prefix (older apps) and in the ``issuer`` parameter (newer ones).
    """
    if ":" in issuer or ":" in account:
        # The colon separates issuer from account in the label; apps split on the first one they find.
        raise ValueError("issuer and account must not contain ':'")
    _decode_secret(secret)
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    parameters = urlencode(
        {
            "secret": _normalise_secret(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DEFAULT_DIGITS,
            "period": STEP_SECONDS,
        },
        # Some authenticator apps show a '+' from a form-encoded space literally.
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{parameters}"


def qr_svg(uri: str) -> str:
    """The URI as a QR code in inline SVG for an HTML page (no XML declaration, no namespace needed in HTML5).

    The light modules are painted white: a transparent code on a dark theme does not scan.
    """
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))


def _hotp(key: bytes, counter: int, *, digits: int) -> str:
    """RFC 4226 §5.3: HMAC the big-endian counter, truncate dynamically, keep the low ``digits`` decimals."""
    if not 6 <= digits <= 10:
        raise ValueError("digits must be between 6 and 10")
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def _normalise_secret(secret: str) -> str:
    """Upper case without spaces or padding: secrets are often shown in groups of four for manual entry."""
    return "".join(secret.split()).upper().rstrip("=")


def _decode_secret(secret: str) -> bytes:
    normalised = _normalise_secret(secret)
    if not normalised:
        raise ValueError("the TOTP secret is empty")
    try:
        return base64.b32decode(normalised + "=" * (-len(normalised) % 8))
    except binascii.Error as error:
        raise ValueError("the TOTP secret is not valid base32") from error
