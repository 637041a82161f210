"""Vision cost on one core: camera health and motion per 720p frame, the detector against bare onnxruntime, and how
many cameras one core watches at 1 frame/s.

The process is pinned to one core (``os.sched_setaffinity``), OpenCV to one thread and onnxruntime to one intra-op
thread, so every figure is "per core". Frames are 1280×720 from ``vision.synthetic``, rendered once before anything
is timed. Anchors and figures, measured in the same run on the same machine:

  * health_motion_fps_per_core = frames/s of ``StreamHealth.on_frame`` + ``TamperMonitor.observe`` +
    ``AfterHoursMotion.observe`` on a 5-frame/s stream (timestamps 0.2 s apart, so the tamper monitor samples one
    frame in five and runs its full check as it would live) at night, when the motion check works (02:00 Beijing,
    business hours 08:00–22:00); target ≥ 200. Anchor: ``cv2.cvtColor`` to grey + ``cv2.resize`` to 640×360 of the
    same frames, the least any analysis of a decoded frame does; their ratio is printed. Rounds of the two
    alternate; the frames are played forwards and backwards in turn, so the scene never jumps.
  * detector_vs_raw_ort_ratio = frames/s of ``detector.detect`` on a 1280×720 frame / frames/s of the detector's
    own ``InferenceSession.run`` on that frame's already letterboxed tensor; target ≥ 0.8. Alternating rounds over
    the same frames. The model is ``tests.vision.models.conv_onnx`` at 640×640 (YOLOv8 output layout, random
    fixed weights, ≈ 1.35 GMAC: about a third of YOLOv8n, so the pre- and post-processing weigh more than they
    would with a real model).
  * cameras_per_core_at_1fps = floor(1 s / per-frame cost) of ``CameraPipeline.process`` at 1 frame/s on a
    mostly static scene (a lit, empty kitchen; one person walks through for 10 of every 100 s) with a motion
    gate: the detector runs only on frames that changed (grey, 320 px wide, |Δ| > 25 grey levels on more than
    0.5 % of the pixels, against the previous frame). ``CameraPipeline`` itself runs the detector on every
    ``detect_interval`` whatever the picture does, so the gate is computed here from measured parts:
    cost = the pipeline without a detector (health, tamper, motion, clip buffer) + the gate's own difference
    + the gated fraction × the detector's share (the pipeline with a detector on every frame, less the pipeline
    without). The figure without gating is printed too, and the gated fraction of a busy kitchen for comparison.

No GPU figure: this bench runs the onnxruntime CPU backend only (see the ``gpu`` line). Always exits 0; each target
line says whether it was met.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.vision.models import conv_onnx
from vision.detectors import DetectorConfig, OnnxDetector, create_detector
from vision.detectors.preprocess import letterbox
from vision.health import HealthConfig, StreamHealth
from vision.motion import AfterHoursMotion
from vision.pipeline import CameraPipeline, PipelineConfig
from vision.synthetic import Scenario, Workers, normal_activity, render_frame, static_scene
from vision.tamper import TamperConfig, TamperMonitor
from vision.types import BusinessHours, Frame, Image

WIDTH, HEIGHT = 1280, 720
CORE = 0
HOURS = BusinessHours(clock(8, 0), clock(22, 0))  # Beijing time
NIGHT = datetime(2025, 6, 2, 18, 0, tzinfo=UTC)  # 02:00 in Beijing: the kitchen is closed, the motion check works
STREAM_FPS = 5.0
STREAM_FRAMES = 100  # per scene, 20 s of a 5-frame/s stream
HEALTH_ROUNDS = 8  # after one warm-up round; each round is every frame once, anchor and checks alternating
ANCHOR_SIZE = (640, 360)
HEALTH_TARGET_FPS = 200.0

MODEL_SIZE = 640
DETECT_FRAMES = 10
DETECT_ROUNDS = 10  # after a warm-up; a round is every frame through detect and through the bare session.run
RATIO_TARGET = 0.8

GATE_WIDTH = 320
GATE_PIXEL_THRESHOLD = 25  # grey levels: MotionConfig.pixel_threshold for a lit scene, far above sensor noise
GATE_CHANGED_FRACTION = 0.005
QUIET_SECONDS = 100  # the mostly static scene, at 1 frame/s
PASSING = (40.0, 50.0)  # seconds in which one person walks through it
BUSY_SECONDS = 60  # normal activity at 1 frame/s, for the gated fraction of a busy kitchen
PIPELINE_CHUNK = 10  # frames each pipeline processes before the other one's turn
PIPELINE_PASSES = 2  # after one warm-up pass


def pin_to_one_core() -> str:
    cv2.setNumThreads(1)
    try:
        os.sched_setaffinity(0, {CORE})
    except (AttributeError, OSError) as exc:  # not Linux, or the core is not ours
        return f"NOT pinned ({exc}); OpenCV 1 thread, onnxruntime 1 intra-op thread"
    return f"pinned to core {CORE} (sched_setaffinity); OpenCV 1 thread, onnxruntime 1 intra-op thread"


def render(scenario: Scenario, count: int) -> list[Image]:
    images = [render_frame(scenario, k, WIDTH, HEIGHT) for k in range(count)]
    for image in images:
        image.setflags(write=False)  # shared by every measurement: none may change them
    return images


def ping_pong(count: int, round_number: int) -> range:
    """Frame indices forwards on even rounds, backwards on odd ones: consecutive frames always neighbours."""
    return range(count) if round_number % 2 == 0 else range(count - 1, -1, -1)


def fps_line(values: Sequence[float]) -> str:
    return f"median {statistics.median(values):.1f}, min {min(values):.1f}, max {max(values):.1f} frames/s"


# ----- 1. camera health + tamper + motion per frame --------------------------------------------------------------


class Checks:
    """The cheap per-frame checks of one camera, fed a continuous 5-frame/s stream at night."""

    def __init__(self) -> None:
        self.health = StreamHealth(HealthConfig(expected_fps=STREAM_FPS), started_at=NIGHT, business_hours=HOURS)
        self.tamper = TamperMonitor(TamperConfig(business_hours=HOURS))
        self.motion = AfterHoursMotion(HOURS)
        self.sequence = 0
        self.findings: list[str] = []
        self.seconds = {"health": 0.0, "tamper": 0.0, "motion": 0.0}  # per check, over every frame observed

    def observe(self, image: Image) -> None:
        at = NIGHT + timedelta(seconds=self.sequence / STREAM_FPS)
        frame = Frame(image, at, self.sequence)
        self.sequence += 1
        seconds = self.seconds
        started = time.perf_counter()
        findings = list(self.health.on_frame(frame).findings)
        done = time.perf_counter()
        seconds["health"] += done - started
        findings += self.tamper.observe(frame)
        started = time.perf_counter()
        seconds["tamper"] += started - done
        findings += self.motion.observe(frame)
        seconds["motion"] += time.perf_counter() - started
        self.findings += [finding.alert_type for finding in findings]

    def split(self) -> str:
        """Mean ms per frame of each check since the last reset."""
        return ", ".join(f"{name} {1000 * value / self.sequence:.2f} ms" for name, value in self.seconds.items())


def grey_and_resize(image: Image) -> None:
    cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), ANCHOR_SIZE, interpolation=cv2.INTER_AREA)


def health_rates(images: list[Image]) -> tuple[list[float], list[float], Checks]:
    checks = Checks()
    anchor_fps: list[float] = []
    checks_fps: list[float] = []
    for round_number in range(HEALTH_ROUNDS + 1):
        order = ping_pong(len(images), round_number)
        started = time.perf_counter()
        for k in order:
            grey_and_resize(images[k])
        anchor_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for k in order:
            checks.observe(images[k])
        checks_seconds = time.perf_counter() - started
        if round_number > 0:  # round 0 warms up: tamper enrolment, OpenCV's first calls
            anchor_fps.append(len(images) / anchor_seconds)
            checks_fps.append(len(images) / checks_seconds)
    return anchor_fps, checks_fps, checks


def findings(checks: Checks) -> str:
    counts = {kind: checks.findings.count(kind) for kind in sorted(set(checks.findings))}
    return ", ".join(f"{kind} {count}" for kind, count in counts.items()) or "none"


def health_and_motion(busy: list[Image], quiet: list[Image]) -> float:
    anchor, checks, state = health_rates(busy)
    quiet_anchor, quiet_checks, quiet_state = health_rates(quiet)
    rate, anchor_rate = statistics.median(checks), statistics.median(anchor)
    print(f"health_motion_fps_per_core: {rate:.1f}")
    print(
        f"health_motion_vs_grey_resize_ratio: {rate / anchor_rate:.3f} (StreamHealth + TamperMonitor + "
        f"AfterHoursMotion {rate:.1f} frames/s = {1000 / rate:.2f} ms/frame; cvtColor + resize to "
        f"{ANCHOR_SIZE[0]}×{ANCHOR_SIZE[1]} {anchor_rate:.1f} frames/s = {1000 / anchor_rate:.2f} ms/frame)"
    )
    print(
        f"health_motion[normal_activity, 3 people]: {fps_line(checks)} over {HEALTH_ROUNDS} rounds of "
        f"{len(busy)} frames; anchor {fps_line(anchor)}; tamper state: reference "
        f"{'enrolled' if state.tamper.reference is not None else 'NOT enrolled'}; findings: {findings(state)}"
    )
    quiet_rate, quiet_anchor_rate = statistics.median(quiet_checks), statistics.median(quiet_anchor)
    print(
        f"health_motion[static scene]: {fps_line(quiet_checks)} ({1000 / quiet_rate:.2f} ms/frame, ratio to its "
        f"anchor {quiet_rate / quiet_anchor_rate:.3f}); findings: {findings(quiet_state)}"
    )
    print(
        f"health_motion split, mean per frame over all rounds with the warm-up: normal_activity {state.split()}; "
        f"static scene {quiet_state.split()}"
    )
    return rate


# ----- 2. detector pipeline against the bare session --------------------------------------------------------------


def build_detector(directory: Path) -> OnnxDetector:
    model = conv_onnx(directory / "conv640.onnx", size=MODEL_SIZE)
    detector = create_detector(DetectorConfig(model_path=model, type="onnx", intra_op_num_threads=1, device="cpu"))
    assert isinstance(detector, OnnxDetector)
    return detector


def timed(step: Callable[[], Any], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return seconds


def detector_against_session(detector: OnnxDetector, images: list[Image]) -> float:
    width, height = detector.input_size
    session = detector.session
    input_name = session.get_inputs()[0].name
    tensors = [letterbox(image, width, height)[0] for image in images]
    for image, tensor in zip(images, tensors, strict=True):  # warm-up
        detector.detect(image)
        session.run(None, {input_name: tensor})

    detect_fps: list[float] = []
    raw_fps: list[float] = []
    ratios: list[float] = []
    detections: list[int] = []
    for _ in range(DETECT_ROUNDS):
        started = time.perf_counter()
        for tensor in tensors:
            session.run(None, {input_name: tensor})
        raw = len(tensors) / (time.perf_counter() - started)
        started = time.perf_counter()
        for image in images:
            detections.append(len(detector.detect(image)))
        detect = len(images) / (time.perf_counter() - started)
        raw_fps.append(raw)
        detect_fps.append(detect)
        ratios.append(detect / raw)

    # Where the difference goes, measured apart: the letterbox, and decode + NMS + mapping back.
    letterbox_ms = [1000 * s for image in images for s in timed(lambda i=image: letterbox(i, width, height), 3)]
    output = np.asarray(session.run(None, {input_name: tensors[0]})[0])
    _, transform = letterbox(images[0], width, height)
    post_ms = [1000 * s for s in timed(lambda: detector.postprocess(output, transform), 30)]

    ratio = statistics.median(ratios)
    detect_rate, raw_rate = statistics.median(detect_fps), statistics.median(raw_fps)
    print(
        f"detector_vs_raw_ort_ratio: {ratio:.3f} (detect {detect_rate:.1f} frames/s = {1000 / detect_rate:.1f} ms; "
        f"session.run {raw_rate:.1f} frames/s = {1000 / raw_rate:.1f} ms; median of {DETECT_ROUNDS} rounds' ratios)"
    )
    info = detector.info
    print(
        f"detector: {info.backend} {ort.__version__} {session.get_providers()[0]}, conv_onnx at "
        f"{width}×{height} ({info.layout.value} layout, output {info.output_shape}); "
        f"{DETECT_ROUNDS} rounds × {len(images)} normal_activity frames of {WIDTH}×{HEIGHT}; "
        f"detect {fps_line(detect_fps)}; session.run {fps_line(raw_fps)}; "
        f"{statistics.median(detections):.0f} detections per frame (median)"
    )
    print(
        f"detector overhead: letterbox {statistics.median(letterbox_ms):.2f} ms, decode + NMS + undo "
        f"{statistics.median(post_ms):.2f} ms (medians, measured apart)"
    )
    return ratio


# ----- 3. cameras per core at 1 frame/s ---------------------------------------------------------------------------


def gate_view(image: Image) -> Image:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return np.asarray(
        cv2.resize(grey, (GATE_WIDTH, round(HEIGHT * GATE_WIDTH / WIDTH)), interpolation=cv2.INTER_AREA),
        dtype=np.uint8,
    )


def changed(view: Image, previous: Image) -> bool:
    moved = np.count_nonzero(cv2.absdiff(view, previous) > GATE_PIXEL_THRESHOLD)
    return moved > GATE_CHANGED_FRACTION * view.size


def gated_fraction(images: list[Image]) -> float:
    """Share of frames (after the first) the gate lets through to the detector."""
    views = [gate_view(image) for image in images]
    passed = sum(changed(view, previous) for previous, view in itertools.pairwise(views))
    return passed / max(1, len(views) - 1)


def gate_cost_ms(images: list[Image]) -> float:
    previous = gate_view(images[0])
    started = time.perf_counter()
    for image in images:
        view = gate_view(image)
        changed(view, previous)
        previous = view
    return 1000 * (time.perf_counter() - started) / len(images)


def cameras_per_core(detector: OnnxDetector, quiet: list[Image], busy: list[Image]) -> int:
    config = PipelineConfig(business_hours=HOURS, detect_interval=timedelta(seconds=1))
    cheap = CameraPipeline(config, started_at=NIGHT)
    full = CameraPipeline(config, started_at=NIGHT, detector=detector)
    seconds = {"cheap": 0.0, "full": 0.0}
    alerts = {"cheap": 0, "full": 0}
    count = len(quiet)
    sequence = 0
    for pass_number in range(PIPELINE_PASSES + 1):
        order = list(ping_pong(count, pass_number))
        for start in range(0, count, PIPELINE_CHUNK):
            chunk = order[start : start + PIPELINE_CHUNK]
            for name, pipeline in (("cheap", cheap), ("full", full)):
                started = time.perf_counter()
                for offset, k in enumerate(chunk):
                    n = sequence + offset
                    alerts[name] += len(pipeline.process(Frame(quiet[k], NIGHT + timedelta(seconds=n), n)))
                if pass_number > 0:
                    seconds[name] += time.perf_counter() - started
            sequence += len(chunk)
    measured = PIPELINE_PASSES * count
    cheap_ms = 1000 * seconds["cheap"] / measured
    full_ms = 1000 * seconds["full"] / measured
    detector_ms = full_ms - cheap_ms
    gate_ms = gate_cost_ms(quiet)
    fraction = gated_fraction(quiet)
    busy_fraction = gated_fraction(busy)
    gated_ms = cheap_ms + gate_ms + fraction * detector_ms
    cameras = math.floor(1000 / gated_ms)
    ungated = math.floor(1000 / full_ms)
    busy_cameras = math.floor(1000 / (cheap_ms + gate_ms + busy_fraction * detector_ms))
    print(f"cameras_per_core_at_1fps: {cameras} (motion-gated, mostly static scene)")
    print(f"cameras_per_core_at_1fps_ungated: {ungated} (detector on every frame)")
    print(
        f"camera cost per frame: pipeline without detector {cheap_ms:.2f} ms (health, tamper, motion, clip buffer); "
        f"gate {gate_ms:.2f} ms; detector share {detector_ms:.2f} ms (pipeline with detector {full_ms:.2f} ms, "
        f"less the pipeline without); gated {gated_ms:.2f} ms = {cheap_ms:.2f} + {gate_ms:.2f} + "
        f"{fraction:.3f} × {detector_ms:.2f}"
    )
    print(
        f"gated_fraction: {fraction:.3f} of {count - 1} frame pairs (empty kitchen, one person walking through "
        f"{PASSING[1] - PASSING[0]:.0f} s of {QUIET_SECONDS} s; changed = > {GATE_CHANGED_FRACTION:.1%} of a "
        f"{GATE_WIDTH}-px grey copy off by > {GATE_PIXEL_THRESHOLD} grey levels); a busy kitchen (3 people, "
        f"{BUSY_SECONDS} s): {busy_fraction:.3f}, i.e. {busy_cameras} cameras per core"
    )
    print(
        f"pipelines: {PIPELINE_PASSES} passes × {count} frames at 1 frame/s after a warm-up pass, in alternating "
        f"chunks of {PIPELINE_CHUNK}; alerts: {alerts['cheap']} without detector, {alerts['full']} with"
    )
    return cameras


# ----- main -------------------------------------------------------------------------------------------------------


def gpu_line() -> str:
    if any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl")):
        return "gpu: a GPU is present, but this bench measures the CPU backend only; torch GPU figure not measured"
    return "gpu: none in this session; the torch backend's GPU frames/s is not measured (skipped)"


def main() -> int:
    run_started = time.perf_counter()
    pinning = pin_to_one_core()
    print(
        f"cpus: {os.cpu_count()} (load average {os.getloadavg()[0]:.1f}); {pinning}; OpenCV {cv2.__version__}, "
        f"onnxruntime {ort.__version__}, numpy {np.__version__}"
    )
    print(gpu_line())

    rendering = time.perf_counter()
    busy = render(replace(normal_activity(), fps=STREAM_FPS), STREAM_FRAMES)
    still = render(replace(static_scene(), fps=STREAM_FPS), STREAM_FRAMES)
    quiet = render(
        Scenario("mostly_static", QUIET_SECONDS, effects=(Workers(count=1, start_s=PASSING[0], end_s=PASSING[1]),)),
        QUIET_SECONDS,
    )
    busy_1fps = render(normal_activity(), BUSY_SECONDS)
    total = len(busy) + len(still) + len(quiet) + len(busy_1fps)
    print(f"frames: {total} rendered at {WIDTH}×{HEIGHT} in {time.perf_counter() - rendering:.1f} s (not timed)")

    health_fps = health_and_motion(busy, still)
    with tempfile.TemporaryDirectory(prefix="sunshine-bench-vision-") as directory:
        detector = build_detector(Path(directory))
        ratio = detector_against_session(detector, busy[:: len(busy) // DETECT_FRAMES][:DETECT_FRAMES])
        cameras_per_core(detector, quiet, busy_1fps)

    print(f"run_seconds: {time.perf_counter() - run_started:.1f} (load average now {os.getloadavg()[0]:.1f})")
    verdict = "met" if health_fps >= HEALTH_TARGET_FPS else "MISSED"
    print(f"target health_motion_fps_per_core >= {HEALTH_TARGET_FPS:.0f}: {verdict}")
    print(f"target detector_vs_raw_ort_ratio >= {RATIO_TARGET}: {'met' if ratio >= RATIO_TARGET else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
