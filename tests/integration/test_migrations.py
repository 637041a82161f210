"""Migrations run up and down cleanly on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

import domain.models  # noqa: F401
from infra import migrate
from infra.db import make_engine

pytestmark = pytest.mark.integration


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_then_downgrade_removes_them_and_upgrade_again(fresh_database) -> None:
    url = fresh_database()
    migrate.upgrade(url)
    expected = {table.name for table in SQLModel.metadata.sorted_tables}
    assert expected <= _tables(url)
    assert migrate.current_revision(url) is not None

    migrate.downgrade(url, "base")
    assert _tables(url) <= {"alembic_version"}
    assert migrate.current_revision(url) is None

    migrate.upgrade(url)
    assert expected <= _tables(url)


def test_schema_matches_the_models(database_url: str) -> None:
    """Autogenerate against the migrated database finds nothing to change: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []
