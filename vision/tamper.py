"""Camera tamper checks against a per-camera reference view (issue item 3): covered, defocused, moved or turned.

Frigate has no tamper detection, so this follows the literature summarised in the vision reference (§3.3–3.4):
compare each sampled frame with a reference view of the same camera taken when it was healthy.

================  ===========================================================================================
alert type        per-sample condition (defaults; every threshold is a :class:`TamperConfig` field)
================  ===========================================================================================
camera_covered    dark (mean < 25) and featureless (texture < 6), or featureless at any brightness (texture < 3:
                  paper, steam, a blank wall), and the reference's structure is not visible in it (structure
                  correlation < 0.5, or too little structure to tell); only during business hours when they are
                  configured
camera_blurred    sharpness (Laplacian variance ÷ image variance) < 0.35 × the reference's, and < 50 % of the
                  reference's edges still found
camera_moved      ORB features matched against the reference, similarity transform fitted with RANSAC: the view
                  moved > 5 % of the width, turned > 3° or zoomed > 15 %; or the reference is not found at all
                  (< 20 % of its features matched and < 50 % of its edges left)
================  ===========================================================================================

A condition has to hold for ``persistence_s`` (60 s) before its Finding is returned, and at least
``min_true_fraction`` of the samples in between must agree; gaps shorter than ``recovery_s`` do not restart it. Each
episode yields one Finding; the episode ends (the camera recovered) once the condition has been false for
``recovery_s``. The Finding's ``metrics`` carry the measured values and a one-line ``reason``.

Design decisions, and why:

- **Cheap every sample, expensive rarely.** Frames are sampled once per ``sample_interval_s`` (others return at once).
  Each sample costs a resize to ``working_width`` grey and a 160-px "tiny" image: mean, texture (std of the tiny
  image, where 4× area averaging has cut sensor noise to a quarter) and *structure correlation* (normalised
  correlation of the high-passed tiny image with the reference's: a photometric-invariant "is this still the same
  view"). Sharpness, edges and ORB matching (≈ 9 ms at 640×360) run every ``full_check_interval_s``, at once when
  the picture changed a lot since the last full check (``change_correlation``; people walking about change it less),
  and on every sample while a blur or move condition is pending.
- **Lights are not tamper.** Every measure is normalised against brightness: sharpness by the image's own variance,
  Canny thresholds scaled by the contrast ratio to the reference, ORB on a CLAHE-equalised image (its binary tests
  are invariant to monotone brightness changes anyway), structure correlation is zero-mean and unit-variance.
  A frame that is too dark (mean < ``dark_mean``) or too flat (texture < ``min_texture``) to judge is *undecided*
  for blur and move: it neither starts nor clears those episodes, so switching the lights off can never fire
  ``camera_moved`` or ``camera_blurred``.
- **Lights off versus a covered lens.** Both are dark. A kitchen with its lights off still shows the reference's
  structure (tiles, shelves) when the tiny image is contrast-normalised: structure correlation stays ≈ 1 down to a
  mean grey level of about 20, and that is not ``camera_covered``. A hand, a cloth or a cap leaves no structure:
  correlation ≈ 0. A kitchen so dark that no structure is left (mean ≈ 4 or less) is indistinguishable from a capped
  lens; it *does* fire ``camera_covered`` after 60 s, but only during business hours when ``business_hours`` is set
  — a kitchen that is pitch dark while it is open is not being supervised either, and the reason in the payload says
  how dark it was. Outside business hours ``camera_covered`` is not evaluated at all (night is dark).
- **A person passing in front of the lens** darkens and blurs a big part of the frame for a few seconds; the
  persistence rule absorbs it, and the reference is never refreshed while any condition is pending.
- **Reference.** Given to the constructor, or enrolled from the first ``enrol_samples`` usable, mutually consistent
  samples (their median, which also removes people walking through). It is refreshed after ``refresh_after_s`` of
  uninterrupted health from ``refresh_samples`` frames collected over that time, each warped back into the
  reference's geometry before their median is taken: the refresh follows lighting and rearranged shelves but never
  the camera's pose, so a slow drift still adds up against the enrolment view and eventually fires. Any pending or
  active condition, or an undecidable frame, restarts the healthy period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import BusinessHours, Finding, Frame, Image

CAMERA_COVERED = "camera_covered"
CAMERA_BLURRED = "camera_blurred"
CAMERA_MOVED = "camera_moved"
TAMPER_ALERT_TYPES = (CAMERA_COVERED, CAMERA_BLURRED, CAMERA_MOVED)

Grey = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
Affine = npt.NDArray[np.float64]  # 2×3, reference pixels → current pixels


@dataclass(frozen=True)
class TamperConfig:
    # persistence
    persistence_s: float = 60.0  # a condition must hold this long before it fires
    min_true_fraction: float = 0.8  # …in at least this share of the samples since it started
    recovery_s: float = 5.0  # false this long → the episode ends; shorter gaps are tolerated
    # sampling and cost
    sample_interval_s: float = 1.0  # frames closer together than this are skipped
    full_check_interval_s: float = 10.0  # sharpness, edges and ORB at least this often
    change_correlation: float = 0.6  # correlation with the last full check below this → full check now
    working_width: int = 640  # all measures on a grey image this wide (never upscaled)
    tiny_width: int = 160
    # covered
    dark_mean: float = 25.0
    covered_max_texture: float = 6.0
    flat_max_texture: float = 3.0  # at any brightness: paper or steam over the lens, a camera facing a blank wall
    scene_visible_correlation: float = 0.5  # structure correlation at which the reference view is still "there"
    scene_visible_min_structure: float = 1.5  # high-passed tiny std below this: too little left to tell
    # frames too dark or too flat to judge blur or a move
    min_texture: float = 5.0
    # blurred
    blur_sharpness_ratio: float = 0.35
    blur_edge_retention: float = 0.5
    canny_low: float = 50.0
    canny_high: float = 150.0
    # moved
    moved_shift_fraction: float = 0.05
    moved_rotation_deg: float = 3.0
    moved_scale_change: float = 0.15
    moved_min_inlier_fraction: float = 0.2  # of the reference's keypoints
    moved_edge_retention: float = 0.5
    min_inliers: int = 20  # fewer → the fitted transform is not trusted
    orb_features: int = 500
    match_ratio: float = 0.8  # Lowe's ratio test
    ransac_reprojection_px: float = 3.0
    # reference
    enrol_samples: int = 5
    enrol_consistency: float = 0.5  # structure correlation between consecutive samples (a busy kitchen: 0.6–0.8)
    refresh_after_s: float = 600.0
    refresh_samples: int = 5
    refresh_max_shift_fraction: float = 0.01
    refresh_max_rotation_deg: float = 0.5
    refresh_min_sharpness_ratio: float = 0.7
    refresh_min_inlier_fraction: float = 0.4
    # covered is only judged while the kitchen is open (None: always)
    business_hours: BusinessHours | None = None
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class TamperMeasurement:
    """What one sample measured. Fields of the full check are None on samples where it did not run."""

    at: datetime
    mean: float
    texture: float
    structure: float  # std of the high-passed tiny image
    structure_correlation: float | None  # None before a reference exists
    sharpness_ratio: float | None = None
    edge_retention: float | None = None
    shift_px: float | None = None  # in input pixels
    shift_fraction: float | None = None
    rotation_deg: float | None = None
    scale: float | None = None
    inliers: int | None = None
    matches: int | None = None
    inlier_fraction: float | None = None
    reference_keypoints: int | None = None
    transform: Affine | None = field(default=None, repr=False, compare=False)

    @property
    def full(self) -> bool:
        return self.sharpness_ratio is not None

    def payload(self) -> dict[str, Any]:
        def num(value: float | None, digits: int = 3) -> float | None:
            return None if value is None else round(float(value), digits)

        return {
            "mean": num(self.mean, 1),
            "texture": num(self.texture, 2),
            "structure_correlation": num(self.structure_correlation),
            "laplacian_ratio": num(self.sharpness_ratio),
            "edge_retention": num(self.edge_retention),
            "shift_px": num(self.shift_px, 1),
            "shift_fraction": num(self.shift_fraction, 4),
            "rotation_deg": num(self.rotation_deg, 2),
            "scale": num(self.scale),
            "inliers": self.inliers,
            "matches": self.matches,
            "inlier_fraction": num(self.inlier_fraction),
            "reference_keypoints": self.reference_keypoints,
        }


@dataclass
class _Episode:
    started_at: datetime
    last_true_at: datetime
    samples: int = 0
    true_samples: int = 0
    fired: bool = False

    @property
    def true_fraction(self) -> float:
        return self.true_samples / self.samples if self.samples else 0.0


@dataclass
class _Reference:
    grey: Grey
    captured_at: datetime
    tiny_highpass: FloatArray  # zero mean, unit variance
    sharpness: float
    contrast: float  # grey std
    edges: Grey
    edge_count: int
    keypoints: FloatArray  # N×2
    descriptors: npt.NDArray[np.uint8] | None


@dataclass
class _Views:
    """One sample at the monitor's working sizes."""

    grey: Grey
    tiny: FloatArray
    tiny_highpass: FloatArray


class TamperMonitor:
    """Tamper checks for one camera. Feed it frames in time order; it returns Findings when they fire."""

    def __init__(self, config: TamperConfig | None = None, reference: Image | None = None) -> None:
        self.config = config or TamperConfig()
        self._given_reference = reference
        self._reference: _Reference | None = None
        self._enrolment: list[tuple[datetime, _Views]] = []
        self._episodes: dict[str, _Episode] = {}
        self._next_sample_at: datetime | None = None
        self._last_frame_at: datetime | None = None
        self._last_full_at: datetime | None = None
        self._last_full_highpass: FloatArray | None = None
        self._healthy_since: datetime | None = None
        self._refresh_buffer: list[tuple[datetime, Grey, Affine]] = []
        self._input_width = 0
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self._orb = cv2.ORB.create(nfeatures=self.config.orb_features)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self._zone = ZoneInfo(self.config.timezone)
        self.refresh_count = 0
        self.last_measurement: TamperMeasurement | None = None

    # --- public state ------------------------------------------------------------------------------------------

    @property
    def reference(self) -> Grey | None:
        """The reference view (grey, working size), or None while it is still being enrolled."""
        return None if self._reference is None else self._reference.grey

    @property
    def reference_captured_at(self) -> datetime | None:
        return None if self._reference is None else self._reference.captured_at

    @property
    def active(self) -> frozenset[str]:
        """Alert types that fired and have not recovered yet."""
        return frozenset(kind for kind, episode in self._episodes.items() if episode.fired)

    @property
    def pending(self) -> frozenset[str]:
        """Alert types whose condition holds but has not persisted long enough yet."""
        return frozenset(kind for kind, episode in self._episodes.items() if not episode.fired)

    def set_reference(self, image: Image | None) -> None:
        """Replace the reference (after an operator accepted a new view), or re-enrol from the next healthy frames
        with None. Open episodes are dropped: they were judged against the old view."""
        self._given_reference = image
        self._reference = None
        self._enrolment.clear()
        self._episodes.clear()
        self._reset_health()

    # --- per frame ---------------------------------------------------------------------------------------------

    def observe(self, frame: Frame) -> list[Finding]:
        if not self._due(frame.captured_at):
            return []
        at = frame.captured_at

        views = self._views(frame.image)
        if self._reference is None and self._given_reference is not None:
            self._reference = self._prepare_reference(self._to_grey(self._given_reference, views.grey.shape), at)
        elif self._reference is not None and self._reference.grey.shape != views.grey.shape:  # stream resized
            resized = cv2.resize(self._reference.grey, views.grey.shape[::-1], interpolation=cv2.INTER_AREA)
            self._reference = self._prepare_reference(_u8(resized), at)

        measurement = self._cheap_measurement(views, at)
        usable = measurement.mean >= self.config.dark_mean and measurement.texture >= self.config.min_texture
        if self._reference is None:
            if usable:
                self._enrol(views, at)
        elif usable and self._full_check_due(views, at):
            measurement = self._full_measurement(views, measurement)
            self._last_full_at = at
            self._last_full_highpass = _normalised(views.tiny_highpass)
        self.last_measurement = measurement

        findings = []
        verdicts = {
            CAMERA_COVERED: self._covered(measurement, at),
            CAMERA_BLURRED: self._blurred(measurement, usable),
            CAMERA_MOVED: self._moved(measurement, usable),
        }
        for kind, verdict in verdicts.items():
            finding = self._update_episode(kind, verdict, measurement)
            if finding is not None:
                findings.append(finding)
        self._update_reference(views, measurement, usable)
        return findings

    def _due(self, at: datetime) -> bool:
        """One sample per ``sample_interval_s`` on a fixed grid. A frame up to half a frame period early still counts,
        so a 1-fps stream with jitter is not sampled every other second, nor a 5-fps stream every 0.8 s."""
        interval = timedelta(seconds=self.config.sample_interval_s)
        previous, self._last_frame_at = self._last_frame_at, at
        due = self._next_sample_at
        if due is not None and previous is not None:
            tolerance = min(max(at - previous, timedelta(0)), interval) / 2
            if at < due - tolerance:
                return False
        next_due = (due or at) + interval
        self._next_sample_at = next_due if next_due > at else at + interval
        return True

    # --- measures ----------------------------------------------------------------------------------------------

    def _views(self, image: Image) -> _Views:
        height, width = image.shape[:2]
        self._input_width = width
        working_width = min(width, self.config.working_width)
        working_height = max(1, round(height * working_width / width))
        grey = self._to_grey(image, (working_height, working_width))
        tiny_width = min(working_width, self.config.tiny_width)
        tiny_height = max(1, round(working_height * tiny_width / working_width))
        tiny = np.asarray(cv2.resize(grey, (tiny_width, tiny_height), interpolation=cv2.INTER_AREA), dtype=np.float32)
        return _Views(grey, tiny, self._highpass(tiny))

    @staticmethod
    def _to_grey(image: Image, shape: tuple[int, ...]) -> Grey:
        height, width = shape[:2]
        if image.shape[:2] != (height, width):
            image = _u8(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
        if image.ndim == 3:
            image = _u8(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        return np.ascontiguousarray(image)

    def _highpass(self, tiny: FloatArray) -> FloatArray:
        """Structure without shading: what a lamp or a cloth's gradient cannot imitate."""
        sigma = 4.0 * tiny.shape[1] / 160
        return tiny - np.asarray(cv2.GaussianBlur(tiny, (0, 0), sigma), dtype=np.float32)

    def _cheap_measurement(self, views: _Views, at: datetime) -> TamperMeasurement:
        mean, texture = cv2.meanStdDev(views.tiny)
        correlation = None
        if self._reference is not None:
            correlation = _correlation(views.tiny_highpass, self._reference.tiny_highpass)
        return TamperMeasurement(
            at=at,
            mean=float(mean[0, 0]),
            texture=float(texture[0, 0]),
            structure=float(cv2.meanStdDev(views.tiny_highpass)[1][0, 0]),
            structure_correlation=correlation,
        )

    def _full_check_due(self, views: _Views, at: datetime) -> bool:
        # every sample while a blur or move is pending, so persistence is measured finely; once it fired, the usual
        # interval is enough to notice recovery (a camera left turned for days costs no more than a healthy one)
        if any(kind in self.pending for kind in (CAMERA_BLURRED, CAMERA_MOVED)):
            return True
        if self._last_full_at is None or self._last_full_highpass is None:
            return True
        if (at - self._last_full_at).total_seconds() >= self.config.full_check_interval_s:
            return True
        # the picture changed since the last look (not: differs from the reference, which a slightly moved camera
        # or a busy kitchen would do all the time)
        return _correlation(views.tiny_highpass, self._last_full_highpass) < self.config.change_correlation

    def _full_measurement(self, views: _Views, cheap: TamperMeasurement) -> TamperMeasurement:
        reference = self._reference
        assert reference is not None
        cfg = self.config
        grey = views.grey
        contrast = float(grey.std())
        sharpness_ratio = _sharpness(grey) / reference.sharpness if reference.sharpness > 0 else 0.0

        # Canny thresholds follow the contrast, so a dimmer picture keeps the same edges
        gain = max(contrast, 1e-3) / max(reference.contrast, 1e-3)
        edges = cv2.dilate(cv2.Canny(grey, cfg.canny_low * gain, cfg.canny_high * gain), np.ones((3, 3), np.uint8))
        retained = np.count_nonzero(cv2.bitwise_and(reference.edges, edges))
        edge_retention = retained / reference.edge_count if reference.edge_count else 0.0

        fit = self._fit_transform(grey)
        reference_keypoints = len(reference.keypoints)
        values: dict[str, Any] = {
            "sharpness_ratio": sharpness_ratio,
            "edge_retention": edge_retention,
            "matches": fit.matches,
            "inliers": fit.inliers,
            "inlier_fraction": fit.inliers / reference_keypoints if reference_keypoints else 0.0,
            "reference_keypoints": reference_keypoints,
        }
        if fit.transform is not None:
            shift_px, rotation, scale = _decompose(fit.transform, grey.shape[1], grey.shape[0])
            to_input = self._input_width / grey.shape[1]
            values.update(
                shift_px=shift_px * to_input,
                shift_fraction=shift_px / grey.shape[1],
                rotation_deg=rotation,
                scale=scale,
                transform=fit.transform,
            )
        return TamperMeasurement(
            at=cheap.at,
            mean=cheap.mean,
            texture=cheap.texture,
            structure=cheap.structure,
            structure_correlation=cheap.structure_correlation,
            **values,
        )

    def _fit_transform(self, grey: Grey) -> _Fit:
        reference = self._reference
        assert reference is not None
        if reference.descriptors is None or len(reference.keypoints) < 2:
            return _Fit(None, 0, 0)
        keypoints, descriptors = self._orb.detectAndCompute(self._clahe.apply(grey), None)
        if descriptors is None or len(keypoints) < 2:
            return _Fit(None, 0, 0)
        pairs = self._matcher.knnMatch(reference.descriptors, descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < self.config.match_ratio * p[1].distance]
        if len(good) < 3:
            return _Fit(None, len(good), 0)
        source = reference.keypoints[[m.queryIdx for m in good]]
        target = np.array([keypoints[m.trainIdx].pt for m in good], dtype=np.float32)
        transform, inlier_mask = cv2.estimateAffinePartial2D(
            source, target, method=cv2.RANSAC, ransacReprojThreshold=self.config.ransac_reprojection_px
        )
        inliers = int(inlier_mask.sum()) if inlier_mask is not None else 0
        if transform is None or inliers < self.config.min_inliers:
            return _Fit(None, len(good), inliers)  # too little support to believe any transform
        return _Fit(transform.astype(np.float64), len(good), inliers)

    # --- conditions (True: holds, False: does not, None: cannot tell from this sample) ---------------------------

    def _covered(self, m: TamperMeasurement, at: datetime) -> bool | None:
        cfg = self.config
        if cfg.business_hours is not None and not cfg.business_hours.is_open(at.astimezone(self._zone).time()):
            return False  # dark at night is normal; the episode ends at closing and restarts at opening
        dark_and_flat = m.mean < cfg.dark_mean and m.texture < cfg.covered_max_texture
        if not (dark_and_flat or m.texture < cfg.flat_max_texture):
            return False
        return not self._scene_visible(m)

    def _scene_visible(self, m: TamperMeasurement) -> bool:
        return (
            m.structure_correlation is not None
            and m.structure >= self.config.scene_visible_min_structure
            and m.structure_correlation >= self.config.scene_visible_correlation
        )

    def _blurred(self, m: TamperMeasurement, usable: bool) -> bool | None:
        if not usable or m.sharpness_ratio is None or m.edge_retention is None:
            return None
        cfg = self.config
        return m.sharpness_ratio < cfg.blur_sharpness_ratio and m.edge_retention < cfg.blur_edge_retention

    def _moved(self, m: TamperMeasurement, usable: bool) -> bool | None:
        if not usable or not m.full:
            return None
        cfg = self.config
        if (
            m.shift_fraction is not None
            and m.rotation_deg is not None
            and m.scale is not None
            and (
                m.shift_fraction > cfg.moved_shift_fraction
                or abs(m.rotation_deg) > cfg.moved_rotation_deg
                or abs(m.scale - 1.0) > cfg.moved_scale_change
            )
        ):
            return True
        if self._blurred(m, usable):
            return None  # a blurred picture loses its features too; that is camera_blurred's call
        lost = (m.inlier_fraction or 0.0) < cfg.moved_min_inlier_fraction
        return lost and (m.edge_retention or 0.0) < cfg.moved_edge_retention

    # --- persistence -------------------------------------------------------------------------------------------

    def _update_episode(self, kind: str, verdict: bool | None, m: TamperMeasurement) -> Finding | None:
        episode = self._episodes.get(kind)
        at = m.at
        if verdict is None:
            return None
        if not verdict:
            if episode is not None:
                episode.samples += 1
                if (at - episode.last_true_at).total_seconds() >= self.config.recovery_s:
                    del self._episodes[kind]  # recovered
            return None
        if episode is None:
            episode = self._episodes[kind] = _Episode(started_at=at, last_true_at=at)
        episode.samples += 1
        episode.true_samples += 1
        episode.last_true_at = at
        duration = (at - episode.started_at).total_seconds()
        cfg = self.config
        if episode.fired or duration < cfg.persistence_s or episode.true_fraction < cfg.min_true_fraction:
            return None
        episode.fired = True
        metrics = m.payload()
        metrics["duration_s"] = round(duration, 1)
        metrics["reason"] = self._reason(kind, m, duration)
        if self._reference is not None:
            metrics["reference_captured_at"] = self._reference.captured_at.isoformat()
        return Finding(
            alert_type=kind,
            started_at=episode.started_at,
            at=at,
            score=round(episode.true_fraction, 3),
            metrics=metrics,
        )

    def _reason(self, kind: str, m: TamperMeasurement, duration: float) -> str:
        cfg = self.config
        if kind == CAMERA_COVERED:
            seen = (
                "no reference to compare"
                if m.structure_correlation is None
                else (f"structure correlation with the reference {m.structure_correlation:.2f}")
            )
            if m.mean < cfg.dark_mean:
                return (
                    f"dark and featureless for {duration:.0f} s: mean {m.mean:.1f} < {cfg.dark_mean:g}, "
                    f"texture {m.texture:.1f} < {cfg.covered_max_texture:g}, {seen}"
                )
            return (
                f"featureless for {duration:.0f} s: texture {m.texture:.1f} < {cfg.flat_max_texture:g} "
                f"at mean {m.mean:.1f}, {seen}"
            )
        if kind == CAMERA_BLURRED:
            return (
                f"out of focus for {duration:.0f} s: sharpness {m.sharpness_ratio:.2f} × reference "
                f"< {cfg.blur_sharpness_ratio:g}, {m.edge_retention:.0%} of reference edges left "
                f"< {cfg.blur_edge_retention:.0%}"
            )
        parts = []
        if m.shift_fraction is not None and m.shift_fraction > cfg.moved_shift_fraction:
            parts.append(f"view shifted {m.shift_fraction:.1%} of the width (> {cfg.moved_shift_fraction:.0%})")
        if m.rotation_deg is not None and abs(m.rotation_deg) > cfg.moved_rotation_deg:
            parts.append(f"turned {m.rotation_deg:+.1f}° (> {cfg.moved_rotation_deg:g}°)")
        if m.scale is not None and abs(m.scale - 1) > cfg.moved_scale_change:
            parts.append(f"zoomed ×{m.scale:.2f}")
        if not parts:
            parts.append(
                f"reference view not found: {m.inliers} of {m.reference_keypoints} reference features matched "
                f"(< {cfg.moved_min_inlier_fraction:.0%}), {m.edge_retention or 0:.0%} of its edges left"
            )
        return f"camera moved for {duration:.0f} s: " + "; ".join(parts)

    # --- reference ---------------------------------------------------------------------------------------------

    def _prepare_reference(self, grey: Grey, at: datetime) -> _Reference:
        grey = np.ascontiguousarray(grey)
        tiny_width = min(grey.shape[1], self.config.tiny_width)
        tiny_height = max(1, round(grey.shape[0] * tiny_width / grey.shape[1]))
        tiny = np.asarray(cv2.resize(grey, (tiny_width, tiny_height), interpolation=cv2.INTER_AREA), dtype=np.float32)
        highpass = _normalised(self._highpass(tiny))
        edges = _u8(cv2.Canny(grey, self.config.canny_low, self.config.canny_high))
        keypoints, descriptors = self._orb.detectAndCompute(self._clahe.apply(grey), None)
        points = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
        return _Reference(
            grey=grey,
            captured_at=at,
            tiny_highpass=highpass,
            sharpness=_sharpness(grey),
            contrast=float(grey.std()),
            edges=edges,
            edge_count=int(np.count_nonzero(edges)),
            keypoints=points,
            descriptors=None if descriptors is None else _u8(descriptors),
        )

    def _enrol(self, views: _Views, at: datetime) -> None:
        if self._enrolment:
            previous = _normalised(self._enrolment[-1][1].tiny_highpass)
            if _correlation(views.tiny_highpass, previous) < self.config.enrol_consistency:
                self._enrolment.clear()  # the view is still changing: start over
        self._enrolment.append((at, views))
        if len(self._enrolment) >= self.config.enrol_samples:
            stack = np.stack([v.grey for _, v in self._enrolment])
            self._reference = self._prepare_reference(np.median(stack, axis=0).astype(np.uint8), at)
            self._enrolment.clear()
            self._reset_health()

    def _update_reference(self, views: _Views, m: TamperMeasurement, usable: bool) -> None:
        """Track the healthy period and refresh at its end. Anything pending or active, an undecidable frame or a
        camera pose off the reference restarts it; a frame merely crowded with people is just not collected."""
        cfg = self.config
        if self._reference is None:
            return
        healthy = usable and not self._episodes
        if healthy and m.full:  # between full checks, the pose is what the last one said
            healthy = (
                m.transform is not None
                and (m.shift_fraction or 0.0) <= cfg.refresh_max_shift_fraction
                and abs(m.rotation_deg or 0.0) <= cfg.refresh_max_rotation_deg
            )
        if not healthy:
            self._reset_health()
            return
        at = m.at
        if self._healthy_since is None:
            self._healthy_since = at
        clean = (
            m.full
            and m.transform is not None
            and (m.sharpness_ratio or 0.0) >= cfg.refresh_min_sharpness_ratio
            and (m.inlier_fraction or 0.0) >= cfg.refresh_min_inlier_fraction
        )
        if not clean or m.transform is None:
            return  # collect, and refresh, only on samples the full check found clean
        spacing = cfg.refresh_after_s / max(1, cfg.refresh_samples)
        if not self._refresh_buffer or (at - self._refresh_buffer[-1][0]).total_seconds() >= spacing:
            self._refresh_buffer.append((at, views.grey, m.transform))
        healthy_for = (at - self._healthy_since).total_seconds()
        if healthy_for >= cfg.refresh_after_s and len(self._refresh_buffer) >= max(1, cfg.refresh_samples):
            self._refresh(at)

    def _refresh(self, at: datetime) -> None:
        """New appearance, same geometry: each collected frame is warped back onto the reference before the median."""
        assert self._reference is not None
        height, width = self._reference.grey.shape
        aligned = []
        for _, grey, transform in self._refresh_buffer:
            shift, rotation, scale = _decompose(transform, width, height)
            if shift < 0.25 and abs(rotation) < 0.02 and abs(scale - 1) < 1e-3:
                aligned.append(grey)  # not worth an interpolation that would soften it
                continue
            back = cv2.invertAffineTransform(transform)
            warped = cv2.warpAffine(
                grey, back, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            aligned.append(_u8(warped))
        median = np.median(np.stack(aligned), axis=0).astype(np.uint8)
        self._reference = self._prepare_reference(median, at)
        self.refresh_count += 1
        self._reset_health()

    def _reset_health(self) -> None:
        self._healthy_since = None
        self._refresh_buffer = []


@dataclass(frozen=True)
class _Fit:
    transform: Affine | None
    matches: int
    inliers: int


def _sharpness(grey: Grey) -> float:
    """Laplacian variance over image variance: focus, independent of brightness and contrast."""
    variance = float(grey.var())
    if variance <= 1e-6:
        return 0.0
    return float(cv2.Laplacian(grey, cv2.CV_32F).var()) / variance


def _u8(image: object) -> Grey:
    """OpenCV's results typed as what they are (its stubs say "MatLike")."""
    return np.asarray(image, dtype=np.uint8)


def _normalised(a: FloatArray) -> FloatArray:
    mean, std = cv2.meanStdDev(a)
    return ((a - mean[0, 0]) / max(float(std[0, 0]), 1e-6)).astype(np.float32)


def _correlation(a: FloatArray, b_normalised: FloatArray) -> float:
    """Normalised cross-correlation of ``a`` with an already zero-mean, unit-variance ``b`` of the same shape."""
    if a.shape != b_normalised.shape:
        return 0.0
    _, std = cv2.meanStdDev(a)
    if std[0, 0] <= 1e-6:
        return 0.0
    # b has zero mean, so a's mean drops out of the sum
    return float(np.vdot(a, b_normalised) / (a.size * std[0, 0]))


def _decompose(transform: Affine, width: int, height: int) -> tuple[float, float, float]:
    """How far the image centre moved (px), the rotation (degrees, counter-clockwise on screen as OpenCV's
    getRotationMatrix2D) and the scale of a 2×3 similarity transform."""
    centre = np.array([width / 2, height / 2])
    moved_to = transform[:, :2] @ centre + transform[:, 2]
    shift = float(np.hypot(*(moved_to - centre)))
    rotation = math.degrees(math.atan2(-transform[1, 0], transform[0, 0]))
    scale = float(math.hypot(transform[0, 0], transform[1, 0]))
    return shift, rotation, scale
