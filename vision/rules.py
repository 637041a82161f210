"""From detections to alert findings: the rules between a detector's boxes and an alert (issue item 6).

Per camera, every sampled frame's detections go through:

1. class → alert type (unmapped classes are ignored, so an "uncertain mask" class never becomes ``no_mask``);
2. the single-detection floor ``min_score``;
3. area masks: an alert type applies only in the camera areas that require it (``no_mask`` only in 专间);
4. person anchoring: dress and behaviour violations must sit on a person box (Frigate's "attributes");
5. persistence: a sliding window of the last ``window_size`` samples per alert type; it fires when at least
   ``min_hits`` samples have the violation and the median of their scores reaches the threshold (Frigate's
   "median of the score history" rule);
6. a cooldown per camera × alert type, so a cook without a hat for an hour is one alert, not 3,600;
7. the best snapshot among the window's samples: a box not cut by the frame edge, then the largest box × score.

The result carries everything the alert needs as its reason: scores, thresholds, boxes and the model's name,
version and sha256 (given once, at construction).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

# The taxonomy module is pure (dataclasses and enums, no database); tests check that importing this module pulls
# in no SQL library.
from domain.alerts.taxonomy import ALERT_TYPES, AlertCategory, AlertType
from vision.types import Box, Detection, Finding, Frame

AttachMode = Literal["center", "iou", "overlap"]

# Common class names of kitchen models → alert types (reference §4: Tencent TIIA labels, open-source projects).
DEFAULT_CLASS_MAP: Mapping[str, str] = MappingProxyType({
    "no_hat": "no_hat",
    "no_chef_hat": "no_hat",
    "no_mask": "no_mask",
    "no_uniform": "no_uniform",
    "shirtless": "no_uniform",
    "cigarette": "smoking",
    "smoking": "smoking",
    "phone": "phone_use",
    "phone_use": "phone_use",
    "bin_open": "trash_can_open",
    "trash_can_open": "trash_can_open",
    "rat": "pest",
    "mouse": "pest",
    "cockroach": "pest",
})

# Dress and behaviour types are about a person, except an open bin: its lid is open whether anyone is there or not.
DEFAULT_PERSON_REQUIRED: frozenset[str] = frozenset(
    info.alert_type.value
    for info in ALERT_TYPES.values()
    if info.category in (AlertCategory.dress, AlertCategory.behaviour)
) - {AlertType.trash_can_open.value}

# Masks are compulsory only in the special rooms (专间: cold dishes, sushi, decorating); area codes are those of
# domain.merchants.models.CameraArea.
DEFAULT_REQUIRED_AREAS: Mapping[str, frozenset[str]] = MappingProxyType({"no_mask": frozenset({"special_room"})})


@dataclass(frozen=True)
class RulesConfig:
    class_to_alert_type: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLASS_MAP))
    person_classes: frozenset[str] = frozenset({"person"})
    # Alert types whose box must belong to a person box. Empty for a model whose violation boxes are people
    # already (e.g. a class "person_no_hat").
    person_required: frozenset[str] = DEFAULT_PERSON_REQUIRED
    # How a violation box belongs to a person: its centre inside the person box grown by ``person_expand`` on each
    # side (default; works for a hat and for a whole-body "no uniform"), its IoU with it (only for person-sized
    # violation boxes), or the fraction of the violation box inside it.
    attach_mode: AttachMode = "center"
    person_expand: float = 0.1
    attach_min_iou: float = 0.3
    attach_min_overlap: float = 0.5
    # Frigate's defaults: a detection below min_score is dropped; the median score must reach threshold.
    min_score: float = 0.5
    threshold: float = 0.7
    thresholds: Mapping[str, float] = field(default_factory=dict)  # per alert type, overrides threshold
    window_size: int = 5
    min_hits: int = 3
    # A sample older than this (relative to the newest) leaves the window: sampling may be motion-gated.
    max_sample_age: timedelta = timedelta(seconds=30)
    cooldown: timedelta = timedelta(minutes=10)
    cooldowns: Mapping[str, timedelta] = field(default_factory=dict)  # per alert type, overrides cooldown
    # Alert type → camera areas where it applies; a type not listed applies everywhere.
    required_areas: Mapping[str, frozenset[str]] = field(default_factory=lambda: dict(DEFAULT_REQUIRED_AREAS))
    # A box within this many pixels of the frame border is "cut by the edge" for the snapshot choice.
    edge_margin_px: float = 2.0

    def __post_init__(self) -> None:
        known = {t.value for t in AlertType}
        named = {*self.class_to_alert_type.values(), *self.person_required, *self.thresholds, *self.cooldowns,
                 *self.required_areas}
        unknown = sorted(named - known)
        if unknown:
            raise ValueError(f"unknown alert types {unknown}; known types: {', '.join(sorted(known))}")
        if not 1 <= self.min_hits <= self.window_size:
            raise ValueError("need 1 <= min_hits <= window_size")
        if not 0 <= self.min_score <= 1 or not 0 <= self.threshold <= 1:
            raise ValueError("scores are in [0, 1]")

    def threshold_for(self, alert_type: str) -> float:
        return self.thresholds.get(alert_type, self.threshold)

    def cooldown_for(self, alert_type: str) -> timedelta:
        return self.cooldowns.get(alert_type, self.cooldown)


@dataclass(frozen=True)
class Sample:
    """The strongest qualifying detection of one alert type in one sampled frame."""

    frame: Frame
    detection: Detection
    person: Box | None

    @property
    def at(self) -> datetime:
        return self.frame.captured_at


@dataclass(frozen=True)
class RuleFiring:
    """A finding ready to become an alert, and the frame chosen as its snapshot."""

    finding: Finding
    snapshot: Frame
    detection: Detection  # the violation in the snapshot frame
    person: Box | None


@dataclass
class _Window:
    entries: deque[tuple[datetime, Sample | None]]
    last_fired_at: datetime | None = None


class DetectionRules:
    """One per camera. ``observe`` takes every sampled frame with its detections (an empty list counts: it is a
    sample without the violation) and returns the findings that fire on it."""

    def __init__(
        self,
        config: RulesConfig | None = None,
        *,
        camera_areas: Collection[str] = (),
        model: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config or RulesConfig()
        self.camera_areas = frozenset(camera_areas)
        # Provenance copied into every finding: name, version, sha256 (and whatever else the registry keeps).
        self.model = dict(model or {})
        self._windows: dict[str, _Window] = {}

    @property
    def alert_types(self) -> frozenset[str]:
        """The alert types this camera can raise: mapped by the model and allowed in the camera's areas."""
        return frozenset(t for t in self.config.class_to_alert_type.values() if self.applies_here(t))

    def applies_here(self, alert_type: str) -> bool:
        areas = self.config.required_areas.get(alert_type)
        return areas is None or not areas.isdisjoint(self.camera_areas)

    def observe(self, frame: Frame, detections: Sequence[Detection]) -> list[RuleFiring]:
        samples = self._samples(frame, detections)
        firings = []
        for alert_type in sorted(self.alert_types):
            window = self._windows.setdefault(alert_type, _Window(deque(maxlen=self.config.window_size)))
            window.entries.append((frame.captured_at, samples.get(alert_type)))
            oldest = frame.captured_at - self.config.max_sample_age
            while window.entries and window.entries[0][0] < oldest:
                window.entries.popleft()
            firing = self._fire(alert_type, window, frame.captured_at)
            if firing is not None:
                firings.append(firing)
        return firings

    def reset(self) -> None:
        """Forget windows and cooldowns (e.g. after the camera was moved or its model changed)."""
        self._windows.clear()

    # -- steps ------------------------------------------------------------------------------------------------

    def _samples(self, frame: Frame, detections: Sequence[Detection]) -> dict[str, Sample]:
        config = self.config
        persons = [d.box for d in detections if d.class_name in config.person_classes]
        best: dict[str, Sample] = {}
        for detection in detections:
            alert_type = config.class_to_alert_type.get(detection.class_name)
            if alert_type is None or detection.score < config.min_score or not self.applies_here(alert_type):
                continue
            person = None
            if alert_type in config.person_required:
                person = self._owner(detection.box, persons)
                if person is None:
                    continue  # a hat-less head with no body, a phone on the counter
            current = best.get(alert_type)
            if current is None or detection.score > current.detection.score:
                best[alert_type] = Sample(frame, detection, person)
        return best

    def _owner(self, box: Box, persons: Sequence[Box]) -> Box | None:
        """The person box the violation belongs to (the best fitting one), or None."""
        config = self.config
        best, best_fit = None, 0.0
        for person in persons:
            if config.attach_mode == "center":
                grown = _grow(person, config.person_expand)
                cx, cy = box.x + box.w / 2, box.y + box.h / 2
                inside = grown.x <= cx <= grown.x + grown.w and grown.y <= cy <= grown.y + grown.h
                # Among people that contain the centre, the one holding most of the box (tiny floor: > 0).
                fit = max(_inside_fraction(box, grown), 1e-9) if inside else 0.0
            elif config.attach_mode == "iou":
                fit = box.iou(person)
                fit = fit if fit >= config.attach_min_iou else 0.0
            else:
                fit = _inside_fraction(box, _grow(person, config.person_expand))
                fit = fit if fit >= config.attach_min_overlap else 0.0
            if fit > best_fit:
                best, best_fit = person, fit
        return best

    def _fire(self, alert_type: str, window: _Window, now: datetime) -> RuleFiring | None:
        config = self.config
        hits = [sample for _, sample in window.entries if sample is not None]
        if len(hits) < config.min_hits:
            return None
        scores = [s.detection.score for s in hits]
        median = statistics.median(scores)
        threshold = config.threshold_for(alert_type)
        if median < threshold:
            return None
        if window.last_fired_at is not None and now - window.last_fired_at < config.cooldown_for(alert_type):
            return None
        window.last_fired_at = now
        chosen = max(hits, key=self._snapshot_rank)
        boxes = (chosen.detection.box,) if chosen.person is None else (chosen.detection.box, chosen.person)
        finding = Finding(
            alert_type=alert_type,
            started_at=hits[0].at,
            at=now,
            score=round(median, 4),
            metrics={
                "model": dict(self.model),
                "classes": sorted({s.detection.class_name for s in hits}),
                "scores": [round(s, 4) for s in scores],
                "median_score": round(median, 4),
                "threshold": threshold,
                "min_score": config.min_score,
                "hits": len(hits),
                "window": len(window.entries),
                "min_hits": config.min_hits,
                "box_roles": ["violation", "person"][: len(boxes)],
                "snapshot_at": chosen.at.isoformat(),
                "snapshot_score": round(chosen.detection.score, 4),
                "snapshot_cut_by_edge": self._cut(chosen.detection.box, chosen.frame),
            },
            boxes=boxes,
        )
        return RuleFiring(finding, chosen.frame, chosen.detection, chosen.person)

    def _snapshot_rank(self, sample: Sample) -> tuple[bool, bool, float]:
        """Frigate's choice: a box cut by the frame edge loses; then the larger, surer box wins."""
        box, frame = sample.detection.box, sample.frame
        person_whole = sample.person is None or not self._cut(sample.person, frame)
        return (not self._cut(box, frame), person_whole, box.area * sample.detection.score)

    def _cut(self, box: Box, frame: Frame) -> bool:
        m = self.config.edge_margin_px
        return box.x <= m or box.y <= m or box.x + box.w >= frame.width - m or box.y + box.h >= frame.height - m


def _grow(box: Box, fraction: float) -> Box:
    dx, dy = box.w * fraction, box.h * fraction
    return Box(box.x - dx, box.y - dy, box.w + 2 * dx, box.h + 2 * dy)


def _inside_fraction(box: Box, container: Box) -> float:
    left, top = max(box.x, container.x), max(box.y, container.y)
    right, bottom = min(box.x + box.w, container.x + container.w), min(box.y + box.h, container.y + container.h)
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    return inter / box.area if box.area > 0 else 0.0
