import random
from datetime import time

import pytest

from domain.errors import ValidationFailed
from domain.merchants.rules import (
    CREDIT_CODE_CHARSET,
    credit_code_check_character,
    credit_code_problem,
    food_licence_problem,
    format_business_hours,
    generate_credit_code,
    generate_food_licence_no,
    is_open_at,
    is_valid_credit_code,
    parse_business_hours,
    parse_credit_code,
    parse_level,
)

# The worked example of GB 32100-2015, and a code whose check character is a letter.
KNOWN_VALID_CODES = ["91350100M000100Y43", "91110000802100433B"]


@pytest.mark.parametrize("code", KNOWN_VALID_CODES)
def test_published_codes_pass_the_check_digit(code: str) -> None:
    assert is_valid_credit_code(code)
    assert credit_code_check_character(code[:17]) == code[17]


def test_a_changed_character_fails_the_check_digit() -> None:
    code = KNOWN_VALID_CODES[0]
    tampered = code[:5] + ("2" if code[5] != "2" else "3") + code[6:]
    assert "check digit" in (credit_code_problem(tampered) or "")
    assert "'3'" in (credit_code_problem(code[:17] + "0") or "")


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("", "missing"),
        ("91350100M000100Y4", "has 17 characters"),
        ("91350100M000100Y433", "has 19 characters"),
        ("91350100M0001O0Y43", "'O'"),
        ("91350100I000100Y43", "'I'"),
    ],
)
def test_malformed_codes_say_why(code: str, fragment: str) -> None:
    assert fragment in (credit_code_problem(code) or "")


def test_check_value_of_31_maps_to_zero() -> None:
    rng = random.Random(7)
    # Search a prefix whose weighted sum is a multiple of 31: its check character must be '0', not out of range.
    for _ in range(10_000):
        prefix = "".join(rng.choice(CREDIT_CODE_CHARSET) for _ in range(17))
        weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
        total = sum(CREDIT_CODE_CHARSET.index(c) * w for c, w in zip(prefix, weights, strict=True))
        if total % 31 == 0:
            assert credit_code_check_character(prefix) == "0"
            return
    pytest.fail("no prefix with a sum divisible by 31 found")


def test_parse_credit_code_normalises_case_and_spaces() -> None:
    assert parse_credit_code("  91350100m000100y43 ") == "91350100M000100Y43"
    with pytest.raises(ValidationFailed, match="check digit"):
        parse_credit_code("91350100M000100Y44")


def test_generated_codes_are_valid_and_in_hexi() -> None:
    rng = random.Random(1)
    codes = {generate_credit_code(rng) for _ in range(500)}
    assert len(codes) == 500
    assert all(is_valid_credit_code(code) for code in codes)
    assert all(code.startswith("92120103") for code in codes)
    assert generate_credit_code(rng, sole_trader=False).startswith("91120103")


def test_food_licence_numbers() -> None:
    rng = random.Random(2)
    number = generate_food_licence_no(rng)
    assert number.startswith("JY1120103") and len(number) == 16
    assert food_licence_problem(number) is None
    assert food_licence_problem("JY112010312345") is not None
    assert food_licence_problem("津餐证字2015-001") is not None


def test_business_hours_parse_into_intervals() -> None:
    assert parse_business_hours("10:00-14:00,17:00-22:00") == [["10:00", "14:00"], ["17:00", "22:00"]]
    assert parse_business_hours(" 6:30~9:00；11:00 - 14:00 ") == [["06:30", "09:00"], ["11:00", "14:00"]]
    assert parse_business_hours("22:00-02:00") == [["22:00", "02:00"]]
    assert parse_business_hours("00:00-24:00") == [["00:00", "24:00"]]
    assert parse_business_hours("10:00-14:00，14:00-18:00") == [["10:00", "14:00"], ["14:00", "18:00"]]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("10-14", "not written like"),
        ("10:00-14:00,", "not written like"),
        ("10:00 to 14:00", "not written like"),
        ("25:00-26:00", "not a time of day"),
        ("10:60-11:00", "not a time of day"),
        ("24:00-02:00", "not a time of day"),
        ("10:00-10:00", "same time"),
        ("10:00-14:00,13:00-15:00", "overlap"),
        ("22:00-02:00,01:00-03:00", "overlap"),
        ("20:00-01:00,00:30-02:00", "overlap"),
        ("00:00-24:00,10:00-11:00", "overlap"),
    ],
)
def test_bad_business_hours_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed, match=fragment):
        parse_business_hours(text)


def test_business_hours_round_trip_and_opening() -> None:
    hours = parse_business_hours("10:00-14:00,22:00-02:00")
    assert parse_business_hours(format_business_hours(hours)) == hours
    assert is_open_at(hours, time(10, 0))
    assert not is_open_at(hours, time(14, 0))
    assert is_open_at(hours, time(23, 30))
    assert is_open_at(hours, time(1, 59))
    assert not is_open_at(hours, time(2, 0))
    assert is_open_at(parse_business_hours("00:00-24:00"), time(23, 59))


@pytest.mark.parametrize(("raw", "level"), [("A", "A"), (" b ", "B"), ("c级", "C"), ("D", "D")])
def test_levels(raw: str, level: str) -> None:
    assert parse_level(raw) == level


@pytest.mark.parametrize("raw", ["E", "", "AB", "1"])
def test_bad_levels(raw: str) -> None:
    with pytest.raises(ValidationFailed, match="not one of A, B, C, D"):
        parse_level(raw, what="risk level")
