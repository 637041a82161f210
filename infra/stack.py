"""`sunshine up`: the whole platform on one machine, on the same components production uses.

Starts what is not configured as an external service (PostgreSQL, Temporal, SeaweedFS), applies the
migrations, creates the evidence bucket with Object Lock, seeds demo data into an empty database, then
runs the casework worker, one vision worker (the camera watches) and the web app. A crashed child stops the
whole stack; SIGINT/SIGTERM stop every child within 10 s.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from infra.components.process import (
    STOP_GRACE_SECONDS,
    ComponentError,
    ComponentSpec,
    RunningComponent,
    port_open,
    start_component,
)
from infra.settings import Settings

Printer = Callable[[str], None]


@dataclass
class Stack:
    settings: Settings
    print: Printer = print
    children: list[RunningComponent] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def var_dir(self) -> Path:
        return self.settings.var_dir.resolve()

    def start(self, spec: ComponentSpec) -> None:
        self._check_stop()
        self.print(f"starting {spec.name} …")
        self.children.append(start_component(spec))

    def stop_all(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Signal every child at once, then SIGKILL what is left when the grace period ends."""
        for child in reversed(self.children):
            threading.Thread(target=child.stop, args=(grace,), daemon=True).start()
        deadline = time.monotonic() + grace + 1.5
        while time.monotonic() < deadline and any(c.exit_code() is None for c in self.children):
            time.sleep(0.05)
        for child in self.children:
            if child.exit_code() is None:
                child.stop(grace=0)
        self.children.clear()

    def _check_stop(self) -> None:
        if self.stop_requested.is_set():
            raise KeyboardInterrupt

    def supervise(self, poll_seconds: float = 0.5) -> int:
        """Wait for a stop signal or a crashed child; returns the exit code for `sunshine up`."""
        while not self.stop_requested.wait(poll_seconds):
            for child in self.children:
                code = child.exit_code()
                if code is not None:
                    self.print(f"error: {child.name} exited with code {code}; stopping the stack.")
                    tail = child.log_tail()
                    if tail:
                        self.print(f"last lines of {child.spec.log_path}:\n{tail}")
                    return 1
        return 0


def run_stack(settings: Settings, *, seed_demo: bool = True, printer: Printer = print) -> int:
    stack = Stack(settings, print=printer)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stack.stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _refuse_busy_ports(settings)
        _start_everything(stack, seed_demo=seed_demo)
        _print_summary(stack)
        code = stack.supervise()
        if code == 0:
            printer("stopping …")
        return code
    except KeyboardInterrupt:
        printer("stopping …")
        return 0
    except ComponentError as exc:
        printer(f"error: {exc}")
        return 1
    finally:
        stack.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _refuse_busy_ports(settings: Settings) -> None:
    wanted = [("web app", settings.web_port)]
    if settings.uses_embedded_postgres:
        wanted.append(("PostgreSQL", settings.embedded_pg_port))
    if settings.uses_embedded_temporal:
        wanted += [("Temporal", settings.embedded_temporal_port), ("Temporal UI", settings.embedded_temporal_ui_port)]
    if settings.uses_embedded_s3:
        wanted.append(("SeaweedFS S3", settings.embedded_s3_port))
    busy = [f"{name} port {port}" for name, port in wanted if port_open("127.0.0.1", port)]
    if busy:
        raise ComponentError(
            "already in use: " + ", ".join(busy) + " (is another `sunshine up` running? see the README "
            "for the SUNSHINE_*_PORT settings)"
        )


def _start_everything(stack: Stack, *, seed_demo: bool) -> None:
    from infra.components.postgres import postgres_spec
    from infra.components.seaweedfs import seaweedfs_spec
    from infra.components.temporal import temporal_spec

    settings, var, logs = stack.settings, stack.var_dir, stack.var_dir / "log"
    var.mkdir(parents=True, exist_ok=True)
    if settings.uses_embedded_postgres:
        stack.start(postgres_spec(data_dir=var / "pg", port=settings.embedded_pg_port, log_path=logs / "postgres.log"))
    if settings.uses_embedded_temporal:
        stack.start(temporal_spec(db_file=var / "temporal.db", port=settings.embedded_temporal_port,
                                  ui_port=settings.embedded_temporal_ui_port, log_path=logs / "temporal.log",
                                  namespace=settings.temporal_namespace))
    if settings.uses_embedded_s3:
        stack.start(seaweedfs_spec(data_dir=var / "s3", port=settings.embedded_s3_port,
                                   access_key=settings.s3_access_key.get_secret_value(),
                                   secret_key=settings.s3_secret_key.get_secret_value(),
                                   log_path=logs / "seaweedfs.log"))
    stack._check_stop()
    seeded = _prepare_data(stack, seed_demo=seed_demo)
    stack._check_stop()
    stack.start(_worker_spec(settings, logs))
    if seeded:
        _raise_demo_alerts(stack)
    # After the demo alerts: the camera watches raise alerts of their own (the demo cameras have no signal).
    stack.start(_vision_worker_spec(settings, logs))
    stack.start(_web_spec(settings, logs))


def _raise_demo_alerts(stack: Stack) -> None:
    """Alerts go through the real intake and need the worker, so they come after it, into fresh demo data only."""
    import asyncio

    from infra.db import make_engine
    from infra.demo_alerts import raise_demo_alerts

    engine = make_engine(stack.settings.effective_database_url)
    try:
        asyncio.run(raise_demo_alerts(stack.settings, engine, printer=stack.print))
    finally:
        engine.dispose()


def _prepare_data(stack: Stack, *, seed_demo: bool) -> bool:
    """Migrate, make the bucket, seed an empty database; True when demo data was seeded now."""
    from infra import migrate
    from infra.db import make_engine, session_scope
    from infra.evidence_store import EvidenceStore

    settings = stack.settings
    stack.print("applying database migrations …")
    migrate.upgrade(settings.effective_database_url)
    from infra.transparency_key import ensure_signer_key

    key_existed = settings.effective_transparency_key_file.exists()
    key_file = ensure_signer_key(settings)
    if not key_existed:
        stack.print(f"created the transparency log's signer key in {key_file}: keep it safe, and publish its "
                    "verifier key (GET /api/v1/transparency/key)")
    engine = make_engine(settings.effective_database_url)
    try:
        EvidenceStore.from_settings(settings, engine).ensure_bucket()
        if seed_demo:
            from infra.demo import database_is_empty, format_accounts, seed_demo_data

            with session_scope(engine) as session:
                if database_is_empty(session):
                    stack.print("seeding demo data (empty database) …")
                    from infra.demo_videos import write_demo_videos

                    videos = write_demo_videos(stack.var_dir / "demo-videos")
                    summary = seed_demo_data(session, videos=videos)
                    stack.print(format_accounts(summary))
                    return True
    finally:
        engine.dispose()
    return False


def _worker_spec(settings: Settings, logs: Path) -> ComponentSpec:
    return ComponentSpec(
        name="casework-worker",
        argv=[sys.executable, "-m", "infra.worker"],
        log_path=logs / "casework-worker.log",
        ready_check=lambda: (logs / "casework-worker.ready").exists(),
        prepare=lambda: (logs / "casework-worker.ready").unlink(missing_ok=True),
        env={"SUNSHINE_WORKER_READY_FILE": str(logs / "casework-worker.ready")},
        ready_timeout=60,
        describe={"task queue": settings.temporal_task_queue},
    )


def _vision_worker_spec(settings: Settings, logs: Path) -> ComponentSpec:
    ready_file = logs / "vision-worker.ready"
    return ComponentSpec(
        name="vision-worker",
        argv=[sys.executable, "-m", "infra.vision_worker"],
        log_path=logs / "vision-worker.log",
        ready_check=ready_file.exists,
        prepare=lambda: ready_file.unlink(missing_ok=True),
        env={"SUNSHINE_VISION_WORKER_READY_FILE": str(ready_file)},
        ready_timeout=60,
        describe={"task queue": settings.vision_task_queue},
    )


def _web_spec(settings: Settings, logs: Path) -> ComponentSpec:
    base = f"http://{settings.web_host}:{settings.web_port}"

    def ready() -> bool:
        return httpx.get(f"{base}/healthz", timeout=5).status_code in (200, 503)

    return ComponentSpec(
        name="web",
        argv=[sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", settings.web_host,
              "--port", str(settings.web_port), "--no-access-log"],
        log_path=logs / "web.log",
        ready_check=ready,
        ready_timeout=60,
        describe={"url": base, "health": f"{base}/healthz", "api docs": f"{base}/docs"},
    )


def _print_summary(stack: Stack) -> None:
    settings = stack.settings
    lines = ["", "Sunshine 阳光食品工程智慧监管平台 is up:"]
    for child in stack.children:
        details = ", ".join(f"{key} {value}" for key, value in child.spec.describe.items())
        lines.append(f"  {child.name:<16} pid {child.pid:<7} {details}")
    if not settings.uses_embedded_postgres:
        lines.append("  postgres         external (SUNSHINE_DATABASE_URL)")
    if not settings.uses_embedded_temporal:
        lines.append(f"  temporal         external {settings.effective_temporal_address}")
    if not settings.uses_embedded_s3:
        lines.append(f"  object store     external {settings.effective_s3_endpoint}")
    lines.append(f"  evidence bucket  {settings.evidence_bucket} (Object Lock, COMPLIANCE "
                 f"{settings.evidence_retention_days} days)")
    lines.append(f"  logs             {stack.var_dir / 'log'}")
    lines.append("Press Ctrl-C to stop.")
    stack.print("\n".join(lines))
