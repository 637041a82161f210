"""`sunshine vision analyze VIDEO`: the pipeline over a file, one JSON line per alert."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from infra.cli import main
from vision import synthetic


def write_video(scenario: synthetic.Scenario, path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), scenario.fps, (640, 360))
    assert writer.isOpened()
    for k in range(scenario.frame_count):
        writer.write(synthetic.render_frame(scenario, k))
    writer.release()
    return path


def alerts_of(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_a_rat_on_a_night_recording_is_one_pest_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(synthetic.after_hours_pest(start_s=10, run_s=6, duration_s=25), tmp_path / "night.avi")
    assert main(["vision", "analyze", str(video), "--start", "2025-06-03T02:00:00", "--fps", "5"]) == 0
    captured = capsys.readouterr()
    alerts = alerts_of(captured.out)
    assert [a["alert_type"] for a in alerts] == ["pest"]
    pest = alerts[0]
    assert pest["at"].startswith("2025-06-02T18:00:1")  # 02:00 Beijing + ~13 s, printed in UTC
    assert pest["metrics"]["duration_s"] >= 3 and pest["boxes"] and pest["clip_seconds"] >= 9
    assert "1 alert(s)" in captured.err


def test_the_same_recording_in_business_hours_raises_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = write_video(synthetic.after_hours_pest(start_s=10, run_s=6, duration_s=25), tmp_path / "day.avi")
    assert main(["vision", "analyze", str(video), "--start", "2025-06-03T10:00:00+08:00"]) == 0
    assert alerts_of(capsys.readouterr().out) == []


def test_a_covered_camera_with_its_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(synthetic.covered(start_s=10, duration_s=90), tmp_path / "covered.avi")
    reference = tmp_path / "reference.png"
    cv2.imwrite(str(reference), synthetic.background())
    assert main(["vision", "analyze", str(video), "--reference", str(reference), "--fps", "1",
                 "--start", "2025-06-03T10:00:00+08:00", "--business-hours", "08:00-22:00"]) == 0
    alerts = alerts_of(capsys.readouterr().out)
    assert [a["alert_type"] for a in alerts] == ["camera_covered"]
    assert alerts[0]["metrics"]["duration_s"] >= 60


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--business-hours", "8-22"], "is not HH:MM-HH:MM"),
        (["--start", "yesterday"], "is not an ISO 8601 time"),
        (["--fps", "0"], "--fps must be positive"),
        (["--areas", "attic"], "unknown area"),
    ],
)
def test_misuse_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    video = write_video(synthetic.static_scene(duration_s=2), tmp_path / "v.avi")
    assert main(["vision", "analyze", str(video), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_video_is_misuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vision", "analyze", str(tmp_path / "none.avi")]) == 2
    assert "no video file" in capsys.readouterr().err
