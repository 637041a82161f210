"""The certificate expiry rules at their boundaries, idempotent event ids, and the notice card PNG."""

from __future__ import annotations

import itertools
import json
import struct
import zlib
from datetime import date, timedelta

import pytest

from domain.alerts.intake_rules import EVENT_ID_PATTERN, check_part_content
from domain.alerts.taxonomy import AlertType
from domain.certificates.expiry import (
    REMINDER_DAYS,
    CertificateFinding,
    certificate_event_id,
    certificate_findings,
    pick_notice_camera,
)
from domain.certificates.notice_image import (
    HEIGHT,
    NOTICE_KEYWORD,
    PNG_SIGNATURE,
    WIDTH,
    NoticeFacts,
    iter_png_chunks,
    read_png_text,
    render_notice_png,
)
from domain.merchants.models import Camera, Certificate, CertificateKind

TODAY = date(2026, 9, 30)  # the eve of National Day: nothing about working days matters here
_ids = itertools.count(1)

LICENCES = (CertificateKind.business_licence, CertificateKind.food_business_licence,
            CertificateKind.vendor_registration)


def cert(kind: CertificateKind, valid_until: date | None, *, merchant_id: int = 1, holder: str | None = None,
         valid_from: date | None = None, number: str | None = None) -> Certificate:
    identity = next(_ids)
    if kind is CertificateKind.health_certificate and holder is None:
        holder = "王芳"
    start = valid_from or ((valid_until or TODAY) - timedelta(days=365))
    return Certificate(id=identity, merchant_id=merchant_id, kind=kind.value, number=number or f"N{identity:06d}",
                       holder_name=holder, valid_from=start, valid_until=valid_until)


def alerts(*certificates: Certificate, as_of: date = TODAY) -> list[AlertType]:
    return [finding.alert_type for finding in certificate_findings(certificates, as_of=as_of)]


# ----- The rules at their boundaries -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", LICENCES)
@pytest.mark.parametrize(
    ("days_from_today", "expected"),
    [
        (-400, [AlertType.licence_expired]),
        (-1, [AlertType.licence_expired]),  # lapsed yesterday
        (0, [AlertType.licence_expiring]),  # the last valid day is today: not lapsed yet
        (1, [AlertType.licence_expiring]),
        (REMINDER_DAYS, [AlertType.licence_expiring]),  # in 30 days: the first reminder
        (REMINDER_DAYS + 1, []),  # in 31 days: too early
        (365, []),
    ],
    ids=["long-lapsed", "yesterday", "today", "tomorrow", "in-30-days", "in-31-days", "in-a-year"],
)
def test_licences_remind_30_days_ahead_and_lapse_the_day_after_valid_until(
    kind: CertificateKind, days_from_today: int, expected: list[AlertType]
) -> None:
    assert alerts(cert(kind, TODAY + timedelta(days=days_from_today))) == expected


@pytest.mark.parametrize(
    ("days_from_today", "expected"),
    [(-30, [AlertType.health_cert_expired]), (-1, [AlertType.health_cert_expired]), (0, []), (1, []), (30, [])],
    ids=["a-month-ago", "yesterday", "today", "tomorrow", "in-30-days"],
)
def test_health_certificates_alert_only_once_lapsed(days_from_today: int, expected: list[AlertType]) -> None:
    assert alerts(cert(CertificateKind.health_certificate, TODAY + timedelta(days=days_from_today))) == expected


def test_certificates_without_expiry_or_of_unknown_kind_raise_nothing() -> None:
    long_term = cert(CertificateKind.business_licence, None)  # 长期
    odd = cert(CertificateKind.food_business_licence, TODAY - timedelta(days=3))
    odd.kind = "fire_safety_permit"
    assert alerts(long_term, odd) == []


def test_a_renewal_on_file_supersedes_the_old_certificate() -> None:
    old = cert(CertificateKind.food_business_licence, TODAY + timedelta(days=10), number="JY1")
    seamless = cert(CertificateKind.food_business_licence, TODAY + timedelta(days=5 * 365),
                    valid_from=TODAY + timedelta(days=11), number="JY2")
    assert alerts(old, seamless) == []
    # A renewal that starts after a gap does not spare the reminder: the shop would trade without a licence.
    gap = cert(CertificateKind.food_business_licence, TODAY + timedelta(days=5 * 365),
               valid_from=TODAY + timedelta(days=15), number="JY3")
    assert alerts(old, gap) == [AlertType.licence_expiring]


def test_a_lapsed_licence_renewed_by_today_raises_nothing_but_a_future_renewal_does_not_help() -> None:
    lapsed = cert(CertificateKind.food_business_licence, TODAY - timedelta(days=20), number="JY1")
    covering = cert(CertificateKind.food_business_licence, TODAY + timedelta(days=1800),
                    valid_from=TODAY - timedelta(days=5), number="JY2")
    assert alerts(lapsed, covering) == []
    pending = cert(CertificateKind.food_business_licence, TODAY + timedelta(days=1800),
                   valid_from=TODAY + timedelta(days=2), number="JY3")
    assert alerts(lapsed, pending) == [AlertType.licence_expired]


def test_health_certificates_are_renewed_per_holder_and_merchant() -> None:
    lapsed = cert(CertificateKind.health_certificate, TODAY - timedelta(days=3), holder="李雷")
    someone_else = cert(CertificateKind.health_certificate, TODAY + timedelta(days=300), holder="韩梅梅",
                        valid_from=TODAY - timedelta(days=60))
    elsewhere = cert(CertificateKind.health_certificate, TODAY + timedelta(days=300), holder="李雷",
                     valid_from=TODAY - timedelta(days=60), merchant_id=2)
    assert alerts(lapsed, someone_else, elsewhere) == [AlertType.health_cert_expired]
    renewed = cert(CertificateKind.health_certificate, TODAY + timedelta(days=362), holder="李雷",
                   valid_from=TODAY - timedelta(days=3))
    assert alerts(lapsed, someone_else, renewed) == []


def test_of_two_lapsed_certificates_of_one_line_only_the_later_alerts() -> None:
    older = cert(CertificateKind.health_certificate, TODAY - timedelta(days=400), holder="李雷")
    newer = cert(CertificateKind.health_certificate, TODAY - timedelta(days=35), holder="李雷")
    [finding] = certificate_findings([older, newer], as_of=TODAY)
    assert finding.certificate_id == newer.id


def test_findings_carry_the_facts_and_come_in_a_stable_order() -> None:
    certificates = [
        cert(CertificateKind.health_certificate, TODAY - timedelta(days=2), merchant_id=2, holder="张伟"),
        cert(CertificateKind.food_business_licence, TODAY + timedelta(days=7), merchant_id=2, number="JY12"),
        cert(CertificateKind.vendor_registration, TODAY - timedelta(days=1), merchant_id=1),
    ]
    findings = certificate_findings(certificates, as_of=TODAY)
    assert findings == certificate_findings(list(reversed(certificates)), as_of=TODAY)
    assert [(f.merchant_id, f.alert_type) for f in findings] == [
        (1, AlertType.licence_expired),
        (2, AlertType.health_cert_expired),
        (2, AlertType.licence_expiring),
    ]
    health = findings[1]
    assert (health.days_left, health.holder_name, health.kind) == (-2, "张伟", CertificateKind.health_certificate)
    assert findings[2].days_left == 7
    detail = findings[2].detail()
    assert detail == {
        "certificate_id": certificates[1].id, "certificate_kind": "food_business_licence",
        "certificate_number": "JY12", "holder_name": None, "valid_until": "2026-10-07",
        "checked_on": "2026-09-30", "days_left": 7,
    }
    json.dumps(detail)  # plain JSON, as intake's meta.detail requires


def test_an_unsaved_certificate_is_refused() -> None:
    unsaved = cert(CertificateKind.health_certificate, TODAY - timedelta(days=1))
    unsaved.id = None
    with pytest.raises(ValueError, match="has no id"):
        certificate_findings([unsaved], as_of=TODAY)


# ----- Idempotent event ids --------------------------------------------------------------------------------


def test_a_lasting_problem_keeps_its_event_id_day_after_day() -> None:
    licence = cert(CertificateKind.food_business_licence, TODAY - timedelta(days=1))
    ids = {certificate_findings([licence], as_of=TODAY + timedelta(days=n))[0].event_id for n in range(60)}
    assert ids == {f"cert:{licence.id}:licence_expired:{(TODAY - timedelta(days=1)).isoformat()}"}
    assert EVENT_ID_PATTERN.fullmatch(ids.pop())


def test_reminder_lapse_and_renewal_are_distinct_events() -> None:
    licence = cert(CertificateKind.food_business_licence, TODAY + timedelta(days=10))
    [reminder] = certificate_findings([licence], as_of=TODAY)
    [lapse] = certificate_findings([licence], as_of=TODAY + timedelta(days=11))
    assert reminder.event_id != lapse.event_id
    licence.valid_until = TODAY + timedelta(days=10 + 365)  # renewed in place, then lapsing again a year on
    [lapse_again] = certificate_findings([licence], as_of=TODAY + timedelta(days=11 + 365))
    assert len({reminder.event_id, lapse.event_id, lapse_again.event_id}) == 3
    assert lapse_again.event_id == certificate_event_id(licence.id or 0, "licence_expired", licence.valid_until)


def test_other_certificates_get_other_event_ids() -> None:
    a = cert(CertificateKind.health_certificate, TODAY - timedelta(days=1), holder="甲")
    b = cert(CertificateKind.health_certificate, TODAY - timedelta(days=1), holder="乙")
    assert len({finding.event_id for finding in certificate_findings([a, b], as_of=TODAY)}) == 2


def test_the_notice_camera_is_the_first_enabled_one() -> None:
    cameras = [
        Camera(id=7, merchant_id=1, name="烹饪", area="cooking", stream_url="rtsp://x/7"),
        Camera(id=3, merchant_id=1, name="仓储", area="storage", stream_url="rtsp://x/3", enabled=False),
        Camera(id=5, merchant_id=1, name="洗消", area="washing", stream_url="rtsp://x/5"),
    ]
    assert pick_notice_camera(cameras) == 5
    assert pick_notice_camera([cameras[1]]) is None
    assert pick_notice_camera([]) is None


# ----- The notice card -------------------------------------------------------------------------------------


def facts(**overrides: object) -> NoticeFacts:
    values: dict[str, object] = {
        "alert_type": AlertType.health_cert_expired,
        "merchant_credit_code": "91120103MA05TEST1A",
        "certificate_kind": CertificateKind.health_certificate,
        "certificate_number": "JK2025120100101",
        "holder_name": "王芳",
        "valid_until": date(2026, 9, 27),
        "checked_on": TODAY,
    }
    values.update(overrides)
    return NoticeFacts(**values)  # type: ignore[arg-type]


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """Independent of the module's reader: walk the chunks, checking every CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    found, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind, body = png[offset + 4:offset + 8], png[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        found.append((kind, body))
        offset += 12 + length
    assert offset == len(png)
    return found


def test_the_notice_is_a_valid_png() -> None:
    png = render_notice_png(facts())
    found = chunks(png)
    kinds = [kind for kind, _ in found]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and kinds.count(b"IDAT") == 1
    assert kinds.index(b"PLTE") < kinds.index(b"IDAT")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", found[0][1])
    assert (width, height, depth, colour_type, compression, filtering, interlace) == (WIDTH, HEIGHT, 2, 3, 0, 0, 0)
    palette = dict(found)[b"PLTE"]
    assert len(palette) == 3 * 4
    raw = zlib.decompress(dict(found)[b"IDAT"])  # the stored blocks are a valid zlib stream
    stride = 1 + (width * depth + 7) // 8
    assert len(raw) == height * stride
    assert all(raw[row * stride] == 0 for row in range(height))  # filter type "None" on every line
    pixels = {(byte >> shift) & 3 for row in range(height) for byte in raw[row * stride + 1:(row + 1) * stride]
              for shift in (6, 4, 2, 0)}
    assert pixels == {0, 1, 2, 3}  # background, ink, accent and grey are all used
    assert png == b"".join([PNG_SIGNATURE, *(struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b))
                                             for k, b in found)])
    assert check_part_content(part="snapshot", head=png[:64], declared_content_type="image/png") == "image/png"
    assert len(png) < 64 * 1024


def test_the_notice_records_the_facts_in_text_chunks() -> None:
    texts = read_png_text(render_notice_png(facts()))
    recorded = json.loads(texts[NOTICE_KEYWORD])
    assert recorded == {
        "alert_type": "health_cert_expired", "merchant_credit_code": "91120103MA05TEST1A",
        "certificate_kind": "health_certificate", "certificate_number": "JK2025120100101", "holder_name": "王芳",
        "valid_until": "2026-09-27", "checked_on": "2026-09-30", "days_left": -3,
    }
    assert "持证人：王芳" in texts["Description"] and "已过期3天" in texts["Description"]
    assert "Title" in texts


def test_the_notice_is_deterministic_and_differs_with_the_facts() -> None:
    first = render_notice_png(facts())
    assert render_notice_png(facts()) == first
    variants = [
        facts(checked_on=TODAY + timedelta(days=1)),
        facts(holder_name="李雷"),
        facts(certificate_number="JK2025120100102"),
        facts(alert_type=AlertType.licence_expired, certificate_kind=CertificateKind.food_business_licence,
              holder_name=None),
    ]
    assert len({first, *(render_notice_png(variant) for variant in variants)}) == 1 + len(variants)


def test_the_notice_reminder_uses_another_accent_and_survives_odd_text() -> None:
    reminder = facts(alert_type=AlertType.licence_expiring, certificate_kind=CertificateKind.vendor_registration,
                     certificate_number="津河西食摊备2025" + "9" * 60, holder_name=None,
                     valid_until=TODAY + timedelta(days=30))
    png = render_notice_png(reminder)
    palettes = {dict(iter_png_chunks(png))[b"PLTE"], dict(iter_png_chunks(render_notice_png(facts())))[b"PLTE"]}
    assert len(palettes) == 2
    assert json.loads(read_png_text(png)[NOTICE_KEYWORD])["days_left"] == 30


def test_a_damaged_png_is_detected() -> None:
    png = bytearray(render_notice_png(facts()))
    png[40] ^= 0xFF
    with pytest.raises(ValueError, match="CRC mismatch"):
        read_png_text(bytes(png))
    with pytest.raises(ValueError, match="signature"):
        read_png_text(b"GIF89a" + bytes(png[6:]))


def test_a_finding_becomes_notice_facts() -> None:
    finding = CertificateFinding(certificate_id=9, merchant_id=1, alert_type=AlertType.licence_expiring,
                                 kind=CertificateKind.food_business_licence, number="JY9", holder_name=None,
                                 valid_until=TODAY + timedelta(days=12), as_of=TODAY)
    notice = NoticeFacts.from_finding(finding, merchant_credit_code="91120103MA05TEST1A")
    assert (notice.checked_on, notice.days_left, notice.certificate_number) == (TODAY, 12, "JY9")
