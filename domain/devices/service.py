"""Device keys for edge boxes and vendor integrations that post alerts.

A key reads ``sk_<key_id>_<secret>``. The key id finds the row; only the SHA-256 of the secret is stored,
so a copy of the database cannot be used to post alerts. The key is shown once, when the device is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlmodel import Session, select

from domain.devices.models import Device, DeviceKind
from domain.errors import NotFound, ValidationFailed
from domain.merchants.models import Merchant
from domain.merchants.rules import normalise_credit_code

KEY_PREFIX = "sk_"
KEY_ID_LENGTH = 12
SECRET_BYTES = 32
# Key ids use letters and digits only, so the '_' after them unambiguously starts the secret.
_KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_KEY_PATTERN = re.compile(rf"{KEY_PREFIX}([a-z0-9]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9_-]{{43}})")
# Compared against when the key id is unknown, so that answering takes the same path either way.
_UNKNOWN_KEY_HASH = hashlib.sha256(b"no such device").hexdigest()


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def create_device(
    session: Session, *, name: str, merchant_credit_code: str | None = None, kind: str = DeviceKind.edge_box
) -> tuple[Device, str]:
    """Register a device; returns it with its key, which cannot be recovered later.

    Without a merchant the device may post alerts for any camera in the district (a vendor platform).
    """
    name = name.strip()
    if not name:
        raise ValidationFailed("the device name is empty")
    if len(name) > 100:
        raise ValidationFailed("the device name is longer than 100 characters")
    try:
        device_kind = DeviceKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in DeviceKind)
        raise ValidationFailed(f"unknown device kind {kind!r}; kinds are: {kinds}") from None

    merchant_id = None
    if merchant_credit_code is not None:
        code = normalise_credit_code(merchant_credit_code)
        merchant = session.exec(select(Merchant).where(Merchant.credit_code == code)).first()
        if merchant is None:
            raise NotFound(f"no merchant with credit code {code!r}")
        merchant_id = merchant.id

    key_id = _unused_key_id(session)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    device = Device(
        name=name, kind=device_kind.value, key_id=key_id, key_hash=hash_secret(secret), merchant_id=merchant_id
    )
    session.add(device)
    session.flush()
    return device, f"{KEY_PREFIX}{key_id}_{secret}"


def authenticate_device(session: Session, *, presented_key: str) -> Device | None:
    """The device a key belongs to, or None for a malformed, unknown, wrong or revoked key."""
    match = _KEY_PATTERN.fullmatch(presented_key.strip())
    if not match:
        return None
    key_id, secret = match.groups()
    device = session.exec(select(Device).where(Device.key_id == key_id)).first()
    stored_hash = device.key_hash if device is not None else _UNKNOWN_KEY_HASH
    if not hmac.compare_digest(stored_hash, hash_secret(secret)):
        return None
    if device is None or device.revoked_at is not None:
        return None
    return device


def _unused_key_id(session: Session) -> str:
    # 36^12 ≈ 4.7e18 ids: a clash is practically impossible, but checking costs one indexed lookup.
    while True:
        key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
        if session.exec(select(Device.id).where(Device.key_id == key_id)).first() is None:
            return key_id
