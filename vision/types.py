"""The vocabulary every part of the vision library shares: frames in, findings out.

The library is pure (numpy in, dataclasses out): it never talks to the database, Temporal or the object store;
``activities/`` wires it to cameras and to alert intake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]  # H×W×3 BGR (OpenCV's order), or H×W grey where a function says so


@dataclass(frozen=True)
class Frame:
    image: Image
    captured_at: datetime  # timezone-aware, UTC
    sequence: int  # per source, increasing; a gap means dropped frames

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True)
class Box:
    """Pixels of the frame it was found in: top-left corner, width, height (the alert API's box shape)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(0.0, self.w) * max(0.0, self.h)

    def iou(self, other: Box) -> float:
        left, top = max(self.x, other.x), max(self.y, other.y)
        right, bottom = min(self.x + self.w, other.x + other.w), min(self.y + self.h, other.y + other.h)
        inter = max(0.0, right - left) * max(0.0, bottom - top)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Detection:
    box: Box
    class_name: str
    score: float  # [0, 1]


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours in Beijing time; ``opens > closes`` means open across midnight."""

    opens: time
    closes: time

    def is_open(self, local: time) -> bool:
        if self.opens <= self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes


@dataclass(frozen=True)
class Finding:
    """Something a check concluded about a camera, ready to become an alert: which alert type, since when,
    how sure, and the measured values that made it fire (they go into the alert payload as the reason)."""

    alert_type: str  # a domain.alerts.taxonomy.AlertType value
    started_at: datetime
    at: datetime  # when it fired (after its persistence)
    score: float
    metrics: dict[str, Any] = field(default_factory=dict)
    boxes: tuple[Box, ...] = ()
