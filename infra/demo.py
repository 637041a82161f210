"""Demo data for a local stack: Hexi district (天津市河西区), three street offices, 30 merchants with
certificates and cameras, and one or more accounts of every role.

Names, codes and hours are fixed (a seeded generator), so screenshots and walkthroughs stay comparable;
certificate dates are relative to today, so that expiry alerts always have something to find; passwords
are random at every seeding and are returned once, for the caller to print.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, func, select

from domain.devices.models import Device
from domain.errors import Conflict
from domain.merchants.models import (
    CAMERA_AREA_LABELS,
    Camera,
    CameraArea,
    Certificate,
    CertificateKind,
    Merchant,
    StreetOffice,
)
from domain.merchants.rules import generate_credit_code, generate_food_licence_no, parse_business_hours
from domain.users.models import ROLE_LABELS, Role, User
from domain.users.passwords import generate_password
from domain.users.service import create_user

BEIJING = ZoneInfo("Asia/Shanghai")
_DEMO_RANDOM_SEED = 120103  # Hexi's division code: any fixed value keeps the data the same across runs

# (code, name, roads in its area)
STREET_OFFICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("youyilu", "友谊路街市场监管所", ("友谊路", "宾水道", "围堤道", "平江道", "永安道")),
    ("yuexiulu", "越秀路街市场监管所", ("越秀路", "平山道", "绍兴道", "浦口道", "广东路")),
    ("machang", "马场街市场监管所", ("马场道", "气象台路", "苏州道", "郑州道", "南京路")),
)

# (name, kind, business hours); kind: "company" (91…), "sole" (个体工商户 92…), "vendor" (摊贩: 备案, no licence)
MERCHANTS: tuple[tuple[str, str, str], ...] = (
    ("河西老码头海鲜酒家", "company", "10:30-14:00,17:00-21:30"),
    ("津味小馆", "sole", "10:00-14:00,17:00-21:00"),
    ("福满楼川菜馆", "company", "11:00-14:00,17:00-22:00"),
    ("粤珍茶餐厅", "company", "07:00-14:30,17:00-21:00"),
    ("友谊路煎饼果子铺", "vendor", "06:00-10:30"),
    ("宾水道兰州牛肉拉面", "sole", "06:30-21:00"),
    ("围堤道东北饺子馆", "sole", "10:00-14:00,16:30-21:30"),
    ("湘味轩湘菜馆", "sole", "10:30-14:00,17:00-22:00"),
    ("鸿运火锅城", "company", "11:00-15:00,17:00-02:00"),
    ("聚福园家常菜", "sole", "10:30-14:00,17:00-21:00"),
    ("越秀食府", "company", "10:30-14:00,17:00-21:30"),
    ("老宝贝炸糕店", "vendor", "06:00-11:00"),
    ("平山道江南小笼包", "sole", "06:30-13:30"),
    ("悦来清真饭庄", "company", "10:00-21:30"),
    ("北方烧烤城", "sole", "17:00-02:00"),
    ("团圆饺子馆", "sole", "10:00-14:00,16:30-21:00"),
    ("云南过桥米线", "sole", "10:00-21:00"),
    ("和风日料", "company", "11:30-14:00,17:30-22:00"),
    ("芙蓉蒸饺铺", "sole", "06:30-13:00"),
    ("阿妈砂锅粥", "sole", "17:00-03:00"),
    ("马场道西点烘焙坊", "company", "08:00-21:00"),
    ("海河渔家菜", "company", "10:30-14:00,17:00-21:30"),
    ("顺心面馆", "sole", "06:30-20:30"),
    ("客家小厨", "sole", "10:30-14:00,17:00-21:00"),
    ("锦绣西北菜", "company", "10:30-14:30,17:00-21:30"),
    ("好运来早点铺", "vendor", "05:30-10:00"),
    ("麦香园面包房", "sole", "07:00-20:00"),
    ("天天鲜水饺", "sole", "10:00-20:30"),
    ("金谷粮仓快餐", "company", "10:00-14:00,16:30-20:00"),
    ("气象台路麻辣烫", "sole", "10:30-22:00"),
)

CAMERA_AREA_PAIRS: tuple[tuple[CameraArea, CameraArea], ...] = (
    (CameraArea.cooking, CameraArea.rough_processing),
    (CameraArea.cooking, CameraArea.washing),
    (CameraArea.special_room, CameraArea.cooking),
    (CameraArea.rough_processing, CameraArea.storage),
    (CameraArea.cooking, CameraArea.serving_prep),
)

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
_GIVEN_NAMES = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
)
_RISK_LEVELS = "ABBCABCBDB"
_CREDIT_LEVELS = "AABACABBAD"

# Certificate dates that later alert features must find (index of the merchant → days from today).
_HEALTH_CERTIFICATE_EXPIRING = {1: 5, 7: 12, 13: 21, 20: 28}  # first health certificate, within 30 days
_HEALTH_CERTIFICATE_EXPIRED = {16: -3}
_FOOD_LICENCE_EXPIRING = {3: 18}
_VENDOR_REGISTRATION_EXPIRED = {11: -10}

MERCHANT_ACCOUNTS = 3  # merchant users for the first few merchants


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    scope: str
    password: str


@dataclass
class DemoSummary:
    street_offices: int = 0
    merchants: int = 0
    certificates: int = 0
    cameras: int = 0
    accounts: list[DemoAccount] = field(default_factory=list)


def database_is_empty(session: Session) -> bool:
    """No street office, merchant, user or device yet: nothing that demo data could clash with."""
    for table in (StreetOffice, Merchant, User, Device):
        if session.exec(select(func.count()).select_from(table)).one() > 0:
            return False
    return True


def seed_demo_data(
    session: Session, *, today: date | None = None, videos: Mapping[str, Path] | None = None,
    now: datetime | None = None,
) -> DemoSummary:
    """Write the demo district into an empty database (in the caller's transaction) and return what was made.

    Refuses a database that already holds data: demo merchants must never mix with real supervision records.
    """
    if not database_is_empty(session):
        raise Conflict("the database already has data; demo data is only seeded into an empty database")
    now = now or datetime.now(BEIJING)
    today = today or now.astimezone(BEIJING).date()
    rng = random.Random(_DEMO_RANDOM_SEED)  # noqa: S311 - fixed demo content, not a secret
    summary = DemoSummary()

    offices = [StreetOffice(code=code, name=name) for code, name, _ in STREET_OFFICES]
    session.add_all(offices)
    session.flush()
    summary.street_offices = len(offices)

    merchants = _add_merchants(session, rng, offices)
    summary.merchants = len(merchants)
    summary.certificates = _add_certificates(session, rng, merchants, today)
    summary.cameras = _add_cameras(session, merchants, videos or {}, now=now)
    summary.accounts = _add_accounts(session, offices, merchants)
    session.flush()
    return summary


def _add_merchants(session: Session, rng: random.Random, offices: list[StreetOffice]) -> list[Merchant]:
    merchants = []
    used_codes: set[str] = set()
    for index, (name, kind, hours) in enumerate(MERCHANTS):
        office_index = index % len(offices)
        roads = STREET_OFFICES[office_index][2]
        code = generate_credit_code(rng, sole_trader=kind != "company")
        while code in used_codes:
            code = generate_credit_code(rng, sole_trader=kind != "company")
        used_codes.add(code)
        office_id = offices[office_index].id
        assert office_id is not None
        merchants.append(
            Merchant(
                credit_code=code,
                food_licence_no=None if kind == "vendor" else generate_food_licence_no(rng),
                name=name,
                address=f"天津市河西区{rng.choice(roads)}{rng.randint(1, 300)}号",
                street_office_id=office_id,
                risk_level=_RISK_LEVELS[index % len(_RISK_LEVELS)],
                credit_level=_CREDIT_LEVELS[index % len(_CREDIT_LEVELS)],
                business_hours=parse_business_hours(hours),
            )
        )
    session.add_all(merchants)
    session.flush()
    return merchants


def _add_certificates(session: Session, rng: random.Random, merchants: list[Merchant], today: date) -> int:
    certificates: list[Certificate] = []
    for index, merchant in enumerate(merchants):
        assert merchant.id is not None
        opened = today - timedelta(days=rng.randint(200, 3000))
        certificates.append(
            Certificate(
                merchant_id=merchant.id,
                kind=CertificateKind.business_licence.value,
                number=merchant.credit_code,  # the business licence carries the credit code as its number
                valid_from=opened,
                valid_until=None,  # 长期
            )
        )
        if merchant.food_licence_no is not None:
            until = _validity_end(today, _FOOD_LICENCE_EXPIRING.get(index), rng, years=5)
            certificates.append(
                Certificate(
                    merchant_id=merchant.id,
                    kind=CertificateKind.food_business_licence.value,
                    number=merchant.food_licence_no,
                    valid_from=until - timedelta(days=5 * 365),
                    valid_until=until,
                )
            )
        else:
            until = _validity_end(today, _VENDOR_REGISTRATION_EXPIRED.get(index), rng, years=1)
            certificates.append(
                Certificate(
                    merchant_id=merchant.id,
                    kind=CertificateKind.vendor_registration.value,
                    number=f"津河西食摊备{until.year - 1}{index + 1:04d}",
                    valid_from=until - timedelta(days=365),
                    valid_until=until,
                )
            )
        for staff in range(1 + index % 3):
            planned = _HEALTH_CERTIFICATE_EXPIRING.get(index) or _HEALTH_CERTIFICATE_EXPIRED.get(index)
            until = _validity_end(today, planned if staff == 0 else None, rng, years=1)
            certificates.append(
                Certificate(
                    merchant_id=merchant.id,
                    kind=CertificateKind.health_certificate.value,
                    number=f"JK{until.year - 1}1201{index + 1:03d}{staff + 1:02d}",
                    holder_name=rng.choice(_SURNAMES) + rng.choice(_GIVEN_NAMES),
                    valid_from=until - timedelta(days=365),
                    valid_until=until,
                )
            )
    session.add_all(certificates)
    return len(certificates)


def _validity_end(today: date, planned_days_from_today: int | None, rng: random.Random, *, years: int) -> date:
    """A planned expiry (days from today), else one comfortably ahead (> 60 days) of a certificate issued
    before today."""
    if planned_days_from_today is not None:
        return today + timedelta(days=planned_days_from_today)
    return today + timedelta(days=rng.randint(61, years * 365 - 1))


def _add_cameras(session: Session, merchants: list[Merchant], videos: Mapping[str, Path], *, now: datetime) -> int:
    cameras = []
    for index, merchant in enumerate(merchants):
        assert merchant.id is not None
        for position, area in enumerate(CAMERA_AREA_PAIRS[index % len(CAMERA_AREA_PAIRS)]):
            night = (index, position) == NIGHT_DEMO_CAMERA
            cameras.append(
                Camera(
                    merchant_id=merchant.id,
                    name=f"{CAMERA_AREA_LABELS[area]}区" + ("(夜间)" if night else ""),
                    area=area.value,
                    stream_url=_demo_stream(index, position, area.value, videos),
                    business_hours=night_demo_hours(now) if night else None,
                )
            )
    session.add_all(cameras)
    return len(cameras)


# (merchant index, camera position) → the demo video with something to find; every other camera shows a kitchen.
NIGHT_DEMO_CAMERA = (3, 1)  # a storeroom camera: the after-hours motion check needs the room closed
SPECIAL_DEMO_CAMERAS = {(0, 0): "covered", (1, 0): "turned", NIGHT_DEMO_CAMERA: "night"}
NIGHT_DEMO_CLOSED_HOURS = 20


def night_demo_hours(now: datetime) -> list[list[str]]:
    """The demo storeroom is opened for one delivery hour a day, ``NIGHT_DEMO_CLOSED_HOURS`` after the demo data
    was made: whenever `make run` starts, its after-hours watch is on for the hours that follow, so the rat in its
    night video reaches the queue as a pest alert within minutes."""
    opens = (now.astimezone(BEIJING) + timedelta(hours=NIGHT_DEMO_CLOSED_HOURS)).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=1)
    return [[opens.strftime("%H:%M"), closes.strftime("%H:%M")]]


def _demo_stream(index: int, position: int, area: str, videos: Mapping[str, Path]) -> str:
    if not videos:
        # Placeholders when no videos were written (tests that seed without a stack): nothing listens there.
        return f"rtsp://127.0.0.1:8554/demo/m{index + 1:02d}/{area}"
    name = SPECIAL_DEMO_CAMERAS.get((index, position), "kitchen")
    return videos[name].as_uri()


def _add_accounts(session: Session, offices: list[StreetOffice], merchants: list[Merchant]) -> list[DemoAccount]:
    district = "河西区 (全区)"
    plans: list[tuple[str, Role, str, str | None, str | None, str]] = [
        ("command", Role.command_center, "指挥中心值班员", None, None, district),
    ]
    for office in offices:
        plans.append(
            (f"officer.{office.code}", Role.street_officer, f"{office.name} 监管员", office.code, None, office.name)
        )
    plans.append(("brigade", Role.brigade_officer, "综合行政执法支队 执法员", None, None, district))
    for number, merchant in enumerate(merchants[:MERCHANT_ACCOUNTS], start=1):
        plans.append((f"merchant{number:02d}", Role.merchant, merchant.name, None, merchant.credit_code, merchant.name))
    plans.append(("auditor", Role.auditor, "审计员", None, None, district))
    plans.append(("admin", Role.admin, "系统管理员", None, None, district))

    accounts = []
    for username, role, display_name, office_code, credit_code, scope in plans:
        password = generate_password()
        create_user(
            session,
            username=username,
            role=role,
            password=password,
            street_office_code=office_code,
            merchant_credit_code=credit_code,
            display_name=display_name,
            must_change_password=True,
        )
        accounts.append(DemoAccount(username=username, role=role, scope=scope, password=password))
    return accounts


def format_accounts(summary: DemoSummary) -> str:
    """The demo accounts as an aligned table (Chinese characters count two columns), with a note."""
    header = ("username", "role", "scope", "password")
    rows = [
        (account.username, f"{account.role.value} {ROLE_LABELS[account.role]}", account.scope, account.password)
        for account in summary.accounts
    ]
    widths = [max(_display_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        f"demo data: {summary.street_offices} street offices, {summary.merchants} merchants, "
        f"{summary.certificates} certificates, {summary.cameras} cameras",
        "demo accounts (passwords are shown only now; each must be changed at first sign-in):",
    ]
    for row in [header, *rows]:
        lines.append("  ".join(_pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _display_width(text))
