"""``torch.export`` programs saved as ``.pt2``: the second backend, for hosts with a GPU.

torch is imported inside the methods, never at module import, so the library (and every worker that only runs
ONNX) works without it. Metadata travels as ``extra_files`` of the archive under the same keys an Ultralytics
ONNX file uses (``names``, ``license``, ``imgsz``, ``end2end``, …), so both backends validate alike.

Trust: ``torch.export.load`` unpickles tensors (``weights_only=False`` inside torch 2.13), so a .pt2 file can run
code when loaded. Load only registered files — set ``DetectorConfig.sha256`` and the hash is checked *before* the
file is opened — and prefer ONNX for anything whose provenance is unclear.

Threads: torch's intra-op pool is process-wide (``torch.set_num_threads``); the backend leaves it to the worker
process rather than changing it from a library.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.detectors.base import Detector, register_backend
from vision.detectors.inspect import ModelRejected, ModelSignature

METADATA_KEYS = ("names", "license", "imgsz", "end2end", "stride", "task", "description", "author", "date", "version")


@register_backend
class TorchDetector(Detector):
    type_key = "torch"

    def _load(self, path: Path) -> ModelSignature:
        try:
            import torch
        except ImportError as exc:  # a deployment problem, not a fault of the file
            raise RuntimeError("the torch detector backend needs torch (install the 'torch' extra)") from exc
        if not zipfile.is_zipfile(path):
            # Checked first: torch logs a traceback for non-archives before raising.
            raise ModelRejected("not a torch.export program (.pt2): the file is not a zip archive")
        extra_files: dict[str, Any] = dict.fromkeys(METADATA_KEYS, "")
        try:
            program = torch.export.load(str(path), extra_files=extra_files)
        except Exception as exc:
            raise ModelRejected(f"not a torch.export program (.pt2): {exc}") from exc
        user_inputs = list(program.graph_signature.user_inputs)
        if len(user_inputs) != 1:
            raise ModelRejected(f"the program has {len(user_inputs)} inputs; a detector takes exactly one image tensor")
        placeholder = next(
            node for node in program.graph.nodes if node.op == "placeholder" and node.name == user_inputs[0]
        )
        example = placeholder.meta.get("val")
        if not isinstance(example, torch.Tensor):
            raise ModelRejected(f"input '{user_inputs[0]}' is not a tensor")
        dtypes: dict[torch.dtype, np.dtype[Any]] = {
            torch.float32: np.dtype(np.float32),
            torch.float16: np.dtype(np.float16),
        }
        dtype = dtypes.get(example.dtype)
        if dtype is None:
            raise ModelRejected(f"input '{user_inputs[0]}' is {example.dtype}; expected float32 or float16")

        use_cuda = self.config.device in ("auto", "cuda") and torch.cuda.is_available()
        self._device = torch.device("cuda" if use_cuda else "cpu")
        if use_cuda:
            # Moves weights, buffers and device arguments baked into the graph, unlike nn.Module.to on the export.
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, "cuda")
        self._module = program.module()
        metadata = {key: _as_text(value) for key, value in extra_files.items() if value}
        return ModelSignature(
            input_name=str(user_inputs[0]),
            # A dynamic dimension is a SymInt in the example value, not a plain int.
            input_shape=tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in example.shape),
            input_dtype=dtype,
            metadata=metadata,
        )

    @property
    def device(self) -> str:
        return str(self._device)

    def _run(self, tensor: npt.NDArray[Any]) -> npt.NDArray[Any]:
        import torch

        with torch.inference_mode():
            output = self._module(torch.from_numpy(tensor).to(self._device))
        if isinstance(output, tuple | list):
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"the program returned {type(output).__name__}, not a tensor")
        return output.detach().to(device="cpu", dtype=torch.float32).numpy()


def _as_text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
