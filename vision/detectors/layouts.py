"""The three YOLO output layouts: recognise them from the output shape and decode them into candidate boxes.

| layout | output | rows |
|---|---|---|
| ``v8`` (YOLOv8 / YOLO11 / YOLO26 raw head) | (1, 4 + nc, N) | cx, cy, w, h, nc class scores; no objectness |
| ``v5`` (YOLOv5 export) | (1, N, 5 + nc) | cx, cy, w, h, objectness, nc class probabilities |
| ``e2e`` (NMS inside the graph / one-to-one head) | (1, K, 6) | x1, y1, x2, y2, score, class id |

Boxes are in model-input pixels. The layout is read from the *shape*, cross-checked with the number of class
names, never from the model's name (the same family exports several layouts).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

# An end-to-end head emits a fixed, small number of rows (Ultralytics: 300); raw heads emit thousands of anchors
# (8400 at 640, 2100 at 320). Above this many rows a (K, 6) output is a one-class YOLOv5 head, not end-to-end.
MAX_END_TO_END_ROWS = 1000


class Layout(StrEnum):
    V8 = "v8"
    V5 = "v5"
    E2E = "e2e"


class LayoutError(ValueError):
    """The output shape fits no layout, or more than one, for the given number of classes."""


@dataclass(frozen=True)
class Candidates:
    """Boxes that passed the score threshold, before NMS; everything in model-input pixels."""

    boxes_xyxy: npt.NDArray[np.float32]  # (M, 4)
    scores: npt.NDArray[np.float32]  # (M,)
    class_ids: npt.NDArray[np.int32]  # (M,)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def take(self, indices: npt.NDArray[np.integer]) -> Candidates:
        return Candidates(self.boxes_xyxy[indices], self.scores[indices], self.class_ids[indices])


def matching_layouts(shape: tuple[int, ...], num_classes: int) -> list[Layout]:
    """Every layout a batch-1 output of this shape is consistent with, for ``num_classes`` classes."""
    if len(shape) != 3 or shape[0] != 1 or num_classes < 1:
        return []
    _, dim1, dim2 = shape
    found = []
    if dim1 == 4 + num_classes and dim2 >= 1:
        found.append(Layout.V8)
    if dim2 == 5 + num_classes and dim1 >= 1:
        found.append(Layout.V5)
    if dim2 == 6 and 1 <= dim1 <= MAX_END_TO_END_ROWS:
        found.append(Layout.E2E)
    return found


def describe_fit(shape: tuple[int, ...]) -> str:
    """What the shape would mean under the layout it resembles; error messages use it to explain a mismatch.

    A raw head has far more anchors than channels, so (1, small, large) reads as YOLOv8 and (1, large, small) as
    YOLOv5 (or end-to-end when it has 6 columns).
    """
    if len(shape) != 3:
        return f"output rank {len(shape)}, a detector output is (1, rows, cols)"
    _, dim1, dim2 = shape
    parts = []
    if dim1 <= dim2 and dim1 > 4:
        parts.append(f"as YOLOv8 (1, 4+nc, N) it has {dim1 - 4} classes")
    if dim1 >= dim2 and dim2 > 5:
        parts.append(f"as YOLOv5 (1, N, 5+nc) it has {dim2 - 5} classes")
    if dim2 == 6 and dim1 <= MAX_END_TO_END_ROWS:
        parts.append("it also fits end-to-end (1, K, 6) with any class count")
    return "; ".join(parts) if parts else "it fits no YOLO layout for any class count"


def select_layout(
    shape: tuple[int, ...],
    num_classes: int,
    *,
    requested: str = "auto",
    end2end_hint: bool | None = None,
) -> Layout:
    """Pick the layout for an output shape; ``requested`` is the registry's explicit override ("auto" sniffs).

    ``end2end_hint`` is the Ultralytics metadata flag ``end2end``; it only breaks a tie (a one-class model whose
    output is (1, K ≤ 1000, 6) fits both v5 and e2e), it never overrides the shape.
    """
    found = matching_layouts(shape, num_classes)
    if requested != "auto":
        layout = Layout(requested)
        if layout not in found:
            raise LayoutError(
                f"output shape {shape} does not fit the requested layout {layout.value} with {num_classes} classes "
                f"({describe_fit(shape)})"
            )
        return layout
    if len(found) == 1:
        return found[0]
    if not found:
        raise LayoutError(f"output shape {shape} matches no layout for {num_classes} classes ({describe_fit(shape)})")
    if end2end_hint is not None and Layout.E2E in found:
        return Layout.E2E if end2end_hint else next(layout for layout in found if layout is not Layout.E2E)
    names = ", ".join(layout.value for layout in found)
    raise LayoutError(
        f"output shape {shape} is ambiguous for {num_classes} classes ({names}); set the layout explicitly"
    )


def _cxcywh_to_xyxy(boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    half = boxes[:, 2:4] * np.float32(0.5)
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1)


def decode(output: npt.NDArray[np.floating], layout: Layout, num_classes: int, score_threshold: float) -> Candidates:
    """Decode one image's output (batch dimension removed) into candidates with score ≥ ``score_threshold``.

    The threshold is applied before anything else is gathered: a raw head has thousands of rows and only a few
    pass, so the boxes of the others are never touched.
    """
    rows = np.asarray(output, dtype=np.float32)
    threshold = np.float32(score_threshold)
    if layout is Layout.V8:
        class_scores = rows[4 : 4 + num_classes]  # (nc, N): scores are already sigmoid, no objectness
        best = class_scores.max(axis=0)
        keep = np.flatnonzero(best >= threshold)
        class_ids = class_scores[:, keep].argmax(axis=0).astype(np.int32)
        return Candidates(_cxcywh_to_xyxy(rows[:4, keep].T), best[keep], class_ids)
    if layout is Layout.V5:
        objectness = rows[:, 4]
        # score = objectness × class probability ≤ objectness, so rows with low objectness cannot pass.
        keep = np.flatnonzero(objectness >= threshold)
        class_scores = rows[keep, 5 : 5 + num_classes] * objectness[keep, None]
        class_ids = class_scores.argmax(axis=1).astype(np.int32)
        scores = class_scores[np.arange(keep.size), class_ids]
        passed = scores >= threshold
        return Candidates(_cxcywh_to_xyxy(rows[keep[passed], :4]), scores[passed], class_ids[passed])
    # End-to-end: the graph already ran NMS (or has a one-to-one head); only the threshold applies. Padding rows
    # (score 0) and class ids outside the model's classes are dropped.
    scores = rows[:, 4]
    class_ids = np.rint(rows[:, 5])
    keep = np.flatnonzero((scores >= threshold) & (class_ids >= 0) & (class_ids < num_classes))
    return Candidates(np.ascontiguousarray(rows[keep, :4]), scores[keep], class_ids[keep].astype(np.int32))
