"""A scratch database for a benchmark: created, migrated, dropped at the end.

On the server at SUNSHINE_TEST_DATABASE_URL or SUNSHINE_DATABASE_URL; with neither set, an embedded PostgreSQL is
started for the run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url

from infra import migrate
from infra.components.process import free_port, running
from infra.settings import normalise_database_url


@contextlib.contextmanager
def scratch_database() -> Iterator[tuple[str, int | None]]:
    """The scratch database's URL, and the pid of the embedded server when one was started here."""
    server = os.environ.get("SUNSHINE_TEST_DATABASE_URL") or os.environ.get("SUNSHINE_DATABASE_URL")
    if server:
        for url in _scratch_on(server):
            yield url, None
        return
    from infra.components.postgres import postgres_spec

    with tempfile.TemporaryDirectory(prefix="sunshine-bench-pg-") as base:
        os.chmod(base, 0o755)  # the embedded server may run as its own system user
        port = free_port()
        spec = postgres_spec(data_dir=Path(base) / "data", port=port, log_path=Path(base) / "postgres.log")
        with running(spec) as postgres:
            for url in _scratch_on(f"postgresql://postgres@127.0.0.1:{port}/postgres"):
                yield url, postgres.pid


def _scratch_on(server_url: str) -> Iterator[str]:
    admin = make_url(normalise_database_url(server_url)).set(drivername="postgresql", database="postgres")
    admin_dsn = admin.render_as_string(hide_password=False)
    name = f"sunshine_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = admin.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
