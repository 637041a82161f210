"""Browser tests: a live Sunshine stack and Debian's chromium driven by Playwright.

Writing a browser test::

    from playwright.async_api import Page, expect

    from tests.browser.conftest import LiveStack, screenshot


    async def test_the_inbox_on_a_phone(phone_page: Page, live_stack: LiveStack) -> None:
        created = await live_stack.raise_alert(merchant="merchant01")       # a real case, through the worker
        await live_stack.wait_for_case(created["case_id"])
        await phone_page.goto("/")                                           # relative to live_stack.base_url
        ...
        await screenshot(phone_page, "inbox-phone")                          # test-output/screenshots/inbox-phone.png

What the fixtures give:

- ``live_stack`` (package scope): uvicorn serving ``api.app.create_app`` on a free port in a background thread,
  with a fresh migrated PostgreSQL database seeded with the demo district (``infra.demo``: 3 street offices,
  30 merchants with cameras), a real Temporal dev server, a real SeaweedFS with its own evidence bucket, and an
  in-process casework worker on its own task queue (in the server's thread and event loop). Every demo account
  (``command``, ``officer.youyilu``/``yuexiulu``/``machang``, ``brigade``, ``merchant01``-``03``, ``auditor``,
  ``admin``) has the password ``live_stack.password`` and need not change it. See ``LiveStack``.
- ``browser`` (package scope): Debian's chromium (``/usr/bin/chromium``), headless. Missing, the tests FAIL,
  never skip: ``make test`` installs it (``make browser-deps``); ``playwright install`` is never used.
- ``page`` (desktop 1280×800) and ``phone_page`` (375×812, mobile user agent, touch): each in a fresh browser
  context (no cookies shared between tests), ``base_url`` set, zh-CN locale, Beijing time zone.
  ``new_page(phone=..., **context_options)`` opens more, e.g. an officer and a merchant side by side.
- On every page of a test, a console error (``console.error``, a failed resource load, a CSP refusal…) or an
  uncaught exception fails the test at teardown (reported as an error at teardown), listing every message.
  ``@pytest.mark.allow_console_errors(r"regex", ...)`` allows matching messages (no argument: all);
  ``errors_of(page)`` gives the collected ``console_errors`` and ``page_errors`` of a page.
- A test that fails leaves a screenshot of each of its pages in ``test-output/screenshots/FAILED-…png``.

Why the async Playwright API: pytest-asyncio runs with ``asyncio_mode = auto`` and one session-wide loop. The
sync API marks its own event loop as the thread's running loop between calls, so once a session- or
package-scoped sync Playwright exists, every later async test or fixture of the run fails ("another loop is
running"); and it refuses to start inside an async test at all. The async API simply runs on pytest-asyncio's
loop, so browser tests are ``async def`` and ``await`` every Playwright call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import socket
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright
from playwright.async_api import Error as PlaywrightError
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.app import create_app
from api.auth import AuthPolicy, issue_token, signing_key
from domain.devices.service import create_device
from domain.merchants.models import Camera, Merchant
from domain.users.models import Role, User
from domain.users.passwords import hash_password
from infra import migrate
from infra.clients import connect_temporal
from infra.db import make_engine, session_scope
from infra.demo import DemoSummary, seed_demo_data
from infra.evidence_store import EvidenceStore
from infra.settings import Settings
from infra.worker import build_casework_worker
from tests.fixtures.s3 import SeaweedInstance

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "test-output" / "screenshots"
CHROMIUM = Path(os.environ.get("SUNSHINE_TEST_CHROMIUM", "/usr/bin/chromium"))

PASSWORD = "Sunsh1ne!browser"
SECRET_KEY = "browser-tests-secret-key-0123456789abcdef"

STACK_START_TIMEOUT_SECONDS = 90.0
STACK_STOP_TIMEOUT_SECONDS = 20.0
ACTION_TIMEOUT_MS = 10_000
NAVIGATION_TIMEOUT_MS = 15_000

DESKTOP_CONTEXT: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE_CONTEXT: dict[str, Any] = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    # The engine is Chromium: an Android Chrome user agent tells the truth about it.
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36"
    ),
}

# A real 64×48 JPEG (made by chromium's canvas): evidence that a page can show in an <img> without a decode error.
SNAPSHOT_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3Nw"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJD"
    "AAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBH"
    "AEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAA"
    "AADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBv"
    "AGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdB"
    "RkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09P"
    "T09PT09PT0//wAARCAAwAEADASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAAAAYF/8QAJhAAAQEDDQEAAAAAAAAAAAAAABEFEhMB"
    "BhUWJEJEUWFkgqPC4v/EABcBAQEBAQAAAAAAAAAAAAAAAAACBAb/xAAeEQACAgEFAQAAAAAAAAAAAAAAAgEDBBESITOBsf/aAAwDAQAC"
    "EQMRAD8AvAAWQAZbabFFQbPFivX3URNJczLrfsO75Ia1FnSZNCYtti7ljjwqAS9b9h3fJqMVsUrGs8KE7feVV0kyC2o06RIfFtrXc0ce"
    "GoACzOAAAS89MFz8kuVE9MFz8kuYL+yToMHoX36ComXjeHolyomXjeHoUdkDO6G8+lQADec+AAAZbaY9KwbRChPXHlVNZMjLqhv+n6Ko"
    "ENUjTrMGhMq2tdqzx4S9UN/0/RqMVj0VGtEWK7cdRF1lzNQBakWdYgPlW2LtaePAACzOf//Z"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_console_errors(*patterns): browser console errors / uncaught page errors matching one of the "
        "regular expressions (all of them without arguments) do not fail the test",
    )


# ----- The live stack ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    username: str
    role: Role
    display_name: str
    password: str


@dataclass
class LiveStack:
    """A running Sunshine: open ``base_url`` in a page; sign in as any of ``accounts`` with ``password``."""

    base_url: str
    settings: Settings
    engine: Engine
    password: str
    accounts: dict[str, Account]  # by username
    device_keys: dict[str, str]  # "edge_box" (bound to merchant01's shop), "platform" (district-wide)
    merchant_cameras: dict[str, list[int]]  # camera ids by merchant account (merchant01…)
    demo: DemoSummary

    @property
    def device_key(self) -> str:
        return self.device_keys["edge_box"]

    def account(self, role: Role | str) -> Account:
        """The first account of a role (``street_officer`` → ``officer.youyilu``, ``merchant`` → ``merchant01``)."""
        for account in self.accounts.values():
            if account.role == Role(role):
                return account
        raise KeyError(f"no account with role {role}")

    def bearer_headers(self, username: str) -> dict[str, str]:
        """``Authorization`` headers of an account, for JSON calls next to the pages (``page.request``, httpx)."""
        with Session(self.engine) as session:
            user = session.exec(select(User).where(User.username == username)).one()
        policy = AuthPolicy.from_settings(self.settings)
        token = issue_token(signing_key(self.settings), user=user, policy=policy)
        return {"Authorization": f"Bearer {token.access_token}"}

    async def raise_alert(
        self, *, merchant: str = "merchant01", camera: int = 0, alert_type: str = "no_hat", **meta: Any
    ) -> dict[str, Any]:
        """Post an alert as the district's vendor platform would; returns ``{alert_id, case_id, merged}``."""
        body: dict[str, Any] = {
            "event_id": f"evt-browser-{uuid.uuid4().hex[:12]}",
            "camera_id": self.merchant_cameras[merchant][camera],
            "alert_type": alert_type,
            "captured_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "score": 0.91,
            "boxes": [{"x": 12, "y": 6, "w": 24, "h": 24, "label": "head", "score": 0.9}],
        }
        body.update(meta)
        files: dict[str, Any] = {
            "meta": (None, json.dumps(body), "application/json"),
            "snapshot": ("snapshot.jpg", SNAPSHOT_JPEG, "image/jpeg"),
        }
        headers = {"Authorization": f"Bearer {self.device_keys['platform']}"}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            response = await http.post("/api/v1/alerts", headers=headers, files=files)
        assert response.status_code in (200, 201), f"alert refused: {response.status_code} {response.text}"
        result: dict[str, Any] = response.json()
        return result

    async def wait_for_case(self, case_id: str, *, username: str = "command", timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the worker has projected a case (the API answers it); returns its JSON."""
        headers = self.bearer_headers(username)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            while True:
                response = await http.get(f"/api/v1/cases/{case_id}", headers=headers)
                if response.status_code == 200:
                    case: dict[str, Any] = response.json()
                    return case
                if loop.time() > deadline:
                    raise AssertionError(
                        f"case {case_id} not visible to {username} within {timeout} s: {response.text}"
                    )
                await asyncio.sleep(0.1)


class _StackThread(threading.Thread):
    """uvicorn and the casework worker on one event loop in a background thread (signals stay with pytest)."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        super().__init__(name="browser-live-stack", daemon=True)
        self.settings = settings
        self.sock = sock
        config = uvicorn.Config(
            create_app(settings),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self.error = error

    async def _serve(self) -> None:
        client = await connect_temporal(self.settings)
        async with build_casework_worker(client, self.settings):
            await self.server.serve(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True
        self.join(STACK_STOP_TIMEOUT_SECONDS)
        if self.is_alive():
            raise RuntimeError(f"the live stack did not stop within {STACK_STOP_TIMEOUT_SECONDS} s")


def _wait_until_healthy(base_url: str, thread: _StackThread) -> None:
    """Poll /healthz until every dependency answers ok; fail at once if the server thread died."""
    deadline = time.monotonic() + STACK_START_TIMEOUT_SECONDS
    last = "no answer yet"
    with httpx.Client(base_url=base_url, timeout=5) as http:
        while True:
            if not thread.is_alive():
                raise RuntimeError(
                    "the live stack stopped while starting: "
                    + ("".join(traceback.format_exception(thread.error)) if thread.error else "uvicorn exited")
                    + " (the server's log is in the captured log of this test)"
                )
            try:
                response = http.get("/healthz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as error:
                last = repr(error)
            if time.monotonic() > deadline:
                raise RuntimeError(f"/healthz not ok within {STACK_START_TIMEOUT_SECONDS} s: {last}")
            time.sleep(0.1)  # polling interval under a deadline, not a synchronisation


def _seed(engine: Engine) -> tuple[DemoSummary, dict[str, Account], dict[str, str], dict[str, list[int]]]:
    """The demo district, every account with one known password, and two devices."""
    known_hash = hash_password(PASSWORD)
    with session_scope(engine) as session:
        demo = seed_demo_data(session)
        accounts: dict[str, Account] = {}
        merchant_cameras: dict[str, list[int]] = {}
        for user in session.exec(select(User).order_by(User.id)).all():  # type: ignore[arg-type]
            user.password_hash = known_hash
            user.must_change_password = False
            session.add(user)
            accounts[user.username] = Account(user.username, Role(user.role), user.display_name, PASSWORD)
            if user.merchant_id is not None:
                cameras = session.exec(
                    select(Camera.id).where(Camera.merchant_id == user.merchant_id).order_by(Camera.id)  # type: ignore[arg-type]
                ).all()
                merchant_cameras[user.username] = [camera_id for camera_id in cameras if camera_id is not None]
        first = session.exec(
            select(Merchant).join(User, User.merchant_id == Merchant.id).where(User.username == "merchant01")  # type: ignore[arg-type]
        ).one()
        _, edge_box = create_device(session, name="browser-test edge box", merchant_credit_code=first.credit_code)
        _, platform = create_device(session, name="browser-test vendor platform", kind="integration")
    return demo, accounts, {"edge_box": edge_box, "platform": platform}, merchant_cameras


@pytest.fixture(scope="package")
def live_stack(
    fresh_database: Any,
    temporal_dev_server: str,
    seaweedfs: SeaweedInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    database_url: str = fresh_database()  # its own database: other tests truncate the shared one
    migrate.upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        temporal_address=temporal_dev_server,
        temporal_task_queue=f"casework-browser-{secrets.token_hex(4)}",
        s3_endpoint=seaweedfs.endpoint,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=f"evidence-browser-{secrets.token_hex(6)}",
        evidence_retention_days=1,
        secret_key=SECRET_KEY,
        var_dir=tmp_path_factory.mktemp("browser-var"),
    )
    engine = make_engine(settings.effective_database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        EvidenceStore.from_settings(settings, engine).ensure_bucket()
        demo, accounts, device_keys, merchant_cameras = _seed(engine)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # the port is ours from here: no race with another free_port() user
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        thread = _StackThread(settings, sock)
        thread.start()
        try:
            _wait_until_healthy(base_url, thread)
            yield LiveStack(
                base_url=base_url,
                settings=settings,
                engine=engine,
                password=PASSWORD,
                accounts=accounts,
                device_keys=device_keys,
                merchant_cameras=merchant_cameras,
                demo=demo,
            )
        finally:
            thread.stop()
    finally:
        sock.close()
        engine.dispose()


# ----- The browser and its pages ----------------------------------------------------------------------------


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's chromium. `make test` installs it "
            "(`make browser-deps`), or run `apt-get install chromium`. Never `playwright install`.",
            pytrace=False,
        )
    for stale in SCREENSHOT_DIR.glob("FAILED-*.png"):  # from an earlier run: they would mislead
        stale.unlink(missing_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class BrowserErrors:
    """What went wrong in the pages of one browser context."""

    label: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            where = message.location.get("url") or (message.page.url if message.page else "")
            line = message.location.get("lineNumber")
            self.console_errors.append(f"{message.text} ({where}{f':{line}' if line else ''})")

    def on_page_error(self, error: PlaywrightError) -> None:
        self.page_errors.append(f"{error.name}: {error.message}" if error.name else error.message)

    def on_crash(self, page: Page) -> None:
        self.page_errors.append(f"the page crashed ({page.url})")

    def problems(self, allow: Sequence[str] = ()) -> list[str]:
        """Every console error and page error not matched by one of the regular expressions in ``allow``."""
        found = [f"console error: {text}" for text in self.console_errors]
        found += [f"uncaught error: {text}" for text in self.page_errors]
        return [text for text in found if not any(re.search(pattern, text) for pattern in allow)]

    def assert_clean(self, allow: Sequence[str] = ()) -> None:
        problems = self.problems(allow)
        if problems:
            pytest.fail(f"{self.label}: JavaScript errors:\n  " + "\n  ".join(problems), pytrace=False)

    def clear(self) -> None:
        self.console_errors.clear()
        self.page_errors.clear()


_ERRORS: dict[int, BrowserErrors] = {}  # by id() of the browser context, while it is open


def errors_of(page: Page) -> BrowserErrors:
    """The console errors and uncaught errors collected for a page (and the other pages of its context)."""
    return _ERRORS[id(page.context)]


def _screenshot_path(name: str) -> Path:
    safe = re.sub(r"[^\w.-]+", "-", name).strip("-.") or "screenshot"
    return SCREENSHOT_DIR / (safe if safe.endswith(".png") else f"{safe}.png")


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page as ``test-output/screenshots/<name>.png`` and return its path."""
    path = _screenshot_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=full_page)
    return path


class PageFactory:
    """Opens pages in fresh contexts for one test and checks them all for errors when the test ends."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self._browser = browser
        self._base_url = base_url
        self._opened: list[tuple[BrowserContext, Page, BrowserErrors]] = []

    async def __call__(self, *, phone: bool = False, label: str | None = None, **context_options: Any) -> Page:
        options: dict[str, Any] = {
            **(PHONE_CONTEXT if phone else DESKTOP_CONTEXT),
            "base_url": self._base_url,
            "locale": "zh-CN",
            "timezone_id": "Asia/Shanghai",
            **context_options,
        }
        context = await self._browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        errors = BrowserErrors(label or f"{'phone' if phone else 'desktop'} page {len(self._opened) + 1}")
        # On the context, so that pop-ups and other pages of the context are watched too.
        context.on("console", errors.on_console)
        context.on("weberror", lambda web_error: errors.on_page_error(web_error.error))
        context.on("page", lambda new_page: new_page.on("crash", errors.on_crash))
        _ERRORS[id(context)] = errors
        page = await context.new_page()
        self._opened.append((context, page, errors))
        return page

    async def close_all(self, *, failed: bool, test_name: str) -> list[BrowserErrors]:
        for context, page, errors in self._opened:
            with contextlib.suppress(PlaywrightError):
                # A round trip: console events the page sent before it are delivered by now.
                await page.evaluate("0")
            if failed:
                with contextlib.suppress(PlaywrightError):
                    await screenshot(page, f"FAILED-{test_name}-{errors.label}")
            with contextlib.suppress(PlaywrightError):
                await context.close()
            _ERRORS.pop(id(context), None)
        return [errors for _, _, errors in self._opened]


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _allowed_patterns(node: pytest.Item) -> list[str] | None:
    """None: every error allowed; else the allowed patterns (empty: none)."""
    patterns: list[str] = []
    for marker in node.iter_markers("allow_console_errors"):
        if not marker.args:
            return None
        patterns.extend(marker.args)
    return patterns


@pytest.fixture
async def new_page(
    browser: Browser, live_stack: LiveStack, request: pytest.FixtureRequest
) -> AsyncIterator[PageFactory]:
    factory = PageFactory(browser, live_stack.base_url)
    yield factory
    call = request.node.stash.get(_REPORTS, {}).get("call")
    collected = await factory.close_all(failed=bool(call and call.failed), test_name=request.node.name)
    allow = _allowed_patterns(request.node)
    if allow is None:
        return
    problems = [f"{errors.label}: {problem}" for errors in collected for problem in errors.problems(allow)]
    if problems:
        pytest.fail("JavaScript errors in the browser:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
async def page(new_page: PageFactory) -> Page:
    return await new_page(label="desktop")


@pytest.fixture
async def phone_page(new_page: PageFactory) -> Page:
    return await new_page(phone=True, label="phone")
