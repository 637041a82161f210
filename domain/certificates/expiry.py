"""Certificate expiry rules for the daily check (pure: no I/O, no clock; the caller says which day it is).

Which alert a certificate raises on a Beijing calendar day ``as_of`` (``valid_until`` is the last valid day):

- business licence, food business licence, vendor registration (许可证/营业执照/摊贩备案):
  ``licence_expiring`` while ``as_of <= valid_until <= as_of + 30 days`` (乐清's 30-day reminder, domain note
  §11; a licence expiring today is still valid today), ``licence_expired`` once ``valid_until < as_of``;
- health certificate (健康证明): ``health_cert_expired`` once ``valid_until < as_of`` (no reminder type exists);
- ``valid_until`` None (长期) or any other kind: nothing.

A certificate is *superseded*, and raises nothing, when the merchant holds another of the same kind (for health
certificates: of the same holder) that runs longer (``valid_until`` later, or 长期) and starts no later than
the day after this one ends, or by ``as_of`` if that is later: the renewal is on file, so reminding or alerting
about the old one would be a false alarm. A renewal recorded by updating ``valid_until`` in place needs no rule.

Idempotency: each finding has an ``event_id`` derived from (certificate id, alert type, valid_until) only —
not from the day of the check — so the daily check raises one alert per problem however many days it lasts
(intake resolves a known event id to its first alert). A renewed certificate (new ``valid_until``) that lapses
again is a new problem with a new event id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from domain.alerts.taxonomy import AlertType
from domain.merchants.models import CertificateKind

REMINDER_DAYS = 30  # licence_expiring: this many days ahead, inclusive (domain note §11)
LICENCE_KINDS = frozenset(
    {CertificateKind.business_licence, CertificateKind.food_business_licence, CertificateKind.vendor_registration}
)
EVENT_ID_PREFIX = "cert"

CERTIFICATE_KIND_LABELS: dict[CertificateKind, str] = {
    CertificateKind.business_licence: "营业执照",
    CertificateKind.food_business_licence: "食品经营许可证",
    CertificateKind.vendor_registration: "食品摊贩备案证明",
    CertificateKind.health_certificate: "健康证明",
}


class CertificateRecord(Protocol):
    """What the rules read of a certificate (``domain.merchants.models.Certificate`` fits)."""

    @property
    def id(self) -> int | None: ...
    @property
    def merchant_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def holder_name(self) -> str | None: ...
    @property
    def valid_from(self) -> date: ...
    @property
    def valid_until(self) -> date | None: ...


class CameraRecord(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def enabled(self) -> bool: ...


@dataclass(frozen=True)
class CertificateFinding:
    """One certificate problem on day ``as_of``: the alert it raises."""

    certificate_id: int
    merchant_id: int
    alert_type: AlertType
    kind: CertificateKind
    number: str
    holder_name: str | None
    valid_until: date
    as_of: date

    @property
    def days_left(self) -> int:
        """Days from ``as_of`` to ``valid_until``: 0 expires today, negative: days since it lapsed (−1 = yesterday)."""
        return (self.valid_until - self.as_of).days

    @property
    def event_id(self) -> str:
        return certificate_event_id(self.certificate_id, self.alert_type, self.valid_until)

    def detail(self) -> dict[str, Any]:
        """The alert's ``meta.detail``: the facts of the certificate (plain JSON)."""
        return {
            "certificate_id": self.certificate_id,
            "certificate_kind": self.kind.value,
            "certificate_number": self.number,
            "holder_name": self.holder_name,
            "valid_until": self.valid_until.isoformat(),
            "checked_on": self.as_of.isoformat(),
            "days_left": self.days_left,
        }


def certificate_event_id(certificate_id: int, alert_type: AlertType | str, valid_until: date) -> str:
    """``cert:<id>:<alert type>:<valid_until>``: the same for every day the problem lasts (intake's idempotency
    key under the sender ``system:certificate-check``); fits intake's event-id alphabet."""
    return f"{EVENT_ID_PREFIX}:{certificate_id}:{AlertType(alert_type).value}:{valid_until.isoformat()}"


def alert_for(kind: CertificateKind, valid_until: date, as_of: date) -> AlertType | None:
    """The alert a certificate of ``kind`` valid until ``valid_until`` raises on ``as_of``, ignoring renewals."""
    days_left = (valid_until - as_of).days
    if kind is CertificateKind.health_certificate:
        return AlertType.health_cert_expired if days_left < 0 else None
    if kind in LICENCE_KINDS:
        if days_left < 0:
            return AlertType.licence_expired
        if days_left <= REMINDER_DAYS:
            return AlertType.licence_expiring
    return None


def certificate_findings(certificates: Iterable[CertificateRecord], *, as_of: date) -> list[CertificateFinding]:
    """Every alert the certificates raise on ``as_of`` (a Beijing calendar day), in a stable order.

    Pass all certificates of each merchant concerned (not only the due ones): renewals are recognised among them.
    """
    records = [record for record in certificates if _kind(record.kind) is not None]
    findings = []
    for record in records:
        kind = _kind(record.kind)
        if kind is None or record.valid_until is None:
            continue
        alert_type = alert_for(kind, record.valid_until, as_of)
        if alert_type is None or _superseded(record, records, as_of=as_of):
            continue
        if record.id is None:
            raise ValueError(f"certificate {record.number!r} has no id: store it before checking it")
        findings.append(
            CertificateFinding(
                certificate_id=record.id,
                merchant_id=record.merchant_id,
                alert_type=alert_type,
                kind=kind,
                number=record.number,
                holder_name=record.holder_name,
                valid_until=record.valid_until,
                as_of=as_of,
            )
        )
    return sorted(findings, key=lambda f: (f.merchant_id, f.alert_type.value, f.valid_until, f.certificate_id))


def pick_notice_camera(cameras: Iterable[CameraRecord]) -> int | None:
    """The camera a certificate alert is filed under: the merchant's enabled camera with the lowest id.

    Intake files every alert under a camera (it routes, merges and scopes by camera), but a certificate has no
    camera; the first enabled one is a stable, explainable choice. None: the merchant has no enabled camera,
    and the check skips (and reports) its certificates.
    """
    ids = [camera.id for camera in cameras if camera.enabled and camera.id is not None]
    return min(ids) if ids else None


def _kind(value: str) -> CertificateKind | None:
    try:
        return CertificateKind(value)
    except ValueError:
        return None


def _same_line(a: CertificateRecord, b: CertificateRecord) -> bool:
    """Two certificates of one merchant that a renewal would replace one by the other."""
    if a.merchant_id != b.merchant_id or a.kind != b.kind:
        return False
    if a.kind == CertificateKind.health_certificate.value:
        return (a.holder_name or "").strip() == (b.holder_name or "").strip()
    return True


def _superseded(record: CertificateRecord, records: list[CertificateRecord], *, as_of: date) -> bool:
    assert record.valid_until is not None
    starts_by = max(record.valid_until + timedelta(days=1), as_of)
    return any(
        other is not record
        and _same_line(record, other)
        and (other.valid_until is None or other.valid_until > record.valid_until)
        and other.valid_from <= starts_by
        for other in records
    )
