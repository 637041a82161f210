"""Detector runtime: layouts decoded to exact boxes in the original frame, NMS, backends, model validation.

The frame is 1280×720 and the model input 640×640, so the letterbox scales by 0.5 and pads 140 rows at the top:
a box (x1, y1, x2, y2) in model pixels lands at (2·x1, 2·(y1 − 140), 2·x2, 2·(y2 − 140)) in the frame.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from tests.vision.models import NAMES, conv_onnx, failing_onnx, names_literal, planted_onnx, planted_pt2
from vision.detectors import (
    BACKENDS,
    DetectorConfig,
    Layout,
    ModelRejected,
    OnnxDetector,
    TorchDetector,
    create_detector,
    inspect_model,
)
from vision.detectors.layouts import Candidates, LayoutError, decode, select_layout
from vision.detectors.nms import batched_nms
from vision.detectors.preprocess import PAD_VALUE, letterbox, letterbox_transform
from vision.types import Box, Detection

FRAME = np.zeros((720, 1280, 3), dtype=np.uint8)


def expected(x: float, y: float, w: float, h: float, class_name: str, score: float) -> Detection:
    """A detection with an exact box and a score compared to float32 precision."""
    return Detection(Box(x, y, w, h), class_name, cast(float, pytest.approx(score, abs=1e-6)))


N_ANCHORS = 8400  # a 640 input's raw head: 80² + 40² + 20²


def v8_output() -> np.ndarray:
    """(1, 4 + nc, 8400): columns are anchors; cx, cy, w, h then one score per class, no objectness."""
    out = np.zeros((1, 4 + len(NAMES), N_ANCHORS), dtype=np.float32)
    out[0, :, 0] = [320, 320, 100, 200, 0.9, 0.2, 0.1]  # A: no_hat 0.9
    out[0, :, 1] = [330, 320, 100, 200, 0.8, 0.0, 0.0]  # A shifted 10 px, same class (IoU 0.82): suppressed
    out[0, :, 2] = [330, 320, 100, 200, 0.0, 0.7, 0.0]  # the same box as a different class: kept
    out[0, :, 3] = [100, 300, 40, 40, 0.0, 0.0, 0.3]  # below the 0.4 threshold
    out[0, :, 4] = [500, 200, 60, 20, 0.0, 0.0, 0.5]  # rat
    out[0, :, 5] = [200, 150, 40, 40, 0.0, 0.6, 0.0]  # reaches 20 px into the top padding: clipped at y = 0
    return out


V8_EXPECTED = [
    expected(540.0, 160.0, 200.0, 400.0, "no_hat", 0.9),
    expected(560.0, 160.0, 200.0, 400.0, "smoking", 0.7),
    expected(360.0, 0.0, 80.0, 60.0, "smoking", 0.6),
    expected(940.0, 100.0, 120.0, 40.0, "rat", 0.5),
]


def v5_output() -> np.ndarray:
    """(1, 25200, 5 + nc): rows are anchors; cx, cy, w, h, objectness, class probabilities."""
    out = np.zeros((1, 25200, 5 + len(NAMES)), dtype=np.float32)
    out[0, 0] = [320, 320, 100, 200, 0.9, 0.95, 0.1, 0.1]  # 0.9 × 0.95 = 0.855 no_hat
    out[0, 1] = [330, 320, 100, 200, 0.9, 0.9, 0.0, 0.0]  # 0.81, same class, overlapping: suppressed
    out[0, 2] = [320, 320, 100, 200, 0.9, 0.0, 0.0, 0.6]  # 0.54, same box, other class: kept
    out[0, 3] = [500, 200, 60, 20, 0.5, 0.0, 0.9, 0.0]  # 0.45 smoking: kept
    out[0, 4] = [100, 300, 40, 40, 0.9, 0.0, 0.0, 0.4]  # 0.36: both factors pass 0.4, the product does not
    out[0, 5] = [100, 500, 40, 40, 0.3, 1.0, 0.0, 0.0]  # objectness 0.3: out
    return out


V5_EXPECTED = [
    expected(540.0, 160.0, 200.0, 400.0, "no_hat", 0.855),
    expected(540.0, 160.0, 200.0, 400.0, "rat", 0.54),
    expected(940.0, 100.0, 120.0, 40.0, "smoking", 0.45),
]


def e2e_output() -> np.ndarray:
    """(1, 300, 6): x1, y1, x2, y2, score, class id; the graph did NMS, padding rows are zeros."""
    out = np.zeros((1, 300, 6), dtype=np.float32)
    out[0, 0] = [270, 220, 370, 420, 0.9, 0]
    out[0, 1] = [280, 220, 380, 420, 0.8, 0]  # overlaps row 0 but the model kept it: threshold only, no NMS
    out[0, 2] = [100, 100, 200, 200, 0.3, 1]  # below threshold
    out[0, 3] = [470, 190, 530, 210, 0.6, 2]
    out[0, 4] = [100, 300, 200, 400, 0.95, 7]  # a class id the model does not have: dropped
    return out


E2E_EXPECTED = [
    expected(540.0, 160.0, 200.0, 400.0, "no_hat", 0.9),
    expected(560.0, 160.0, 200.0, 400.0, "no_hat", 0.8),
    expected(940.0, 100.0, 120.0, 40.0, "rat", 0.6),
]


def onnx_detector(path: Path, **config: object) -> OnnxDetector:
    detector = create_detector(DetectorConfig(model_path=path, type="onnx", **config))  # type: ignore[arg-type]
    assert isinstance(detector, OnnxDetector)
    return detector


# -- letterbox -----------------------------------------------------------------------------------------------------


def test_letterbox_pads_grey_converts_to_rgb_and_scales_to_unit_range():
    frame = np.zeros((720, 1280, 3), dtype=np.uint8)
    frame[..., 0] = 255  # pure blue in BGR
    tensor, transform = letterbox(frame, 640, 640)
    assert tensor.shape == (1, 3, 640, 640) and tensor.dtype == np.float32
    assert (transform.scale_x, transform.scale_y, transform.pad_x, transform.pad_y) == (0.5, 0.5, 0, 140)
    content = tensor[0, :, 140:500, :]
    assert np.all(content[2] == 1.0) and np.all(content[0] == 0.0) and np.all(content[1] == 0.0)  # RGB order
    grey = PAD_VALUE / 255  # (within a float32 ulp: the scaling multiplies by 1/255)
    assert np.allclose(tensor[0, :, :140, :], grey, rtol=0, atol=1e-7)
    assert np.allclose(tensor[0, :, 500:, :], grey, rtol=0, atol=1e-7)


def test_letterbox_undo_inverts_the_forward_mapping_for_odd_sizes_and_clips_to_the_frame():
    transform = letterbox_transform(333, 1000, 320, 320)  # portrait, odd: 107 × 320 resized, padded left/right
    assert transform.pad_y == 0 and transform.pad_x == (320 - round(333 * 320 / 1000)) // 2
    boxes = np.array([[10.5, 20.25, 300.0, 990.0], [0.0, 0.0, 333.0, 1000.0]])
    assert np.allclose(transform.to_source(transform.to_input(boxes)), boxes, atol=1e-9)
    outside = transform.to_source(np.array([[-50.0, -50.0, 400.0, 400.0]]))
    assert outside.tolist() == [[0.0, 0.0, 333.0, 1000.0]]


def test_grey_frames_are_accepted(tmp_path):
    detector = onnx_detector(planted_onnx(tmp_path / "v8.onnx", v8_output()))
    assert detector.detect(np.zeros((720, 1280), dtype=np.uint8)) == V8_EXPECTED


# -- the three layouts, end to end ----------------------------------------------------------------------------------


def test_yolov8_layout_decodes_exact_boxes_suppresses_same_class_duplicates_and_undoes_the_letterbox(tmp_path):
    detector = onnx_detector(planted_onnx(tmp_path / "v8.onnx", v8_output()))
    assert detector.layout is Layout.V8 and detector.class_names == NAMES
    assert detector.detect(FRAME) == V8_EXPECTED


def test_yolov5_layout_multiplies_objectness_by_class_probability(tmp_path):
    detector = onnx_detector(planted_onnx(tmp_path / "v5.onnx", v5_output()))
    assert detector.layout is Layout.V5
    assert detector.detect(FRAME) == V5_EXPECTED


def test_end_to_end_layout_applies_the_threshold_only(tmp_path):
    detector = onnx_detector(planted_onnx(tmp_path / "e2e.onnx", e2e_output()))
    assert detector.layout is Layout.E2E
    assert detector.detect(FRAME) == E2E_EXPECTED


def test_score_threshold_and_max_detections_come_from_the_config(tmp_path):
    path = planted_onnx(tmp_path / "v8.onnx", v8_output())
    assert onnx_detector(path, score_threshold=0.65).detect(FRAME) == V8_EXPECTED[:2]
    assert onnx_detector(path, max_detections=3).detect(FRAME) == V8_EXPECTED[:3]
    # A looser IoU keeps the shifted duplicate (IoU 0.82 is not above 0.85).
    loose = onnx_detector(path, iou_threshold=0.85).detect(FRAME)
    assert [d.box.x for d in loose if d.class_name == "no_hat"] == [540.0, 560.0]


def test_torch_export_program_decodes_identically_to_the_onnx_model(tmp_path):
    pytest.importorskip("torch")
    onnx_detections = onnx_detector(planted_onnx(tmp_path / "v8.onnx", v8_output())).detect(FRAME)
    detector = create_detector(DetectorConfig(model_path=planted_pt2(tmp_path / "v8.pt2", v8_output()), type="torch"))
    assert isinstance(detector, TorchDetector)
    assert detector.device == "cpu"  # this machine has no CUDA; "auto" falls back
    assert detector.info.backend == "torch" and detector.info.layout is Layout.V8
    assert detector.class_names == NAMES  # from the archive's extra files
    assert detector.detect(FRAME) == onnx_detections == V8_EXPECTED


# -- layout detection -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "classes", "expected"),
    [
        ((1, 84, 8400), 80, Layout.V8),
        ((1, 84, 84), 80, Layout.V8),  # the 64×64 case vision.md warns about: only v8 fits 80 classes
        ((1, 25200, 85), 80, Layout.V5),
        ((1, 25200, 6), 1, Layout.V5),  # one-class YOLOv5 has 6 columns but far too many rows for end-to-end
        ((1, 300, 6), 80, Layout.E2E),
    ],
)
def test_layout_is_read_from_the_shape_and_the_class_count(shape, classes, expected):
    assert select_layout(shape, classes) is expected


def test_ambiguous_shapes_need_an_explicit_layout_or_the_end2end_flag():
    with pytest.raises(LayoutError, match="ambiguous"):
        select_layout((1, 6, 7), 2)  # v8 with 7 anchors, or v5 with 6
    assert select_layout((1, 6, 7), 2, requested="v5") is Layout.V5
    with pytest.raises(LayoutError, match="ambiguous"):
        select_layout((1, 300, 6), 1)
    assert select_layout((1, 300, 6), 1, end2end_hint=True) is Layout.E2E
    assert select_layout((1, 300, 6), 1, end2end_hint=False) is Layout.V5
    with pytest.raises(LayoutError, match="requested layout e2e"):
        select_layout((1, 84, 8400), 80, requested="e2e")


def test_explicit_layout_override_reaches_the_decoder(tmp_path):
    planted = np.zeros((1, 6, 7), dtype=np.float32)
    planted[0, :, 0] = [320, 320, 100, 200, 0.1, 0.9]  # read as v8: anchor 0, class 1
    path = planted_onnx(tmp_path / "tiny.onnx", planted, names=("a", "b"))
    with pytest.raises(ModelRejected, match="ambiguous"):
        onnx_detector(path)
    assert onnx_detector(path, layout="v8").detect(FRAME) == [expected(540.0, 160.0, 200.0, 400.0, "b", 0.9)]


def test_v8_decoder_thresholds_before_gathering():
    output = v8_output()[0]
    candidates = decode(output, Layout.V8, len(NAMES), 0.4)
    assert candidates.class_ids.tolist() == [0, 0, 1, 2, 1]
    assert candidates.boxes_xyxy[0].tolist() == [270.0, 220.0, 370.0, 420.0]


# -- NMS ------------------------------------------------------------------------------------------------------------


def _reference_nms(boxes, scores, classes, iou_threshold):
    """Greedy class-wise NMS, written out plainly: the definition the fast path must match."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        a = Box(boxes[i][0], boxes[i][1], boxes[i][2] - boxes[i][0], boxes[i][3] - boxes[i][1])
        if all(
            classes[j] != classes[i]
            or a.iou(Box(boxes[j][0], boxes[j][1], boxes[j][2] - boxes[j][0], boxes[j][3] - boxes[j][1]))
            <= iou_threshold
            for j in kept
        ):
            kept.append(i)
    return kept


def test_batched_nms_matches_the_greedy_definition_on_clustered_boxes():
    rng = np.random.default_rng(7)
    centres = rng.uniform(50, 590, (15, 2))
    picks = rng.integers(0, 15, 400)
    xy = centres[picks] + rng.normal(0, 6, (400, 2))
    wh = rng.uniform(30, 90, (400, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1).astype(np.float32)
    scores = rng.permutation(np.linspace(0.41, 0.99, 400)).astype(np.float32)  # distinct: no tie ambiguity
    classes = rng.integers(0, 3, 400).astype(np.int32)
    kept = batched_nms(Candidates(boxes, scores, classes), 0.45, 1000)
    expected = _reference_nms(boxes.astype(np.float64).tolist(), scores.tolist(), classes.tolist(), 0.45)
    assert kept.tolist() == expected
    assert 15 < len(kept) < 200  # the clusters really were suppressed, and not to one box per class
    assert batched_nms(Candidates(boxes, scores, classes), 0.45, 10).tolist() == expected[:10]


def test_batched_nms_keeps_a_box_whose_iou_equals_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=np.float32)  # IoU exactly 0.5
    candidates = Candidates(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 0], np.int32))
    assert batched_nms(candidates, 0.5, 10).tolist() == [0, 1]
    assert batched_nms(candidates, 0.49, 10).tolist() == [0]
    empty = Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))
    assert batched_nms(empty, 0.5, 10).tolist() == []


# -- validation and inspection --------------------------------------------------------------------------------------


def test_inspect_model_records_hash_layout_size_classes_and_licence(tmp_path):
    path = planted_onnx(tmp_path / "kitchen.onnx", v8_output(), metadata={"license": "Apache-2.0"})
    info = inspect_model(path, type="onnx")
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (info.layout, info.input_width, info.input_height) == (Layout.V8, 640, 640)
    assert info.output_shape == (1, 7, N_ANCHORS)
    assert (info.class_names, info.class_names_source, info.licence) == (NAMES, "metadata", "Apache-2.0")
    assert (info.name, info.version, info.backend) == ("kitchen", info.sha256[:12], "onnx")
    assert info.provenance() == {
        "model_name": "kitchen",
        "model_version": info.sha256[:12],
        "model_sha256": info.sha256,
        "model_layout": "v8",
        "model_licence": "Apache-2.0",
    }
    bare = inspect_model(planted_onnx(tmp_path / "bare.onnx", e2e_output()), type="onnx")
    assert bare.licence == "unknown" and bare.layout is Layout.E2E


def test_label_file_supplies_names_when_the_metadata_has_none(tmp_path):
    path = planted_onnx(tmp_path / "v5.onnx", v5_output(), names=None)
    labels = tmp_path / "labels.txt"
    labels.write_text("\ufeff未戴帽\n吸烟\n\n老鼠\n", encoding="utf-8")  # BOM and a blank line are tolerated
    info = inspect_model(path, type="onnx", labels_path=labels)
    assert (info.class_names, info.class_names_source) == (("未戴帽", "吸烟", "老鼠"), "labels")
    detections = onnx_detector(path, labels_path=labels).detect(FRAME)
    assert [d.class_name for d in detections] == ["未戴帽", "老鼠", "吸烟"]


def test_dynamic_input_size_is_taken_from_imgsz_metadata(tmp_path):
    path = planted_onnx(
        tmp_path / "dyn.onnx", e2e_output(), input_shape=(1, 3, "h", "w"), metadata={"imgsz": "[640, 640]"}
    )
    detector = onnx_detector(path)
    assert detector.input_size == (640, 640)
    assert detector.detect(FRAME) == E2E_EXPECTED


def test_intra_op_threads_reach_the_onnxruntime_session(tmp_path):
    detector = onnx_detector(planted_onnx(tmp_path / "v8.onnx", v8_output()), intra_op_num_threads=2)
    assert detector.session.get_session_options().intra_op_num_threads == 2
    assert detector.session.get_providers() == ["CPUExecutionProvider"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("build", "type_", "reason"),
    [
        (lambda d: _write(d / "noise.onnx", np.random.default_rng(1).bytes(4096)), "onnx", "not a loadable ONNX model"),
        (lambda d: _write(d / "noise.pt2", np.random.default_rng(1).bytes(4096)), "torch", "not a zip archive"),
        (lambda d: d / "missing.onnx", "onnx", "no model file"),
        (
            lambda d: planted_onnx(d / "flat.onnx", np.zeros((1, 300, 6), np.float32), input_shape=(1, 10)),
            "onnx",
            r"rank 2 \(shape \[1, 10\]\)",
        ),
        (
            lambda d: planted_onnx(d / "grey.onnx", e2e_output(), input_shape=(1, 1, 640, 640)),
            "onnx",
            "1 channels",
        ),
        (
            lambda d: planted_onnx(d / "square.onnx", np.zeros((1, 10, 10), np.float32)),
            "onnx",
            r"output shape \(1, 10, 10\) matches no layout for 3 classes \(as YOLOv8 .* 6 classes; as YOLOv5 .* 5",
        ),
        (
            lambda d: planted_onnx(d / "rank2.onnx", np.zeros((7, 8400), np.float32)),
            "onnx",
            r"output shape \(7, 8400\) is not \(1, rows, cols\)",
        ),
        (
            lambda d: planted_onnx(d / "nan.onnx", np.full((1, 7, 100), np.nan, np.float32)),
            "onnx",
            "NaN or infinite",
        ),
        (lambda d: planted_onnx(d / "nameless.onnx", v8_output(), names=None), "onnx", "supply a label file"),
        (
            lambda d: planted_onnx(d / "evil.onnx", v8_output(), metadata={"names": "__import__('os').getcwd()"}),
            "onnx",
            "not a dict or list literal",
        ),
        (
            lambda d: planted_onnx(d / "gap.onnx", v8_output(), metadata={"names": "{0: 'a', 2: 'b', 3: 'c'}"}),
            "onnx",
            "without gaps",
        ),
        (
            lambda d: planted_onnx(d / "twice.onnx", v8_output(), names=("a", "b", "a")),
            "onnx",
            "more than once: a",
        ),
        (
            lambda d: planted_onnx(d / "dyn.onnx", e2e_output(), input_shape=(1, 3, "h", "w")),
            "onnx",
            "dynamic size",
        ),
        (lambda d: failing_onnx(d / "broken.onnx"), "onnx", "dry inference on a zero 64×64 image failed"),
    ],
    ids=[
        "random-bytes-onnx",
        "random-bytes-torch",
        "missing-file",
        "2d-input",
        "one-channel-input",
        "output-matches-no-layout",
        "output-without-batch",
        "nan-output",
        "no-class-names",
        "names-not-a-literal",
        "names-with-gaps",
        "duplicate-names",
        "dynamic-input-without-imgsz",
        "inference-fails",
    ],
)
def test_malformed_models_are_refused_with_a_reason(tmp_path, build, type_, reason):
    path = build(tmp_path)
    with pytest.raises(ModelRejected, match=reason):
        inspect_model(path, type=type_)


def test_label_file_with_the_wrong_count_is_refused(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("no_hat\nsmoking\nrat\nphone\n", encoding="utf-8")
    without_names = planted_onnx(tmp_path / "v8.onnx", v8_output(), names=None)
    with pytest.raises(ModelRejected, match=r"label file's 4 class names do not fit .*as YOLOv8 .* 3 classes"):
        inspect_model(without_names, type="onnx", labels_path=labels)
    with_names = planted_onnx(tmp_path / "named.onnx", v8_output())
    with pytest.raises(ModelRejected, match="label file lists 4 classes but the model's metadata names 3"):
        inspect_model(with_names, type="onnx", labels_path=labels)


def test_a_pinned_hash_refuses_a_different_file_before_loading_it(tmp_path):
    path = planted_onnx(tmp_path / "v8.onnx", v8_output())
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert onnx_detector(path, sha256=good.upper()).info.sha256 == good
    with pytest.raises(ModelRejected, match="sha256"):
        onnx_detector(path, sha256="0" * 64)


def test_backends_are_chosen_by_type_and_config_is_checked():
    assert BACKENDS["onnx"] is OnnxDetector and BACKENDS["torch"] is TorchDetector
    with pytest.raises(ValueError, match="unknown detector type 'tflite'"):
        create_detector(DetectorConfig(model_path="x", type="tflite"))
    for bad in ({"score_threshold": 1.5}, {"layout": "v7"}, {"max_detections": 0}, {"device": "tpu"}):
        with pytest.raises(ValueError):
            DetectorConfig(model_path="x", **bad)


def test_no_module_imports_ultralytics_or_torch_at_import_time():
    import subprocess
    import sys

    code = "import sys, vision.detectors; print('torch' in sys.modules, 'ultralytics' in sys.modules)"
    root = Path(__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.split() == ["False", "False"]
    sources = (root / "vision" / "detectors").glob("*.py")
    assert not [p.name for p in sources if "import ultralytics" in p.read_text() or "from ultralytics" in p.read_text()]


# -- overhead -------------------------------------------------------------------------------------------------------


def test_detect_adds_little_to_bare_inference(tmp_path):
    """Letterbox + decode + NMS + undo cost well under a millisecond-scale model's inference (measured 0.88 on a
    2-core machine with an 8 ms conv net at 320; asserted loosely because the machine is shared)."""
    detector = onnx_detector(conv_onnx(tmp_path / "conv.onnx", size=320))
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    tensor, _ = letterbox(frame, 320, 320)
    feed = {detector.session.get_inputs()[0].name: tensor}
    for _ in range(3):
        detector.session.run(None, feed)
        detector.detect(frame)
    runs, detects = [], []
    for _ in range(30):
        start = time.perf_counter()
        detector.session.run(None, feed)
        runs.append(time.perf_counter() - start)
        start = time.perf_counter()
        detector.detect(frame)
        detects.append(time.perf_counter() - start)
    assert statistics.median(runs) / statistics.median(detects) >= 0.6


def test_names_literal_round_trips_through_the_metadata_parser():
    from vision.detectors.inspect import parse_names_metadata

    assert parse_names_metadata(names_literal(NAMES)) == NAMES
    assert parse_names_metadata("['a', 'b']") == ("a", "b")
