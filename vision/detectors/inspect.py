"""Validate a district-supplied model file and describe it for the model registry and the alert payload.

A model is accepted only if it loads, has one [1, 3, H, W] image input, answers a dry inference on a zero image
with an output that fits exactly one YOLO layout for its class names, and has class names (from its metadata or a
label file). Anything else raises ``ModelRejected`` with a reason meant for the person uploading the file.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vision.detectors.layouts import Layout

# Ultralytics writes class names as a Python dict literal; anything this long is not a name table.
_MAX_NAMES_LITERAL = 1_000_000


class ModelRejected(Exception):
    """The file is not a usable detector; ``reason`` says why in words fit for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ModelSignature:
    """What a backend learned from loading the file, before any validation."""

    input_name: str
    input_shape: tuple[int | None, ...]  # None where the dimension is dynamic
    input_dtype: np.dtype[Any]
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class ModelInfo:
    """A validated model: what the registry stores and every alert carries (name, version, sha256)."""

    name: str
    version: str
    path: str
    sha256: str
    backend: str  # DetectorConfig.type: "onnx" | "torch"
    layout: Layout
    input_width: int
    input_height: int
    output_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    class_names_source: str  # "metadata" | "labels"
    licence: str  # the model's own 'license' metadata, else "unknown"; Ultralytics weights say AGPL-3.0
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def provenance(self) -> dict[str, str]:
        """The fields an alert payload records about the model that produced it."""
        return {
            "model_name": self.name,
            "model_version": self.version,
            "model_sha256": self.sha256,
            "model_layout": self.layout.value,
            "model_licence": self.licence,
        }


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _checked_names(names: list[str], origin: str) -> tuple[str, ...]:
    cleaned = tuple(name.strip() for name in names)
    if not cleaned:
        raise ModelRejected(f"{origin} lists no class names")
    if any(not name for name in cleaned):
        raise ModelRejected(f"{origin} contains an empty class name")
    duplicates = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if duplicates:
        raise ModelRejected(f"{origin} names a class more than once: {', '.join(duplicates)}")
    return cleaned


def parse_names_metadata(text: str) -> tuple[str, ...]:
    """Parse the Ultralytics ``names`` metadata: ``"{0: 'no_hat', 1: 'smoking'}"`` (or a list literal).

    ``ast.literal_eval`` only builds literals, so a hostile metadata string cannot run code.
    """
    if len(text) > _MAX_NAMES_LITERAL:
        raise ModelRejected("the 'names' metadata is too long to be a class-name table")
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ModelRejected(f"the 'names' metadata is not a dict or list literal: {exc}") from exc
    if isinstance(value, dict):
        if not all(isinstance(key, int) and isinstance(name, str) for key, name in value.items()):
            raise ModelRejected("the 'names' metadata must map integer class ids to strings")
        if sorted(value) != list(range(len(value))):
            raise ModelRejected("the 'names' metadata must number its classes 0, 1, 2, … without gaps")
        return _checked_names([value[index] for index in range(len(value))], "the 'names' metadata")
    if isinstance(value, list | tuple) and all(isinstance(name, str) for name in value):
        return _checked_names(list(value), "the 'names' metadata")
    raise ModelRejected("the 'names' metadata must be a dict {id: name} or a list of names")


def read_label_file(path: Path) -> tuple[str, ...]:
    """One class name per line, in class-id order; blank lines are skipped, UTF-8 (with or without BOM)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelRejected(f"cannot read the label file {path}: {exc}") from exc
    return _checked_names([line for line in text.splitlines() if line.strip()], f"the label file {path.name}")


def resolve_class_names(metadata: Mapping[str, str], labels_path: Path | None) -> tuple[tuple[str, ...], str]:
    """The class names and where they came from; a label file wins but must agree in count with the metadata."""
    from_metadata = parse_names_metadata(metadata["names"]) if metadata.get("names") else None
    if labels_path is not None:
        from_labels = read_label_file(labels_path)
        if from_metadata is not None and len(from_metadata) != len(from_labels):
            raise ModelRejected(
                f"the label file lists {len(from_labels)} classes but the model's metadata names {len(from_metadata)}"
            )
        return from_labels, "labels"
    if from_metadata is None:
        raise ModelRejected("the model carries no 'names' metadata; supply a label file (one class name per line)")
    return from_metadata, "metadata"


def _metadata_imgsz(metadata: Mapping[str, str]) -> tuple[int, int] | None:
    """Ultralytics ``imgsz`` metadata, ``"[640, 640]"`` as (height, width), returned as (width, height)."""
    text = metadata.get("imgsz")
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return int(value[1]), int(value[0])
    return None


def resolve_input_size(signature: ModelSignature, configured: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of the image input; checks it is a single [1, 3, H, W] float tensor."""
    shape = signature.input_shape
    if len(shape) != 4:
        raise ModelRejected(
            f"input '{signature.input_name}' has rank {len(shape)} (shape {list(shape)}); "
            "a detector takes one image tensor [1, 3, H, W]"
        )
    batch, channels, height, width = shape
    if channels != 3:
        raise ModelRejected(f"input '{signature.input_name}' has {channels} channels; a detector takes 3 (RGB)")
    if batch not in (1, None):
        raise ModelRejected(f"input '{signature.input_name}' has a fixed batch of {batch}; expected 1")
    if signature.input_dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise ModelRejected(f"input '{signature.input_name}' is {signature.input_dtype}; expected float32 or float16")
    if height is not None and width is not None:
        if configured is not None and configured != (width, height):
            raise ModelRejected(
                f"the model's input is {width}×{height}, not the configured {configured[0]}×{configured[1]}"
            )
        return width, height
    size = configured or _metadata_imgsz(signature.metadata)
    if size is None:
        raise ModelRejected(
            f"input '{signature.input_name}' has a dynamic size {list(shape)} and neither an 'imgsz' metadata entry "
            "nor a configured input_size says which to use"
        )
    return size


def truthy_metadata(metadata: Mapping[str, str], key: str) -> bool | None:
    value = metadata.get(key)
    if value is None:
        return None
    return value.strip().lower() in {"true", "1", "yes"}


def inspect_model(path: str | Path, *, type: str, labels_path: str | Path | None = None) -> ModelInfo:
    """Load and validate a model file the way a detector would, and describe it; raises ``ModelRejected``."""
    # base builds detectors on top of this module, so it is imported here, at call time, to keep the layering
    # one-way (base → inspect) at import time.
    from vision.detectors.base import DetectorConfig, create_detector

    return create_detector(DetectorConfig(model_path=path, type=type, labels_path=labels_path)).info
