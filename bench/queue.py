"""The street officer's queue page: server time of ``GET /queue`` over 200,000 cases against its bare SQL.

Anchors and figures, measured in the same run on the same machine, interleaved (one page, one list_cases, one
bare SQL, and again), so that whatever else the machine does weighs on all three alike:
  * queue_page_p95_ms: ``GET /queue`` as a street officer (the default filter: the open statuses of their own
    street, soonest deadline first, 50 a page); target p95 < 100. The app runs in this process under
    ``fastapi.testclient.TestClient``, so the time is the server's (session check, every query, the template)
    plus an in-process hand-over of well under a millisecond, and no network.
  * queue_page_vs_sql_p95_ratio = the page's p95 / the p95 of the bare SQL of its list: the very statement
    ``list_cases`` sends for that page (captured from the engine), run through psycopg on an autocommit
    connection and fetched; target ≤ 3.
  * Also printed: ``list_cases`` itself (a Session per call, as a request has: checkout, the query, the ORM
    rows), the page's own SQL (statements and their cursor time, from the app engine's events), a floor for
    the in-process hand-over (a static file through the same middleware), and the same figures for the
    overdue filter and for the command centre's district-wide queue, without targets; then the plans of the
    bare SQL (EXPLAIN ANALYZE).

The district: 10 street offices, 2,000 merchants with a camera each, 200,000 cases written in one
``INSERT … SELECT … FROM generate_series`` (most closed; about 8 % open, a quarter of those overdue), then
ANALYZE. Temporal and S3 are not started (the page needs neither). The database is a scratch one (created,
migrated, dropped) on the server at SUNSHINE_TEST_DATABASE_URL or SUNSHINE_DATABASE_URL; with neither set, an
embedded PostgreSQL is started. Always exits 0; each target line says whether it was met.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/queue.py``, this folder heads sys.path and this file would stand in for the standard
# library's ``queue`` (psycopg, urllib3 and anyio import it): the folder goes last, the repository first.
sys.path.sort(key=lambda entry: Path(entry or ".").resolve() == Path(__file__).resolve().parent)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib
import os
import re
import secrets
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from fastapi import FastAPI
from sqlalchemy import Engine, event, make_url
from sqlmodel import Session

from api.app import create_app
from api.deps import case_scope_for
from api.web.queue_pages import PAGE_SIZE, queue_query
from bench.scratch import scratch_database
from domain.alerts.taxonomy import ALERT_TYPES
from domain.cases.service import list_cases
from domain.users.models import Role, User
from domain.users.passwords import hash_password
from infra.components.process import free_port
from infra.db import make_engine
from infra.settings import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

OFFICES = 10
MERCHANTS = 2_000
CASES = 200_000
REQUESTS = 200  # measured rounds of the officer's default queue
OTHER_REQUESTS = 100  # … of the other two queues
WARMUP = 20  # rounds first: imports, pools, template compilation, prepared statements, caches
P95_TARGET_MS = 100.0
RATIO_TARGET = 3.0
PASSWORD = "Bench-Queue-1!"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
ROW_CHECKBOX = 'name="case_ids"'
FLOOR_PATH = "/static/favicon.svg"  # through the same middleware, no route, no database
LIST_MARKER = "FROM alert_case JOIN merchant"

# Status shares of the 200,000 (cumulative upper bounds of random()): most cases are long closed.
STATUS_SHARES = (
    (0.92, "closed"),
    (0.95, "awaiting_verification"),
    (0.96, "awaiting_dispute_review"),
    (0.98, "rectifying"),
    (1.00, "awaiting_review"),
)

SEED_DISTRICT = """
INSERT INTO street_office (code, name)
SELECT 'bench' || n, '第' || n || '街市场监管所' FROM generate_series(1, %(offices)s) AS n;

INSERT INTO merchant (credit_code, name, address, street_office_id, risk_level, credit_level, business_hours,
                      created_at)
SELECT '91120103BE' || lpad(n::text, 8, '0'), '测试餐馆' || n || '号店', '河西区测试路' || n || '号',
       (SELECT array_agg(id ORDER BY id) FROM street_office)[1 + n %% %(offices)s],
       'B', 'A', '[["10:00", "14:00"], ["17:00", "22:00"]]', now()
FROM generate_series(1, %(merchants)s) AS n;

INSERT INTO camera (merchant_id, name, area, stream_url, enabled, created_at)
SELECT id, '烹饪区', 'cooking', 'rtsp://127.0.0.1:8554/bench/' || id, true, now() FROM merchant;
"""

# One statement for all the cases. Closed cases have no next deadline (as the workflow projects them); open
# ones are due from two days ago to eight days ahead, so about a quarter are overdue.
SEED_CASES = """
WITH shops AS (
    SELECT array_agg(merchant.id ORDER BY merchant.id) AS ids FROM merchant
), drawn AS (
    SELECT n,
           random() AS s,
           1 + floor(random() * cardinality(%(types)s::text[]))::int AS t,
           1 + floor(random() * %(merchants)s)::int AS k,
           now() - random() * interval '730 days' AS closed_opened_at,
           now() - random() * interval '20 days' AS open_opened_at,
           now() + (random() * 10 - 2) * interval '1 day' AS due_at
    FROM generate_series(1, %(cases)s) AS n
), cases AS (
    SELECT drawn.*, CASE
               WHEN s < %(closed)s THEN 'closed'
               WHEN s < %(verification)s THEN 'awaiting_verification'
               WHEN s < %(dispute)s THEN 'awaiting_dispute_review'
               WHEN s < %(rectifying)s THEN 'rectifying'
               ELSE 'awaiting_review' END AS status
    FROM drawn
)
INSERT INTO alert_case (case_id, version, merchant_id, street_office_id, camera_id, alert_type, category, status,
                        outcome, opened_at, closed_at, last_alert_at, alert_count, next_due_at, deadlines,
                        overdue, flags, disposition, handoff_id, summary, updated_at)
SELECT 'case-' || gen_random_uuid(), 4, merchant.id, merchant.street_office_id, camera.id,
       (%(types)s::text[])[cases.t], (%(categories)s::text[])[cases.t], cases.status,
       CASE WHEN cases.status = 'closed' THEN 'rectified' END,
       CASE WHEN cases.status = 'closed' THEN cases.closed_opened_at ELSE cases.open_opened_at END,
       CASE WHEN cases.status = 'closed' THEN cases.closed_opened_at + interval '3 days' END,
       CASE WHEN cases.status = 'closed' THEN cases.closed_opened_at ELSE cases.open_opened_at END
           + interval '20 minutes',
       1 + n %% 3,
       CASE WHEN cases.status <> 'closed' THEN cases.due_at END,
       json_build_object('verification', json_build_object(
           'due_at', to_char(cases.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
           'rule', 'clock_hours', 'amount', 24, 'calendar_versions', json_build_array(),
           'provisional', false, 'provenance', '办法 第十七条', 'met',
           CASE WHEN cases.status = 'closed' THEN true END)),
       cases.status <> 'closed' AND cases.due_at < now(),
       CASE WHEN cases.status = 'closed' THEN '{"verified_in_time": true, "rectified_in_time": true}'
            ELSE '{}' END::json,
       CASE WHEN cases.status = 'closed'
            THEN '{"recommendation": "no_penalty", "label": "首违不罚", "basis": "办法 第二十条"}'::json END,
       NULL,
       merchant.name || ' 烹饪区 ' || (%(labels)s::text[])[cases.t],
       now()
FROM cases
CROSS JOIN shops
JOIN merchant ON merchant.id = shops.ids[cases.k]
JOIN camera ON camera.merchant_id = merchant.id
"""


@dataclass
class Variant:
    """One queue to measure: who asks, which query string, and the figures gathered for it."""

    name: str
    client: TestClient
    cookies: dict[str, str]
    user: User
    query: dict[str, str]
    page_ms: list[float] = field(default_factory=list)
    page_sql_ms: list[float] = field(default_factory=list)
    page_statements: list[int] = field(default_factory=list)
    domain_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    statement: str = ""
    parameters: Any = None
    rows_on_page: int = 0


class SqlMeter:
    """Statements and their time on one engine, from its cursor events, while ``recording``."""

    def __init__(self, engine: Engine) -> None:
        self.recording = False
        self.statements = 0
        self.seconds = 0.0
        self._started: float | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *args: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, *args: Any) -> None:
        if self.recording and self._started is not None:
            self.statements += 1
            self.seconds += time.perf_counter() - self._started

    @contextlib.contextmanager
    def record(self) -> Iterator[None]:
        self.statements, self.seconds, self.recording = 0, 0.0, True
        try:
            yield
        finally:
            self.recording = False


# ----- The district ---------------------------------------------------------------------------------------


def seed(engine: Engine, dsn: str) -> tuple[User, User]:
    """The district and its 200,000 cases, in SQL; a street officer of the first street and a command centre user."""
    infos = list(ALERT_TYPES.values())
    bounds = {name: share for share, name in STATUS_SHARES}
    parameters = {
        "offices": OFFICES,
        "merchants": MERCHANTS,
        "cases": CASES,
        "types": [info.alert_type.value for info in infos],
        "categories": [info.category.value for info in infos],
        "labels": [info.label_zh for info in infos],
        "closed": bounds["closed"],
        "verification": bounds["awaiting_verification"],
        "dispute": bounds["awaiting_dispute_review"],
        "rectifying": bounds["rectifying"],
    }
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SELECT setseed(0.2024)")
        with connection.transaction():
            for statement in SEED_DISTRICT.split(";"):
                if statement.strip():
                    connection.execute(statement, parameters)
            connection.execute(SEED_CASES, parameters)
        connection.execute("VACUUM ANALYZE")
        office = connection.execute("SELECT min(id) FROM street_office").fetchone()
    assert office is not None
    password_hash = hash_password(PASSWORD)
    with Session(engine, expire_on_commit=False) as session:
        officer = User(username="bench.officer", role=Role.street_officer.value, street_office_id=office[0],
                       password_hash=password_hash, display_name="bench", must_change_password=False)
        command = User(username="bench.command", role=Role.command_center.value, password_hash=password_hash,
                       display_name="bench", must_change_password=False)
        session.add_all([officer, command])
        session.commit()
    return officer, command


def describe_district(dsn: str, office_id: int) -> str:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE status <> 'closed'), count(*) FILTER (WHERE overdue),
                   count(*) FILTER (WHERE street_office_id = %(office)s AND status <> 'closed'),
                   pg_size_pretty(pg_total_relation_size('alert_case')), current_setting('server_version')
            FROM alert_case
            """,
            {"office": office_id},
        ).fetchone()
    assert row is not None
    total, open_cases, overdue, officer_open, size, version = row
    return (
        f"district: {OFFICES} streets, {MERCHANTS} merchants, {total} cases ({open_cases} open, {overdue} overdue; "
        f"{officer_open} open in the officer's street); alert_case with indexes {size}; PostgreSQL {version}"
    )


# ----- Measurements ---------------------------------------------------------------------------------------


def sign_in(client: TestClient, username: str) -> dict[str, str]:
    """Signs in through the form, as a browser does; the cookies of that session (the client's jar is left empty)."""
    client.cookies.clear()
    page = client.get("/login")
    match = CSRF_INPUT.search(page.text)
    assert match, "the sign-in page has no CSRF field"
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": match.group(1), "next": ""},
        follow_redirects=False,
    )
    assert response.status_code == 303, f"signing in as {username}: {response.status_code} {response.text[:300]}"
    cookies = dict(client.cookies.items())
    client.cookies.clear()
    return cookies


def capture_list_statement(engine: Engine, variant: Variant) -> None:
    """The SQL and parameters ``list_cases`` sends for the variant's page (the first page, no cursor)."""
    captured: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if LIST_MARKER in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        run_list_cases(engine, variant)
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert len(captured) == 1, f"expected one list statement, saw {len(captured)}"
    variant.statement, variant.parameters = captured[0]


def filters_of(variant: Variant) -> Any:
    query = variant.query
    return queue_query(query.get("status"), query.get("alert_type"), query.get("merchant"), query.get("overdue"),
                       query.get("due"), query.get("text")).filters(datetime.now(UTC))


def run_list_cases(engine: Engine, variant: Variant) -> int:
    scope = case_scope_for(variant.user)
    assert scope is not None
    with Session(engine) as session:
        return len(list_cases(session, scope=scope, filters=filters_of(variant), limit=PAGE_SIZE).items)


def measure(
    variant: Variant, rounds: int, engine: Engine, raw: psycopg.Connection[Any], meter: SqlMeter, *, with_floor: bool
) -> None:
    def page() -> None:
        with meter.record():
            started = time.perf_counter()
            response = variant.client.get("/queue", params=variant.query)
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, f"{variant.name}: {response.status_code} {response.text[:300]}"
        variant.rows_on_page = response.text.count(ROW_CHECKBOX)
        variant.page_ms.append(1000 * elapsed)
        variant.page_sql_ms.append(1000 * meter.seconds)
        variant.page_statements.append(meter.statements)

    def domain() -> None:
        started = time.perf_counter()
        run_list_cases(engine, variant)
        variant.domain_ms.append(1000 * (time.perf_counter() - started))

    def bare_sql() -> None:
        started = time.perf_counter()
        rows = raw.execute(variant.statement, variant.parameters).fetchall()
        variant.sql_ms.append(1000 * (time.perf_counter() - started))
        assert len(rows) == PAGE_SIZE + 1, f"{variant.name}: the bare SQL gave {len(rows)} rows"

    def floor() -> None:
        started = time.perf_counter()
        response = variant.client.get(FLOOR_PATH)
        variant.floor_ms.append(1000 * (time.perf_counter() - started))
        assert response.status_code == 200, f"{FLOOR_PATH}: {response.status_code}"

    variant.client.cookies.clear()
    variant.client.cookies.update(variant.cookies)
    steps: tuple[Callable[[], None], ...] = (page, domain, bare_sql, floor) if with_floor else (page, domain, bare_sql)
    for _ in range(WARMUP):
        for step in steps:
            step()
    series: list[list[Any]] = [
        variant.page_ms, variant.page_sql_ms, variant.page_statements, variant.domain_ms, variant.sql_ms,
        variant.floor_ms,
    ]
    for values in series:
        values.clear()
    for _ in range(rounds):
        for step in steps:
            step()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def p50_p95(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms"


def report(variant: Variant, *, primary: bool) -> None:
    page_p95, sql_p95 = percentile(variant.page_ms, 95), percentile(variant.sql_ms, 95)
    ratio = page_p95 / sql_p95
    prefix = "queue_page" if primary else f"queue_page[{variant.name}]"
    if primary:
        print(f"queue_page_p95_ms: {page_p95:.1f}")
        print(f"queue_page_vs_sql_p95_ratio: {ratio:.2f} (page p95 {page_p95:.1f} ms / bare SQL p95 {sql_p95:.1f} ms)")
    else:
        print(f"{prefix}_vs_sql_p95_ratio: {ratio:.2f} (page p95 {page_p95:.1f} ms / bare SQL p95 {sql_p95:.1f} ms)")
    statements = statistics.median(variant.page_statements)
    print(
        f"{prefix}: {len(variant.page_ms)} GETs, {variant.rows_on_page} rows on the page; "
        f"page {p50_p95(variant.page_ms)}; list_cases {p50_p95(variant.domain_ms)}; "
        f"bare SQL {p50_p95(variant.sql_ms)}; the page's own SQL (cursor time) {p50_p95(variant.page_sql_ms)} "
        f"in {statements:.0f} statements"
    )
    if variant.floor_ms:
        print(f"in_process_floor: GET {FLOOR_PATH} {p50_p95(variant.floor_ms)} (TestClient hand-over and middleware)")


def explain(dsn: str, variant: Variant) -> list[str]:
    with psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as connection:
        rows = connection.execute("EXPLAIN (ANALYZE, COSTS OFF) " + variant.statement, variant.parameters).fetchall()
    return [str(row[0]) for row in rows]


def in_process_client(app: FastAPI) -> TestClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's notice, on import, that its TestClient moves to httpx2
        from fastapi.testclient import TestClient

    return TestClient(app)


def settings_for(database_url: str, var_dir: Path) -> Settings:
    temporal_port = free_port()
    s3_port = free_port()
    return Settings(
        database_url=database_url,
        temporal_address=f"127.0.0.1:{temporal_port}",  # nothing listens there: the page does not need Temporal
        s3_endpoint=f"http://127.0.0.1:{s3_port}",  # nor S3
        secret_key=secrets.token_urlsafe(32),
        var_dir=var_dir,
        log_level="WARNING",
    )


def main() -> int:
    run_started = time.perf_counter()
    print(
        f"cpus: {os.cpu_count()} (load average {os.getloadavg()[0]:.1f}), {CASES} cases; {REQUESTS} rounds of the "
        f"officer's queue and {OTHER_REQUESTS} of each other queue after {WARMUP} warm-up rounds; a round is one "
        f"page, one list_cases, one bare SQL"
    )
    with (
        tempfile.TemporaryDirectory(prefix="sunshine-bench-queue-") as base,
        scratch_database() as (database_url, _postgres_pid),
        contextlib.ExitStack() as stack,
    ):
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        seeding = time.perf_counter()
        officer, command = seed(engine, dsn)
        seed_seconds = time.perf_counter() - seeding
        assert officer.street_office_id is not None
        print(describe_district(dsn, officer.street_office_id) + f"; seeded and analysed in {seed_seconds:.1f} s")

        # One client (one lifespan, so one app engine); each person's session cookie is put in its jar in turn.
        client = stack.enter_context(in_process_client(create_app(settings_for(database_url, Path(base) / "var"))))
        meter = SqlMeter(client.app.state.engine)  # type: ignore[attr-defined]  # a FastAPI app's state
        officer_cookies, command_cookies = sign_in(client, officer.username), sign_in(client, command.username)
        raw = stack.enter_context(psycopg.connect(dsn, autocommit=True))

        variants = [
            Variant("officer", client, officer_cookies, officer, {}),
            Variant("officer overdue", client, officer_cookies, officer, {"overdue": "1"}),
            Variant("command centre", client, command_cookies, command, {}),
        ]
        primary = variants[0]
        for variant in variants:
            capture_list_statement(engine, variant)
            measure(variant, REQUESTS if variant is primary else OTHER_REQUESTS, engine, raw, meter,
                    with_floor=variant is primary)

        for variant in variants:
            report(variant, primary=variant is primary)
        print("time: page = the in-process ASGI round trip (TestClient), i.e. server time with no network; "
              "bare SQL = psycopg execute and fetch of list_cases' statement on an autocommit connection")
        for variant in variants:
            plan = explain(dsn, variant)
            execution = next((line.strip() for line in plan if line.startswith("Execution Time")), "")
            access = "; ".join(line.strip(" ->") for line in plan if " on alert_case " in line)
            print(f"plan[{variant.name}]: {execution}; alert_case read by {access}")
            if variant is primary:
                for line in plan:
                    if not line.startswith(("Planning", "Execution")):
                        print(f"    {line}")
        page_p95 = percentile(primary.page_ms, 95)
        ratio = page_p95 / percentile(primary.sql_ms, 95)
        print(f"run_seconds: {time.perf_counter() - run_started:.1f} (load average now {os.getloadavg()[0]:.1f})")
        print(f"target queue_page_p95_ms < {P95_TARGET_MS:.0f}: {'met' if page_p95 < P95_TARGET_MS else 'MISSED'}")
        verdict = "met" if ratio <= RATIO_TARGET else "MISSED"
        print(f"target queue_page_vs_sql_p95_ratio <= {RATIO_TARGET:.0f}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
