"""Pure validation rules for merchant data: credit codes, licence numbers, business hours, grades.

Every parser returns the normalised value or raises ``ValidationFailed`` with a reason fit for a report line.
"""

from __future__ import annotations

import random
import re
from datetime import time

from domain.errors import ValidationFailed

# 统一社会信用代码, GB 32100-2015: 18 characters from 31 symbols (no I, O, S, V, Z), the last a check character.
CREDIT_CODE_LENGTH = 18
CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE_VALUE = {char: value for value, char in enumerate(CREDIT_CODE_CHARSET)}

# GB 11714 organisation code (characters 9–17 of a credit code): 8 body characters and a check character.
_ORGANISATION_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

HEXI_DIVISION_CODE = "120103"  # 天津市河西区 administrative division code

# 食品经营许可证编号: "JY" + 主体业态 (1 digit) + division (6) + sequence (6) + check (1).
_FOOD_LICENCE_PATTERN = re.compile(r"JY\d{14}")

LEVELS = ("A", "B", "C", "D")

_HOURS_INTERVAL_SEPARATORS = re.compile(r"[,，;；]")
_HOURS_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*[-~～–—至]\s*(\d{1,2}):(\d{2})")
MINUTES_PER_DAY = 24 * 60


def normalise_credit_code(raw: str) -> str:
    """Credit codes are upper case; spreadsheets often carry stray spaces or lower-case letters."""
    return raw.strip().upper()


def credit_code_check_character(first_17: str) -> str:
    """The 18th character of a credit code whose first 17 characters are given (GB 32100-2015 §5)."""
    if len(first_17) != CREDIT_CODE_LENGTH - 1 or any(c not in _CREDIT_CODE_VALUE for c in first_17):
        raise ValueError("need 17 characters from the credit-code character set")
    total = sum(_CREDIT_CODE_VALUE[c] * w for c, w in zip(first_17, _CREDIT_CODE_WEIGHTS, strict=True))
    check_value = 31 - total % 31
    return CREDIT_CODE_CHARSET[0 if check_value == 31 else check_value]


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a valid 统一社会信用代码, or None when it is valid."""
    if not code:
        return "the credit code (统一社会信用代码) is missing"
    if len(code) != CREDIT_CODE_LENGTH:
        return f"the credit code {code!r} has {len(code)} characters; it must have {CREDIT_CODE_LENGTH}"
    foreign = sorted({c for c in code if c not in _CREDIT_CODE_VALUE})
    if foreign:
        return (
            f"the credit code {code!r} contains {', '.join(repr(c) for c in foreign)}; "
            "only digits and the letters A–Y except I, O, S, V, Z are used"
        )
    expected = credit_code_check_character(code[:17])
    if code[17] != expected:
        return f"the credit code {code!r} fails its check digit (the last character should be {expected!r})"
    return None


def is_valid_credit_code(code: str) -> bool:
    return credit_code_problem(code) is None


def parse_credit_code(raw: str) -> str:
    code = normalise_credit_code(raw)
    problem = credit_code_problem(code)
    if problem:
        raise ValidationFailed(problem)
    return code


def _organisation_code(body: str) -> str:
    total = sum(int(c) * w for c, w in zip(body, _ORGANISATION_CODE_WEIGHTS, strict=True))
    check_value = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check_value, str(check_value))


def generate_credit_code(
    rng: random.Random | None = None, *, sole_trader: bool = True, division_code: str = HEXI_DIVISION_CODE
) -> str:
    """A well-formed credit code for demo and test data.

    Registration authority 9 (市场监管); type 2 个体工商户 or 1 企业; a random organisation code with its own
    GB 11714 check character; then the GB 32100 check character.
    """
    rng = rng or random.Random()  # noqa: S311 - demo data, not a secret
    body = "".join(rng.choice("0123456789") for _ in range(8))
    first_17 = ("92" if sole_trader else "91") + division_code + _organisation_code(body)
    return first_17 + credit_code_check_character(first_17)


def normalise_food_licence_no(raw: str) -> str:
    return raw.strip().upper()


def food_licence_problem(number: str) -> str | None:
    """Why ``number`` is not a 食品经营许可证编号 (JY + 14 digits), or None when it is well-formed."""
    if _FOOD_LICENCE_PATTERN.fullmatch(number):
        return None
    return f"the food licence number {number!r} is not 'JY' followed by 14 digits"


def generate_food_licence_no(
    rng: random.Random | None = None, *, business_type: int = 1, division_code: str = HEXI_DIVISION_CODE
) -> str:
    """A well-formed licence number (JY + type + division + sequence + a check digit) for demo data."""
    rng = rng or random.Random()  # noqa: S311 - demo data, not a secret
    digits = f"{business_type}{division_code}{rng.randrange(1_000_000):06d}"
    # The licensing authority's check-digit algorithm is not published; a mod-10 digit keeps numbers plausible.
    check = sum(int(d) * (i + 1) for i, d in enumerate(digits)) % 10
    return f"JY{digits}{check}"


def parse_level(raw: str, *, what: str = "level") -> str:
    """A grade A–D; accepts lower case and a trailing 级 ("b级" → "B")."""
    value = raw.strip().upper().removesuffix("级")
    if value not in LEVELS:
        raise ValidationFailed(f"the {what} {raw!r} is not one of {', '.join(LEVELS)}")
    return value


def _minutes(hours: int, minutes: int, text: str, *, is_end: bool) -> int:
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes != 0 or not is_end)):
        raise ValidationFailed(f"{text!r} is not a time of day (00:00–23:59, or 24:00 as an end)")
    return hours * 60 + minutes


def _unwrapped(start: int, end: int) -> tuple[int, int]:
    """Minutes since the interval's own midnight; an end before the start belongs to the next day."""
    return (start, end + MINUTES_PER_DAY) if end < start else (start, end)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two unwrapped [start, end) intervals overlap on the 24-hour clock."""
    return any(a[0] < b[1] + shift and b[0] + shift < a[1] for shift in (-MINUTES_PER_DAY, 0, MINUTES_PER_DAY))


def parse_business_hours(text: str) -> list[list[str]]:
    """``"10:00-14:00,17:00-22:00"`` → ``[["10:00", "14:00"], ["17:00", "22:00"]]``.

    Intervals are separated by commas or semicolons (ASCII or full-width); a range uses ``-`` (or ``~``, ``至``).
    An end earlier than its start crosses midnight (``22:00-02:00``); ``24:00`` may end a day (``00:00-24:00``
    is round the clock). Empty, zero-length and overlapping intervals are refused.
    """
    if not text.strip():
        raise ValidationFailed("the business hours are empty")
    intervals: list[list[str]] = []
    spans: list[tuple[int, int]] = []
    for raw_part in _HOURS_INTERVAL_SEPARATORS.split(text):
        part = raw_part.strip()
        match = _HOURS_RANGE.fullmatch(part)
        if not match:
            raise ValidationFailed(f"the business hours {part!r} are not written like 10:00-14:00")
        start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
        start = _minutes(start_h, start_m, part, is_end=False)
        end = _minutes(end_h, end_m, part, is_end=True)
        if start == end:
            raise ValidationFailed(f"the business hours {part!r} start and end at the same time")
        span = _unwrapped(start, end)
        for earlier_span, (earlier_start, earlier_end) in zip(spans, intervals, strict=True):
            if _overlaps(span, earlier_span):
                raise ValidationFailed(f"the business hours {part!r} overlap {earlier_start}-{earlier_end}")
        spans.append(span)
        intervals.append([f"{start_h:02d}:{start_m:02d}", f"{end_h:02d}:{end_m:02d}"])
    return intervals


def format_business_hours(hours: list[list[str]]) -> str:
    """The inverse of ``parse_business_hours``."""
    return ",".join(f"{start}-{end}" for start, end in hours)


def is_open_at(hours: list[list[str]], moment: time) -> bool:
    """Whether a time of day (Beijing time) falls inside any stored interval; each end minute is excluded."""
    minute = moment.hour * 60 + moment.minute
    for start_text, end_text in hours:
        start, end = (int(text[:2]) * 60 + int(text[3:]) for text in (start_text, end_text))
        if start < end:
            if start <= minute < end:
                return True
        elif minute >= start or minute < end:  # crosses midnight
            return True
    return False
