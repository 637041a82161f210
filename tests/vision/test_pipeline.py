"""The whole camera pipeline over synthetic scenes: each scene raises the alerts it should, and no others."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time

from vision import synthetic
from vision.clips import is_webm
from vision.pipeline import CameraAlert, CameraPipeline, PipelineConfig
from vision.types import BusinessHours

OPEN_8_TO_22 = BusinessHours(time(8, 0), time(22, 0))
NIGHT = datetime(2025, 6, 2, 18, 0, tzinfo=UTC)  # 02:00 in Beijing


def run(scenario: synthetic.Scenario, start: datetime = synthetic.DEFAULT_START) -> list[CameraAlert]:
    pipeline = CameraPipeline(PipelineConfig(business_hours=OPEN_8_TO_22), started_at=start,
                              reference=synthetic.background())
    alerts: list[CameraAlert] = []
    for frame in synthetic.clip(scenario, start=start):
        alerts += pipeline.process(frame)
    return alerts + pipeline.flush()


def test_a_covered_lens_in_business_hours_raises_one_camera_covered_with_its_measurements() -> None:
    alerts = run(synthetic.covered(start_s=30, duration_s=150))
    assert [a.alert_type for a in alerts] == ["camera_covered"]
    alert = alerts[0]
    assert (alert.finding.at - alert.finding.started_at).total_seconds() >= 60
    assert alert.snapshot_jpeg.startswith(b"\xff\xd8") and alert.clip is None
    assert alert.finding.metrics, "the measured values are the alert's reason"


def test_a_turned_camera_raises_camera_moved() -> None:
    alerts = run(synthetic.rotated(degrees=8.0, start_s=30, duration_s=150))
    assert [a.alert_type for a in alerts] == ["camera_moved"]


def test_normal_kitchen_activity_raises_nothing() -> None:
    assert run(synthetic.normal_activity(duration_s=300)) == []


def test_a_rat_after_hours_raises_pest_with_a_browser_playable_clip_around_it() -> None:
    alerts = run(synthetic.after_hours_pest(start_s=20, run_s=6, duration_s=40), start=NIGHT)
    assert [a.alert_type for a in alerts] == ["pest"]
    clip = alerts[0].clip
    assert clip is not None and is_webm(clip.data)
    assert clip.started_at <= alerts[0].finding.at <= clip.ended_at
    assert (clip.ended_at - clip.started_at).total_seconds() >= 9


def test_the_lights_going_off_and_on_raise_nothing() -> None:
    alerts = run(synthetic.lights_off_on())
    assert [a.alert_type for a in alerts if a.alert_type == "camera_moved"] == []


def test_a_cleaner_walking_through_at_night_is_not_a_pest() -> None:
    assert run(synthetic.after_hours_person(), start=NIGHT) == []


def test_staff_cleaning_a_lit_kitchen_after_closing_raise_no_pest() -> None:
    staff = dataclasses.replace(synthetic.normal_activity(duration_s=120), fps=5.0)
    assert [a.alert_type for a in run(staff, start=NIGHT)] == []


def test_a_lens_covered_for_minutes_without_sensor_noise_is_one_fault_not_also_a_frozen_stream() -> None:
    # Without noise the covered picture is bit-identical frame after frame: health alone would call it frozen.
    scenario = dataclasses.replace(synthetic.covered(start_s=30, duration_s=300), noise_sigma=0.0)
    alerts = run(scenario)
    assert [a.alert_type for a in alerts] == ["camera_covered"]


def test_a_frozen_stream_still_raises_camera_offline() -> None:
    alerts = run(dataclasses.replace(synthetic.frozen(start_s=30, duration_s=200), noise_sigma=0.0))
    assert [(a.alert_type, a.finding.metrics.get("state")) for a in alerts] == [("camera_offline", "frozen")]
