"""Class-wise non-maximum suppression.

``cv2.dnn.NMSBoxesBatched`` is used rather than a numpy loop. Measured (2-core Xeon, OpenCV 5.0, clustered boxes,
3 classes, IoU 0.45), the kept sets being identical in every case:

| candidates | numpy greedy loop | cv2.dnn.NMSBoxesBatched |
|---|---|---|
| 10 | 0.28 ms | 0.01 ms |
| 100 | 0.97 ms | 0.05 ms |
| 1000 | 6.0 ms | 1.2 ms |
| 5000 | 13.7 ms | 7.6 ms |

Semantics (checked): a box is suppressed when its IoU with a kept box of the same class is *strictly greater* than
the threshold (as in torchvision and Ultralytics); equal scores keep input order; the result is ordered by score.
Its ``top_k`` argument is not used for the result cap: it truncates the candidate list before suppression.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from vision.detectors.layouts import Candidates


def batched_nms(candidates: Candidates, iou_threshold: float, max_detections: int) -> npt.NDArray[np.intp]:
    """Indices of the candidates that survive NMS within their class, best score first, at most ``max_detections``."""
    if len(candidates) == 0 or max_detections <= 0:
        return np.empty(0, dtype=np.intp)
    boxes = candidates.boxes_xyxy.astype(np.float64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(),  # plain lists convert to cv::Rect2d as fast as arrays (measured) and match the stubs
        candidates.scores.tolist(),
        candidates.class_ids.tolist(),
        -np.inf,  # the decoder applied the score threshold already; OpenCV's own test is strict (score > t)
        float(iou_threshold),
    )
    # Not OpenCV's top_k: it caps the candidates *before* suppression, so suppressed boxes would use up places.
    return np.asarray(kept, dtype=np.intp).reshape(-1)[:max_detections]
