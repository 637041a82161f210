"""`sunshine vision analyze VIDEO`: the camera pipeline over a file, one JSON line per alert.

For officers checking a clip and for tests: the same health, tamper, motion and detector checks a live camera
gets, with capture times taken from the file (``--start`` plus the frame's position), so a clip recorded at night
is judged as night.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from infra.cli import CommandError

if TYPE_CHECKING:
    from vision.detectors.base import Detector
    from vision.pipeline import CameraAlert
    from vision.rules import RulesConfig

BEIJING = ZoneInfo("Asia/Shanghai")


def register(subparsers: argparse._SubParsersAction) -> None:
    vision = subparsers.add_parser("vision", help="camera analysis")
    commands = vision.add_subparsers(dest="vision_command", metavar="ACTION", required=True)
    analyze = commands.add_parser(
        "analyze",
        help="run the camera pipeline over a video file and print one JSON line per alert",
        description="Print one JSON object per alert: alert_type, at, score, metrics (and boxes, model).",
    )
    analyze.add_argument("video", type=Path)
    analyze.add_argument("--reference", type=Path, default=None, help="the camera's reference frame (an image)")
    analyze.add_argument("--business-hours", default="08:00-22:00", metavar="HH:MM-HH:MM",
                         help="opening hours in Beijing time (default 08:00-22:00)")
    analyze.add_argument("--start", default=None, metavar="ISO",
                         help="capture time of the first frame (default: now); without an offset, Beijing time")
    analyze.add_argument("--fps", type=float, default=5.0, help="frames sampled per second of video (default 5)")
    analyze.add_argument("--model", default=None, metavar="NAME[:VERSION]",
                         help="a registered detector model (`sunshine model list`); default: no detector")
    analyze.add_argument("--areas", default=None, help="the camera's areas (e.g. 专间), for area-bound alerts")
    analyze.set_defaults(handler=_analyze)


def parse_business_hours(text: str) -> tuple[time, time]:
    try:
        opens, closes = (time.fromisoformat(part.strip()) for part in text.split("-", 1))
    except ValueError:
        raise CommandError(f"--business-hours {text!r} is not HH:MM-HH:MM", exit_code=2) from None
    return opens, closes


def parse_start(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--start {text!r} is not an ISO 8601 time", exit_code=2) from None
    return (start if start.tzinfo else start.replace(tzinfo=BEIJING)).astimezone(UTC)


def _analyze(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from domain.detectors.service import parse_areas
    from domain.errors import ValidationFailed
    from vision.pipeline import CameraPipeline, PipelineConfig
    from vision.sources import SourceConfig, open_source
    from vision.types import BusinessHours

    if not args.video.is_file():
        raise CommandError(f"no video file at {args.video}", exit_code=2)
    if args.fps <= 0:
        raise CommandError("--fps must be positive", exit_code=2)
    opens, closes = parse_business_hours(args.business_hours)
    start = parse_start(args.start)
    reference = None
    if args.reference is not None:
        loaded = cv2.imread(str(args.reference), cv2.IMREAD_COLOR)
        reference = None if loaded is None else np.asarray(loaded, dtype=np.uint8)
        if reference is None:
            raise CommandError(f"cannot read the reference image {args.reference}", exit_code=2)
    try:
        areas = tuple(parse_areas(args.areas) or ())
    except ValidationFailed as error:
        raise CommandError(error.message, exit_code=2) from None
    detector, rules = _detector(args.model) if args.model else (None, None)
    config = PipelineConfig(business_hours=BusinessHours(opens, closes), camera_areas=areas)
    if rules is not None:
        config = dataclasses.replace(config, rules=rules)
    source = open_source(args.video.resolve().as_uri(), sample_fps=args.fps,
                         config=SourceConfig(realtime=False, loop=False, start_at=start))
    pipeline = CameraPipeline(config, started_at=start, detector=detector, reference=reference)
    count = 0
    with source:
        for frame in source:
            for alert in pipeline.process(frame):
                _print(alert)
                count += 1
    for alert in pipeline.flush():
        _print(alert)
        count += 1
    print(f"{count} alert(s)", file=sys.stderr)
    return 0


def _detector(spec: str) -> tuple[Detector, RulesConfig]:
    from domain.detectors.service import find_model
    from infra.cli.admin_cmd import _transaction
    from vision.detectors.base import DetectorConfig, create_detector
    from vision.detectors.inspect import ModelRejected
    from vision.rules import RulesConfig

    name, _, version = spec.partition(":")
    with _transaction() as session:
        model = find_model(session, name=name, version=version or None)
        if model is None:
            raise CommandError(f"no enabled model {spec!r} is registered (see `sunshine model list`)")
        path, runtime, sha256, class_map = model.path, model.runtime, model.sha256, dict(model.class_map)
        model_name, model_version = model.name, model.version
    try:
        detector = create_detector(DetectorConfig(model_path=path, type=runtime, sha256=sha256, name=model_name,
                                                  version=model_version))
    except ModelRejected as rejected:
        raise CommandError(f"the registered model no longer loads: {rejected.reason}") from None
    return detector, RulesConfig(class_to_alert_type=class_map)


def _print(alert: CameraAlert) -> None:
    finding = alert.finding
    line = {
        "alert_type": finding.alert_type,
        "at": finding.at.isoformat(),
        "started_at": finding.started_at.isoformat(),
        "score": round(float(finding.score), 4),
        "metrics": finding.metrics,
        "boxes": [{"x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in finding.boxes],
        "clip_seconds": None if alert.clip is None else round((alert.clip.ended_at - alert.clip.started_at)
                                                               .total_seconds(), 1),
    }
    if alert.model:
        line["model"] = dict(alert.model)
    print(json.dumps(line, ensure_ascii=False, default=str), flush=True)
