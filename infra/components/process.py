"""Child processes of the local stack: start, wait until ready, stop without leaving anything behind.

Each child runs in its own process group so that SIGTERM/SIGKILL reach everything it spawned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOP_GRACE_SECONDS = 8.0


class ComponentError(RuntimeError):
    """A component failed to start or died; the message says which and where its log is."""


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    argv: Sequence[str]
    log_path: Path
    ready_check: Callable[[], bool]
    ready_timeout: float = 90.0
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    # A system user to run as: PostgreSQL refuses to run as root.
    run_as: str | None = None
    # Runs once before the process starts (initdb, config files…).
    prepare: Callable[[], None] | None = None
    # Runs once the component answers (create the database, the bucket…).
    after_ready: Callable[[], None] | None = None
    describe: Mapping[str, str] = field(default_factory=dict)
    # PostgreSQL's SIGTERM waits for clients to leave; SIGINT is its fast shutdown.
    stop_signal: signal.Signals = signal.SIGTERM


class RunningComponent:
    def __init__(self, spec: ComponentSpec, process: subprocess.Popen[bytes]) -> None:
        self.spec = spec
        self.process = process

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.spec.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after ``grace`` seconds."""
        _signal_group(self.process.pid, self.spec.stop_signal)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not _group_alive(self.process.pid):
                return
            time.sleep(0.05)
        _signal_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)


def run_as_kwargs(user: str) -> dict[str, Any]:
    """Popen arguments that drop root to ``user`` entirely: uid, its own group, no root supplementary groups."""
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def start_component(spec: ComponentSpec) -> RunningComponent:
    """Start the process and block until its ready check passes (or raise, with the process stopped)."""
    if spec.prepare is not None:
        spec.prepare()
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if spec.env:
        env.update(spec.env)
    kwargs: dict = {"preexec_fn": _die_with_parent}
    if spec.run_as is not None and os.geteuid() == 0:
        kwargs.update(run_as_kwargs(spec.run_as))
    with open(spec.log_path, "ab") as log:
        process = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=env,
            start_new_session=True,
            **kwargs,
        )
    component = RunningComponent(spec, process)
    try:
        wait_until(spec.ready_check, timeout=spec.ready_timeout, what=spec.name, process=process)
        if spec.after_ready is not None:
            spec.after_ready()
    except BaseException:
        component.stop()
        raise
    return component


@contextlib.contextmanager
def running(spec: ComponentSpec) -> Iterator[RunningComponent]:
    component = start_component(spec)
    try:
        yield component
    finally:
        component.stop()


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    interval: float = 0.2,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise ComponentError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not ready yet; the probe's error is expected while starting
            pass
        if time.monotonic() > deadline:
            raise ComponentError(f"{what} was not ready within {timeout:.0f} s")
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the supervisor itself is killed (SIGKILL leaves no chance to clean up)."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
