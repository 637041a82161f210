"""Stream health state machine: thresholds, frozen vs noisy, business hours, rolling counts, episodes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import cv2
import numpy as np
import pytest

from vision.health import (
    HealthConfig,
    StreamHealth,
    StreamState,
    frame_difference,
    frame_signature,
)
from vision.sources import ConnectionEvent, ConnectionEventKind
from vision.types import BusinessHours, Frame

# 10:00 Beijing time on a Monday; the kitchen is open 09:00–21:00
T0 = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)
DAY = BusinessHours(opens=time(9, 0), closes=time(21, 0))


def at(seconds: float, start: datetime = T0) -> datetime:
    return start + timedelta(seconds=seconds)


def textured_scene(seed: int = 1, size: tuple[int, int] = (180, 320)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 3).astype(np.float32)
    return cv2.normalize(blurred, None, 40, 200, cv2.NORM_MINMAX).astype(np.uint8)


class LiveCamera:
    """A static scene as a real sensor delivers it: fresh Gaussian noise on every frame."""

    def __init__(self, sigma: float = 3.0, seed: int = 2) -> None:
        self.scene = textured_scene().astype(np.float32)
        self.sigma = sigma
        self.rng = np.random.default_rng(seed)
        self.sequence = 0

    def frame(self, when: datetime) -> Frame:
        self.sequence += 1
        noisy = self.scene + self.rng.normal(0.0, self.sigma, self.scene.shape)
        return Frame(image=np.clip(noisy, 0, 255).astype(np.uint8), captured_at=when, sequence=self.sequence)


def repeated(image: np.ndarray, when: datetime, sequence: int = 0) -> Frame:
    return Frame(image=image, captured_at=when, sequence=sequence)


def feed(health: StreamHealth, camera: LiveCamera, seconds: range, start: datetime = T0) -> list:
    updates = []
    for second in seconds:
        update = health.on_frame(camera.frame(at(second, start)))
        if update:
            updates.append(update)
    return updates


# -- no signal -------------------------------------------------------------------------------------------------


def test_no_signal_fires_exactly_at_20_seconds_without_a_frame_and_only_once():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    camera = LiveCamera()
    assert feed(health, camera, range(6)) == []  # frames at 0..5 s: healthy
    assert not health.tick(at(5 + 19))
    assert not health.tick(at(5 + 19.999))
    assert health.state is StreamState.OK

    fired = health.tick(at(5 + 20))
    assert [(c.previous, c.state) for c in fired.changes] == [(StreamState.OK, StreamState.NO_SIGNAL)]
    assert fired.changes[0].since == at(5)  # silent since the last frame
    assert len(fired.findings) == 1
    finding = fired.findings[0]
    assert finding.alert_type == "camera_offline"
    assert finding.started_at == at(5) and finding.at == at(25)
    assert finding.metrics["state"] == "no_signal"
    assert finding.metrics["last_frame_at"] == at(5).isoformat()
    assert finding.metrics["seconds_without_frame"] == 20.0
    assert {"since", "reconnects_last_hour", "stalls_last_hour"} <= finding.metrics.keys()

    # the episode goes on: no repeated finding on later ticks
    for second in (26, 40, 300, 3000):
        assert not health.tick(at(second))
    assert health.state is StreamState.NO_SIGNAL


def test_21_seconds_without_a_frame_is_no_signal():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    health.on_frame(LiveCamera().frame(T0))
    assert health.tick(at(21)).changes[0].state is StreamState.NO_SIGNAL


def test_a_camera_that_never_sends_a_frame_is_silent_since_monitoring_started():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    assert not health.tick(at(19))
    update = health.tick(at(20))
    assert update.changes[0].state is StreamState.NO_SIGNAL
    assert update.findings[0].metrics["last_frame_at"] is None
    assert update.findings[0].started_at == T0


def test_recovery_returns_to_ok_and_a_new_outage_is_a_new_episode():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    camera = LiveCamera()
    health.on_frame(camera.frame(T0))
    first = health.tick(at(20))
    assert len(first.findings) == 1

    recovered = health.on_frame(camera.frame(at(30)))
    assert [(c.previous, c.state) for c in recovered.changes] == [(StreamState.NO_SIGNAL, StreamState.OK)]
    assert recovered.findings == ()
    assert health.state is StreamState.OK

    again = health.tick(at(50))
    assert again.changes[0].state is StreamState.NO_SIGNAL
    assert len(again.findings) == 1 and again.findings[0].started_at == at(30)


# -- unreachable ------------------------------------------------------------------------------------------------


def test_failing_connections_make_the_camera_unreachable_after_20_seconds():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    for second in (0, 1, 3, 7, 15):  # attempts with exponential back-off
        assert not health.on_connect_failed(at(second))
        assert not health.on_reconnect(at(second))
    assert not health.tick(at(19.5))

    update = health.tick(at(20))
    assert [c.state for c in update.changes] == [StreamState.UNREACHABLE]
    metrics = update.findings[0].metrics
    assert metrics["state"] == "unreachable"
    assert metrics["failing_since"] == T0.isoformat()
    assert metrics["reconnects_last_hour"] == 5
    assert metrics["connect_failures_last_hour"] == 5

    # connected again but still silent: the cause changes, the episode (and its single finding) does not
    connected = health.on_connected(at(25))
    assert [(c.previous, c.state) for c in connected.changes] == [(StreamState.UNREACHABLE, StreamState.NO_SIGNAL)]
    assert connected.findings == () and connected.changes[0].alerted is True

    back = health.on_frame(LiveCamera().frame(at(26)))
    assert back.changes[0].state is StreamState.OK


def test_a_silent_stream_that_then_fails_to_reconnect_turns_from_no_signal_to_unreachable():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    health.on_frame(LiveCamera().frame(T0))
    assert health.tick(at(20)).changes[0].state is StreamState.NO_SIGNAL
    update = health.on_connect_failed(at(30))
    assert [(c.previous, c.state) for c in update.changes] == [(StreamState.NO_SIGNAL, StreamState.UNREACHABLE)]
    assert update.findings == ()


def test_a_single_failed_attempt_while_frames_flow_changes_nothing():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    camera = LiveCamera()
    health.on_frame(camera.frame(T0))
    assert not health.on_connect_failed(at(2))
    assert not health.on_frame(camera.frame(at(4)))  # the frame clears the failure
    assert not health.tick(at(23))
    assert health.tick(at(24)).changes[0].state is StreamState.NO_SIGNAL  # plain silence, not unreachable


# -- frozen -----------------------------------------------------------------------------------------------------


def test_measured_differences_separate_noise_and_clock_from_a_repeated_frame():
    config = HealthConfig()
    camera = LiveCamera(sigma=3.0)
    noisy = frame_difference(frame_signature(camera.frame(T0).image), frame_signature(camera.frame(T0).image))
    assert noisy.mean > 2 * config.frozen_max_difference  # measured ≈ 2.27
    assert not noisy.is_same_picture(config)

    still = textured_scene()
    same = frame_difference(frame_signature(still), frame_signature(still.copy()))
    assert (same.mean, same.local) == (0.0, 0.0) and same.is_same_picture(config)


def test_an_exactly_repeated_frame_is_frozen_after_two_minutes():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    still = textured_scene()
    for second in range(120):  # 0..119 s: 119 s of identical frames
        assert not health.on_frame(repeated(still, at(second), second))
    update = health.on_frame(repeated(still, at(120), 120))
    assert [(c.previous, c.state) for c in update.changes] == [(StreamState.OK, StreamState.FROZEN)]
    assert update.changes[0].since == T0
    finding = update.findings[0]
    assert finding.started_at == T0 and finding.at == at(120)
    assert finding.metrics["state"] == "frozen"
    assert finding.metrics["frame_difference_mean"] == 0.0
    assert not health.on_frame(repeated(still, at(121), 121))  # one finding per episode

    # the picture moves again: recovery
    moved = health.on_frame(repeated(textured_scene(seed=9), at(122), 122))
    assert [(c.previous, c.state) for c in moved.changes] == [(StreamState.FROZEN, StreamState.OK)]


def test_a_static_scene_with_sensor_noise_is_never_frozen():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    assert feed(health, LiveCamera(sigma=3.0), range(0, 400, 2)) == []  # 400 s of a static, noisy scene
    assert health.state is StreamState.OK


def test_an_osd_clock_on_a_noise_free_scene_keeps_it_live_and_a_stopped_clock_does_not():
    scene = textured_scene()

    def with_clock(second: int) -> np.ndarray:
        image = scene.copy()
        cv2.putText(image, f"2025-06-02 10:00:{second % 60:02d}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1)
        return image

    ticking = StreamHealth(started_at=T0, business_hours=DAY)
    for second in range(200):
        assert not ticking.on_frame(repeated(with_clock(second), at(second), second))

    stopped = StreamHealth(started_at=T0, business_hours=DAY)
    states = [stopped.on_frame(repeated(with_clock(0), at(second), second)) for second in range(121)]
    assert states[-1].changes[0].state is StreamState.FROZEN


def test_frozen_threshold_and_duration_are_configurable():
    config = HealthConfig(frozen_seconds=10, frozen_max_difference=3.0, frozen_max_local_difference=50.0)
    health = StreamHealth(config, started_at=T0, business_hours=DAY)
    updates = feed(health, LiveCamera(sigma=3.0), range(11))  # σ = 3 noise is below a 3.0 threshold
    assert [u.changes[0].state for u in updates] == [StreamState.FROZEN]


# -- business hours ---------------------------------------------------------------------------------------------


def test_outside_business_hours_problems_are_recorded_not_alerted_until_opening():
    night = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)  # 02:00 Beijing, closed
    health = StreamHealth(started_at=night, business_hours=DAY)
    health.on_frame(LiveCamera().frame(night))
    update = health.tick(at(20, night))
    assert [c.state for c in update.changes] == [StreamState.NO_SIGNAL]
    record = update.changes[0]
    assert record.in_business_hours is False and record.alerted is False
    assert update.findings == ()
    assert not health.tick(datetime(2025, 6, 2, 0, 59, 59, tzinfo=UTC))  # 08:59:59 Beijing, still closed

    opening = health.tick(datetime(2025, 6, 2, 1, 0, tzinfo=UTC))  # 09:00 Beijing: still dead at opening
    assert opening.changes == ()
    assert len(opening.findings) == 1 and opening.findings[0].started_at == night
    assert not health.tick(datetime(2025, 6, 2, 1, 5, tzinfo=UTC))


def test_an_outage_that_ends_before_opening_is_only_recorded():
    night = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)  # 02:00 Beijing
    health = StreamHealth(started_at=night, business_hours=DAY)
    camera = LiveCamera()
    health.on_frame(camera.frame(night))
    assert health.tick(at(30, night)).findings == ()
    back = health.on_frame(camera.frame(at(600, night)))
    assert back.changes[0].state is StreamState.OK
    opening = datetime(2025, 6, 2, 1, 0, tzinfo=UTC)
    health.on_frame(camera.frame(opening - timedelta(seconds=5)))
    assert not health.tick(opening)  # the episode is over: nothing to report at opening


@pytest.mark.parametrize(
    ("beijing", "alerts"),
    [(time(23, 30), True), (time(1, 30), True), (time(2, 30), False), (time(17, 0), False), (time(18, 0), True)],
)
def test_business_hours_across_midnight(beijing: time, alerts: bool):
    late_night = BusinessHours(opens=time(18, 0), closes=time(2, 0))  # a night-market stall
    # the outage fires 20 s after the last frame; put that moment at the given Beijing time
    fire_at = datetime.combine(datetime(2025, 6, 2).date(), beijing, tzinfo=UTC) - timedelta(hours=8)
    start = fire_at - timedelta(seconds=20)
    health = StreamHealth(started_at=start, business_hours=late_night)
    health.on_frame(LiveCamera().frame(start))
    update = health.tick(fire_at)
    assert update.changes[0].state is StreamState.NO_SIGNAL
    assert update.changes[0].in_business_hours is alerts
    assert len(update.findings) == (1 if alerts else 0)


def test_without_business_hours_every_problem_alerts():
    night = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)
    health = StreamHealth(started_at=night)
    assert len(health.tick(at(20, night)).findings) == 1


# -- rolling counts ---------------------------------------------------------------------------------------------


def test_reconnects_and_stalls_are_counted_over_a_sliding_hour():
    health = StreamHealth(started_at=T0, business_hours=DAY)
    for minute in (0, 10, 59):
        health.on_reconnect(at(minute * 60))
        health.on_stall(at(minute * 60))
    assert health.reconnects_last_hour(at(59 * 60)) == 3
    assert health.reconnects_last_hour(at(3599)) == 3
    assert health.reconnects_last_hour(at(3600)) == 2  # the one from exactly an hour ago has left the window
    assert health.stalls_last_hour(at(3600)) == 2
    assert health.reconnects_last_hour(at(70 * 60 - 1)) == 2
    assert health.reconnects_last_hour(at(70 * 60)) == 1
    assert health.stalls_last_hour(at(59 * 60 + 3600)) == 0


def test_connection_events_from_a_source_are_counted():
    health = StreamHealth(started_at=T0, business_hours=DAY)

    def event(kind: ConnectionEventKind, second: float) -> ConnectionEvent:
        return ConnectionEvent(kind=kind, at=at(second), source="rtsp://***:***@cam/1", failures=1)

    health.on_event(event(ConnectionEventKind.STALLED, 1))
    health.on_event(event(ConnectionEventKind.RECONNECTING, 1))
    health.on_event(event(ConnectionEventKind.CONNECT_FAILED, 2))
    health.on_event(event(ConnectionEventKind.RECONNECTING, 2))
    assert health.metrics(at(3))["failing_since"] == at(2).isoformat()
    health.on_event(event(ConnectionEventKind.CONNECTED, 4))
    assert "failing_since" not in health.metrics(at(5))
    assert (health.stalls_last_hour(at(5)), health.reconnects_last_hour(at(5))) == (1, 2)
    assert health.connect_failures_last_hour(at(5)) == 1


def test_a_gap_between_frames_counts_as_a_stall_with_frigates_rule():
    # expected 5 fps: a gap over max(2 / 5, 2) = 2 s is a stall
    health = StreamHealth(HealthConfig(expected_fps=5), started_at=T0, business_hours=DAY)
    camera = LiveCamera()
    for second in (0, 0.2, 0.4, 2.3, 4.3, 7.0, 7.2):  # gaps 1.9 s, 2.0 s (not over), 2.7 s
        health.on_frame(camera.frame(at(second)))
    assert health.stalls_last_hour(at(8)) == 1


def test_times_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        StreamHealth(started_at=datetime(2025, 6, 2, 10, 0))
    health = StreamHealth(started_at=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        health.tick(datetime(2025, 6, 2, 10, 0))
