"""Errors raised by domain services; each carries a message fit to show to the person who asked.

Callers translate them at the edge: the CLI prints ``error: <message>``, the API maps them to 400/404/409.
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """A refused operation. ``str(error)`` is the whole explanation, in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    """The input breaks a rule; ``problems`` lists each broken rule when there are several."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        full = f"{message}: {'; '.join(problems)}" if problems else message
        super().__init__(full)
        self.problems: list[str] = list(problems)


class NotFound(DomainError):
    """Something the request refers to does not exist."""


class Conflict(DomainError):
    """The request clashes with existing data (a duplicate, or a state that forbids it)."""
