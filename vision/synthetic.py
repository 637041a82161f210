"""A deterministic, kitchen-like camera view for tests and demo videos.

The scene: a tiled wall with a notice board and a clock, two shelves of jars and boxes, a stainless-steel counter
with cabinets, a tiled floor. It is drawn once per (size, seed) on a canvas larger than the view, so a camera that
is shifted or rotated still sees scene content at its borders. Frame ``k`` of a :class:`Scenario` is the view at
``t = k / fps`` with the scenario's effects applied in the order the physics would apply them:

    scene (+ workers, pest) → camera pose (shift, rotation) → person right in front of the lens
    → lighting (brightness, gamma, IR grey) → lens covered / black → defocus → sensor noise

Everything is a pure function of the scenario, ``k`` and the size: the same call returns the same pixels, and sensor
noise is seeded by ``(seed, k)`` so consecutive frames differ like a live camera's do (a *frozen* effect repeats
one frame bit for bit, which a live camera never does).

Sizes are relative: the same scenario rendered at 640×360 and at 1280×720 shows the same scene.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import Frame, Image

# The canvas extends this fraction of the view's width/height beyond each side of the view.
CANVAS_MARGIN = 0.3
DEFAULT_START = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, a Monday: business hours in most kitchens

BGR = tuple[int, int, int]
E = TypeVar("E", bound="Effect")


# --- effects -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Effect:
    """Something that is true of the clip from ``start_s`` (inclusive) to ``end_s`` (exclusive), in clip seconds."""

    start_s: float = 0.0
    end_s: float = math.inf

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


@dataclass(frozen=True, kw_only=True)
class Workers(Effect):
    """Kitchen staff walking back and forth in front of the counter (normal activity)."""

    count: int = 3


@dataclass(frozen=True, kw_only=True)
class PersonPassing(Effect):
    """Someone passing right in front of the lens: a large, dark, out-of-focus silhouette crossing the view
    between ``start_s`` and ``end_s``; at its widest it covers about ``coverage`` of the frame."""

    coverage: float = 0.55


@dataclass(frozen=True, kw_only=True)
class Pest(Effect):
    """A small dark animal running along the floor at the foot of the counter, from ``from_x`` to ``to_x``
    (fractions of the width) between ``start_s`` and ``end_s``, and gone outside that window."""

    from_x: float = 0.1
    to_x: float = 0.8
    floor_y: float = 0.86  # fraction of the height where its feet are
    length: float = 0.035  # body length, fraction of the width


@dataclass(frozen=True, kw_only=True)
class Shift(Effect):
    """The camera was panned/tilted: the scene moves by ``dx`` of the width and ``dy`` of the height. With
    ``ramp_s`` > 0 it moves there linearly over that many seconds (a slow drift), otherwise at once."""

    dx: float = 0.1
    dy: float = 0.0
    ramp_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Rotate(Effect):
    """The camera was turned about its optical axis by ``degrees`` (counter-clockwise on screen, OpenCV's sign)."""

    degrees: float = 5.0


@dataclass(frozen=True, kw_only=True)
class Lights(Effect):
    """Lighting change: every pixel ``v`` becomes ``ambient + gain · 255 · (v / 255) ** gamma``. ``gain`` ≈ 0.15 is
    a kitchen with its lights off and a little light from elsewhere, ≈ 0 is pitch dark; ``greyscale`` imitates a
    camera in infrared night mode."""

    gain: float = 0.15
    gamma: float = 1.0
    ambient: float = 0.0
    greyscale: bool = False


@dataclass(frozen=True, kw_only=True)
class Covered(Effect):
    """A hand or a cloth over the lens: dark, nearly uniform, a soft shading gradient, no scene left."""

    level: float = 12.0  # mean grey level before noise


@dataclass(frozen=True, kw_only=True)
class Black(Effect):
    """The picture is black (lens capped, video cut to black); only sensor noise remains."""


@dataclass(frozen=True, kw_only=True)
class Defocus(Effect):
    """The focus ring was turned: Gaussian blur of ``sigma`` pixels at a 640-px-wide view (scaled with the size)."""

    sigma: float = 4.0


@dataclass(frozen=True, kw_only=True)
class Frozen(Effect):
    """The stream repeats the frame at ``start_s`` bit for bit (a hung encoder)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_s: float
    fps: float = 1.0
    seed: int = 7
    noise_sigma: float = 3.0  # sensor noise, grey levels, per pixel and channel
    effects: tuple[Effect, ...] = ()

    @property
    def frame_count(self) -> int:
        return max(0, math.ceil(self.duration_s * self.fps - 1e-9))

    def time_of(self, k: int) -> float:
        return k / self.fps

    def active(self, kind: type[E], t: float) -> list[E]:
        return [effect for effect in self.effects if isinstance(effect, kind) and effect.active(t)]


# --- scenarios -----------------------------------------------------------------------------------------------------


def normal_activity(duration_s: float = 600.0, workers: int = 3) -> Scenario:
    return Scenario("normal_activity", duration_s, effects=(Workers(count=workers),))


def static_scene(duration_s: float = 180.0, noise_sigma: float = 3.0) -> Scenario:
    return Scenario("static", duration_s, noise_sigma=noise_sigma)


def covered(start_s: float = 30.0, end_s: float = math.inf, duration_s: float = 150.0, workers: int = 2) -> Scenario:
    return Scenario("covered", duration_s, effects=(Workers(count=workers), Covered(start_s=start_s, end_s=end_s)))


def black(start_s: float = 30.0, end_s: float = math.inf, duration_s: float = 150.0) -> Scenario:
    return Scenario("black", duration_s, effects=(Black(start_s=start_s, end_s=end_s),))


def defocused(
    sigma: float = 4.0, start_s: float = 30.0, end_s: float = math.inf, duration_s: float = 150.0, workers: int = 2
) -> Scenario:
    return Scenario(
        "defocused", duration_s, effects=(Workers(count=workers), Defocus(sigma=sigma, start_s=start_s, end_s=end_s))
    )


def moved(
    dx: float = 0.10,
    dy: float = 0.0,
    start_s: float = 30.0,
    duration_s: float = 150.0,
    workers: int = 2,
    ramp_s: float = 0.0,
) -> Scenario:
    return Scenario(
        "moved", duration_s, effects=(Workers(count=workers), Shift(dx=dx, dy=dy, start_s=start_s, ramp_s=ramp_s))
    )


def rotated(degrees: float = 5.0, start_s: float = 30.0, duration_s: float = 150.0, workers: int = 2) -> Scenario:
    return Scenario("rotated", duration_s, effects=(Workers(count=workers), Rotate(degrees=degrees, start_s=start_s)))


def frozen(start_s: float = 30.0, duration_s: float = 150.0, workers: int = 2) -> Scenario:
    return Scenario("frozen", duration_s, effects=(Workers(count=workers), Frozen(start_s=start_s)))


def person_passing(start_s: float = 30.0, pass_s: float = 3.0, duration_s: float = 120.0, workers: int = 2) -> Scenario:
    return Scenario(
        "person_passing",
        duration_s,
        effects=(Workers(count=workers), PersonPassing(start_s=start_s, end_s=start_s + pass_s)),
    )


def lights_off_on(
    off_s: float = 30.0, on_s: float = 330.0, gain: float = 0.15, gamma: float = 1.0, duration_s: float = 400.0
) -> Scenario:
    return Scenario("lights_off_on", duration_s, effects=(Lights(gain=gain, gamma=gamma, start_s=off_s, end_s=on_s),))


def after_hours_pest(
    start_s: float = 20.0, run_s: float = 6.0, duration_s: float = 60.0, fps: float = 5.0, gain: float = 0.35
) -> Scenario:
    """Night, lights off, camera in IR mode (grey, dim); a rat runs along the foot of the counter."""
    return Scenario(
        "after_hours_pest",
        duration_s,
        fps=fps,
        effects=(
            Lights(gain=gain, gamma=1.1, ambient=4.0, greyscale=True),
            Pest(start_s=start_s, end_s=start_s + run_s),
        ),
    )


def after_hours_person(duration_s: float = 60.0, fps: float = 5.0) -> Scenario:
    """Night, IR mode, one person (a cleaner) walking through: motion that is not a pest."""
    return Scenario(
        "after_hours_person",
        duration_s,
        fps=fps,
        effects=(Lights(gain=0.35, gamma=1.1, ambient=4.0, greyscale=True), Workers(count=1)),
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "normal_activity": normal_activity,
    "static": static_scene,
    "covered": covered,
    "black": black,
    "defocused": defocused,
    "moved": moved,
    "rotated": rotated,
    "frozen": frozen,
    "person_passing": person_passing,
    "lights_off_on": lights_off_on,
    "after_hours_pest": after_hours_pest,
    "after_hours_person": after_hours_person,
}


# --- rendering -----------------------------------------------------------------------------------------------------


def render_frame(scenario: Scenario, k: int, width: int = 640, height: int = 360) -> Image:
    """Frame ``k`` of the scenario as a BGR image of the given size."""
    t = scenario.time_of(k)
    freeze = scenario.active(Frozen, t)
    if freeze:
        first = math.ceil(freeze[0].start_s * scenario.fps - 1e-9)
        if first < k:
            return render_frame(scenario, first, width, height)

    pose = _camera_pose(scenario, t, width, height)
    image = _view(scenario, t, width, height, pose)
    for passing in scenario.active(PersonPassing, t):
        _draw_person_at_lens(image, passing, t)
    for lights in scenario.active(Lights, t):
        image = _relight(image, lights)
    if scenario.active(Black, t):
        image = np.zeros_like(image)
    elif cover := scenario.active(Covered, t):
        image = _cover(width, height, scenario.seed, cover[0].level)
    for blur in scenario.active(Defocus, t):
        image = _u8(cv2.GaussianBlur(image, (0, 0), blur.sigma * width / 640))
    return _add_noise(image, scenario.noise_sigma, scenario.seed, k)


def frame_at(scenario: Scenario, k: int, width: int = 640, height: int = 360, start: datetime = DEFAULT_START) -> Frame:
    return Frame(render_frame(scenario, k, width, height), start + timedelta(seconds=scenario.time_of(k)), k)


def clip(scenario: Scenario, width: int = 640, height: int = 360, start: datetime = DEFAULT_START) -> Iterator[Frame]:
    """Every frame of the scenario, timestamped from ``start`` (UTC) at the scenario's fps."""
    for k in range(scenario.frame_count):
        yield frame_at(scenario, k, width, height, start)


def background(width: int = 640, height: int = 360, seed: int = 7) -> Image:
    """The empty scene as the camera sees it when nothing happens, without sensor noise (a clean reference)."""
    canvas = _canvas(width, height, seed)
    left, top = _margins(width, height)
    return canvas[top : top + height, left : left + width].copy()


def _margins(width: int, height: int) -> tuple[int, int]:
    return round(width * CANVAS_MARGIN), round(height * CANVAS_MARGIN)


def _camera_pose(scenario: Scenario, t: float, width: int, height: int) -> npt.NDArray[np.float64] | None:
    """2×3 affine from view-centred scene coordinates to view pixels, or None when the camera is where it was."""
    dx = dy = angle = 0.0
    for shift in scenario.active(Shift, t):
        progress = 1.0 if shift.ramp_s <= 0 else min(1.0, (t - shift.start_s) / shift.ramp_s)
        dx, dy = dx + shift.dx * progress * width, dy + shift.dy * progress * height
    for rotation in scenario.active(Rotate, t):
        angle += rotation.degrees
    if dx == dy == angle == 0.0:
        return None
    if angle == 0.0:  # whole pixels: a real camera that moved is as sharp as before, no interpolation blur
        dx, dy = round(dx), round(dy)
    matrix = np.asarray(cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0), dtype=np.float64)
    matrix[:, 2] += np.array((dx, dy))
    return matrix


def _view(scenario: Scenario, t: float, width: int, height: int, pose: npt.NDArray[np.float64] | None) -> Image:
    canvas = _canvas(width, height, scenario.seed)
    left, top = _margins(width, height)
    walkers = [w for effect in scenario.active(Workers, t) for w in _walkers(effect.count, scenario.seed)]
    pests = scenario.active(Pest, t)
    if pose is None:
        view = canvas[top : top + height, left : left + width].copy()
        origin = (0, 0)
    else:
        view = canvas.copy() if (walkers or pests) else canvas
        origin = (left, top)
    for walker in walkers:
        walker.draw(view, t, width, height, origin)
    for pest in pests:
        _draw_pest(view, pest, t, width, height, origin)
    if pose is None:
        return view
    to_view = pose.copy()
    to_view[:, 2] -= to_view[:, :2] @ np.array([left, top], dtype=np.float64)  # canvas pixel → view pixel
    return _u8(cv2.warpAffine(view, to_view, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))


# --- the static scene ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _canvas(width: int, height: int, seed: int) -> Image:
    """The static scene over the whole canvas (view plus margins); read-only, shared between calls."""
    left, top = _margins(width, height)
    cw, ch = width + 2 * left, height + 2 * top
    rng = np.random.default_rng(seed)
    img = np.zeros((ch, cw, 3), np.uint8)

    def px(fx: float, fy: float) -> tuple[int, int]:  # view fractions → canvas pixels
        return round((fx + CANVAS_MARGIN) * width), round((fy + CANVAS_MARGIN) * height)

    def rect(fx0: float, fy0: float, fx1: float, fy1: float, colour: BGR, thickness: int = -1) -> None:
        cv2.rectangle(img, px(fx0, fy0), px(fx1, fy1), colour, thickness, cv2.LINE_AA)

    grout = max(1, round(height * 0.004))
    wall_bottom, counter_top, floor_top = 0.58, 0.62, 0.80

    # wall: cream tiles, each a slightly different shade, with a band of blue tiles
    img[:, :] = (150, 155, 160)  # grout colour
    tile = height * 0.075
    _tiles(img, rng, tile, tile, 0, px(0, wall_bottom)[1], (212, 218, 224), 10, grout)
    band_top, band_bottom = px(0, 0.06)[1], px(0, 0.06 + 0.075)[1]
    band = img[band_top:band_bottom]
    band[np.all(band != (150, 155, 160), axis=2)] = (170, 120, 60)

    # notice board with a framed certificate (text lines) and a wall clock: unique structure for feature matching
    rect(0.74, 0.08, 0.93, 0.34, (40, 60, 90))
    rect(0.755, 0.10, 0.915, 0.32, (235, 238, 240))
    for i in range(7):
        length = 0.04 + 0.1 * rng.random()
        rect(0.77, 0.125 + i * 0.027, 0.77 + length, 0.135 + i * 0.027, (60, 60, 60))
    rect(0.86, 0.26, 0.90, 0.30, (40, 40, 200))  # red seal
    centre, radius = px(0.06, 0.18), round(height * 0.07)
    cv2.circle(img, centre, radius, (245, 245, 245), -1, cv2.LINE_AA)
    cv2.circle(img, centre, radius, (30, 30, 30), max(2, grout), cv2.LINE_AA)
    for angle, length in ((-60.0, 0.8), (200.0, 0.55)):
        tip = (
            round(centre[0] + radius * length * math.cos(math.radians(angle))),
            round(centre[1] + radius * length * math.sin(math.radians(angle))),
        )
        cv2.line(img, centre, tip, (20, 20, 20), max(2, grout), cv2.LINE_AA)

    # range hood over the right half of the counter
    hood = np.array([px(0.42, -0.3), px(0.70, -0.3), px(0.74, 0.02), px(0.38, 0.02)], np.int32)
    cv2.fillConvexPoly(img, hood, (175, 178, 180), cv2.LINE_AA)
    cv2.polylines(img, [hood], True, (90, 92, 95), max(2, grout), cv2.LINE_AA)

    # two shelves with jars, boxes and bottles
    for shelf_y in (0.24, 0.42):
        rect(0.12, shelf_y, 0.68, shelf_y + 0.02, (110, 115, 120))
        x = 0.13
        while x < 0.65:
            w = 0.025 + 0.045 * rng.random()
            h = 0.06 + 0.08 * rng.random()
            blue, green, red = (int(c) for c in rng.integers(30, 230, 3))
            rect(x, shelf_y - h, x + w, shelf_y, (blue, green, red))
            if rng.random() < 0.6:  # a label
                rect(x + 0.2 * w, shelf_y - 0.7 * h, x + 0.8 * w, shelf_y - 0.35 * h, (230, 230, 225))
                rect(x + 0.3 * w, shelf_y - 0.6 * h, x + 0.7 * w, shelf_y - 0.55 * h, (50, 50, 50))
            else:  # a lid
                rect(x - 0.003, shelf_y - h - 0.012, x + w + 0.003, shelf_y - h, (40, 40, 40))
            x += w + 0.008 + 0.02 * rng.random()

    # counter: brushed-steel top and cabinet fronts, things on the counter
    rect(-1.0, wall_bottom, 2.0, counter_top, (200, 202, 205))
    rect(-1.0, counter_top, 2.0, floor_top, (160, 163, 166))
    for i in range(-3, 10):
        x0 = i * 0.15
        rect(x0, counter_top + 0.01, x0 + 0.14, floor_top - 0.01, (150, 153, 157))
        rect(x0 + 0.06, counter_top + 0.04, x0 + 0.08, counter_top + 0.05, (60, 60, 60))
    rect(0.20, wall_bottom - 0.03, 0.34, wall_bottom, (90, 160, 200))  # cutting board
    cv2.ellipse(
        img,
        px(0.50, wall_bottom - 0.04),
        (round(0.05 * width), round(0.04 * height)),
        0,
        180,
        360,
        (70, 70, 75),
        -1,
        cv2.LINE_AA,
    )  # pot
    rect(0.44, wall_bottom - 0.045, 0.56, wall_bottom, (70, 70, 75))

    # floor: larger reddish tiles
    _tiles(img, rng, height * 0.11, height * 0.06, px(0, floor_top)[1], ch, (70, 90, 140), 12, grout)

    # fine static texture (brushed steel, grime), then light falling off towards the floor and the sides
    texture = np.asarray(
        cv2.GaussianBlur(rng.normal(0.0, 5.0, (ch, cw)).astype(np.float32), (0, 0), max(0.8, width / 800)),
        dtype=np.float32,
    )
    ys, xs = np.mgrid[0:ch, 0:cw].astype(np.float32)
    falloff = 1.0 - 0.25 * ((xs - cw / 2) / cw) ** 2 - 0.18 * (ys / ch)
    out = img.astype(np.float32) * falloff[:, :, None] + texture[:, :, None]
    result = np.clip(out, 0, 255).astype(np.uint8)
    result.setflags(write=False)
    return result


def _tiles(
    img: Image,
    rng: np.random.Generator,
    tile_w: float,
    tile_h: float,
    y0: int,
    y1: int,
    base: BGR,
    spread: int,
    grout: int,
) -> None:
    rows = math.ceil((y1 - y0) / tile_h)
    cols = math.ceil(img.shape[1] / tile_w)
    for r in range(rows):
        for c in range(cols):
            shade = rng.integers(-spread, spread + 1)
            colour = tuple(int(np.clip(v + shade, 0, 255)) for v in base)
            top = y0 + round(r * tile_h) + grout
            bottom = min(y1, y0 + round((r + 1) * tile_h)) - 1
            cv2.rectangle(img, (round(c * tile_w) + grout, top), (round((c + 1) * tile_w) - 1, bottom), colour, -1)


# --- moving things -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Walker:
    x0: float  # walks back and forth between x0 and x1 (fractions of the width)
    x1: float
    speed: float  # fraction of the width per second
    phase: float  # seconds
    feet_y: float  # fraction of the height
    size: float  # body height, fraction of the height
    jacket: BGR
    trousers: BGR
    skin: BGR
    hat: bool = field(default=True)

    def position(self, t: float) -> tuple[float, int]:
        span = self.x1 - self.x0
        travelled = (t + self.phase) * self.speed
        leg, direction = divmod(travelled, span)
        forward = int(leg) % 2 == 0
        x = self.x0 + direction if forward else self.x1 - direction
        return x, (1 if forward else -1)

    def draw(self, img: Image, t: float, width: int, height: int, origin: tuple[int, int]) -> None:
        fx, _ = self.position(t)
        h = self.size * height
        cx, feet = origin[0] + fx * width, origin[1] + self.feet_y * height
        stride = math.sin((t + self.phase) * self.speed * width / (0.25 * h) * math.pi) * 0.12 * h
        hip = feet - 0.47 * h
        shoulder = feet - 0.82 * h

        def pt(x: float, y: float) -> tuple[int, int]:
            return round(x), round(y)

        leg = max(2, round(0.07 * h))
        cv2.line(img, pt(cx - 0.03 * h, hip), pt(cx - stride, feet), self.trousers, leg, cv2.LINE_AA)
        cv2.line(img, pt(cx + 0.03 * h, hip), pt(cx + stride, feet), self.trousers, leg, cv2.LINE_AA)
        body = np.array(
            [
                pt(cx - 0.13 * h, shoulder),
                pt(cx + 0.13 * h, shoulder),
                pt(cx + 0.11 * h, hip + 0.05 * h),
                pt(cx - 0.11 * h, hip + 0.05 * h),
            ],
            np.int32,
        )
        cv2.fillConvexPoly(img, body, self.jacket, cv2.LINE_AA)
        arm = max(2, round(0.05 * h))
        cv2.line(
            img,
            pt(cx - 0.13 * h, shoulder + 0.03 * h),
            pt(cx - 0.15 * h + stride * 0.6, hip),
            self.jacket,
            arm,
            cv2.LINE_AA,
        )
        cv2.line(
            img,
            pt(cx + 0.13 * h, shoulder + 0.03 * h),
            pt(cx + 0.15 * h - stride * 0.6, hip),
            self.jacket,
            arm,
            cv2.LINE_AA,
        )
        head = pt(cx, shoulder - 0.08 * h)
        cv2.ellipse(img, head, (round(0.065 * h), round(0.08 * h)), 0, 0, 360, self.skin, -1, cv2.LINE_AA)
        if self.hat:
            cv2.rectangle(
                img,
                pt(cx - 0.06 * h, shoulder - 0.22 * h),
                pt(cx + 0.06 * h, shoulder - 0.13 * h),
                (245, 245, 245),
                -1,
                cv2.LINE_AA,
            )


@lru_cache(maxsize=16)
def _walkers(count: int, seed: int) -> tuple[_Walker, ...]:
    rng = np.random.default_rng((seed, 1))
    jackets: list[BGR] = [(240, 240, 240), (235, 235, 230), (60, 60, 60), (200, 120, 40)]
    walkers = []
    for i in range(count):
        x0 = 0.05 + 0.3 * rng.random()
        feet = 0.86 + 0.1 * rng.random()
        walkers.append(
            _Walker(
                x0=x0,
                x1=min(0.97, x0 + 0.3 + 0.4 * rng.random()),
                speed=0.04 + 0.08 * rng.random(),
                phase=float(rng.random() * 60),
                feet_y=feet,
                size=0.45 + 0.6 * (feet - 0.86),
                jacket=jackets[i % len(jackets)],
                trousers=(40 + i * 10, 40, 40),
                skin=(120 + int(rng.integers(0, 40)), 160 + int(rng.integers(0, 30)), 200),
                hat=i % 3 != 2,
            )
        )
    return tuple(walkers)


def _draw_pest(img: Image, pest: Pest, t: float, width: int, height: int, origin: tuple[int, int]) -> None:
    progress = (t - pest.start_s) / max(1e-6, pest.end_s - pest.start_s)
    fx = pest.from_x + (pest.to_x - pest.from_x) * progress
    length = pest.length * width
    cx, cy = origin[0] + fx * width, origin[1] + pest.floor_y * height - 0.2 * length
    heading = 1 if pest.to_x >= pest.from_x else -1
    centre = (round(cx), round(cy))
    cv2.ellipse(img, centre, (round(length / 2), max(2, round(length / 5))), 0, 0, 360, (45, 55, 65), -1, cv2.LINE_AA)
    head = (round(cx + heading * 0.5 * length), round(cy))
    cv2.circle(img, head, max(2, round(length / 7)), (40, 50, 60), -1, cv2.LINE_AA)
    tail_end = (round(cx - heading * 1.1 * length), round(cy + 0.1 * length))
    cv2.line(
        img,
        (round(cx - heading * 0.45 * length), round(cy)),
        tail_end,
        (60, 70, 80),
        max(1, round(length / 20)),
        cv2.LINE_AA,
    )


def _draw_person_at_lens(img: Image, passing: PersonPassing, t: float) -> None:
    """A shoulder and head a few centimetres from the lens: dark, huge, blurred, sweeping across the view."""
    height, width = img.shape[:2]
    progress = (t - passing.start_s) / max(1e-6, passing.end_s - passing.start_s)
    body_w = passing.coverage * width * 1.25
    cx = -0.5 * body_w + progress * (width + body_w)
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (round(cx), round(height * 1.05)), (round(body_w / 2), round(height * 0.75)), 0, 0, 360, 1.0, -1)
    cv2.ellipse(
        mask, (round(cx), round(height * 0.25)), (round(body_w * 0.22), round(height * 0.3)), 0, 0, 360, 1.0, -1
    )
    mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), width / 60), dtype=np.float32)[:, :, None]
    dark = np.array((38, 42, 48), np.float32)
    img[:] = (img.astype(np.float32) * (1 - mask) + dark * mask).astype(np.uint8)


def _relight(img: Image, lights: Lights) -> Image:
    levels = np.arange(256, dtype=np.float64) / 255.0
    lut = np.clip(lights.ambient + lights.gain * 255.0 * levels**lights.gamma, 0, 255).astype(np.uint8)
    out = _u8(cv2.LUT(img, lut))
    if lights.greyscale:
        out = _u8(cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    return out


@lru_cache(maxsize=8)
def _cover_cached(width: int, height: int, seed: int, level: float) -> Image:
    rng = np.random.default_rng((seed, 2))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.random() * 2 * math.pi
    gradient = (np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5)) * 6.0
    leak = 5.0 * np.exp(-(((xs / width - 0.9) / 0.15) ** 2 + ((ys / height - 0.1) / 0.2) ** 2))  # light at one edge
    grey = np.clip(level + gradient + leak, 0, 255)
    tint = np.array((0.9, 1.0, 1.15), np.float32)  # skin/cloth is a little warm
    out = np.clip(grey[:, :, None] * tint, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def _cover(width: int, height: int, seed: int, level: float) -> Image:
    return _cover_cached(width, height, seed, level).copy()


_NOISE_PAD = 32  # a per-size bank of noise, (H + pad) × (W + pad); each frame reads it at its own offset


@lru_cache(maxsize=8)
def _noise_bank(height: int, width: int, sigma: float, seed: int) -> tuple[Image, Image]:
    """Rounded Gaussian noise split into its positive and negative parts, so adding it is two saturating uint8
    operations (fast) instead of a float round trip."""
    rng = np.random.default_rng((seed, 3))
    noise = np.rint(rng.standard_normal((height + _NOISE_PAD, width + _NOISE_PAD, 3)) * sigma)
    positive, negative = np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)
    positive.setflags(write=False)
    negative.setflags(write=False)
    return positive, negative


def _add_noise(img: Image, sigma: float, seed: int, k: int) -> Image:
    """Sensor noise for frame ``k``: the bank read at an offset that differs from one frame to the next (the
    offsets repeat only after pad² frames, so no two frames within ~17 minutes at 1 fps share their noise)."""
    if sigma <= 0:
        return img
    height, width = img.shape[:2]
    positive, negative = _noise_bank(height, width, float(sigma), seed)
    cell = (k * 389) % (_NOISE_PAD * _NOISE_PAD)  # 389 is prime, so k ↦ cell is a permutation of the pad² cells
    dy, dx = divmod(cell, _NOISE_PAD)
    window = np.s_[dy : dy + height, dx : dx + width]
    return _u8(cv2.subtract(cv2.add(img, positive[window]), negative[window]))


def _u8(image: object) -> Image:
    """OpenCV's results typed as what they are (its stubs say "MatLike")."""
    return np.asarray(image, dtype=np.uint8)
