"""After-hours motion → pest: synthetic night scenes made here (textured kitchen, sensor noise σ = 3)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import cv2
import numpy as np
import pytest

from vision.motion import FLOOR_ZONE, AfterHoursMotion, MotionConfig, polygons_to_mask
from vision.types import BusinessHours, Finding, Frame

WIDTH, HEIGHT = 640, 360
FPS = 5
HOURS = BusinessHours(opens=clock(9, 0), closes=clock(22, 0))  # Beijing time
NIGHT = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # 23:00 in Beijing: closed
NOON = datetime(2025, 3, 4, 4, 0, tzinfo=UTC)  # 12:00 in Beijing: open

Painter = Callable[[np.ndarray, float], None]  # draws on the image at t seconds


def kitchen(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A textured scene: blotchy walls and counters above, a tiled floor below (float, lights on)."""
    rng = np.random.default_rng(7)
    coarse = rng.integers(60, 200, (18, 32, 3)).astype(np.float32)
    scene = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    floor_top = height // 2
    tile = max(8, width // 16)
    for row, y in enumerate(range(floor_top, height, tile)):
        for col, x in enumerate(range(0, width, tile)):
            scene[y : y + tile, x : x + tile] = 150 + 25 * ((row + col) % 2)
    cv2.line(scene, (0, floor_top), (width, floor_top), (40, 40, 40), 3)
    return scene


SCENE = kitchen()


def frames(
    seconds: float,
    *,
    start: datetime = NIGHT,
    brightness: Callable[[float], float] = lambda t: 0.5,
    painters: tuple[Painter, ...] = (),
    noise: float = 3.0,
    scene: np.ndarray = SCENE,
    fps: int = FPS,
    seed: int = 1,
) -> Iterator[Frame]:
    rng = np.random.default_rng(seed)
    for i in range(round(seconds * fps)):
        t = i / fps
        image = scene * brightness(t)
        for paint in painters:
            paint(image, t)
        image = image + rng.normal(0.0, noise, image.shape)
        yield Frame(np.clip(image, 0, 255).astype(np.uint8), start + timedelta(seconds=t), i)


def rat(appears: float, runs_for: float, *, y: float = 0.83, speed: float = 60.0, size: tuple[int, int] = (12, 6)
        ) -> Painter:
    """A small dark animal running left to right (speed in px/s at 640 wide)."""

    def paint(image: np.ndarray, t: float) -> None:
        if appears <= t < appears + runs_for:
            h, w = image.shape[:2]
            cx = int((0.1 * w) + (t - appears) * speed * w / WIDTH)
            cv2.ellipse(image, (cx, int(y * h)), (size[0] * w // WIDTH, size[1] * w // WIDTH), 0, 0, 360,
                        (12, 12, 12), -1)

    return paint


def run(detector: AfterHoursMotion, stream: Iterator[Frame]) -> list[Finding]:
    return [finding for frame in stream for finding in detector.observe(frame)]


def test_a_rat_running_along_the_floor_for_5_s_at_night_is_one_pest_finding_after_3_s() -> None:
    detector = AfterHoursMotion(HOURS)
    findings = run(detector, frames(9, painters=(rat(appears=2.0, runs_for=5.0),)))

    assert len(findings) == 1
    finding = findings[0]
    assert finding.alert_type == "pest"
    appeared = NIGHT + timedelta(seconds=2)
    assert finding.started_at == appeared
    assert timedelta(seconds=3) <= finding.at - appeared <= timedelta(seconds=3.4)
    assert finding.metrics["duration_s"] >= 3.0
    # 60 px/s for 3 s = 180 px along the floor; the rat is a 24×12 px ellipse (226 px², 0.1 % of the frame).
    assert 150 <= finding.metrics["path_length_px"] <= 210
    assert 150 <= finding.metrics["blob_area_px"] <= 400
    assert 0.0005 <= finding.metrics["blob_area_fraction"] <= 0.002
    assert finding.score >= 0.9
    (box,) = finding.boxes
    assert 20 <= box.w <= 32 and 10 <= box.h <= 20
    rat_x = 0.1 * WIDTH + (finding.at - appeared).total_seconds() * 60
    assert box.x <= rat_x <= box.x + box.w
    assert box.y <= 0.83 * HEIGHT <= box.y + box.h


def test_a_rat_seen_for_only_2_s_does_not_fire() -> None:
    detector = AfterHoursMotion(HOURS)
    assert run(detector, frames(8, painters=(rat(appears=2.0, runs_for=2.0),))) == []


def test_nothing_fires_during_business_hours() -> None:
    detector = AfterHoursMotion(HOURS)
    assert not detector.is_active(NOON)
    assert detector.is_active(NIGHT)
    assert run(detector, frames(9, start=NOON, painters=(rat(appears=2.0, runs_for=5.0),))) == []


def test_the_same_rat_high_on_the_wall_is_outside_the_floor_zone() -> None:
    detector = AfterHoursMotion(HOURS)
    assert run(detector, frames(9, painters=(rat(appears=2.0, runs_for=5.0, y=0.25),))) == []


@pytest.mark.parametrize(
    "brightness",
    [
        pytest.param(lambda t: 0.12 if t < 3 else 1.0, id="lights on"),
        pytest.param(lambda t: 1.0 if t < 3 else 0.12, id="lights off"),
        # Auto exposure settling over a second after the switch.
        pytest.param(lambda t: 0.12 if t < 3 else min(1.0, 0.4 + 0.6 * (t - 3)), id="lights on with exposure ramp"),
    ],
)
def test_lights_switching_at_night_does_not_fire(brightness: Callable[[float], float]) -> None:
    detector = AfterHoursMotion(HOURS)
    findings, settled_after_switch = [], False
    for frame in frames(10, brightness=brightness):
        findings += detector.observe(frame)
        if frame.captured_at == NIGHT + timedelta(seconds=3):
            settled_after_switch = detector.settling
    assert settled_after_switch, "the switch must be seen as a global change"
    assert findings == []
    assert not detector.settling


def test_a_rat_after_the_lights_came_on_is_still_found() -> None:
    detector = AfterHoursMotion(HOURS)
    stream = frames(12, brightness=lambda t: 0.12 if t < 2 else 0.6, painters=(rat(appears=4.0, runs_for=5.0),))
    findings = run(detector, stream)
    assert len(findings) == 1
    assert findings[0].started_at == NIGHT + timedelta(seconds=4)


@pytest.mark.parametrize("sigma", [3.0, 10.0])
def test_sensor_noise_alone_does_not_fire(sigma: float) -> None:
    detector = AfterHoursMotion(HOURS)
    assert run(detector, frames(10, noise=sigma, seed=11)) == []


def test_a_person_walking_at_night_is_too_big_to_be_a_pest() -> None:
    """Decision: people after hours are not a pest matter; the blob is rejected for its size and height."""

    def person(image: np.ndarray, t: float) -> None:
        if 2.0 <= t < 7.0:
            x = int(60 + 60 * (t - 2.0))
            cv2.rectangle(image, (x, 130), (x + 60, 340), (30, 45, 60), -1)

    assert run(AfterHoursMotion(HOURS), frames(9, painters=(person,))) == []
    # The same walk with the size limits lifted fires: the size filter is what kept it out.
    anything = MotionConfig(max_blob_fraction=0.5, max_blob_height_fraction=1.0, max_aspect_ratio=10.0)
    assert len(run(AfterHoursMotion(HOURS, anything), frames(9, painters=(person,)))) == 1


def test_a_blinking_light_on_the_floor_does_not_travel_and_does_not_fire() -> None:
    def standby_led(image: np.ndarray, t: float) -> None:
        if round(t * FPS) % 2:
            cv2.rectangle(image, (400, 300), (410, 308), (255, 255, 255), -1)

    assert run(AfterHoursMotion(HOURS), frames(10, painters=(standby_led,))) == []


def test_a_second_rat_inside_the_cooldown_is_not_reported_again_and_after_it_is() -> None:
    runs = (rat(appears=2.0, runs_for=4.0), rat(appears=8.0, runs_for=4.0), rat(appears=20.0, runs_for=4.0))
    findings = run(AfterHoursMotion(HOURS, MotionConfig(cooldown_s=15.0)), frames(25, painters=runs))
    assert [f.started_at for f in findings] == [NIGHT + timedelta(seconds=2), NIGHT + timedelta(seconds=20)]


def test_zone_polygons_become_a_mask_and_bad_ones_are_refused() -> None:
    mask = polygons_to_mask([FLOOR_ZONE], 100, 50)
    assert mask[:24].max() == 0 and mask[26:].min() == 255
    with pytest.raises(ValueError, match="normalised"):
        MotionConfig(zones=(((0.0, 0.5), (1.5, 0.5), (1.0, 1.0)),))
    with pytest.raises(ValueError, match="at least 3"):
        MotionConfig(zones=(((0.0, 0.5), (1.0, 0.5)),))


def test_per_frame_cost_at_720p_is_small() -> None:
    scene = kitchen(1280, 720)
    detector = AfterHoursMotion(HOURS)
    stream = list(frames(4, scene=scene, painters=(rat(appears=1.0, runs_for=3.0),)))
    detector.observe(stream[0])
    costs = []
    for frame in stream[1:]:
        started = time.perf_counter()
        detector.observe(frame)
        costs.append(time.perf_counter() - started)
    median_ms = 1000 * float(np.median(costs))
    print(f"AfterHoursMotion.observe at 1280×720: median {median_ms:.2f} ms, max {1000 * max(costs):.2f} ms")
    assert median_ms < 20.0
