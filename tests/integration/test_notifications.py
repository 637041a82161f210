"""The in-app inbox and the SMS outbox on a real PostgreSQL: who receives what, once."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from sqlmodel import Session, col, select

from domain.merchants.models import Merchant, StreetOffice
from domain.merchants.rules import generate_credit_code
from domain.notifications.fake import FakeNotifier
from domain.notifications.models import Notification, OutboxMessage
from domain.notifications.service import (
    SMS,
    InboxNotifier,
    NotificationMessage,
    Recipients,
    list_inbox,
    mark_read,
    resolve_recipients,
    unread_count,
)
from domain.users.models import Role, User

pytestmark = pytest.mark.integration


@dataclass
class People:
    office_a: int
    office_b: int
    merchant_a: int
    merchant_b: int
    ids: dict[str, int]  # username → id


@pytest.fixture
def people(db_session: Session) -> People:
    offices = [StreetOffice(code="youyilu", name="友谊路所"), StreetOffice(code="yuexiu", name="越秀路所")]
    db_session.add_all(offices)
    db_session.flush()
    rng = random.Random(11)
    merchants = [
        Merchant(credit_code=generate_credit_code(rng), name=name, address="天津市河西区", street_office_id=office.id)
        for name, office in (("饭店甲", offices[0]), ("饭店乙", offices[1]))
    ]
    db_session.add_all(merchants)
    db_session.flush()
    office_a, office_b = (office.id for office in offices)
    merchant_a, merchant_b = (merchant.id for merchant in merchants)
    assert office_a and office_b and merchant_a and merchant_b
    specs = [
        ("shop_a_owner", Role.merchant, None, merchant_a, False),
        ("shop_a_clerk", Role.merchant, None, merchant_a, False),
        ("shop_a_gone", Role.merchant, None, merchant_a, True),
        ("shop_b_owner", Role.merchant, None, merchant_b, False),
        ("officer_a", Role.street_officer, office_a, None, False),
        ("officer_a_gone", Role.street_officer, office_a, None, True),
        ("officer_b", Role.street_officer, office_b, None, False),
        ("brigade_1", Role.brigade_officer, None, None, False),
        ("brigade_2", Role.brigade_officer, None, None, False),
        ("brigade_gone", Role.brigade_officer, None, None, True),
        ("center", Role.command_center, None, None, False),
        ("auditor", Role.auditor, None, None, False),
        ("admin", Role.admin, None, None, False),
    ]
    users = [
        User(username=name, role=role.value, street_office_id=office, merchant_id=merchant, password_hash="x",
             disabled=disabled)
        for name, role, office, merchant, disabled in specs
    ]  # fmt: skip
    db_session.add_all(users)
    db_session.commit()
    ids = {user.username: user.id for user in users if user.id is not None}
    return People(office_a, office_b, merchant_a, merchant_b, ids)


def message(key: str = "case-1:opened", *, case_id: str | None = "case-1", **scopes: object) -> NotificationMessage:
    return NotificationMessage(
        dedupe_key=key,
        kind="case_opened",
        title="新预警：未戴工作帽",
        body="请于24小时内核实",
        case_id=case_id,
        recipients=Recipients(**scopes),  # type: ignore[arg-type]
    )


def names(people: People, user_ids: list[int]) -> set[str]:
    by_id = {user_id: name for name, user_id in people.ids.items()}
    return {by_id[user_id] for user_id in user_ids}


def inbox_owners(session: Session, people: People, key: str) -> set[str]:
    rows = session.exec(select(Notification.user_id).where(Notification.dedupe_key == key))
    return names(people, list(rows))


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ({"merchant_id": "a"}, {"shop_a_owner", "shop_a_clerk"}),
        ({"street_office_id": "a"}, {"officer_a"}),
        ({"brigade": True}, {"brigade_1", "brigade_2"}),
        ({"command_center": True}, {"center"}),
        ({"user_ids": ["auditor", "shop_b_owner", "shop_a_gone"]}, {"auditor", "shop_b_owner"}),
        (
            {"merchant_id": "a", "street_office_id": "a", "user_ids": ["officer_a", "center"]},
            {"shop_a_owner", "shop_a_clerk", "officer_a", "center"},
        ),
        ({}, set()),
    ],
    ids=["merchant", "street-office", "brigade", "command-center", "named", "combined", "nobody"],
)
def test_recipients_per_scope_skip_disabled_users(
    db_session: Session, people: People, scopes: dict[str, object], expected: set[str]
) -> None:
    resolved: dict[str, object] = {}
    for scope, value in scopes.items():
        if scope == "merchant_id":
            resolved[scope] = people.merchant_a
        elif scope == "street_office_id":
            resolved[scope] = people.office_a
        elif scope == "user_ids":
            resolved[scope] = [people.ids[name] for name in value]  # type: ignore[attr-defined]
        else:
            resolved[scope] = value
    delivered = InboxNotifier(db_session).notify(message(**resolved))
    db_session.commit()
    assert delivered == len(expected)
    assert inbox_owners(db_session, people, "case-1:opened") == expected


def test_admins_receive_no_case_messages(db_session: Session, people: People) -> None:
    admin = people.ids["admin"]
    assert resolve_recipients(db_session, Recipients(user_ids=[admin]), for_case=True) == []
    assert resolve_recipients(db_session, Recipients(user_ids=[admin]), for_case=False) == [admin]
    notifier = InboxNotifier(db_session)
    assert notifier.notify(message("case-1:x", user_ids=[admin])) == 0
    assert notifier.notify(message("calendar:2027", case_id=None, user_ids=[admin])) == 1


def test_renotify_is_idempotent(db_session: Session, people: People) -> None:
    notifier = InboxNotifier(db_session)
    first = message(merchant_id=people.merchant_a, street_office_id=people.office_a)
    assert notifier.notify(first) == 3
    db_session.commit()
    # An activity retry or a workflow replay sends the same key again: nothing new is written.
    assert notifier.notify(first) == 0
    assert InboxNotifier(db_session).notify(first) == 0
    db_session.commit()
    assert len(db_session.exec(select(Notification)).all()) == 3
    assert len(db_session.exec(select(OutboxMessage)).all()) == 3
    # Someone who joined the scope since receives the message; the others still do not receive it twice.
    newcomer = User(username="shop_a_new", role=Role.merchant.value, merchant_id=people.merchant_a, password_hash="x")
    db_session.add(newcomer)
    db_session.commit()
    assert notifier.notify(first) == 1
    db_session.commit()
    assert len(db_session.exec(select(Notification)).all()) == 4
    assert len(db_session.exec(select(OutboxMessage)).all()) == 4


def test_outbox_has_one_sms_per_recipient(db_session: Session, people: People) -> None:
    InboxNotifier(db_session).notify(message(brigade=True))
    db_session.commit()
    rows = db_session.exec(select(OutboxMessage).order_by(col(OutboxMessage.user_id))).all()
    assert names(people, [row.user_id for row in rows]) == {"brigade_1", "brigade_2"}
    for row in rows:
        assert row.channel == SMS
        assert row.sent_at is None and row.attempts == 0
        assert row.dedupe_key == f"case-1:opened#user:{row.user_id}"
        assert row.payload == {
            "user_id": row.user_id,
            "kind": "case_opened",
            "title": "新预警：未戴工作帽",
            "body": "请于24小时内核实",
            "case_id": "case-1",
            "dedupe_key": "case-1:opened",
        }


def test_no_outbox_when_no_external_channel(db_session: Session, people: People) -> None:
    inbox_only = NotificationMessage(
        dedupe_key="k", kind="info", title="t", body="", case_id=None,
        recipients=Recipients(command_center=True), outbox_channels=(),
    )  # fmt: skip
    assert InboxNotifier(db_session).notify(inbox_only) == 1
    db_session.commit()
    assert db_session.exec(select(OutboxMessage)).all() == []


def test_inbox_unread_count_and_pages(db_session: Session, people: People) -> None:
    notifier = InboxNotifier(db_session)
    officer = people.ids["officer_a"]
    for index in range(5):
        notifier.notify(message(f"case-{index}:opened", case_id=f"case-{index}", street_office_id=people.office_a))
    notifier.notify(message("case-9:opened", case_id="case-9", street_office_id=people.office_b))
    db_session.commit()

    assert unread_count(db_session, user_id=officer) == 5
    newest = list_inbox(db_session, user_id=officer, limit=3)
    assert [row.case_id for row in newest] == ["case-4", "case-3", "case-2"]
    older = list_inbox(db_session, user_id=officer, limit=3, before_id=newest[-1].id)
    assert [row.case_id for row in older] == ["case-1", "case-0"]

    assert mark_read(db_session, user_id=officer, notification_ids=[newest[0].id or 0, older[0].id or 0]) == 2
    db_session.commit()
    assert unread_count(db_session, user_id=officer) == 3
    unread = list_inbox(db_session, user_id=officer, unread_only=True)
    assert [row.case_id for row in unread] == ["case-3", "case-2", "case-0"]
    # Marking again changes nothing.
    assert mark_read(db_session, user_id=officer, notification_ids=[newest[0].id or 0]) == 0


def test_mark_read_touches_only_the_users_own_rows(db_session: Session, people: People) -> None:
    InboxNotifier(db_session).notify(message(merchant_id=people.merchant_a, street_office_id=people.office_a))
    db_session.commit()
    owner, officer = people.ids["shop_a_owner"], people.ids["officer_a"]
    officers_row = list_inbox(db_session, user_id=officer)[0]
    assert mark_read(db_session, user_id=owner, notification_ids=[officers_row.id or 0]) == 0
    db_session.commit()
    assert unread_count(db_session, user_id=officer) == 1
    assert unread_count(db_session, user_id=owner) == 1
    assert mark_read(db_session, user_id=owner, notification_ids=[]) == 0


def test_dedupe_key_must_fit() -> None:
    with pytest.raises(ValueError, match="dedupe_key"):
        message("k" * 281)
    with pytest.raises(ValueError, match="dedupe_key"):
        message("")


def test_fake_notifier_collects_messages() -> None:
    fake = FakeNotifier()
    first = message(merchant_id=1)
    assert fake.notify(first) == 1
    assert fake.notify(first) == 0  # a repeat, as the inbox would answer
    assert fake.notify(message("case-2:opened", case_id="case-2", brigade=True)) == 1
    assert len(fake.messages) == 3
    assert [m.dedupe_key for m in fake.delivered()] == ["case-1:opened", "case-2:opened"]
    assert fake.kinds() == ["case_opened", "case_opened"]
    assert fake.for_case("case-2")[0].recipients.brigade
