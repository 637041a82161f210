"""Children of the stack are stopped with their whole process group, SIGKILL after the grace period."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from infra.components.process import ComponentError, ComponentSpec, start_component

# A parent that spawns a grandchild, and both ignore SIGTERM.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
GRANDCHILD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", GRANDCHILD])
open(sys.argv[1], "w").write("ready")
time.sleep(600)
"""


def test_stop_kills_a_stubborn_child_and_its_grandchildren(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    spec = ComponentSpec(
        name="stubborn", argv=[sys.executable, "-c", STUBBORN, str(ready)], log_path=tmp_path / "log",
        ready_check=ready.exists, ready_timeout=20,
    )
    component = start_component(spec)
    family = [psutil.Process(component.pid), *psutil.Process(component.pid).children(recursive=True)]
    assert len(family) == 2
    started = time.monotonic()
    component.stop(grace=1.0)
    assert time.monotonic() - started < 4
    time.sleep(0.1)
    assert [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_a_child_that_dies_while_starting_is_reported_by_name(tmp_path: Path) -> None:
    spec = ComponentSpec(
        name="broken", argv=[sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
        log_path=tmp_path / "log", ready_check=lambda: False, ready_timeout=20,
    )
    with pytest.raises(ComponentError, match="broken exited with code 3"):
        start_component(spec)
    assert "boom" in (tmp_path / "log").read_text()


def test_a_child_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    spec = ComponentSpec(
        name="slow", argv=[sys.executable, "-c", "import time; time.sleep(600)"], log_path=tmp_path / "log",
        ready_check=lambda: False, ready_timeout=1,
    )
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ComponentError, match="slow was not ready within 1 s"):
        start_component(spec)
    time.sleep(0.1)
    after = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert [p for p in after if p.status() != psutil.STATUS_ZOMBIE] == []


def test_children_go_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the supervisor cannot be handled; the children still end (parent-death signal)."""
    import signal
    import subprocess

    ready = tmp_path / "child.pid"
    supervisor = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from infra.components.process import ComponentSpec, start_component\n"
        "ready = Path(sys.argv[1])\n"
        "spec = ComponentSpec(name='sleeper', argv=[sys.executable, '-c', 'import time; time.sleep(600)'],\n"
        "                     log_path=ready.with_suffix('.log'), ready_check=lambda: True)\n"
        "child = start_component(spec)\n"
        "ready.write_text(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", supervisor, str(ready)])
    deadline = time.monotonic() + 20
    while not ready.exists() or not ready.read_text():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    child = psutil.Process(int(ready.read_text()))
    process.send_signal(signal.SIGKILL)
    process.wait()
    child.wait(timeout=5)  # raises TimeoutExpired if it outlived the supervisor
