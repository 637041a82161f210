"""Scheduled checks that raise alerts: the daily certificate check and the sweep of undelivered alerts.

Both go through ``infra.intake.AlertIntake`` — the very code path of ``POST /api/v1/alerts`` — so a certificate
alert is stored, deduplicated, merged and delivered to its case exactly like a camera alert:

- sender ``system:certificate-check`` (role ``system``); ``event_id`` from
  ``domain.certificates.expiry.certificate_event_id`` (certificate id, alert type, valid_until): a problem that
  lasts many days is one alert, the later checks find it "already known";
- ``camera_id``: the merchant's first enabled camera (``pick_notice_camera``); a merchant without one is
  skipped and reported (``merchants_without_camera``), since intake files every alert under a camera;
- ``captured_at``: when the check ran; ``score`` 1.0 (a rule, not a detector); ``detail``: the certificate;
- snapshot: the deterministic notice card PNG (``domain.certificates.notice_image``), collected as
  ``platform_extraction`` (平台在线提取).

The activities call Temporal themselves (intake's update-with-start): they are async and must not block the
worker's event loop, so database reads run in a thread. An alert that intake stores but cannot deliver now
(``DeliveryPending``) is counted as ``pending``; the pending-alert sweep delivers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio import activity

from domain.base import utcnow
from domain.cases.models import Alert
from domain.certificates.expiry import REMINDER_DAYS, CertificateFinding, certificate_findings, pick_notice_camera
from domain.certificates.notice_image import NoticeFacts, render_notice_png
from domain.evidence.models import CollectionMethod
from domain.merchants.models import Camera, Certificate, Merchant
from infra.intake import AlertIntake, AlertSender, AlertSubmission, DeliveryPending, EvidenceUpload, IntakeResult

log = logging.getLogger("sunshine.scheduled_checks")

CERTIFICATE_CHECK_SENDER = AlertSender(source="system:certificate-check", role="system")
# Alerts handed to intake at once: intake itself serialises per (camera, type) and bounds Temporal calls.
CONCURRENCY = 8


@dataclass
class RaiseCertificateAlertsInput:
    as_of_date: str  # ISO date (YYYY-MM-DD) of the Beijing day to check; Temporal's JSON has no date type


@dataclass
class RaiseCertificateAlertsOutput:
    """Each certificate problem found is counted once: raised + merged + already_known + pending +
    skipped_without_camera."""

    as_of_date: str
    raised: int = 0  # delivered by this run, opening a case
    merged: int = 0  # delivered by this run, joining the open case of the same camera and type
    already_known: int = 0  # delivered before (an earlier day's check, or an earlier attempt)
    skipped_without_camera: int = 0  # the merchant has no enabled camera to file the alert under
    pending: int = 0  # stored but not delivered yet (the sweep delivers it)
    merchants_without_camera: list[str] = field(default_factory=list)  # their credit codes


@dataclass
class DeliverPendingInput:
    older_than_seconds: int = 120  # leave alerts whose own delivery may still be in flight
    limit: int = 100


@dataclass
class DeliverPendingOutput:
    delivered: int  # delivered by this sweep (after a partial failure: how many fewer are pending)
    still_pending: int  # undelivered alerts older than the cut-off after the sweep


@dataclass(frozen=True)
class _Due:
    findings: list[CertificateFinding]
    credit_codes: dict[int, str]  # merchant id → 统一社会信用代码
    cameras: dict[int, int | None]  # merchant id → notice camera id


class ScheduledCheckActivities:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        intake: AlertIntake,
        *,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._session_factory = session_factory
        self._intake = intake
        self._clock = clock
        self._concurrency = concurrency

    @activity.defn(name="raise_certificate_alerts")
    async def raise_certificate_alerts(self, request: RaiseCertificateAlertsInput) -> RaiseCertificateAlertsOutput:
        as_of = date.fromisoformat(request.as_of_date)
        due = await asyncio.to_thread(self._load_due, as_of)
        output = RaiseCertificateAlertsOutput(as_of_date=as_of.isoformat())
        deliverable: list[tuple[CertificateFinding, int]] = []
        for finding in due.findings:
            camera_id = due.cameras.get(finding.merchant_id)
            if camera_id is None:
                output.skipped_without_camera += 1
                credit_code = due.credit_codes[finding.merchant_id]
                if credit_code not in output.merchants_without_camera:
                    output.merchants_without_camera.append(credit_code)
            else:
                deliverable.append((finding, camera_id))
        if output.merchants_without_camera:
            log.warning(
                "certificate check %s: %d alert(s) not raised, no enabled camera at merchant(s) %s",
                output.as_of_date,
                output.skipped_without_camera,
                ", ".join(output.merchants_without_camera),
            )

        slots = asyncio.Semaphore(self._concurrency)

        async def raise_one(finding: CertificateFinding, camera_id: int) -> IntakeResult | None:
            async with slots:
                try:
                    return await self._intake.receive(
                        _submission(finding, camera_id, due.credit_codes[finding.merchant_id], self._clock())
                    )
                except DeliveryPending as pending:
                    log.warning("certificate alert %s stored, delivery pending: %s", finding.event_id, pending)
                    return None
                finally:
                    if activity.in_activity():
                        activity.heartbeat()

        # A failure other than "pending" is a bug: the task group cancels the rest, and the activity fails.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(raise_one(finding, camera_id)) for finding, camera_id in deliverable]
        for result in (task.result() for task in tasks):
            if result is None:
                output.pending += 1
            elif not result.created:
                output.already_known += 1
            elif result.merged:
                output.merged += 1
            else:
                output.raised += 1
        return output

    @activity.defn(name="deliver_pending_alerts")
    async def deliver_pending_alerts(self, request: DeliverPendingInput) -> DeliverPendingOutput:
        """Deliver alerts stored while Temporal (or their case) could not be reached and never retried."""
        cutoff = self._clock() - timedelta(seconds=request.older_than_seconds)
        before = await asyncio.to_thread(self._count_pending, cutoff)
        if before == 0:
            return DeliverPendingOutput(delivered=0, still_pending=0)
        delivered: int | None
        try:
            results = await self._intake.deliver_pending(received_before=cutoff, limit=request.limit)
            delivered = sum(1 for result in results if result.created)
        except DeliveryPending as pending:
            log.warning("pending-alert sweep stopped at alert %s: %s", pending.alert_id, pending)
            delivered = None
        after = await asyncio.to_thread(self._count_pending, cutoff)
        return DeliverPendingOutput(
            delivered=max(before - after, 0) if delivered is None else delivered, still_pending=after
        )

    # Blocking reads (run in a thread)

    def _load_due(self, as_of: date) -> _Due:
        """The findings of every merchant with a certificate ending by the reminder horizon, read with all of
        that merchant's certificates (renewals supersede), credit codes and notice cameras."""
        horizon = as_of + timedelta(days=REMINDER_DAYS)
        with self._session_factory() as session:
            merchants_due = (
                select(Certificate.merchant_id)
                .where(col(Certificate.valid_until).is_not(None), col(Certificate.valid_until) <= horizon)
                .distinct()
            )
            certificates = session.exec(
                select(Certificate).where(col(Certificate.merchant_id).in_(merchants_due))
            ).all()
            findings = certificate_findings(certificates, as_of=as_of)
            merchant_ids = sorted({finding.merchant_id for finding in findings})
            if not merchant_ids:
                return _Due(findings=[], credit_codes={}, cameras={})
            credit_codes = {
                merchant_id: credit_code
                for merchant_id, credit_code in session.exec(
                    select(Merchant.id, Merchant.credit_code).where(col(Merchant.id).in_(merchant_ids))
                ).all()
                if merchant_id is not None
            }
            cameras_by_merchant: dict[int, list[Camera]] = {merchant_id: [] for merchant_id in merchant_ids}
            for camera in session.exec(select(Camera).where(col(Camera.merchant_id).in_(merchant_ids))).all():
                cameras_by_merchant[camera.merchant_id].append(camera)
        return _Due(
            findings=findings,
            credit_codes=credit_codes,
            cameras={merchant_id: pick_notice_camera(cameras) for merchant_id, cameras in cameras_by_merchant.items()},
        )

    def _count_pending(self, received_before: datetime) -> int:
        with self._session_factory() as session:
            return session.exec(
                select(func.count())
                .select_from(Alert)
                .where(col(Alert.delivered_at).is_(None), col(Alert.received_at) < received_before)
            ).one()


def _submission(finding: CertificateFinding, camera_id: int, credit_code: str, now: datetime) -> AlertSubmission:
    notice = render_notice_png(NoticeFacts.from_finding(finding, merchant_credit_code=credit_code))
    return AlertSubmission(
        sender=CERTIFICATE_CHECK_SENDER,
        meta={
            "event_id": finding.event_id,
            "camera_id": camera_id,
            "alert_type": finding.alert_type.value,
            "captured_at": now.isoformat(),
            "score": 1.0,
            "detail": {**finding.detail(), "merchant_credit_code": credit_code},
        },
        snapshot=EvidenceUpload(content=notice, declared_content_type="image/png"),
        collection_method=CollectionMethod.platform_extraction,
    )
