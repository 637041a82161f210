"""What an incoming alert must look like before anything of it is stored (pure: no I/O, no clock).

Every source (edge boxes over HTTP, the vision worker, scheduled certificate checks) sends the same JSON
``meta`` object; the rules here are the one place that reads it. Each refusal names the offending field
(``meta.captured_at: …``) so that a device vendor can fix the sender from the message alone.

``meta`` fields:

- ``event_id`` (required): the sender's id of this detection, 1–200 characters from ``A–Z a–z 0–9 . _ : @ / -``,
  starting with a letter or digit; together with the sender it is the idempotency key of intake.
- ``camera_id`` (required): the platform's camera id (a positive integer).
- ``alert_type`` (required): one of ``domain.alerts.taxonomy.AlertType``.
- ``captured_at`` (required): ISO 8601 with a UTC offset (``2026-03-02T11:30:00+08:00`` or ``…Z``), at most
  10 minutes ahead of the platform clock and at most 7 days old.
- ``score`` (required): detector confidence, a number in [0, 1].
- ``boxes`` (optional): at most 100 objects ``{"x", "y", "w", "h"}`` in pixels of the snapshot (top-left
  corner, width, height; x, y ≥ 0, w, h > 0) with optional ``label`` (text) and ``score`` ([0, 1]).
- ``model`` (optional): ``{"name", "version", "sha256"}``, the detector that fired (sha256: 64 hex digits).
- ``detail`` (optional): a small JSON object of source-specific facts (e.g. the certificate that expired).

Unknown fields are refused rather than ignored: a misspelt optional field would otherwise vanish silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.alerts.taxonomy import AlertType
from domain.errors import DomainError, NotFound, ValidationFailed
from domain.evidence.content import (
    JPEG,
    MP4,
    PNG,
    WEBM,
    WEBP,
    EvidenceTooLarge,
    UnsupportedContent,
    check_content_type,
    normalise_content_type,
)

EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}")
MAX_CAPTURE_AHEAD = timedelta(minutes=10)  # clock skew of an edge box we tolerate
MAX_CAPTURE_AGE = timedelta(days=7)
MAX_BOXES = 100
MAX_LABEL_CHARS = 64
MAX_MODEL_FIELD_CHARS = 100
MAX_DETAIL_JSON_BYTES = 8 * 1024
MAX_META_JSON_BYTES = 64 * 1024

SNAPSHOT_CONTENT_TYPES = frozenset({JPEG, PNG, WEBP})
CLIP_CONTENT_TYPES = frozenset({WEBM, MP4})
# Declared types that claim nothing: generic clients send them for any file.
_NO_CLAIM_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

_REQUIRED_FIELDS = ("event_id", "camera_id", "alert_type", "captured_at", "score")
_OPTIONAL_FIELDS = ("boxes", "model", "detail")
_BOX_FIELDS = frozenset({"x", "y", "w", "h", "label", "score"})
_MODEL_FIELDS = ("name", "version", "sha256")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class InvalidAlertMeta(ValidationFailed):
    """The ``meta`` object breaks a rule; ``field`` names where (``meta.score``, ``meta.boxes[2].w``…)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class CapturedAtOutOfRange(InvalidAlertMeta):
    """``captured_at`` is too far ahead of the platform clock or too old to act on."""


class PartTooLarge(EvidenceTooLarge):
    """An evidence part is larger than the store accepts; the message names the part."""

    def __init__(self, part: str, limit_bytes: int) -> None:
        super().__init__(limit_bytes)
        self.message = f"{part} is larger than the limit of {limit_bytes} bytes"
        self.args = (self.message,)


class UnknownCamera(NotFound):
    """The alert names a camera the platform does not know."""


class CameraNotPermitted(DomainError):
    """The sender may not raise alerts for this camera (a device bound to another merchant)."""


@dataclass(frozen=True)
class DetectionBox:
    x: float
    y: float
    w: float
    h: float
    label: str | None = None
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        box: dict[str, Any] = {"x": self.x, "y": self.y, "w": self.w, "h": self.h}
        if self.label is not None:
            box["label"] = self.label
        if self.score is not None:
            box["score"] = self.score
        return box


@dataclass(frozen=True)
class DetectorModel:
    name: str
    version: str
    sha256: str  # lower-case hex

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class AlertMeta:
    """A well-formed ``meta`` object, normalised (``captured_at`` in UTC, sha256 in lower case)."""

    event_id: str
    camera_id: int
    alert_type: AlertType
    captured_at: datetime
    score: float
    boxes: tuple[DetectionBox, ...] = ()
    model: DetectorModel | None = None
    detail: Mapping[str, Any] | None = None


def load_meta_json(text: str | bytes) -> dict[str, Any]:
    """The ``meta`` part as a JSON object, or InvalidAlertMeta saying why it is not one."""
    if len(text) > MAX_META_JSON_BYTES:
        raise InvalidAlertMeta("meta", f"is larger than {MAX_META_JSON_BYTES} bytes")
    try:
        value = json.loads(text, parse_constant=_refuse_non_finite)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InvalidAlertMeta("meta", f"is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise InvalidAlertMeta("meta", f"must be a JSON object, not {_json_kind(value)}")
    return value


def parse_alert_meta(raw: Mapping[str, Any]) -> AlertMeta:
    """Check the shape and every value of ``meta``; the capture-time window is checked separately.

    The window is not part of the shape: a retry of an alert already received must not be refused
    because time has passed since its first delivery attempt.
    """
    unknown = sorted(set(raw) - set(_REQUIRED_FIELDS) - set(_OPTIONAL_FIELDS))
    if unknown:
        known = ", ".join((*_REQUIRED_FIELDS, *_OPTIONAL_FIELDS))
        raise InvalidAlertMeta(f"meta.{unknown[0]}", f"unknown field; the fields are: {known}")
    for name in _REQUIRED_FIELDS:
        if raw.get(name) is None:
            raise InvalidAlertMeta(f"meta.{name}", "is required")
    return AlertMeta(
        event_id=_event_id(raw["event_id"]),
        camera_id=_camera_id(raw["camera_id"]),
        alert_type=_alert_type(raw["alert_type"]),
        captured_at=_captured_at(raw["captured_at"]),
        score=_unit_interval("meta.score", raw["score"]),
        boxes=_boxes(raw.get("boxes")),
        model=_model(raw.get("model")),
        detail=_detail(raw.get("detail")),
    )


def check_capture_time(*, captured_at: datetime, received_at: datetime) -> None:
    """Refuse a capture time more than 10 minutes ahead of ``received_at`` or more than 7 days before it."""
    if captured_at > received_at + MAX_CAPTURE_AHEAD:
        raise CapturedAtOutOfRange(
            "meta.captured_at",
            f"{captured_at.isoformat()} is more than {_minutes(MAX_CAPTURE_AHEAD)} minutes ahead of the platform "
            f"clock ({received_at.isoformat()}); check the sender's clock",
        )
    if captured_at < received_at - MAX_CAPTURE_AGE:
        raise CapturedAtOutOfRange(
            "meta.captured_at",
            f"{captured_at.isoformat()} is more than {MAX_CAPTURE_AGE.days} days old; alerts that old are not accepted",
        )


def check_camera_scope(*, camera_id: int, camera_merchant_id: int, sender_merchant_id: int | None) -> None:
    """A device bound to a merchant posts only for that merchant's cameras; ``None`` means district-wide."""
    if sender_merchant_id is not None and sender_merchant_id != camera_merchant_id:
        raise CameraNotPermitted(f"camera {camera_id} does not belong to the merchant this device key is bound to")


def check_part_content(*, part: str, head: bytes, declared_content_type: str | None) -> str:
    """The content type of an evidence part from its first bytes, refusing the wrong kind for the part.

    ``part`` is ``"snapshot"`` (a still image) or ``"clip"`` (video). Raises UnsupportedContent when the
    bytes are no accepted format or the wrong kind, ContentTypeMismatch when they are not what was declared.
    """
    allowed = SNAPSHOT_CONTENT_TYPES if part == "snapshot" else CLIP_CONTENT_TYPES
    declared = declared_content_type
    if declared is not None and normalise_content_type(declared) in _NO_CLAIM_CONTENT_TYPES:
        declared = None
    try:
        content_type = check_content_type(head, declared=declared)
    except UnsupportedContent as error:
        raise UnsupportedContent(f"{part}: {error}") from None
    if content_type not in allowed:
        wanted = "a JPEG, PNG or WebP image" if part == "snapshot" else "a WebM or MP4 video"
        raise UnsupportedContent(f"{part} must be {wanted}; the bytes are {content_type}")
    return content_type


def check_part_size(*, part: str, size: int, max_bytes: int) -> None:
    """Refuse a part before any of it is stored (the store would refuse it too, but only after the others)."""
    if size > max_bytes:
        raise PartTooLarge(part, max_bytes)


def may_join_case(*, captured_at: datetime, case_last_captured_at: datetime, merge_window: timedelta) -> bool:
    """An alert folds into a case when it was captured no later than the merge window after the case's latest
    alert. An earlier capture (a delayed retry after an outage) belongs to the case it happened in. The case
    workflow's validator applies the same rule and has the last word."""
    return captured_at <= case_last_captured_at + merge_window


def case_id_opened_by(alert_id: object) -> str:
    """The id of the case an alert opens when there is none to join: derived from the alert, so that a
    retried delivery targets the same case instead of opening a second one."""
    return f"case-{alert_id}"


# Field parsers


def _event_id(value: object) -> str:
    if not isinstance(value, str) or not EVENT_ID_PATTERN.fullmatch(value):
        raise InvalidAlertMeta(
            "meta.event_id",
            "must be 1–200 characters from A–Z a–z 0–9 . _ : @ / - starting with a letter or digit",
        )
    return value


def _camera_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidAlertMeta("meta.camera_id", f"must be a positive integer, not {value!r}")
    return value


def _alert_type(value: object) -> AlertType:
    known = {t.value: t for t in AlertType}
    if isinstance(value, str) and value in known:
        return known[value]
    raise InvalidAlertMeta("meta.alert_type", f"unknown alert type {value!r}; known types: {', '.join(known)}")


def _captured_at(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidAlertMeta("meta.captured_at", "must be an ISO 8601 string with a UTC offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidAlertMeta(
            "meta.captured_at", f"{value!r} is not ISO 8601 (e.g. 2026-03-02T11:30:00+08:00)"
        ) from None
    if parsed.utcoffset() is None:
        raise InvalidAlertMeta(
            "meta.captured_at", f"{value!r} has no UTC offset; add one (e.g. +08:00 or Z) so the instant is certain"
        )
    return parsed.astimezone(UTC)


def _number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAlertMeta(field, f"must be a number, not {value!r}")
    return float(value)


def _unit_interval(field: str, value: object) -> float:
    number = _number(field, value)
    if not 0.0 <= number <= 1.0:
        raise InvalidAlertMeta(field, f"must be between 0 and 1, not {number}")
    return number


def _boxes(value: object) -> tuple[DetectionBox, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidAlertMeta("meta.boxes", "must be a list of boxes")
    if len(value) > MAX_BOXES:
        raise InvalidAlertMeta("meta.boxes", f"has {len(value)} boxes; at most {MAX_BOXES} are accepted")
    return tuple(_box(f"meta.boxes[{index}]", item) for index, item in enumerate(value))


def _box(field: str, value: object) -> DetectionBox:
    if not isinstance(value, dict):
        raise InvalidAlertMeta(field, 'must be an object {"x", "y", "w", "h"}')
    unknown = sorted(set(value) - _BOX_FIELDS)
    if unknown:
        raise InvalidAlertMeta(f"{field}.{unknown[0]}", "unknown field; a box has x, y, w, h, label, score")
    for name in ("x", "y", "w", "h"):
        if name not in value:
            raise InvalidAlertMeta(f"{field}.{name}", "is required")
    x, y = _number(f"{field}.x", value["x"]), _number(f"{field}.y", value["y"])
    w, h = _number(f"{field}.w", value["w"]), _number(f"{field}.h", value["h"])
    if x < 0 or y < 0:
        raise InvalidAlertMeta(f"{field}", "x and y must not be negative")
    if w <= 0 or h <= 0:
        raise InvalidAlertMeta(f"{field}", "w and h must be positive")
    label = value.get("label")
    if label is not None and (not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL_CHARS):
        raise InvalidAlertMeta(f"{field}.label", f"must be text of 1–{MAX_LABEL_CHARS} characters")
    score = value.get("score")
    return DetectionBox(
        x=x, y=y, w=w, h=h, label=label, score=None if score is None else _unit_interval(f"{field}.score", score)
    )


def _model(value: object) -> DetectorModel | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidAlertMeta("meta.model", 'must be an object {"name", "version", "sha256"}')
    unknown = sorted(set(value) - set(_MODEL_FIELDS))
    if unknown:
        raise InvalidAlertMeta(f"meta.model.{unknown[0]}", "unknown field; a model has name, version, sha256")
    for name in _MODEL_FIELDS:
        text = value.get(name)
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_MODEL_FIELD_CHARS:
            raise InvalidAlertMeta(f"meta.model.{name}", f"must be text of 1–{MAX_MODEL_FIELD_CHARS} characters")
    if not _SHA256_HEX.fullmatch(value["sha256"]):
        raise InvalidAlertMeta("meta.model.sha256", "must be 64 hexadecimal digits (the SHA-256 of the model file)")
    return DetectorModel(name=value["name"].strip(), version=value["version"].strip(), sha256=value["sha256"].lower())


def _detail(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidAlertMeta("meta.detail", "must be a JSON object")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as error:
        raise InvalidAlertMeta("meta.detail", f"is not plain JSON ({error})") from None
    if len(encoded) > MAX_DETAIL_JSON_BYTES:
        raise InvalidAlertMeta("meta.detail", f"is larger than {MAX_DETAIL_JSON_BYTES} bytes")
    return value


def _refuse_non_finite(constant: str) -> float:
    # json.loads accepts NaN and Infinity by default; JSON proper (and PostgreSQL) does not.
    raise ValueError(f"{constant} is not a JSON number")


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)
