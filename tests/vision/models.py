"""Tiny detector models built by the tests themselves: no weights are downloaded, nothing from Ultralytics.

``planted_onnx`` follows vision.md §6: the graph ignores its input's values (ReduceMean → × 0) and adds that zero
to a Constant holding the output we want the decoder to see, so every expected box is known exactly.
``planted_pt2`` does the same with a ``torch.nn.Module`` exported by ``torch.export``. ``conv_onnx`` is a small
strided conv net, heavy enough to time the detector's overhead against bare inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NAMES = ("no_hat", "smoking", "rat")
OPSET = 17


def names_literal(names: Sequence[str]) -> str:
    """Class names the way Ultralytics writes them into metadata: ``"{0: 'no_hat', 1: 'smoking'}"``."""
    return repr(dict(enumerate(names)))


def _save(model: onnx.ModelProto, path: Path, metadata: Mapping[str, str]) -> Path:
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def planted_onnx(
    path: Path,
    planted: np.ndarray,
    *,
    input_shape: Sequence[int | str] = (1, 3, 640, 640),
    names: Sequence[str] | None = NAMES,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """An ONNX model whose only output is ``planted`` (float32), whatever image it is given."""
    planted = np.asarray(planted, dtype=np.float32)
    nodes = [
        helper.make_node("Constant", [], ["planted"], value=numpy_helper.from_array(planted, "planted_value")),
        helper.make_node(
            "Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0.0, np.float32), "zero_value")
        ),
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["planted", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "planted",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(planted.shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    props = dict(metadata or {})
    if names is not None:
        props.setdefault("names", names_literal(names))
    return _save(model, path, props)


def failing_onnx(path: Path) -> Path:
    """Loads (the input size is dynamic, so no shape check can object) but cannot run: 3·H·W values never
    reshape into rows of 7 at 64×64 (12288 = 7 · 1755.4…)."""
    nodes = [
        helper.make_node("Constant", [], ["rows"], value=numpy_helper.from_array(np.array([1, -1, 7]), "rows_value")),
        helper.make_node("Reshape", ["images", "rows"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "failing",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, None, 7])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    return _save(model, path, {"names": names_literal(NAMES), "imgsz": "[64, 64]"})


def conv_onnx(path: Path, *, size: int = 320, names: Sequence[str] = NAMES, seed: int = 0) -> Path:
    """A YOLOv8-shaped conv net (random fixed weights): stride-8 head, output (1, 4 + nc, (size/8)²).

    Five 3×3 convolutions with ReLU, about 0.5 GFLOP at 320: the order of a nano detector's cost. Class logits
    are biased down so that, as with a real model, only a few anchors pass the score threshold (28 of 1600 at 0.4
    on a noise frame).
    """
    rng = np.random.default_rng(seed)
    nc = len(names)
    channels = [3, 16, 32, 64, 64, 128]
    strides = [2, 2, 1, 2, 1]
    initializers, nodes = [], []
    current = "images"
    for index, (c_in, c_out, stride) in enumerate(zip(channels[:-1], channels[1:], strides, strict=True)):
        weight = (rng.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2.0 / (c_in * 9))).astype(np.float32)
        initializers += [
            numpy_helper.from_array(weight, f"w{index}"),
            numpy_helper.from_array(np.zeros(c_out, np.float32), f"b{index}"),
        ]
        nodes += [
            helper.make_node(
                "Conv",
                [current, f"w{index}", f"b{index}"],
                [f"c{index}"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                strides=[stride, stride],
            ),
            helper.make_node("Relu", [f"c{index}"], [f"r{index}"]),
        ]
        current = f"r{index}"
    head_weight = (rng.standard_normal((4 + nc, channels[-1], 1, 1)) * 0.2).astype(np.float32)
    head_bias = np.concatenate([np.zeros(4), np.full(nc, -2.4)]).astype(np.float32)
    box_scale = np.concatenate([np.full(4, float(size)), np.ones(nc)]).astype(np.float32).reshape(1, 4 + nc, 1)
    cells = (size // 8) ** 2
    initializers += [
        numpy_helper.from_array(head_weight, "head_w"),
        numpy_helper.from_array(head_bias, "head_b"),
        numpy_helper.from_array(np.array([1, 4 + nc, cells], np.int64), "head_shape"),
        numpy_helper.from_array(box_scale, "box_scale"),
    ]
    nodes += [
        helper.make_node("Conv", [current, "head_w", "head_b"], ["head"], kernel_shape=[1, 1]),
        helper.make_node("Reshape", ["head", "head_shape"], ["flat"]),
        helper.make_node("Sigmoid", ["flat"], ["squashed"]),
        helper.make_node("Mul", ["squashed", "box_scale"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + nc, cells])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    return _save(model, path, {"names": names_literal(names)})


def planted_pt2(
    path: Path,
    planted: np.ndarray,
    *,
    input_shape: Sequence[int] = (1, 3, 640, 640),
    names: Sequence[str] | None = NAMES,
) -> Path:
    """A ``torch.export`` program (.pt2) whose output is ``planted``, metadata in the archive's extra files."""
    import torch

    class Planted(torch.nn.Module):
        planted: torch.Tensor

        def __init__(self, value: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("planted", value)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.planted + images.mean() * 0.0

    module = Planted(torch.from_numpy(np.asarray(planted, dtype=np.float32).copy()))
    program = torch.export.export(module, (torch.zeros(*input_shape),))
    extra_files = {} if names is None else {"names": names_literal(names)}
    torch.export.save(program, str(path), extra_files=extra_files)
    return path
