"""The detector contract and the backend registry.

Frigate-style: a detector's configuration names its backend in a ``type`` field and ``create_detector`` picks the
class registered under that key. Every backend shares the same pipeline: letterbox → backend inference → layout
decode → class-wise NMS → letterbox undo. A backend only has to load a file and run one tensor through it.

Constructing a detector validates its model (see ``inspect``): a detector that exists is one that works.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from vision.detectors.inspect import (
    ModelInfo,
    ModelRejected,
    ModelSignature,
    file_sha256,
    resolve_class_names,
    resolve_input_size,
    truthy_metadata,
)
from vision.detectors.layouts import Layout, LayoutError, decode, select_layout
from vision.detectors.nms import batched_nms
from vision.detectors.preprocess import LetterboxTransform, letterbox
from vision.types import Box, Detection, Image

_LAYOUT_CHOICES = ("auto", *(layout.value for layout in Layout))
_DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DetectorConfig:
    """One detector. Defaults follow Frigate's detector contract (score 0.4, IoU 0.4, 20 results per image)."""

    model_path: str | Path
    type: str = "onnx"  # the backend: "onnx" (onnxruntime) or "torch" (a torch.export .pt2 program)
    labels_path: str | Path | None = None  # one class name per line; required when the model has no 'names'
    layout: str = "auto"  # "auto" sniffs the output shape; "v8" / "v5" / "e2e" for shapes that are ambiguous
    input_size: tuple[int, int] | None = None  # (width, height); only for models with a dynamic input size
    score_threshold: float = 0.4
    iou_threshold: float = 0.4
    max_detections: int = 20
    intra_op_num_threads: int = 1  # one thread per worker process, scale with processes (vision.md §5.7)
    device: str = "auto"  # "auto" = CUDA when the installed runtime offers it, else CPU
    sha256: str | None = None  # when set, a file with a different hash is refused before it is loaded
    name: str | None = None  # registry name; defaults to the file's stem
    version: str | None = None  # registry version; defaults to the first 12 hex digits of the file's sha256

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must lie in [0, 1], got {self.score_threshold}")
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must lie in [0, 1], got {self.iou_threshold}")
        if self.max_detections < 1:
            raise ValueError(f"max_detections must be at least 1, got {self.max_detections}")
        if self.intra_op_num_threads < 0:
            raise ValueError("intra_op_num_threads must be ≥ 0 (0 lets the runtime choose)")
        if self.layout not in _LAYOUT_CHOICES:
            raise ValueError(f"layout must be one of {', '.join(_LAYOUT_CHOICES)}, got {self.layout!r}")
        if self.device not in _DEVICE_CHOICES:
            raise ValueError(f"device must be one of {', '.join(_DEVICE_CHOICES)}, got {self.device!r}")
        if self.input_size is not None and min(self.input_size) <= 0:
            raise ValueError(f"input_size must be positive, got {self.input_size}")


class Detector(ABC):
    """Runs one model on BGR frames and returns detections in the frame's own pixels."""

    type_key: ClassVar[str]

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        path = Path(config.model_path)
        if not path.is_file():
            raise ModelRejected(f"no model file at {path}")
        sha256 = file_sha256(path)
        if config.sha256 is not None and sha256 != config.sha256.lower():
            # Checked before loading: a .pt2 file is unpickled on load, so an unexpected file must not be opened.
            raise ModelRejected(f"the file's sha256 is {sha256}, not the registered {config.sha256}")
        signature = self._load(path)
        width, height = resolve_input_size(signature, config.input_size)
        labels_path = None if config.labels_path is None else Path(config.labels_path)
        class_names, names_source = resolve_class_names(signature.metadata, labels_path)
        self._input_dtype = signature.input_dtype
        self._input_size = (width, height)
        output = self._dry_run(width, height)
        try:
            layout = select_layout(
                output.shape,
                len(class_names),
                requested=config.layout,
                end2end_hint=truthy_metadata(signature.metadata, "end2end"),
            )
        except LayoutError as exc:
            if names_source == "labels":
                raise ModelRejected(
                    f"the label file's {len(class_names)} class names do not fit the model: {exc}"
                ) from exc
            raise ModelRejected(str(exc)) from exc
        self._layout = layout
        self._class_names = class_names
        self._info = ModelInfo(
            name=config.name or path.stem,
            version=config.version or sha256[:12],
            path=str(path),
            sha256=sha256,
            backend=self.type_key,
            layout=layout,
            input_width=width,
            input_height=height,
            output_shape=tuple(int(dim) for dim in output.shape),
            class_names=class_names,
            class_names_source=names_source,
            licence=signature.metadata.get("license") or "unknown",
            metadata=dict(signature.metadata),
        )

    # -- what a backend provides -------------------------------------------------------------------------------

    @abstractmethod
    def _load(self, path: Path) -> ModelSignature:
        """Open the file (raise ``ModelRejected`` when it is not a model of this backend) and describe its input."""

    @abstractmethod
    def _run(self, tensor: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Run one (1, 3, H, W) tensor; return the first output as a numpy array."""

    # -- the shared pipeline -------------------------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the model input."""
        return self._input_size

    def detect(self, image: Image) -> list[Detection]:
        """Detections in ``image`` (BGR), best score first, boxes in the image's pixels."""
        width, height = self._input_size
        tensor, transform = letterbox(image, width, height)
        output = self._run(tensor.astype(self._input_dtype, copy=False))
        return self.postprocess(output, transform)

    def postprocess(self, output: npt.NDArray[Any], transform: LetterboxTransform) -> list[Detection]:
        """Decode a raw (1, …) output of this model and map its boxes back through ``transform``."""
        config = self.config
        candidates = decode(output[0], self._layout, len(self._class_names), config.score_threshold)
        if self._layout is Layout.E2E:
            order = np.argsort(-candidates.scores, kind="stable")[: config.max_detections]
        else:
            order = batched_nms(candidates, config.iou_threshold, config.max_detections)
        kept = candidates.take(order)
        boxes = transform.to_source(kept.boxes_xyxy)
        detections = []
        for (x1, y1, x2, y2), score, class_id in zip(
            boxes.tolist(), kept.scores.tolist(), kept.class_ids.tolist(), strict=True
        ):
            if x2 <= x1 or y2 <= y1:  # degenerate, or lying wholly in the letterbox padding
                continue
            detections.append(Detection(Box(x1, y1, x2 - x1, y2 - y1), self._class_names[class_id], score))
        return detections

    def _dry_run(self, width: int, height: int) -> npt.NDArray[np.float32]:
        """Inference on a zero image: proves the graph runs and yields the output shape the layout is read from."""
        zeros = np.zeros((1, 3, height, width), dtype=self._input_dtype)
        try:
            output = np.asarray(self._run(zeros), dtype=np.float32)
        except ModelRejected:
            raise
        except Exception as exc:
            raise ModelRejected(f"dry inference on a zero {width}×{height} image failed: {exc}") from exc
        if output.ndim != 3 or output.shape[0] != 1:
            raise ModelRejected(f"the output shape {tuple(output.shape)} is not (1, rows, cols)")
        if not np.isfinite(output).all():
            raise ModelRejected("dry inference on a zero image produced NaN or infinite values")
        return output


_Backend = TypeVar("_Backend", bound=type[Detector])

BACKENDS: dict[str, type[Detector]] = {}


def register_backend(cls: _Backend) -> _Backend:
    """Class decorator: make a backend available to ``create_detector`` under its ``type_key``."""
    existing = BACKENDS.get(cls.type_key)
    if existing is not None and existing is not cls:
        raise ValueError(f"detector type {cls.type_key!r} is already registered to {existing.__name__}")
    BACKENDS[cls.type_key] = cls
    return cls


def create_detector(config: DetectorConfig) -> Detector:
    """Build (and thereby validate) the detector whose backend ``config.type`` names."""
    backend = BACKENDS.get(config.type)
    if backend is None:
        known = ", ".join(sorted(BACKENDS)) or "none registered"
        raise ValueError(f"unknown detector type {config.type!r} (known: {known})")
    return backend(config)
