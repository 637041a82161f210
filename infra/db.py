"""Database engine and sessions (SQLAlchemy 2 over psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlmodel import Session

from infra.settings import normalise_database_url


def make_engine(url: str, **kwargs: object) -> Engine:
    return create_engine(normalise_database_url(url), pool_pre_ping=True, **kwargs)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
