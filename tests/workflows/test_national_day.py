"""The 录入审核 clock of an immediate fix across National Day 2026, on a server whose clock starts on 2026-09-30.

The time-skipping server takes its start time from the system clock and only moves forward, so a date in the
past cannot be reached by skipping. This module starts its own server with its wall clock shifted by a tiny
``LD_PRELOAD`` library (built here with the C compiler) that adds an offset to ``clock_gettime`` /
``gettimeofday``: the workflow then really opens the case on 2026-09-30 15:00 +08:00 and the deadline comes from
the real calendar activity. Without a C compiler the module is skipped (the other timer paths do not need it).

2026: 国庆 + 中秋 rest days 10-01 … 10-07; make-up working day Saturday 10-10. Counting starts the day after the
push: 10-08, 10-09, 10-10 → due 2026-10-10 24:00 = 2026-10-11T00:00+08:00 (domain note §2.2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.calendar.rules import BEIJING
from tests.workflows.conftest import Casework, evidence, export_history, find_test_server
from workflows.alert_case import (
    AlertCaseWorkflow,
    CaseOutcome,
    CaseStatus,
    ReviewDecision,
    ReviewInput,
    VerifyChoice,
    VerifyInput,
)

pytestmark = pytest.mark.integration

START = datetime(2026, 9, 30, 15, 0, tzinfo=BEIJING)
REVIEW_DUE = datetime(2026, 10, 11, 0, 0, tzinfo=BEIJING)

CLOCK_OFFSET_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_seconds(void) {
    const char *value = getenv("SUNSHINE_CLOCK_OFFSET_SECONDS");
    return value ? atoll(value) : 0;
}

int clock_gettime(clockid_t clock, struct timespec *now) {
    static int (*real)(clockid_t, struct timespec *) = 0;
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(clock, now);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) now->tv_sec += offset_seconds();
    return result;
}

int gettimeofday(struct timeval *now, void *zone) {
    static int (*real)(struct timeval *, void *) = 0;
    if (!real) real = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
    int result = real(now, zone);
    if (result == 0 && now) now->tv_sec += offset_seconds();
    return result;
}
"""


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server whose clock starts at START (overrides the harness's ``env`` in this module)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the clock-offset library for the test server")
    build = tmp_path_factory.mktemp("clock")
    (build / "clock_offset.c").write_text(CLOCK_OFFSET_C)
    library = build / "clock_offset.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(build / "clock_offset.c"), "-ldl"],
                   check=True, capture_output=True)
    saved = {name: os.environ.get(name) for name in ("LD_PRELOAD", "SUNSHINE_CLOCK_OFFSET_SECONDS")}
    os.environ["LD_PRELOAD"] = str(library)
    os.environ["SUNSHINE_CLOCK_OFFSET_SECONDS"] = str(int((START - datetime.now(UTC)).total_seconds()))
    try:
        environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=find_test_server())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        if abs(await environment.get_current_time() - START) > timedelta(minutes=5):
            pytest.skip("the test server did not take the shifted clock (statically linked?)")
        yield environment
    finally:
        await environment.shutdown()


async def test_review_deadline_of_an_immediate_fix_skips_national_day(casework: Casework) -> None:
    world = casework.world
    reviewed, _ = await casework.open_case("no_hat")
    forgotten, _ = await casework.open_case("no_mask")
    opened = await casework.state(reviewed)
    assert opened.opened_at.astimezone(BEIJING).date().isoformat() == "2026-09-30"

    await casework.env.sleep(timedelta(hours=2))  # fixed within 24 h of the push
    for handle in (reviewed, forgotten):
        state = await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
            actor=world.merchant, choice=VerifyChoice.rectified_now, rectification_photo=evidence("photo")))
        assert state.status == CaseStatus.awaiting_review
        deadline = state.deadlines["review"]
        assert deadline.due_at == REVIEW_DUE
        assert deadline.rule == "working_days" and deadline.amount == 3 and not deadline.provisional
        assert any(version.startswith("chinese-calendar:") for version in deadline.calendar_versions)

    # Nothing falls due over the holiday; the office reviews on the make-up Saturday evening.
    await casework.skip_past(datetime(2026, 10, 10, 21, 0, tzinfo=BEIJING), margin=timedelta(0))
    assert (await casework.state(forgotten)).overdue == []
    state = await reviewed.execute_update(AlertCaseWorkflow.review, ReviewInput(
        actor=world.officer, decision=ReviewDecision.approve_rectification, harm="none"))
    assert state.outcome == CaseOutcome.rectified and state.flags["reviewed_in_time"] is True

    # The other one passes 24:00 of the third working day unreviewed.
    await casework.skip_past(REVIEW_DUE)
    late = await casework.until(forgotten, lambda s: "review" in s.overdue)
    assert late.flags["reviewed_in_time"] is False
    overdue = [event for event in casework.events(late.case_id) if event.kind == "review_overdue"]
    assert overdue and "2026-10-10 24:00" in overdue[0].summary
    assert overdue[0].at >= REVIEW_DUE
    await export_history(reviewed, "national_day_2026")
