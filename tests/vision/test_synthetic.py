"""The synthetic kitchen: deterministic, every scenario renders, and each effect does what it says."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import cv2
import numpy as np
import pytest

from vision import synthetic
from vision.synthetic import (
    Black,
    Covered,
    Defocus,
    Frozen,
    Lights,
    PersonPassing,
    Pest,
    Rotate,
    Scenario,
    Shift,
    Workers,
)


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def still(*effects: synthetic.Effect, noise_sigma: float = 0.0, duration_s: float = 60.0) -> Scenario:
    return Scenario("still", duration_s, noise_sigma=noise_sigma, effects=effects)


def test_rendering_is_deterministic() -> None:
    clip = synthetic.normal_activity(60, workers=3)
    first = synthetic.render_frame(clip, 17, 320, 180)
    again = synthetic.render_frame(clip, 17, 320, 180)
    assert first.shape == (180, 320, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    other_seed = synthetic.render_frame(dataclasses.replace(clip, seed=8), 17, 320, 180)
    assert not np.array_equal(first, other_seed)


@pytest.mark.parametrize("name", sorted(synthetic.SCENARIOS))
def test_every_named_scenario_renders(name: str) -> None:
    scenario = synthetic.SCENARIOS[name]()
    assert scenario.frame_count == round(scenario.duration_s * scenario.fps)
    for k in (0, scenario.frame_count // 2, scenario.frame_count - 1):
        frame = synthetic.frame_at(scenario, k, 160, 90)
        assert frame.image.shape == (90, 160, 3) and frame.image.dtype == np.uint8
        assert frame.sequence == k
        assert frame.captured_at == synthetic.DEFAULT_START + timedelta(seconds=k / scenario.fps)
        assert frame.captured_at.utcoffset() == timedelta(0)


def test_clip_yields_every_frame_in_time_order() -> None:
    frames = list(synthetic.clip(dataclasses.replace(synthetic.static_scene(3), fps=2.0), 64, 36))
    assert [f.sequence for f in frames] == list(range(6))
    assert [(f.captured_at - frames[0].captured_at).total_seconds() for f in frames] == [0, 0.5, 1, 1.5, 2, 2.5]


def test_the_scene_is_the_same_at_any_size() -> None:
    small = grey(synthetic.background(640, 360))
    large = grey(cv2.resize(synthetic.background(1280, 720), (640, 360), interpolation=cv2.INTER_AREA))
    assert float(np.abs(small - large).mean()) < 6  # measured 4.3: grout lines are whole pixels at either size
    assert np.corrcoef(small.ravel(), large.ravel())[0, 1] > 0.95


def test_the_scene_is_textured_like_a_kitchen() -> None:
    image = grey(synthetic.background())
    assert 100 < image.mean() < 180
    assert image.std() > 30
    assert cv2.Laplacian(image, cv2.CV_32F).var() > 100
    orb = cv2.ORB.create(500)
    assert len(orb.detect(image.astype(np.uint8), None)) == 500


def test_sensor_noise_has_the_configured_sigma_and_differs_per_frame() -> None:
    for sigma in (3.0, 6.0):
        clip = still(noise_sigma=sigma)
        a, b = (synthetic.render_frame(clip, k)[:, :, 1].astype(np.float32) for k in (10, 11))  # one channel
        clean = synthetic.render_frame(still(), 10)[:, :, 1].astype(np.float32)
        assert float((a - clean).std()) == pytest.approx(sigma, rel=0.15)
        assert float((a - b).std()) == pytest.approx(sigma * np.sqrt(2), rel=0.15)


def test_frozen_repeats_one_frame_bit_for_bit() -> None:
    clip = Scenario("f", 30, effects=(Workers(count=2), Frozen(start_s=10)))
    assert not np.array_equal(synthetic.render_frame(clip, 8), synthetic.render_frame(clip, 9))
    frozen = [synthetic.render_frame(clip, k) for k in (10, 11, 25)]
    assert all(np.array_equal(frozen[0], other) for other in frozen[1:])


def test_workers_walk() -> None:
    clip = Scenario("w", 60, noise_sigma=0, effects=(Workers(count=3),))
    empty = grey(synthetic.background())
    changed = [np.abs(grey(synthetic.render_frame(clip, k)) - empty) > 20 for k in (5, 15)]
    for mask in changed:
        assert 0.02 < mask.mean() < 0.3  # people in view, not covering the kitchen
    assert (changed[0] ^ changed[1]).mean() > 0.01  # and they moved


def test_covered_and_black_are_dark_and_featureless() -> None:
    covered = grey(synthetic.render_frame(still(Covered(), noise_sigma=3), 5))
    black = grey(synthetic.render_frame(still(Black(), noise_sigma=3), 5))
    assert covered.mean() < 25 and cv2.resize(covered, (160, 90), interpolation=cv2.INTER_AREA).std() < 6
    assert black.mean() < 3


def test_lights_scale_brightness_and_keep_the_scene() -> None:
    lit = grey(synthetic.render_frame(still(), 5))
    off = grey(synthetic.render_frame(still(Lights(gain=0.15)), 5))
    assert off.mean() == pytest.approx(0.15 * lit.mean(), rel=0.1)
    assert np.corrcoef(lit.ravel(), off.ravel())[0, 1] > 0.95
    ir = synthetic.render_frame(still(Lights(gain=0.4, greyscale=True)), 5)
    assert np.array_equal(ir[:, :, 0], ir[:, :, 2])


def test_defocus_blurs() -> None:
    sharp = synthetic.render_frame(still(), 5)
    blurred = synthetic.render_frame(still(Defocus(sigma=4)), 5)
    ratio = cv2.Laplacian(blurred, cv2.CV_32F).var() / cv2.Laplacian(sharp, cv2.CV_32F).var()
    assert ratio < 0.05


def test_shift_moves_the_view_by_the_given_fraction() -> None:
    before = grey(synthetic.render_frame(still(), 5))
    after = grey(synthetic.render_frame(still(Shift(dx=0.1, dy=-0.05)), 5))
    (dx, dy), _ = cv2.phaseCorrelate(before, after)
    assert (dx, dy) == (pytest.approx(64, abs=1), pytest.approx(-18, abs=1))
    assert after.min() > 0 or before.min() == 0  # scene content at the borders, no black wedge


def test_shift_ramp_drifts_slowly() -> None:
    clip = still(Shift(dx=0.1, start_s=10, ramp_s=100), duration_s=200)
    base = grey(synthetic.render_frame(clip, 0))
    shifts = [cv2.phaseCorrelate(base, grey(synthetic.render_frame(clip, k)))[0][0] for k in (10, 60, 110, 150)]
    assert shifts == [
        pytest.approx(0, abs=0.5),
        pytest.approx(32, abs=1),
        pytest.approx(64, abs=1),
        pytest.approx(64, abs=1),
    ]


def test_rotation_turns_the_view_about_its_centre() -> None:
    before = synthetic.render_frame(still(), 5)
    after = synthetic.render_frame(still(Rotate(degrees=5)), 5)
    undo = cv2.getRotationMatrix2D((320, 180), -5, 1.0)
    restored = cv2.warpAffine(after, undo, (640, 360))
    centre = np.s_[60:300, 100:540]
    assert float(np.abs(grey(restored)[centre] - grey(before)[centre]).mean()) < 8
    assert float(np.abs(grey(after)[centre] - grey(before)[centre]).mean()) > 20


def test_person_passing_covers_much_of_the_frame_only_while_passing() -> None:
    clip = still(PersonPassing(start_s=10, end_s=13, coverage=0.6), duration_s=20)
    empty = grey(synthetic.render_frame(clip, 0))

    def covered_fraction(k: int) -> float:
        return float((np.abs(grey(synthetic.render_frame(clip, k)) - empty) > 30).mean())

    assert covered_fraction(9) == 0 and covered_fraction(13) == 0
    assert max(covered_fraction(k) for k in (11, 12)) > 0.35


def test_pest_is_a_small_low_moving_blob_only_during_its_run() -> None:
    night = Lights(gain=0.35, greyscale=True)
    clip = still(night, Pest(start_s=10, end_s=16), duration_s=20)
    empty = grey(synthetic.render_frame(clip, 0))
    masks = {k: np.abs(grey(synthetic.render_frame(clip, k)) - empty) > 8 for k in (9, 11, 14, 16)}
    assert not masks[9].any() and not masks[16].any()
    for k in (11, 14):
        ys = np.nonzero(masks[k])[0]
        assert 0 < masks[k].mean() < 0.01  # small
        assert ys.min() > 0.75 * 360  # on the floor
    assert np.nonzero(masks[14])[1].mean() > np.nonzero(masks[11])[1].mean() + 50  # running to the right
