"""Password hashing (argon2id), the password policy, and strong generated passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
# argon2 accepts any length, but hashing megabytes on every sign-in attempt is a cheap denial of service.
MAX_PASSWORD_LENGTH = 256
REQUIRED_CHARACTER_CLASSES = 3

# argon2-cffi's defaults follow RFC 9106's second recommended option; the type is pinned so that a
# library default change can never silently downgrade us from argon2id.
_hasher = PasswordHasher(type=Type.ID)

# Generated passwords are read off a screen and typed, so characters that look alike are left out.
_GENERATED_LOWER = "abcdefghijkmnpqrstuvwxyz"
_GENERATED_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_GENERATED_DIGITS = "23456789"
_GENERATED_SYMBOLS = "!#%+-=?@^_"


def hash_password(password: str) -> str:
    """An argon2id PHC string (``$argon2id$v=19$...``) with a fresh random salt."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; a malformed or foreign hash is a mismatch, never an exception."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's; rehash it at the next sign-in."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def character_classes(password: str) -> set[str]:
    """Which of lowercase, uppercase, digit and symbol the password uses.

    Any character that is not a cased letter or a digit (punctuation, space, 汉字) counts as a symbol.
    """
    classes = set()
    for char in password:
        if char.islower():
            classes.add("lowercase")
        elif char.isupper():
            classes.add("uppercase")
        elif char.isdigit():
            classes.add("digit")
        else:
            classes.add("symbol")
    return classes


def password_problems(password: str) -> list[str]:
    """Every way the password breaks the policy, in plain words; an empty list means it is acceptable."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"it has {len(password)} characters; at least {MIN_PASSWORD_LENGTH} are required")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"it has {len(password)} characters; at most {MAX_PASSWORD_LENGTH} are allowed")
    used = character_classes(password)
    if len(used) < REQUIRED_CHARACTER_CLASSES:
        missing = [name for name in ("lowercase", "uppercase", "digit", "symbol") if name not in used]
        problems.append(
            f"it mixes {len(used)} of the 4 kinds of character; use at least {REQUIRED_CHARACTER_CLASSES} "
            f"(add some of: {', '.join(missing)})"
        )
    return problems


def generate_password(length: int = 16) -> str:
    """A random password that satisfies the policy: every character class at least once."""
    if length < MIN_PASSWORD_LENGTH:
        raise ValueError(f"generated passwords need at least {MIN_PASSWORD_LENGTH} characters")
    pools = (_GENERATED_LOWER, _GENERATED_UPPER, _GENERATED_DIGITS, _GENERATED_SYMBOLS)
    alphabet = "".join(pools)
    chars = [secrets.choice(pool) for pool in pools]
    chars += [secrets.choice(alphabet) for _ in range(length - len(pools))]
    secrets.SystemRandom().shuffle(chars)
    password = "".join(chars)
    assert not password_problems(password)
    return password
