"""Tamper checks on synthetic clips (vision.synthetic): 1 frame per simulated second, timestamps injected."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, time, timedelta

import cv2
import numpy as np
import pytest

from domain.alerts.taxonomy import AlertType
from vision import synthetic
from vision.synthetic import (
    Black,
    Covered,
    Defocus,
    Lights,
    PersonPassing,
    Rotate,
    Scenario,
    Shift,
    Workers,
)
from vision.tamper import (
    CAMERA_BLURRED,
    CAMERA_COVERED,
    CAMERA_MOVED,
    TAMPER_ALERT_TYPES,
    TamperConfig,
    TamperMonitor,
)
from vision.types import BusinessHours, Finding

START = synthetic.DEFAULT_START  # 10:00 Beijing time
OPEN_ALL_DAY_SHIFT = BusinessHours(opens=time(9, 0), closes=time(22, 0))


def run(
    scenario: Scenario,
    config: TamperConfig | None = None,
    monitor: TamperMonitor | None = None,
    size: tuple[int, int] = (640, 360),
    start: datetime = START,
) -> tuple[list[tuple[float, Finding]], TamperMonitor]:
    """Feed every frame; return (clip second at which it fired, finding) pairs and the monitor."""
    monitor = monitor or TamperMonitor(config)
    fired = []
    for frame in synthetic.clip(scenario, *size, start=start):
        for finding in monitor.observe(frame):
            fired.append(((frame.captured_at - start).total_seconds(), finding))
    return fired, monitor


def seconds(at: datetime, start: datetime = START) -> float:
    return (at - start).total_seconds()


def scene(duration_s: float, *effects: synthetic.Effect, workers: int = 2, noise_sigma: float = 3.0) -> Scenario:
    return Scenario("test", duration_s, noise_sigma=noise_sigma, effects=(Workers(count=workers), *effects))


def test_alert_type_names_are_the_taxonomy_s() -> None:
    assert {AlertType(kind) for kind in TAMPER_ALERT_TYPES} == {
        AlertType.camera_covered,
        AlertType.camera_blurred,
        AlertType.camera_moved,
    }


def test_covered_lens_fires_once_after_sixty_seconds_and_not_before() -> None:
    fired, monitor = run(scene(150, Covered(start_s=10)))

    assert [f.alert_type for _, f in fired] == [CAMERA_COVERED]
    second, finding = fired[0]
    assert seconds(finding.started_at) == 10
    assert second == 70 and seconds(finding.at) == 70  # persisted 60 s, fired on the first sample that completed it
    assert finding.score == 1.0
    metrics = finding.metrics
    assert metrics["mean"] < 25 and metrics["texture"] < 6
    assert abs(metrics["structure_correlation"]) < 0.3  # nothing of the kitchen left
    assert metrics["duration_s"] == 60
    assert "dark and featureless" in metrics["reason"]
    json.dumps(metrics)  # goes into the alert payload as is
    assert monitor.active == {CAMERA_COVERED}


def test_black_picture_fires_covered() -> None:
    fired, _ = run(scene(100, Black(start_s=10)))
    assert [(second, f.alert_type) for second, f in fired] == [(70, CAMERA_COVERED)]
    assert fired[0][1].metrics["mean"] < 3


def test_bright_featureless_cover_fires_covered() -> None:
    fired, _ = run(scene(100, Covered(level=200, start_s=10)))  # a sheet of paper over the lens
    assert [(second, f.alert_type) for second, f in fired] == [(70, CAMERA_COVERED)]
    assert fired[0][1].metrics["mean"] > 150
    assert fired[0][1].metrics["reason"].startswith("featureless")


def test_an_episode_fires_once_and_recovery_clears_it() -> None:
    clip = scene(260, Covered(start_s=10, end_s=100), Covered(start_s=130, end_s=260))
    monitor = TamperMonitor()
    fired: list[tuple[float, Finding]] = []
    active_at: dict[int, frozenset[str]] = {}
    for frame in synthetic.clip(clip):
        fired += [(frame.sequence, f) for f in monitor.observe(frame)]
        active_at[frame.sequence] = monitor.active

    assert [(second, f.alert_type) for second, f in fired] == [(70, CAMERA_COVERED), (190, CAMERA_COVERED)]
    assert active_at[99] == {CAMERA_COVERED}
    assert active_at[110] == frozenset()  # uncovered for recovery_s (5 s): the episode ended
    assert seconds(fired[1][1].started_at) == 130


def test_a_short_gap_does_not_restart_the_persistence_clock() -> None:
    fired, _ = run(scene(120, Covered(start_s=10, end_s=40), Covered(start_s=42)))
    assert [(second, seconds(f.started_at)) for second, f in fired] == [(70, 10)]
    assert fired[0][1].score == pytest.approx(58 / 60, abs=0.02)  # the two uncovered samples count against it


def test_defocus_fires_blurred() -> None:
    fired, _ = run(scene(100, Defocus(sigma=4, start_s=10)))

    assert [f.alert_type for _, f in fired] == [CAMERA_BLURRED]
    finding = fired[0][1]
    assert 10 <= seconds(finding.started_at) <= 20  # sharpness is looked at every full_check_interval_s (10 s)
    assert seconds(finding.at) - seconds(finding.started_at) >= 60
    assert finding.metrics["laplacian_ratio"] < 0.35  # measured 0.08
    assert finding.metrics["edge_retention"] < 0.5  # measured 0.04
    assert "out of focus" in finding.metrics["reason"]


def test_shift_of_ten_percent_fires_moved_with_the_measured_shift() -> None:
    fired, _ = run(scene(100, Shift(dx=0.10, start_s=10)))

    assert [(second, f.alert_type) for second, f in fired] == [(70, CAMERA_MOVED)]
    metrics = fired[0][1].metrics
    assert metrics["shift_fraction"] == pytest.approx(0.10, abs=0.005)
    assert metrics["shift_px"] == pytest.approx(64, abs=3)  # of the 640-px input
    assert abs(metrics["rotation_deg"]) < 0.5
    assert metrics["inliers"] >= 100 and metrics["matches"] >= metrics["inliers"]
    assert "shifted 10.0%" in metrics["reason"]


def test_rotation_of_five_degrees_fires_moved_with_the_measured_angle() -> None:
    fired, _ = run(scene(100, Rotate(degrees=5, start_s=10)))

    assert [(second, f.alert_type) for second, f in fired] == [(70, CAMERA_MOVED)]
    metrics = fired[0][1].metrics
    assert metrics["rotation_deg"] == pytest.approx(5, abs=0.3)
    assert metrics["shift_fraction"] < 0.01  # turned about the centre
    documented = {"mean", "texture", "laplacian_ratio", "edge_retention", "shift_px", "shift_fraction"}
    documented |= {"rotation_deg", "inliers", "matches", "duration_s", "reason"}
    assert documented <= set(metrics)
    assert all(not isinstance(value, np.generic) for value in metrics.values())  # plain JSON types


def test_camera_put_back_recovers() -> None:
    monitor = TamperMonitor()
    active_at = {}
    fired = []
    for frame in synthetic.clip(scene(120, Shift(dx=0.1, start_s=10, end_s=80))):
        fired += monitor.observe(frame)
        active_at[frame.sequence] = monitor.active
    assert [f.alert_type for f in fired] == [CAMERA_MOVED]
    assert active_at[79] == {CAMERA_MOVED}
    assert active_at[85] == frozenset()  # the big change back triggers a full check at once


def test_camera_turned_to_another_view_fires_moved() -> None:
    fired, _ = run(scene(100, Shift(dx=0.6, dy=0.5, start_s=10), Rotate(degrees=20, start_s=10), workers=0))
    assert [f.alert_type for _, f in fired] == [CAMERA_MOVED]


@pytest.mark.parametrize("effect", [Shift(dx=0.02, start_s=10), Rotate(degrees=1, start_s=10), Shift(dx=0.04)])
def test_small_moves_are_not_tamper(effect: synthetic.Effect) -> None:
    fired, monitor = run(scene(100, effect))
    assert fired == []
    assert monitor.pending == frozenset()


def test_person_passing_in_front_of_the_lens_fires_nothing_and_never_becomes_the_reference() -> None:
    clip = scene(60, PersonPassing(start_s=20, end_s=23, coverage=0.8))
    # refresh as eagerly as possible, and look at every sample, so that a bad refresh would happen if it could
    config = TamperConfig(refresh_after_s=2, refresh_samples=1, full_check_interval_s=0)
    clean_mean = float(cv2.cvtColor(synthetic.background(), cv2.COLOR_BGR2GRAY).mean())
    monitor = TamperMonitor(config)
    fired = []
    dark_frame_means = []
    for frame in synthetic.clip(clip):
        fired += monitor.observe(frame)
        if 20 <= frame.sequence < 23:
            dark_frame_means.append(float(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY).mean()))
        if monitor.reference is not None:
            assert float(monitor.reference.mean()) > 0.95 * clean_mean, frame.sequence

    assert fired == []
    assert min(dark_frame_means) < 0.8 * clean_mean  # the person did darken the picture
    assert monitor.refresh_count > 10  # refreshing did go on around the person


@pytest.mark.parametrize(
    "lights",
    [
        Lights(gain=0.15, start_s=10, end_s=250),  # lights off, a little light from elsewhere: mean ≈ 21
        Lights(gain=0.4, gamma=1.5, start_s=10, end_s=250),  # dimmed with a different tone curve: mean ≈ 45
        Lights(gain=1.0, gamma=0.6, start_s=10, end_s=250),  # brighter
    ],
)
def test_lights_switched_off_and_on_fire_nothing(lights: Lights) -> None:
    fired, monitor = run(scene(300, lights))
    assert fired == []
    assert monitor.pending == frozenset()


def test_pitch_dark_kitchen_is_covered_only_during_business_hours() -> None:
    clip = scene(120, Lights(gain=0.0, start_s=10), workers=0)
    config = TamperConfig(business_hours=OPEN_ALL_DAY_SHIFT)

    open_fired, _ = run(clip, config)
    assert [(second, f.alert_type) for second, f in open_fired] == [(70, CAMERA_COVERED)]  # never camera_moved

    at_night = datetime(2025, 6, 2, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    night_fired, _ = run(clip, config, start=at_night)
    assert night_fired == []


def test_covered_episode_ends_at_closing_time() -> None:
    closes_soon = BusinessHours(opens=time(9, 0), closes=time(10, 1))  # closes 60 s into the clip
    fired, monitor = run(scene(120, Covered(start_s=10)), TamperConfig(business_hours=closes_soon))
    assert fired == []
    assert monitor.pending == frozenset()


@pytest.mark.parametrize("sigma", [3.0, 6.0])
def test_sensor_noise_alone_fires_nothing(sigma: float) -> None:
    fired, monitor = run(scene(150, workers=0, noise_sigma=sigma))
    assert fired == []
    measurement = monitor.last_measurement
    assert measurement is not None and measurement.structure_correlation is not None
    assert measurement.structure_correlation > 0.9


def test_ten_minutes_of_normal_kitchen_activity_fire_nothing_while_the_reference_refreshes() -> None:
    config = TamperConfig(refresh_after_s=120)  # defaults otherwise; refresh often enough to be exercised
    fired, monitor = run(scene(600, workers=4), config)
    assert fired == []
    assert monitor.pending == frozenset()
    assert monitor.refresh_count >= 2


def test_reference_is_not_refreshed_while_a_condition_is_pending_or_active() -> None:
    config = TamperConfig(refresh_after_s=3, refresh_samples=1, full_check_interval_s=0)
    fired, monitor = run(scene(120, Defocus(sigma=4, start_s=20)), config)

    assert [f.alert_type for _, f in fired] == [CAMERA_BLURRED]
    assert monitor.active == {CAMERA_BLURRED}  # a blurred reference would have "recovered" it
    captured = monitor.reference_captured_at
    assert captured is not None and seconds(captured) < 20


def test_slow_drift_adds_up_against_the_enrolment_view() -> None:
    # 1 % of the width per minute; the reference is refreshed every 40 s while the drift is still small
    clip = scene(420, Shift(dx=0.07, start_s=10, ramp_s=420))
    fired, monitor = run(clip, TamperConfig(refresh_after_s=40, refresh_samples=2))

    assert monitor.refresh_count >= 1
    assert [f.alert_type for _, f in fired] == [CAMERA_MOVED]
    finding = fired[0][1]
    assert 0.05 < finding.metrics["shift_fraction"] < 0.065
    assert seconds(finding.started_at) == pytest.approx(10 + 0.05 / 0.07 * 420, abs=12)


def test_given_reference_catches_a_camera_that_was_already_moved() -> None:
    clip = scene(80, Shift(dx=0.08))
    fired, _ = run(clip, monitor=TamperMonitor(reference=synthetic.background()))
    assert [(second, seconds(f.started_at), f.alert_type) for second, f in fired] == [(60, 0, CAMERA_MOVED)]

    enrolled, monitor = run(
        dataclasses.replace(clip, duration_s=30)
    )  # enrolled from its own first frames, the moved view is simply the reference
    assert enrolled == []
    assert monitor.reference_captured_at == START + timedelta(seconds=4)


def test_enrolment_waits_for_usable_frames_and_covered_fires_before_it() -> None:
    fired, monitor = run(scene(160, Black(end_s=90)))
    assert [(second, f.alert_type) for second, f in fired] == [(60, CAMERA_COVERED)]
    assert fired[0][1].metrics["structure_correlation"] is None  # no reference yet
    captured = monitor.reference_captured_at
    assert captured is not None and seconds(captured) >= 90
    assert monitor.active == frozenset()


def test_set_reference_accepts_the_new_view() -> None:
    _, monitor = run(scene(75, Shift(dx=0.1, start_s=10)))
    assert monitor.active == {CAMERA_MOVED}

    monitor.set_reference(None)  # an operator accepted the new view: re-enrol
    later = START + timedelta(seconds=75)
    again, _ = run(scene(80, Shift(dx=0.1)), monitor=monitor, start=later)
    assert again == []
    assert monitor.active == frozenset()


def test_frames_faster_than_the_sample_interval_are_skipped() -> None:
    clip = dataclasses.replace(scene(100, Covered(start_s=10)), fps=5.0)
    monitor = TamperMonitor()
    sampled = []
    fired = []
    for frame in synthetic.clip(clip, 320, 180):
        fired += monitor.observe(frame)
        if monitor.last_measurement is not None and monitor.last_measurement.at == frame.captured_at:
            sampled.append(frame.sequence)
    assert len(sampled) == 100  # one in five
    assert [(seconds(f.started_at), seconds(f.at), f.alert_type) for f in fired] == [(10, 70, CAMERA_COVERED)]


def test_full_hd_input_reports_shift_in_input_pixels() -> None:
    fired, _ = run(scene(80, Shift(dx=0.1, start_s=10), workers=1), size=(1280, 720))
    assert [f.alert_type for _, f in fired] == [CAMERA_MOVED]
    assert fired[0][1].metrics["shift_px"] == pytest.approx(128, abs=4)
    assert fired[0][1].metrics["shift_fraction"] == pytest.approx(0.1, abs=0.005)


def test_measures_are_independent_of_brightness() -> None:
    monitor = TamperMonitor(TamperConfig(full_check_interval_s=0))
    bright = scene(30, workers=0)
    dim = scene(30, Lights(gain=0.4, gamma=1.5), workers=0)
    run(bright, monitor=monitor)
    run(dim, monitor=monitor, start=START + timedelta(seconds=30))
    m = monitor.last_measurement
    assert m is not None and m.mean < 60
    assert m.structure_correlation is not None and m.structure_correlation > 0.95
    assert m.sharpness_ratio is not None and 0.7 < m.sharpness_ratio < 1.6
    assert m.edge_retention is not None and m.edge_retention > 0.9
    assert m.shift_fraction is not None and m.shift_fraction < 0.003
    assert m.inlier_fraction is not None and m.inlier_fraction > 0.4
