"""`sunshine model add` / `list` against a real PostgreSQL, with models built by the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from domain.detectors.models import DetectorModel
from tests.integration.conftest import Cli
from tests.vision.models import failing_onnx, planted_onnx

pytestmark = pytest.mark.integration


def v8_model(path: Path) -> Path:
    planted = np.zeros((1, 4 + 3, 8400), dtype=np.float32)  # YOLOv8 layout, 3 classes: no_hat, smoking, rat
    return planted_onnx(path, planted)


def test_a_model_is_validated_copied_by_its_digest_and_registered(
    cli: Cli, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.settings import get_settings

    monkeypatch.setenv("SUNSHINE_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    model = v8_model(tmp_path / "kitchen.onnx")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    code = cli("model", "add", str(model), "--name", "kitchen", "--version", "1",
               "--map", "no_hat=no_hat,smoking=smoking,rat=pest", "--areas", "专间,cooking")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "layout v8" in out and "input 640×640" in out and digest in out
    stored = db_session.exec(select(DetectorModel)).one()
    assert (stored.sha256, stored.layout, stored.classes, stored.areas) == (
        digest, "v8", ["no_hat", "smoking", "rat"], ["special_room", "cooking"])
    assert Path(stored.path) == tmp_path / "models" / f"{digest}.onnx" and Path(stored.path).read_bytes() == \
        model.read_bytes()
    assert cli("model", "list") == 0 and "kitchen 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("build", "args", "expected"),
    [
        (lambda p: p.write_bytes(b"not a model at all"), ("--map", "no_hat=no_hat"), "model refused"),
        (failing_onnx, ("--map", "no_hat=no_hat"), "model refused"),
        (v8_model, ("--map", "helmet=no_hat"), "no class 'helmet'"),
        (v8_model, ("--map", "rat=licence_expired"), "certificate alert"),
        (v8_model, ("--map", "no_hat=no_hat", "--areas", "attic"), "unknown area 'attic'"),
    ],
)
def test_a_bad_model_or_map_is_refused_with_the_reason_and_nothing_registered(
    cli: Cli, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], build, args, expected: str,
) -> None:
    from infra.settings import get_settings

    monkeypatch.setenv("SUNSHINE_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    path = tmp_path / "candidate.onnx"
    result = build(path)
    path = result if isinstance(result, Path) else path
    assert cli("model", "add", str(path), "--name", "kitchen", *args) == 1
    assert expected in capsys.readouterr().err
    assert db_session.exec(select(DetectorModel)).all() == []


def test_a_missing_file_is_misuse(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("model", "add", str(tmp_path / "nope.onnx"), "--name", "x", "--map", "a=no_hat") == 2
    assert "no model file" in capsys.readouterr().err
