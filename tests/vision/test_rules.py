"""Detections → findings: persistence, median score, person anchoring, cooldown, area masks, best snapshot."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from vision.rules import DEFAULT_PERSON_REQUIRED, DetectionRules, RuleFiring, RulesConfig
from vision.types import Box, Detection, Frame

T0 = datetime(2025, 3, 4, 3, 0, tzinfo=UTC)
IMAGE = np.zeros((360, 640, 3), np.uint8)
PERSON = Detection(Box(300, 60, 80, 260), "person", 0.9)
HEAD = Box(320, 62, 40, 36)  # on the person's head


def frame(i: int, step: float = 1.0) -> Frame:
    return Frame(IMAGE, T0 + timedelta(seconds=i * step), i)


def no_hat(score: float, box: Box = HEAD) -> Detection:
    return Detection(box, "no_hat", score)


def feed(rules: DetectionRules, samples: list[list[Detection]], step: float = 1.0) -> list[list[RuleFiring]]:
    return [rules.observe(frame(i, step), detections) for i, detections in enumerate(samples)]


def fired_at(results: list[list[RuleFiring]]) -> list[int]:
    return [i for i, firings in enumerate(results) if firings]


def test_fires_exactly_on_the_third_of_five_samples() -> None:
    results = feed(DetectionRules(), [[PERSON, no_hat(0.9)]] * 3)
    assert fired_at(results) == [2]
    (firing,) = results[2]
    assert firing.finding.alert_type == "no_hat"
    assert firing.finding.started_at == T0
    assert firing.finding.at == T0 + timedelta(seconds=2)


def test_three_of_five_with_gaps_fires_on_the_fifth_but_two_in_the_last_five_never() -> None:
    hit, miss = [PERSON, no_hat(0.9)], [PERSON]
    assert fired_at(feed(DetectionRules(), [hit, miss, hit, miss, hit])) == [4]
    assert fired_at(feed(DetectionRules(), [hit, miss, miss, miss, hit, hit, miss, miss, miss])) == []


def test_the_median_score_of_the_hits_must_reach_the_threshold() -> None:
    def scores(*values: float) -> list[list[Detection]]:
        return [[PERSON, no_hat(v)] for v in values]

    assert fired_at(feed(DetectionRules(), scores(0.9, 0.55, 0.9))) == [2]  # median 0.9: one weak sample is fine
    assert fired_at(feed(DetectionRules(), scores(0.9, 0.6, 0.65))) == []  # median 0.65 < 0.7
    assert fired_at(feed(DetectionRules(), scores(0.9, 0.6, 0.65, 0.8))) == [3]  # median 0.725
    assert fired_at(feed(DetectionRules(), scores(0.95, 0.45, 0.95, 0.1))) == []  # < min_score: not a hit
    strict = DetectionRules(RulesConfig(thresholds={"no_hat": 0.95}))
    assert fired_at(feed(strict, scores(0.9, 0.9, 0.9, 0.9, 0.9))) == []


def test_a_violation_must_belong_to_a_person() -> None:
    far = Box(20, 20, 40, 36)
    assert fired_at(feed(DetectionRules(), [[PERSON, no_hat(0.9, far)]] * 5)) == []
    assert fired_at(feed(DetectionRules(), [[no_hat(0.9)]] * 5)) == []  # nobody at all
    # Just outside the person box but within the 10 % margin (a hat sticking out above the box) still belongs.
    above = Box(330, 40, 30, 36)  # centre y = 58 < 60, grown box starts at 34
    (firing,) = feed(DetectionRules(), [[PERSON, no_hat(0.9, above)]] * 3)[2]
    assert firing.person == PERSON.box
    assert firing.finding.boxes == (above, PERSON.box)
    assert firing.finding.metrics["box_roles"] == ["violation", "person"]


def test_an_open_bin_needs_no_person() -> None:
    assert "trash_can_open" not in DEFAULT_PERSON_REQUIRED
    assert {"no_hat", "no_mask", "no_uniform", "smoking", "phone_use"} <= DEFAULT_PERSON_REQUIRED
    bin_open = Detection(Box(20, 200, 80, 80), "bin_open", 0.9)
    (firing,) = feed(DetectionRules(), [[bin_open]] * 3)[2]
    assert firing.finding.alert_type == "trash_can_open"
    assert firing.person is None and firing.finding.boxes == (bin_open.box,)


def test_iou_attachment_suits_person_sized_boxes_only() -> None:
    rules = DetectionRules(RulesConfig(attach_mode="iou"))
    body = Detection(Box(305, 100, 75, 210), "no_uniform", 0.9)  # IoU with the person ≈ 0.76
    assert fired_at(feed(rules, [[PERSON, body]] * 3)) == [2]
    assert fired_at(feed(DetectionRules(RulesConfig(attach_mode="iou")), [[PERSON, no_hat(0.9)]] * 5)) == []


def test_cooldown_suppresses_the_second_firing_and_then_expires() -> None:
    rules = DetectionRules(RulesConfig(cooldown=timedelta(seconds=60)))
    results = feed(rules, [[PERSON, no_hat(0.9)]] * 70)
    assert fired_at(results) == [2, 62]
    # Cooldowns are per alert type: a phone in the same minute still fires.
    phone = Detection(Box(340, 150, 20, 30), "phone", 0.9)
    later = [rules.observe(frame(70 + i), [PERSON, no_hat(0.9), phone]) for i in range(3)]
    assert [[f.finding.alert_type for f in firings] for firings in later] == [[], [], ["phone_use"]]


def test_samples_too_far_apart_do_not_persist() -> None:
    assert fired_at(feed(DetectionRules(), [[PERSON, no_hat(0.9)]] * 5, step=60.0)) == []


def test_area_masks_limit_no_mask_to_the_special_room() -> None:
    no_mask = Detection(Box(320, 90, 40, 30), "no_mask", 0.9)
    kitchen = DetectionRules(camera_areas={"cooking"})
    assert "no_mask" not in kitchen.alert_types and "no_hat" in kitchen.alert_types
    assert fired_at(feed(kitchen, [[PERSON, no_mask]] * 5)) == []
    special_room = DetectionRules(camera_areas={"special_room"})
    assert fired_at(feed(special_room, [[PERSON, no_mask]] * 5)) == [2]
    # Types not listed apply everywhere, also on a camera with no area recorded.
    assert fired_at(feed(DetectionRules(), [[PERSON, no_hat(0.9)]] * 3)) == [2]


def test_the_best_snapshot_is_whole_then_large_and_sure() -> None:
    rules = DetectionRules()
    person_left = Detection(Box(0, 60, 120, 260), "person", 0.9)
    samples = [
        [person_left, Detection(Box(0, 62, 60, 50), "no_hat", 0.95)],  # largest and surest, but cut by the edge
        [PERSON, no_hat(0.8, Box(320, 62, 44, 40))],  # whole: 1760 px² × 0.8 = 1408
        [PERSON, no_hat(0.9, Box(325, 62, 36, 34))],  # whole: 1224 px² × 0.9 = 1102
    ]
    (firing,) = feed(rules, samples)[2]
    assert firing.snapshot.sequence == 1
    assert firing.detection.box == Box(320, 62, 44, 40)
    assert firing.finding.metrics["snapshot_cut_by_edge"] is False
    assert firing.finding.score == 0.9  # median of 0.95, 0.8, 0.9


def test_the_finding_carries_model_provenance_and_thresholds() -> None:
    model = {"name": "kitchen-dress", "version": "2025.03", "sha256": "ab" * 32}
    (firing,) = feed(DetectionRules(model=model), [[PERSON, no_hat(0.9)]] * 3)[2]
    metrics = firing.finding.metrics
    assert metrics["model"] == model
    assert metrics["threshold"] == 0.7 and metrics["min_score"] == 0.5
    assert metrics["scores"] == [0.9, 0.9, 0.9] and metrics["hits"] == 3 and metrics["classes"] == ["no_hat"]


def test_unmapped_classes_are_ignored_and_unknown_alert_types_refused() -> None:
    unsure = Detection(HEAD, "mask_uncertain", 0.99)
    assert fired_at(feed(DetectionRules(camera_areas={"special_room"}), [[PERSON, unsure]] * 5)) == []
    with pytest.raises(ValueError, match="unknown alert types"):
        RulesConfig(class_to_alert_type={"hat": "no_hatt"})
    with pytest.raises(ValueError, match="min_hits"):
        RulesConfig(min_hits=6)


def test_the_vision_library_imports_no_database_or_service_code() -> None:
    code = (
        "import sys, vision.rules, vision.motion, vision.clips\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'sqlmodel', 'fastapi', 'temporalio', 'minio', 'psycopg', 'ultralytics', 'torch'})\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""
