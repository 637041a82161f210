"""A merchant's record, read from the case projection, as the disposition advice needs it (办法 第十九、二十条).

Definitions (the windows end at ``as_of`` and start the same calendar day 24 / 12 months earlier, Beijing time):

* **substantiated same-type case** — an ``AlertCase`` of this merchant and alert type, opened inside the 24-month
  window and closed by ``as_of`` with an outcome that confirms the problem was real: ``rectified``, ``no_penalty``,
  ``penalised`` or ``transferred``. ``false_alarm`` does not count (the merchant disputed it and the officer
  agreed), nor does a case still open (its outcome is not known yet). Same type means the same alert type.
* **penalty** — a decision inside the 12-month window that imposed a penalty: a case closed ``penalised`` (dated
  by ``closed_at``), or an enforcement hand-off whose recorded decision has ``kind == "penalty_decision"`` (dated
  by the decision's ``at``, else by the row's ``updated_at``; an earlier penalty in the decision's ``history``
  counts too). One case counts once, even when both say so.
  Penalties recorded outside the platform (the monthly import of 办法 第九条) are not in these tables.
* **repeat after rectification** (办法 第十九条第三款: 整改后重复再犯) — the most recently closed substantiated
  same-type case was closed after the merchant put the problem right: outcome ``rectified`` or ``no_penalty``.

Only reads; the case being advised on is left out with ``exclude_case_id``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlmodel import Session, col, select

from domain.alerts.taxonomy import AlertType
from domain.cases.models import AlertCase, EnforcementHandoff

# Outcomes named as strings: domain code must not import the workflow package (CaseOutcome has the same values).
SUBSTANTIATED_OUTCOMES = frozenset({"rectified", "no_penalty", "penalised", "transferred"})
RECTIFIED_OUTCOMES = frozenset({"rectified", "no_penalty"})
PENALISED_OUTCOME = "penalised"
PENALTY_DECISION_KIND = "penalty_decision"

SAME_TYPE_WINDOW_MONTHS = 24  # 首违: no same-type violation within 2 years (SAMR lists, domain note §4.3)
PENALTY_WINDOW_MONTHS = 12  # 食品安全法 第一百三十四条; 实施条例 第六十七条第一款第五项

# Calendar months are counted on the Beijing calendar (fixed offset: China has no daylight saving time).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class MerchantHistory:
    merchant_id: int
    alert_type: str
    as_of: datetime
    prior_same_type_24m: int  # substantiated same-type cases in the 24 months before as_of
    prior_penalties_12m: int  # penalties of any type in the 12 months before as_of
    prior_same_type_penalties_12m: int  # of those, penalties for this alert type
    last_same_type_case_id: str | None = None
    last_same_type_outcome: str | None = None
    last_same_type_closed_at: datetime | None = None

    @property
    def repeat_after_rectification(self) -> bool:
        return self.last_same_type_outcome in RECTIFIED_OUTCOMES

    def disposition_facts(self) -> dict[str, Any]:
        """The history's part of ``DispositionFacts``: ``DispositionFacts(alert_type=…, **history.disposition_facts(),
        rectified=…)``."""
        return {
            "prior_same_type_24m": self.prior_same_type_24m,
            "prior_penalties_12m": self.prior_penalties_12m,
            "prior_same_type_penalties_12m": self.prior_same_type_penalties_12m,
            "repeat_after_rectification": self.repeat_after_rectification,
        }


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` calendar months earlier in Beijing; the 31st falls back to the month's
    last day (2026-03-31 minus one month is 2026-02-28)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    local = moment.astimezone(BEIJING)
    year, month_index = divmod(local.year * 12 + (local.month - 1) - months, 12)
    day = min(local.day, calendar.monthrange(year, month_index + 1)[1])
    return local.replace(year=year, month=month_index + 1, day=day)


def merchant_history(
    session: Session,
    *,
    merchant_id: int,
    alert_type: AlertType | str,
    as_of: datetime,
    exclude_case_id: str | None = None,
) -> MerchantHistory:
    """The merchant's record as of ``as_of`` (see the module docstring for what counts)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    alert_type = AlertType(alert_type).value
    same_type_since = months_before(as_of, SAME_TYPE_WINDOW_MONTHS)
    penalties_since = months_before(as_of, PENALTY_WINDOW_MONTHS)

    same_type_query = (
        select(AlertCase)
        .where(
            AlertCase.merchant_id == merchant_id,
            AlertCase.alert_type == alert_type,
            col(AlertCase.outcome).in_(SUBSTANTIATED_OUTCOMES),
            col(AlertCase.opened_at) >= same_type_since,
            col(AlertCase.opened_at) <= as_of,
            col(AlertCase.closed_at).is_not(None),
            col(AlertCase.closed_at) <= as_of,
        )
        .order_by(col(AlertCase.closed_at).desc(), col(AlertCase.opened_at).desc())
    )
    if exclude_case_id is not None:
        same_type_query = same_type_query.where(AlertCase.case_id != exclude_case_id)
    same_type_cases = list(session.exec(same_type_query))
    last = same_type_cases[0] if same_type_cases else None

    penalised_case_types = _penalties(
        session, merchant_id=merchant_id, since=penalties_since, as_of=as_of, exclude_case_id=exclude_case_id
    )
    return MerchantHistory(
        merchant_id=merchant_id,
        alert_type=alert_type,
        as_of=as_of,
        prior_same_type_24m=len(same_type_cases),
        prior_penalties_12m=len(penalised_case_types),
        prior_same_type_penalties_12m=sum(1 for kind in penalised_case_types.values() if kind == alert_type),
        last_same_type_case_id=last.case_id if last else None,
        last_same_type_outcome=last.outcome if last else None,
        last_same_type_closed_at=last.closed_at if last else None,
    )


def _penalties(
    session: Session, *, merchant_id: int, since: datetime, as_of: datetime, exclude_case_id: str | None
) -> dict[str, str | None]:
    """case id → its alert type (None when the case row is missing), for each penalty decided in the window."""
    penalised: dict[str, str | None] = {}
    closed_penalised = select(AlertCase.case_id, AlertCase.alert_type).where(
        AlertCase.merchant_id == merchant_id,
        AlertCase.outcome == PENALISED_OUTCOME,
        col(AlertCase.closed_at) >= since,
        col(AlertCase.closed_at) <= as_of,
    )
    for case_id, case_type in session.exec(closed_penalised):
        penalised[case_id] = case_type

    # The decision is JSON written by the brigade's workflow; it is read here rather than filtered in SQL so a
    # decision without a usable date still counts, dated by the row.
    handoffs = select(EnforcementHandoff).where(
        EnforcementHandoff.merchant_id == merchant_id, col(EnforcementHandoff.decision).is_not(None)
    )
    handoff_case_ids: list[str] = []
    for handoff in session.exec(handoffs):
        entry = _penalty_entry(handoff.decision or {})
        if entry is None:
            continue
        decided_at = _parse_instant(entry.get("at") or entry.get("decided_at")) or handoff.updated_at
        if since <= decided_at <= as_of and handoff.case_id not in penalised:
            handoff_case_ids.append(handoff.case_id)
    if handoff_case_ids:
        types = dict(
            session.exec(
                select(AlertCase.case_id, AlertCase.alert_type).where(col(AlertCase.case_id).in_(handoff_case_ids))
            ).all()
        )
        for case_id in handoff_case_ids:
            penalised[case_id] = types.get(case_id)

    penalised.pop(exclude_case_id or "", None)
    return penalised


def _penalty_entry(decision: dict[str, Any]) -> dict[str, Any] | None:
    """The penalty decision recorded on a hand-off: the latest decision, else the last penalty in its history."""
    if decision.get("kind") == PENALTY_DECISION_KIND:
        return decision
    earlier = [entry for entry in decision.get("history") or [] if isinstance(entry, dict)]
    return next((entry for entry in reversed(earlier) if entry.get("kind") == PENALTY_DECISION_KIND), None)


def _parse_instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    # An instant without an offset is taken as Beijing time: it was entered by a person in Tianjin.
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)
