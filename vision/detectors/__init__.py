"""Object detectors for district-supplied YOLO models: one ``Detector`` contract, backends picked by ``type``.

    detector = create_detector(DetectorConfig(model_path="kitchen.onnx", type="onnx"))
    detections = detector.detect(frame.image)
    payload = detector.info.provenance()

Importing this package registers the built-in backends (``onnx``, ``torch``); neither imports torch until a torch
detector is built. Nothing here imports ``ultralytics`` (AGPL-3.0): the YOLO layouts are decoded by our own code.
"""

from vision.detectors.base import BACKENDS, Detector, DetectorConfig, create_detector, register_backend
from vision.detectors.inspect import ModelInfo, ModelRejected, inspect_model
from vision.detectors.layouts import Layout
from vision.detectors.onnx_backend import OnnxDetector
from vision.detectors.torch_backend import TorchDetector

__all__ = [
    "BACKENDS",
    "Detector",
    "DetectorConfig",
    "Layout",
    "ModelInfo",
    "ModelRejected",
    "OnnxDetector",
    "TorchDetector",
    "create_detector",
    "inspect_model",
    "register_backend",
]
