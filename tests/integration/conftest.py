"""Fixtures shared by the integration tests."""

import io
from collections.abc import Callable, Iterator

import pytest
from sqlmodel import Session

from infra.cli import main
from infra.settings import get_settings

Cli = Callable[..., int]


@pytest.fixture
def cli(database_url: str, db_session: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Runs `sunshine …` in-process against the test database; ``stdin`` feeds standard input."""
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", database_url)
    get_settings.cache_clear()

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return main(list(argv))

    yield run
    get_settings.cache_clear()


