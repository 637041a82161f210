"""The demo cameras' videos raise, by themselves and under the demo cameras' own business hours, the alerts the
demo promises: a covered lens, a turned camera, a rat in the storeroom at night; the kitchens raise nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from activities.camera_watch import watch_business_hours
from infra.demo import NIGHT_DEMO_CLOSED_HOURS, night_demo_hours
from infra.demo_videos import DEMO_VIDEOS, write_demo_videos
from vision.pipeline import CameraPipeline, PipelineConfig
from vision.sources import SourceConfig, open_source
from vision.types import BusinessHours

BEIJING = ZoneInfo("Asia/Shanghai")
# 10:00 in Beijing: the kitchens are open, the storeroom (hours made from this moment) is closed.
MORNING = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("now", [MORNING, MORNING + timedelta(hours=13, minutes=37),
                                 datetime(2026, 12, 31, 16, 5, tzinfo=UTC)])
def test_the_night_storeroom_is_closed_from_the_seeding_on_for_twenty_hours(now: datetime) -> None:
    hours = watch_business_hours(night_demo_hours(now))
    for offset in range(0, NIGHT_DEMO_CLOSED_HOURS * 60, 7):
        local = (now + timedelta(minutes=offset)).astimezone(BEIJING).time()
        assert not hours.is_open(local), f"open {offset} minutes after seeding"
    assert hours.is_open((now + timedelta(hours=NIGHT_DEMO_CLOSED_HOURS, minutes=30)).astimezone(BEIJING).time())


def alert_types(video: Path, hours: BusinessHours, start: datetime) -> list[str]:
    source = open_source(video.as_uri(), sample_fps=5.0, config=SourceConfig(realtime=False, loop=False,
                                                                             start_at=start))
    pipeline = CameraPipeline(PipelineConfig(business_hours=hours), started_at=start)
    found = []
    with source:
        for frame in source:
            found += [alert.alert_type for alert in pipeline.process(frame)]
    return found + [alert.alert_type for alert in pipeline.flush()]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_demo_videos(tmp_path_factory.mktemp("demo-videos"))


@pytest.mark.slow
def test_each_demo_video_raises_what_the_demo_promises(videos: dict[str, Path]) -> None:
    assert set(videos) == set(DEMO_VIDEOS)
    kitchen_hours = watch_business_hours([["08:00", "22:00"]])
    assert alert_types(videos["covered"], kitchen_hours, MORNING) == ["camera_covered"]
    assert alert_types(videos["turned"], kitchen_hours, MORNING) == ["camera_moved"]
    assert alert_types(videos["kitchen"], kitchen_hours, MORNING) == []
    assert alert_types(videos["night"], watch_business_hours(night_demo_hours(MORNING)), MORNING) == ["pest"]
