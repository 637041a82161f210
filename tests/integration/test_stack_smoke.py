"""`sunshine up` starts every real component, /healthz is green, and stopping leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from infra.components.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_DEADLINE_SECONDS = 240


@dataclass
class StackRun:
    process: subprocess.Popen[str]
    web: str
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.lines)

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_healthy(self) -> dict:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"sunshine up exited early:\n{self.output()}"
            try:
                response = httpx.get(f"{self.web}/healthz", timeout=5)
                if response.status_code == 200:
                    return response.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"stack not healthy within {START_DEADLINE_SECONDS} s:\n{self.output()}")


@pytest.fixture
def stack_environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNSHINE_")}
    env.update(
        SUNSHINE_VAR_DIR=str(tmp_path / "var"),
        SUNSHINE_EMBEDDED_PG_PORT=str(free_port()),
        SUNSHINE_EMBEDDED_TEMPORAL_PORT=str(free_port()),
        SUNSHINE_EMBEDDED_TEMPORAL_UI_PORT=str(free_port()),
        SUNSHINE_EMBEDDED_S3_PORT=str(free_port()),
        SUNSHINE_WEB_PORT=str(free_port()),
    )
    return env


def start_stack(env: dict[str, str], cwd: Path) -> StackRun:
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up"], env=env, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    run = StackRun(process, f"http://127.0.0.1:{env['SUNSHINE_WEB_PORT']}")

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            run.lines.append(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return run


def stop_and_assert_nothing_left(run: StackRun, sig: signal.Signals = signal.SIGTERM) -> int:
    children = run.descendants()
    assert children, "the stack should have child processes"
    started = time.monotonic()
    run.process.send_signal(sig)
    code = run.process.wait(timeout=15)
    elapsed = time.monotonic() - started
    assert elapsed < 10.5, f"stopping took {elapsed:.1f} s"
    time.sleep(0.2)  # let the kernel reap
    left = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes left behind: {[(p.pid, p.cmdline()) for p in left]}"
    return code


@pytest.fixture
def cleanup() -> Iterator[list[StackRun]]:
    runs: list[StackRun] = []
    yield runs
    for run in runs:
        for child in run.descendants():
            child.kill()
        if run.process.poll() is None:
            run.process.kill()


def test_up_is_healthy_seeds_demo_data_and_sigterm_leaves_nothing(
    stack_environment: dict[str, str], tmp_path: Path, cleanup: list[StackRun]
) -> None:
    run = start_stack(stack_environment, tmp_path)
    cleanup.append(run)
    health = run.wait_healthy()
    assert health["status"] == "ok"
    for dependency in ("database", "temporal", "object_store"):
        assert health["checks"][dependency]["status"] == "ok"
        assert health["checks"][dependency]["latency_ms"] >= 0
    assert "seeding demo data" in run.output()
    assert "admin" in run.output()  # the demo accounts are printed
    assert "raised 9 demo alerts (9 cases opened)" in run.output(), "every queue should have work in the demo"
    assert stop_and_assert_nothing_left(run) == 0

    # A second start reuses var/: the data survives and nothing is seeded again.
    second = start_stack(stack_environment, tmp_path)
    cleanup.append(second)
    assert second.wait_healthy()["status"] == "ok"
    assert "seeding demo data" not in second.output()
    assert "demo alerts" not in second.output()
    assert stop_and_assert_nothing_left(second, signal.SIGINT) == 0


def test_a_crashed_child_stops_the_whole_stack(
    stack_environment: dict[str, str], tmp_path: Path, cleanup: list[StackRun]
) -> None:
    stack_environment["SUNSHINE_VAR_DIR"] = str(tmp_path / "var-crash")
    run = start_stack(stack_environment, tmp_path)
    cleanup.append(run)
    run.wait_healthy()
    children = run.descendants()
    worker = next(p for p in children if "infra.worker" in " ".join(p.cmdline()))
    worker.kill()
    code = run.process.wait(timeout=20)
    assert code == 1
    assert "casework-worker exited" in run.output()
    time.sleep(0.2)
    left = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes left behind: {[(p.pid, p.cmdline()) for p in left]}"
