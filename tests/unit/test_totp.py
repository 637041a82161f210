"""TOTP against the RFC 6238 test vectors, and the edges of verification a sign-in form meets."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from domain.users.totp import (
    new_secret,
    provisioning_uri,
    qr_svg,
    time_step,
    totp_at,
    verify_totp,
)

# RFC 6238 appendix B uses the ASCII key "12345678901234567890" for SHA-1.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode("ascii")

RFC_SHA1_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
]

NOW = 1_800_000_015.0  # 15 s into a step, so ±14 s stays in the same step


@pytest.mark.parametrize(("moment", "expected"), RFC_SHA1_VECTORS)
def test_rfc_6238_sha1_vectors(moment: int, expected: str) -> None:
    assert totp_at(RFC_SECRET, moment, digits=8) == expected


@pytest.mark.parametrize(("moment", "expected"), RFC_SHA1_VECTORS)
def test_six_digits_are_the_low_digits_of_the_rfc_vectors(moment: int, expected: str) -> None:
    assert totp_at(RFC_SECRET, moment) == expected[-6:]


@pytest.mark.parametrize(("moment", "expected"), RFC_SHA1_VECTORS)
def test_rfc_vectors_verify_and_answer_their_time_step(moment: int, expected: str) -> None:
    assert verify_totp(RFC_SECRET, expected, now=moment, digits=8) == moment // 30


def test_new_secret_is_160_bits_of_unpadded_base32_and_differs_each_time() -> None:
    secret = new_secret()
    assert len(secret) == 32
    assert "=" not in secret
    assert len(base64.b32decode(secret)) == 20
    assert new_secret() != secret


def test_a_fresh_secret_round_trips() -> None:
    secret = new_secret()
    assert verify_totp(secret, totp_at(secret, NOW), now=NOW) == time_step(NOW)


def test_secret_is_accepted_in_lower_case_and_groups_of_four() -> None:
    secret = new_secret()
    grouped = " ".join(secret[index : index + 4] for index in range(0, len(secret), 4)).lower()
    assert totp_at(grouped, NOW) == totp_at(secret, NOW)


def test_codes_with_spaces_are_accepted() -> None:
    code = totp_at(RFC_SECRET, NOW)
    assert verify_totp(RFC_SECRET, f" {code[:3]} {code[3:]}\n", now=NOW) == time_step(NOW)


@pytest.mark.parametrize("offset_steps", [-1, 1])
def test_window_of_one_accepts_the_neighbouring_steps(offset_steps: int) -> None:
    code = totp_at(RFC_SECRET, NOW + offset_steps * 30)
    assert verify_totp(RFC_SECRET, code, now=NOW) == time_step(NOW) + offset_steps


@pytest.mark.parametrize("offset_steps", [-2, 2])
def test_window_of_one_refuses_two_steps_away(offset_steps: int) -> None:
    code = totp_at(RFC_SECRET, NOW + offset_steps * 30)
    assert verify_totp(RFC_SECRET, code, now=NOW) is None
    assert verify_totp(RFC_SECRET, code, now=NOW, window=2) == time_step(NOW) + offset_steps


def test_window_of_zero_accepts_only_the_current_step() -> None:
    assert verify_totp(RFC_SECRET, totp_at(RFC_SECRET, NOW), now=NOW, window=0) == time_step(NOW)
    assert verify_totp(RFC_SECRET, totp_at(RFC_SECRET, NOW - 30), now=NOW, window=0) is None


def test_negative_window_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="window"):
        verify_totp(RFC_SECRET, "123456", now=NOW, window=-1)


def test_the_same_code_answers_the_same_step_so_callers_can_refuse_reuse() -> None:
    code = totp_at(RFC_SECRET, NOW)
    first = verify_totp(RFC_SECRET, code, now=NOW)
    again = verify_totp(RFC_SECRET, code, now=NOW + 10)
    assert first is not None and first == again


def test_wrong_code_is_refused() -> None:
    right = totp_at(RFC_SECRET, NOW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert verify_totp(RFC_SECRET, wrong, now=NOW) is None


def test_a_code_for_another_secret_is_refused() -> None:
    other = base64.b32encode(b"abcdefghijklmnopqrst").decode("ascii")
    assert verify_totp(RFC_SECRET, totp_at(other, NOW), now=NOW) is None


@pytest.mark.parametrize(
    "code",
    [
        "",
        "12345",  # too short
        "1234567",  # too long
        "12a456",
        "-12345",
        "12345.",
        "١٢٣٤٥٦",  # Arabic-Indic digits pass str.isdigit() but are not what the app shows
        "１２３４５６",  # full-width digits from a Chinese input method
    ],
)
def test_non_digit_or_wrong_length_input_is_refused_not_raised(code: str) -> None:
    assert verify_totp(RFC_SECRET, code, now=NOW) is None


def test_eight_digit_codes_need_digits_8() -> None:
    code = totp_at(RFC_SECRET, NOW, digits=8)
    assert verify_totp(RFC_SECRET, code, now=NOW) is None
    assert verify_totp(RFC_SECRET, code, now=NOW, digits=8) == time_step(NOW)


def test_verify_uses_the_clock_when_now_is_not_given() -> None:
    import time

    moment = time.time()
    code = totp_at(RFC_SECRET, moment)
    # window=1 absorbs a step boundary crossed between the two clock reads.
    assert verify_totp(RFC_SECRET, code) is not None


@pytest.mark.parametrize("secret", ["", "   ", "not base32!", "ABCDEFG1"])
def test_invalid_secret_is_an_error(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        totp_at(secret, NOW)


def test_provisioning_uri_names_every_parameter_and_quotes_the_label() -> None:
    secret = new_secret()
    uri = provisioning_uri(secret, account="王 officer@hexi.gov.cn", issuer="Sunshine 阳光食品")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert " " not in uri and "+" not in uri
    issuer_label, account_label = parts.path.lstrip("/").split(":")
    assert unquote(issuer_label) == "Sunshine 阳光食品"
    assert unquote(account_label) == "王 officer@hexi.gov.cn"
    query = parse_qs(parts.query)
    assert query == {
        "secret": [secret],
        "issuer": ["Sunshine 阳光食品"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def test_provisioning_uri_defaults_to_the_sunshine_issuer() -> None:
    uri = provisioning_uri(RFC_SECRET, account="admin")
    assert uri.startswith("otpauth://totp/Sunshine:admin?secret=")
    assert "issuer=Sunshine" in uri


@pytest.mark.parametrize(("account", "issuer"), [("a:b", "Sunshine"), ("admin", "Sun:shine")])
def test_provisioning_uri_refuses_a_colon_in_the_label(account: str, issuer: str) -> None:
    with pytest.raises(ValueError, match=":"):
        provisioning_uri(RFC_SECRET, account=account, issuer=issuer)


def test_qr_svg_is_inline_svg_without_xml_declaration() -> None:
    svg = qr_svg(provisioning_uri(RFC_SECRET, account="admin"))
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "otpauth" not in svg  # the secret is only in the modules, never in readable text
