"""A merchant's record for the disposition advice, read from the case projection on a real PostgreSQL."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlmodel import Session

from domain.cases.history import MerchantHistory, merchant_history, months_before
from domain.cases.models import AlertCase, EnforcementHandoff
from domain.disposition import DispositionFacts, Recommendation, advise
from domain.merchants.models import Camera, Merchant, StreetOffice
from domain.merchants.rules import generate_credit_code

pytestmark = pytest.mark.integration

BEIJING = timezone(timedelta(hours=8))
AS_OF = datetime(2026, 10, 15, 10, 0, tzinfo=BEIJING)


@dataclass
class Shop:
    merchant_id: int
    street_office_id: int
    camera_id: int


@pytest.fixture
def shops(db_session: Session) -> tuple[Shop, Shop]:
    office = StreetOffice(code="youyilu", name="友谊路街市场监管所")
    db_session.add(office)
    db_session.flush()
    assert office.id is not None
    rng = random.Random(7)
    result = []
    for index in range(2):
        merchant = Merchant(
            credit_code=generate_credit_code(rng),
            name=f"测试饭店{index}",
            address=f"天津市河西区友谊路{index + 1}号",
            street_office_id=office.id,
        )
        db_session.add(merchant)
        db_session.flush()
        assert merchant.id is not None
        camera = Camera(merchant_id=merchant.id, name="后厨", area="cooking", stream_url="rtsp://camera.invalid/1")
        db_session.add(camera)
        db_session.flush()
        assert camera.id is not None
        result.append(Shop(merchant.id, office.id, camera.id))
    db_session.commit()
    return result[0], result[1]


_counter = iter(range(1, 1_000_000))


def add_case(
    session: Session,
    shop: Shop,
    *,
    alert_type: str = "no_hat",
    opened_at: datetime,
    outcome: str | None,
    closed_at: datetime | None = None,
    case_id: str | None = None,
) -> str:
    case_id = case_id or f"case-{next(_counter)}"
    if outcome is not None and closed_at is None:
        closed_at = opened_at + timedelta(days=2)
    session.add(
        AlertCase(
            case_id=case_id,
            merchant_id=shop.merchant_id,
            street_office_id=shop.street_office_id,
            camera_id=shop.camera_id,
            alert_type=alert_type,
            category="dress",
            status="closed" if outcome else "rectifying",
            outcome=outcome,
            opened_at=opened_at,
            closed_at=closed_at,
            last_alert_at=opened_at,
        )
    )
    session.commit()
    return case_id


def add_handoff(session: Session, shop: Shop, *, case_id: str, decision: dict[str, Any] | None) -> None:
    session.add(
        EnforcementHandoff(
            handoff_id=f"handoff-{case_id}",
            case_id=case_id,
            merchant_id=shop.merchant_id,
            street_office_id=shop.street_office_id,
            status="decided" if decision else "accepted",
            reason="逾期未整改",
            transferred_by="officer1",
            transferred_at=AS_OF - timedelta(days=90),
            decision=decision,
        )
    )
    session.commit()


def history(session: Session, shop: Shop, **kwargs: Any) -> MerchantHistory:
    return merchant_history(
        session, merchant_id=shop.merchant_id, alert_type=kwargs.pop("alert_type", "no_hat"), as_of=AS_OF, **kwargs
    )


def test_empty_record(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    record = history(db_session, shops[0])
    assert (record.prior_same_type_24m, record.prior_penalties_12m, record.prior_same_type_penalties_12m) == (0, 0, 0)
    assert not record.repeat_after_rectification
    assert record.last_same_type_outcome is None


def test_counts_substantiated_same_type_cases_in_24_months(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    shop, other_shop = shops
    for outcome in ("rectified", "no_penalty", "penalised", "transferred"):
        add_case(db_session, shop, opened_at=AS_OF - timedelta(days=100), outcome=outcome)
    # Not counted: a false alarm, a case still open, another type, another merchant, older than 24 months,
    # after as_of, and one closed only after as_of.
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=50), outcome="false_alarm")
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=5), outcome=None)
    add_case(db_session, shop, alert_type="smoking", opened_at=AS_OF - timedelta(days=40), outcome="rectified")
    add_case(db_session, other_shop, opened_at=AS_OF - timedelta(days=40), outcome="rectified")
    add_case(db_session, shop, opened_at=months_before(AS_OF, 24) - timedelta(minutes=1), outcome="rectified")
    add_case(db_session, shop, opened_at=AS_OF + timedelta(hours=1), outcome="rectified")
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=1), outcome="rectified",
             closed_at=AS_OF + timedelta(hours=1))  # fmt: skip

    assert history(db_session, shop).prior_same_type_24m == 4
    assert history(db_session, shop, alert_type="smoking").prior_same_type_24m == 1


def test_window_starts_on_the_same_calendar_day_24_months_earlier(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    shop = shops[0]
    start = datetime(2024, 10, 15, 10, 0, tzinfo=BEIJING)
    assert months_before(AS_OF, 24) == start
    add_case(db_session, shop, opened_at=start, outcome="rectified")
    assert history(db_session, shop).prior_same_type_24m == 1


def test_months_before_clamps_to_the_end_of_the_month() -> None:
    assert months_before(datetime(2026, 3, 31, 9, 0, tzinfo=BEIJING), 1) == datetime(2026, 2, 28, 9, 0, tzinfo=BEIJING)
    assert months_before(datetime(2028, 2, 29, 9, 0, tzinfo=BEIJING), 12) == datetime(2027, 2, 28, 9, 0, tzinfo=BEIJING)
    # Counted on the Beijing calendar: 2026-03-31 20:00 UTC is already 1 April in Tianjin.
    utc_evening = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
    assert months_before(utc_evening, 1) == datetime(2026, 3, 1, 4, 0, tzinfo=BEIJING)
    with pytest.raises(ValueError, match="timezone-aware"):
        months_before(datetime(2026, 3, 31), 1)


def test_excluded_case_is_left_out(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    shop = shops[0]
    current = add_case(db_session, shop, opened_at=AS_OF - timedelta(days=3), outcome="penalised")
    assert history(db_session, shop).prior_same_type_24m == 1
    record = history(db_session, shop, exclude_case_id=current)
    assert (record.prior_same_type_24m, record.prior_penalties_12m) == (0, 0)


def test_penalties_in_12_months_from_cases_and_handoff_decisions(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    shop, other_shop = shops
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=60), outcome="penalised")
    add_case(db_session, shop, alert_type="pest", opened_at=AS_OF - timedelta(days=200), outcome="penalised")
    # Penalised more than 12 months ago: not counted (the 24-month same-type count still sees it).
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=400), outcome="penalised",
             closed_at=months_before(AS_OF, 12) - timedelta(days=1))  # fmt: skip
    transferred = add_case(db_session, shop, alert_type="smoking", opened_at=AS_OF - timedelta(days=90),
                           outcome="transferred")  # fmt: skip
    add_handoff(db_session, shop, case_id=transferred,
                decision={"kind": "penalty_decision", "at": (AS_OF - timedelta(days=30)).isoformat(),
                          "amount_fen": 500_000, "history": []})  # fmt: skip
    # Not penalties: a handoff decided "no penalty", a handoff without a decision, another merchant's penalty.
    no_penalty = add_case(db_session, shop, alert_type="pest", opened_at=AS_OF - timedelta(days=80),
                          outcome="transferred")  # fmt: skip
    add_handoff(db_session, shop, case_id=no_penalty, decision={"kind": "no_penalty_decision"})
    pending = add_case(db_session, shop, alert_type="pest", opened_at=AS_OF - timedelta(days=70), outcome="transferred")
    add_handoff(db_session, shop, case_id=pending, decision=None)
    add_case(db_session, other_shop, opened_at=AS_OF - timedelta(days=60), outcome="penalised")

    record = history(db_session, shop)
    assert record.prior_penalties_12m == 3
    assert record.prior_same_type_penalties_12m == 1  # the no_hat case closed penalised 60 days ago
    assert record.prior_same_type_24m == 2
    assert history(db_session, shop, alert_type="smoking").prior_same_type_penalties_12m == 1


def test_a_case_penalised_and_decided_by_the_brigade_counts_once(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    shop = shops[0]
    case_id = add_case(db_session, shop, opened_at=AS_OF - timedelta(days=60), outcome="penalised")
    add_handoff(db_session, shop, case_id=case_id, decision={"kind": "penalty_decision"})  # dated by the row
    assert history(db_session, shop).prior_penalties_12m == 1


def test_a_penalty_earlier_in_the_decision_history_counts(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    shop = shops[0]
    case_id = add_case(db_session, shop, opened_at=AS_OF - timedelta(days=60), outcome="transferred")
    penalty = {"kind": "penalty_decision", "at": (AS_OF - timedelta(days=20)).isoformat(), "amount_fen": 0}
    later = {"kind": "case_opened", "at": (AS_OF - timedelta(days=10)).isoformat()}
    add_handoff(db_session, shop, case_id=case_id, decision={**later, "history": [penalty, later]})
    assert history(db_session, shop).prior_penalties_12m == 1


def test_handoff_decision_outside_the_window_is_not_counted(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    shop = shops[0]
    case_id = add_case(db_session, shop, opened_at=AS_OF - timedelta(days=500), outcome="transferred")
    add_handoff(db_session, shop, case_id=case_id,
                decision={"kind": "penalty_decision", "at": "2025-06-01T10:00:00"})  # fmt: skip
    assert history(db_session, shop).prior_penalties_12m == 0


@pytest.mark.parametrize(
    ("last_outcome", "repeat"),
    [("rectified", True), ("no_penalty", True), ("penalised", False), ("transferred", False)],
)
def test_repeat_after_rectification_follows_the_last_same_type_case(
    db_session: Session, shops: tuple[Shop, Shop], last_outcome: str, repeat: bool
) -> None:
    shop = shops[0]
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=300), outcome="rectified")
    last = add_case(db_session, shop, opened_at=AS_OF - timedelta(days=20), outcome=last_outcome)
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=10), outcome="false_alarm")
    record = history(db_session, shop)
    assert record.last_same_type_case_id == last
    assert record.last_same_type_outcome == last_outcome
    assert record.repeat_after_rectification is repeat


def test_history_feeds_the_advice(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    """A repeat of the same type after a rectified case gets 依法处罚 (办法 第十九条第三款)."""
    shop = shops[0]
    add_case(db_session, shop, opened_at=AS_OF - timedelta(days=30), outcome="rectified")
    current = add_case(db_session, shop, opened_at=AS_OF - timedelta(hours=5), outcome=None)
    record = history(db_session, shop, exclude_case_id=current)
    facts = DispositionFacts(alert_type="no_hat", **record.disposition_facts(), rectified=True,
                             rectified_within_deadline=True, harm="none", refused_inspection=False,
                             deliberate_tampering=False)  # fmt: skip
    advice = advise(facts)
    assert advice.recommendation is Recommendation.penalty
    assert advice.rule == "repeat_after_rectification"
    assert advice.missing_facts == []


def test_naive_as_of_is_refused(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        merchant_history(db_session, merchant_id=shops[0].merchant_id, alert_type="no_hat",
                         as_of=datetime(2026, 10, 15))  # fmt: skip
