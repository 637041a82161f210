"""ONNX models on onnxruntime: the standard backend (vision.md §5.7: loads every YOLO layout, ~3× faster than
cv2.dnn on CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from vision.detectors.base import Detector, register_backend
from vision.detectors.inspect import ModelRejected, ModelSignature

_INPUT_DTYPES: dict[str, np.dtype[Any]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
}
_ERRORS_ONLY = 3  # onnxruntime log severity: keep its warnings about a district's graph out of our logs


def execution_providers(device: str) -> list[str]:
    """CPU always; CUDA first when asked for (or "auto") and this onnxruntime build ships it."""
    available = ort.get_available_providers()
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@register_backend
class OnnxDetector(Detector):
    type_key = "onnx"

    def _load(self, path: Path) -> ModelSignature:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.config.intra_op_num_threads
        options.inter_op_num_threads = 1  # a detection graph is a chain; parallel branches buy nothing
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = _ERRORS_ONLY
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=execution_providers(self.config.device)
            )
        except Exception as exc:  # onnxruntime raises its own pybind exception types (InvalidProtobuf, Fail, …)
            raise ModelRejected(f"not a loadable ONNX model: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelRejected(f"the model has {len(inputs)} inputs; a detector takes exactly one image tensor")
        image_input = inputs[0]
        dtype = _INPUT_DTYPES.get(image_input.type)
        if dtype is None:
            raise ModelRejected(f"input '{image_input.name}' is {image_input.type}; expected float or float16")
        self._input_name = image_input.name
        outputs = self._session.get_outputs()
        if not outputs:
            raise ModelRejected("the model has no outputs")
        # Only the first output is decoded (segmentation models add mask prototypes as a second output).
        self._output_names = [outputs[0].name]
        return ModelSignature(
            input_name=image_input.name,
            input_shape=tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in image_input.shape),
            input_dtype=dtype,
            metadata=dict(self._session.get_modelmeta().custom_metadata_map),
        )

    @property
    def session(self) -> ort.InferenceSession:
        """The underlying session, for benchmarks that want to time the bare ``run``."""
        return self._session

    def _run(self, tensor: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(self._session.run(self._output_names, {self._input_name: tensor})[0])
