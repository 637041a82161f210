"""Deadline computation for workflows: calendar data is read here, so the result lands in history.

Workflows never compute working days themselves (the 调休 data is I/O and changes yearly); they call
``compute_deadline`` once when a clock starts and keep the returned instant with its provenance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session
from temporalio import activity

from domain.calendar import service as calendar_service


class DeadlineRule(StrEnum):
    clock_hours = "clock_hours"
    working_days = "working_days"


@dataclass(frozen=True)
class ComputeDeadlineInput:
    started_at: datetime  # aware
    rule: DeadlineRule
    amount: int


@dataclass(frozen=True)
class ComputeDeadlineOutput:
    due_at: datetime  # aware, +08:00
    rule: DeadlineRule
    amount: int
    calendar_versions: list[str]
    provisional: bool
    provenance: str
    counted_days: list[str]  # ISO dates


class CalendarActivities:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory

    @activity.defn(name="compute_deadline")
    def compute_deadline(self, request: ComputeDeadlineInput) -> ComputeDeadlineOutput:
        with self._session_factory() as session:
            calendar = calendar_service.working_calendar(session)
        if request.rule is DeadlineRule.clock_hours:
            deadline = calendar.add_hours(request.started_at, request.amount)
        else:
            deadline = calendar.add_working_days(request.started_at, request.amount)
        return ComputeDeadlineOutput(
            due_at=deadline.due_at,
            rule=request.rule,
            amount=request.amount,
            calendar_versions=list(deadline.calendar_versions),
            provisional=deadline.provisional,
            provenance=deadline.provenance(),
            counted_days=[day.isoformat() for day in deadline.counted_days],
        )
