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


def test_custody_log_is_append_only(db_engine) -> None:
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from tests.fixtures.database import truncate_all

    evidence_id = uuid.uuid4()
    now = datetime.now(UTC)
    with db_engine.begin() as connection:
        connection.execute(
            text("INSERT INTO evidence (id, bucket, key, sha256, sm3, size, content_type, stored_at, retention_mode,"
                 " retain_until, collection_method, source, created_at) VALUES (:id, 'b', 'k', :sha, :sm3, 1,"
                 " 'image/png', :now, 'COMPLIANCE', :now, 'upload', '{}', :now)"),
            {"id": evidence_id, "sha": "a" * 64, "sm3": "b" * 64, "now": now},
        )
        connection.execute(
            text("INSERT INTO custody_event (evidence_id, action, at, actor, detail) "
                 "VALUES (:id, 'collected', :now, 'user:test', '{}')"),
            {"id": evidence_id, "now": now},
        )
    try:
        for statement in ("UPDATE custody_event SET actor = 'user:mallory'", "DELETE FROM custody_event"):
            with pytest.raises(DBAPIError, match="append-only"), db_engine.begin() as connection:
                connection.execute(text(statement))
        with db_engine.connect() as connection:
            assert connection.execute(text("SELECT actor FROM custody_event")).scalar_one() == "user:test"
    finally:
        truncate_all(db_engine)


def test_audit_log_is_append_only(db_engine) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    from sqlmodel import Session

    from domain.audit.models import AuditAction
    from domain.audit.service import AuditContext, AuditFilters, list_audit, record_audit
    from tests.fixtures.database import truncate_all

    try:
        with Session(db_engine) as session:
            record_audit(session, context=AuditContext(username="officer1", ip="10.0.0.8"),
                         action=AuditAction.evidence_viewed, target="evidence:x", reason="case handling c-1")
            session.commit()
        for statement in ("UPDATE audit_event SET username = 'mallory'", "DELETE FROM audit_event"):
            with pytest.raises(DBAPIError, match="append-only"), db_engine.begin() as connection:
                connection.execute(text(statement))
        with Session(db_engine) as session:
            rows = list_audit(session, filters=AuditFilters(actions=("evidence_viewed",)))
            found = [(row.username, row.ip, row.reason) for row in rows]
            assert found == [("officer1", "10.0.0.8", "case handling c-1")]
            assert list_audit(session, filters=AuditFilters(username="someone-else")) == []
    finally:
        truncate_all(db_engine)
