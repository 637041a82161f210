"""Side effects of the case workflows: the Postgres projection, the timeline, notifications, advice.

Every activity here is idempotent, so Temporal may retry it and a replayed workflow may repeat it:

* ``project_case`` / ``project_handoff`` upsert one row and apply only a newer ``version``
  (``ON CONFLICT ... DO UPDATE ... WHERE row.version < EXCLUDED.version``): a stale or repeated write
  never overwrites a newer state.
* ``append_case_events`` inserts timeline lines keyed by ``(case_id, seq)`` with ``ON CONFLICT DO NOTHING``.
* ``notify`` passes a dedupe key to the notifier port, which delivers each key once per recipient.
* ``record_transition`` does all three for one transition of a case (timeline lines, case row, notices) in ONE
  database transaction; the case workflow runs it as a local activity after each transition, so a transition
  costs one marker event instead of three activities and three workflow tasks.
* ``advise_disposition`` only reads (merchant history) and computes (``domain.disposition.advise``).

The dataclasses here are the activities' payloads; the workflows import them (never the other way round).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, select
from temporalio import activity

from domain.alerts.taxonomy import alert_type_info
from domain.cases.history import merchant_history
from domain.cases.models import AlertCase, CaseEvent, EnforcementHandoff
from domain.cases.service import evidence_ids_of, get_case_detail
from domain.disposition import ADVICE_LABEL, DispositionFacts, advise
from domain.errors import NotFound
from domain.evidence.models import CustodyAction, CustodyEvent, Evidence
from domain.evidence.service import record_custody
from domain.merchants.models import Camera, Merchant
from domain.notifications.service import InboxNotifier, NotificationMessage, Notifier, Recipients

# ---------------------------------------------------------------------------------------------------------
# Payloads


@dataclass
class CaseSnapshot:
    """The full projection of one case at one version (JSON-native values in the dict fields)."""

    case_id: str
    version: int
    merchant_id: int
    street_office_id: int
    camera_id: int
    alert_type: str
    status: str
    opened_at: datetime
    last_alert_at: datetime
    alert_count: int
    outcome: str | None = None
    closed_at: datetime | None = None
    next_due_at: datetime | None = None
    deadlines: dict[str, Any] = field(default_factory=dict)
    overdue: bool = False
    flags: dict[str, Any] = field(default_factory=dict)
    disposition: dict[str, Any] | None = None
    handoff_id: str | None = None


@dataclass
class ProjectCaseInput:
    snapshot: CaseSnapshot


@dataclass
class ProjectCaseOutput:
    applied: bool  # False: the row already had this version or a newer one


@dataclass
class TimelineEvent:
    seq: int
    at: datetime
    kind: str
    actor: str
    summary: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class AppendCaseEventsInput:
    case_id: str
    events: list[TimelineEvent]


@dataclass
class AppendCaseEventsOutput:
    inserted: int  # lines new to the table (retries insert 0)


@dataclass
class NotifyInput:
    dedupe_key: str
    kind: str
    title: str
    body: str
    case_id: str | None = None
    merchant_id: int | None = None  # the merchant's users
    street_office_id: int | None = None  # the street office's officers
    brigade: bool = False
    command_center: bool = False
    user_ids: list[int] = field(default_factory=list)


@dataclass
class NotifyOutput:
    delivered: int  # people notified now (0 on a retry: each dedupe key reaches each person once)


@dataclass
class RecordTransitionInput:
    """One published version of a case: its new timeline lines, its row, and the notices it sends."""

    snapshot: CaseSnapshot
    events: list[TimelineEvent] = field(default_factory=list)
    notifications: list[NotifyInput] = field(default_factory=list)


@dataclass
class RecordTransitionOutput:
    applied: bool  # the case row changed (False on a retry or a stale version)
    inserted: int  # timeline lines new to the table
    delivered: int  # people notified now


@dataclass
class AdviseDispositionInput:
    """What the case knows; ``None`` is unknown (the advice lists it as a missing fact)."""

    case_id: str
    merchant_id: int
    alert_type: str
    as_of: datetime
    rectified: bool | None
    rectified_within_deadline: bool | None
    deadline_missed: bool
    # False: the alert was found not to be true (误报) — nothing to advise on; None: not decided yet.
    substantiated: bool | None = True
    harm: str | None = None
    lapse_days: int | None = None
    refused_inspection: bool | None = None
    deliberate_tampering: bool | None = None
    special_population: bool | None = None


@dataclass
class AdviseDispositionOutput:
    advice: dict[str, Any]
    prior_same_type_24m: int | None = None
    prior_penalties_12m: int | None = None


FALSE_ALARM_ADVICE: dict[str, Any] = {
    "recommendation": "none",
    "recommendation_label": "无需处置",
    "rule": "false_alarm",
    "table_row": None,
    "articles": [],
    "conditions": ["预警经街所复核不属实（误报），不构成违法行为"],
    "missing_facts": [],
    "sanction": "",
    "fine_range": None,
    "explanation": "预警是线索而非结论；经复核不属实的，不作处罚，仅留存记录用于检测模型改进。",
    "label": ADVICE_LABEL,
}


@dataclass
class HandoffSnapshot:
    handoff_id: str
    version: int
    case_id: str
    merchant_id: int
    street_office_id: int
    status: str
    reason: str
    transferred_by: str
    transferred_at: datetime
    accepted_by: str | None = None
    accepted_at: datetime | None = None
    decision: dict[str, Any] | None = None
    acceptance_due_at: datetime | None = None
    overdue: bool = False


@dataclass
class ProjectHandoffInput:
    snapshot: HandoffSnapshot


@dataclass
class ProjectHandoffOutput:
    applied: bool


SessionFactory = Callable[[], Session]
NotifierFactory = Callable[[Session], Notifier]


# ---------------------------------------------------------------------------------------------------------
# Activities


class CaseActivities:
    def __init__(self, session_factory: SessionFactory, notifier_factory: NotifierFactory | None = None) -> None:
        self._session_factory = session_factory
        self._notifier_factory: NotifierFactory = notifier_factory or InboxNotifier

    @activity.defn(name="project_case")
    def project_case(self, request: ProjectCaseInput) -> ProjectCaseOutput:
        with self._session_factory() as session:
            applied = _project_case(session, request.snapshot)
            session.commit()
        return ProjectCaseOutput(applied=applied)

    @activity.defn(name="append_case_events")
    def append_case_events(self, request: AppendCaseEventsInput) -> AppendCaseEventsOutput:
        if not request.events:
            return AppendCaseEventsOutput(inserted=0)
        with self._session_factory() as session:
            inserted = _append_case_events(session, request.case_id, request.events)
            session.commit()
        return AppendCaseEventsOutput(inserted=inserted)

    @activity.defn(name="notify")
    def notify(self, request: NotifyInput) -> NotifyOutput:
        with self._session_factory() as session:
            delivered = self._notifier_factory(session).notify(_message(request))
            session.commit()
        return NotifyOutput(delivered=delivered)

    @activity.defn(name="record_transition")
    def record_transition(self, request: RecordTransitionInput) -> RecordTransitionOutput:
        """Timeline lines first, then the case row, then the notices: one transaction, idempotent as a whole
        (lines keyed by seq, the row applied only when newer, notices deduplicated by key)."""
        snapshot = request.snapshot
        with self._session_factory() as session:
            inserted = _append_case_events(session, snapshot.case_id, request.events) if request.events else 0
            applied = _project_case(session, snapshot)
            delivered = 0
            if request.notifications:
                notifier = self._notifier_factory(session)
                delivered = sum(notifier.notify(_message(notice)) for notice in request.notifications)
            session.commit()
        return RecordTransitionOutput(applied=applied, inserted=inserted, delivered=delivered)

    @activity.defn(name="advise_disposition")
    def advise_disposition(self, request: AdviseDispositionInput) -> AdviseDispositionOutput:
        if request.substantiated is False:
            return AdviseDispositionOutput(advice=dict(FALSE_ALARM_ADVICE))
        with self._session_factory() as session:
            history = merchant_history(
                session,
                merchant_id=request.merchant_id,
                alert_type=request.alert_type,
                as_of=request.as_of,
                exclude_case_id=request.case_id,
            )
        facts = DispositionFacts(
            alert_type=request.alert_type,
            # Prior cases and penalties, and a repeat after rectification (办法 第十九条第三款).
            **history.disposition_facts(),
            rectified=request.rectified,
            rectified_within_deadline=request.rectified_within_deadline,
            harm=request.harm,
            lapse_days=request.lapse_days,
            refused_inspection=request.refused_inspection,
            deliberate_tampering=request.deliberate_tampering,
            deadline_missed=request.deadline_missed,
            special_population=request.special_population,
        )
        return AdviseDispositionOutput(
            advice=advise(facts).to_dict(),
            prior_same_type_24m=history.prior_same_type_24m,
            prior_penalties_12m=history.prior_penalties_12m,
        )

    @activity.defn(name="project_handoff")
    def project_handoff(self, request: ProjectHandoffInput) -> ProjectHandoffOutput:
        snapshot = request.snapshot
        row = {
            "handoff_id": snapshot.handoff_id,
            "version": snapshot.version,
            "case_id": snapshot.case_id,
            "merchant_id": snapshot.merchant_id,
            "street_office_id": snapshot.street_office_id,
            "status": snapshot.status,
            "reason": snapshot.reason[:1000],
            "transferred_by": snapshot.transferred_by[:100],
            "transferred_at": snapshot.transferred_at,
            "accepted_by": snapshot.accepted_by,
            "accepted_at": snapshot.accepted_at,
            "decision": snapshot.decision,
            "acceptance_due_at": snapshot.acceptance_due_at,
            "overdue": snapshot.overdue,
            "updated_at": func.now(),
        }
        with self._session_factory() as session:
            applied = _upsert_newer(session, EnforcementHandoff, "handoff_id", row)
            if applied:
                record_transfer_custody(session, case_id=snapshot.case_id, handoff_id=snapshot.handoff_id,
                                        transferred_by=snapshot.transferred_by, reason=snapshot.reason)
            session.commit()
        return ProjectHandoffOutput(applied=applied)


def record_transfer_custody(session: Session, *, case_id: str, handoff_id: str, transferred_by: str,
                            reason: str) -> int:
    """The case's evidence passes from the street office to the brigade: one ``transferred`` custody row per item,
    once per hand-off (the projection may be applied again); how many were written."""
    try:
        detail = get_case_detail(session, case_id=case_id)
    except NotFound:
        return 0
    referred = evidence_ids_of(detail)
    # A timeline photo names its evidence in the event payload: only recorded evidence has a custody log.
    evidence_ids = sorted(session.exec(select(Evidence.id).where(col(Evidence.id).in_(referred))).all())
    if not evidence_ids:
        return 0
    logged = {
        event.evidence_id
        for event in session.exec(select(CustodyEvent).where(
            col(CustodyEvent.evidence_id).in_(evidence_ids), col(CustodyEvent.action) == CustodyAction.transferred))
        if event.detail.get("handoff_id") == handoff_id
    }
    actor = f"user:{transferred_by}" if transferred_by and ":" not in transferred_by else (transferred_by or
                                                                                          "system:casework")
    written = 0
    for evidence_id in evidence_ids:
        if evidence_id in logged:
            continue
        record_custody(session, evidence_id=evidence_id, action=CustodyAction.transferred, actor=actor[:100],
                       unit=detail.street_office.code, reason=(reason or "移交执法支队")[:500],
                       detail={"handoff_id": handoff_id, "case_id": case_id, "from": detail.street_office.code,
                               "to": "brigade"})
        written += 1
    return written


def _project_case(session: Session, snapshot: CaseSnapshot) -> bool:
    row = {
        "case_id": snapshot.case_id,
        "version": snapshot.version,
        "merchant_id": snapshot.merchant_id,
        "street_office_id": snapshot.street_office_id,
        "camera_id": snapshot.camera_id,
        "alert_type": snapshot.alert_type,
        "category": _category(snapshot.alert_type),
        "status": snapshot.status,
        "outcome": snapshot.outcome,
        "opened_at": snapshot.opened_at,
        "closed_at": snapshot.closed_at,
        "last_alert_at": snapshot.last_alert_at,
        "alert_count": snapshot.alert_count,
        "next_due_at": snapshot.next_due_at,
        "deadlines": snapshot.deadlines,
        "overdue": snapshot.overdue,
        "flags": snapshot.flags,
        "disposition": snapshot.disposition,
        "handoff_id": snapshot.handoff_id,
        "summary": _case_summary(session, snapshot)[:500],
        "updated_at": func.now(),
    }
    return _upsert_newer(session, AlertCase, "case_id", row)


def _append_case_events(session: Session, case_id: str, events: list[TimelineEvent]) -> int:
    """Inserts the lines not yet in the table; returns how many were new."""
    rows = [
        {
            "case_id": case_id,
            "seq": event.seq,
            "at": event.at,
            "kind": event.kind[:40],
            "actor": event.actor[:100],
            "summary": event.summary[:500],
            "payload": event.payload,
        }
        for event in events
    ]
    statement = (
        pg_insert(CaseEvent)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["case_id", "seq"])
        .returning(col(CaseEvent.seq))
    )
    return len(session.exec(statement).all())


def _message(request: NotifyInput) -> NotificationMessage:
    return NotificationMessage(
        dedupe_key=request.dedupe_key,
        kind=request.kind,
        title=request.title,
        body=request.body,
        case_id=request.case_id,
        recipients=Recipients(
            merchant_id=request.merchant_id,
            street_office_id=request.street_office_id,
            brigade=request.brigade,
            command_center=request.command_center,
            user_ids=list(request.user_ids),
        ),
    )


def _upsert_newer(session: Session, model: type[AlertCase] | type[EnforcementHandoff], key: str,
                  row: dict[str, Any]) -> bool:
    """Insert the row, or update it when ours is newer; True when the table changed."""
    insert = pg_insert(model).values(**row)
    statement = insert.on_conflict_do_update(
        index_elements=[key],
        set_={name: insert.excluded[name] for name in row if name != key},
        where=col(model.version) < insert.excluded.version,
    ).returning(col(model.version))
    # RETURNING yields the row only when it was inserted or updated (rowcount is not reliable through the ORM).
    return bool(session.exec(statement).all())


def _category(alert_type: str) -> str:
    try:
        return alert_type_info(alert_type).category.value
    except ValueError:
        return "unknown"


def _case_summary(session: Session, snapshot: CaseSnapshot) -> str:
    """Merchant, camera and type label in one line, for the queue's text search."""
    try:
        label = alert_type_info(snapshot.alert_type).label_zh
    except ValueError:
        label = snapshot.alert_type
    merchant = session.get(Merchant, snapshot.merchant_id)
    camera = session.get(Camera, snapshot.camera_id)
    parts = [merchant.name if merchant else "", camera.name if camera else "", label]
    return " ".join(part for part in parts if part)
