"""Evidence: ring buffer bounds, clips from t − 5 s to t + 5 s as browser-playable WebM, JPEG snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.clips import (
    EBML_MAGIC,
    ClipConfig,
    ClipError,
    ClipRecorder,
    RingBuffer,
    clip_fps,
    encode_jpeg,
    encode_webm,
    is_webm,
)
from vision.types import Frame

T0 = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
FPS = 5


def frame(i: int, *, fps: float = FPS, size: tuple[int, int] = (320, 240)) -> Frame:
    """Frame i: its grey level encodes i (so a decoded frame tells which one it was), plus a moving square."""
    width, height = size
    image = np.full((height, width, 3), (i * 4) % 256, np.uint8)
    x = (i * 6) % (width - 40)
    cv2.rectangle(image, (x, 100), (x + 40, 140), (0, 0, 255), -1)
    return Frame(image, T0 + timedelta(seconds=i / fps), i)


def read_back(data: bytes, tmp_path: Path) -> list[np.ndarray]:
    path = tmp_path / "clip.webm"
    path.write_bytes(data)
    capture = cv2.VideoCapture(str(path))
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    return images


def test_ring_buffer_keeps_its_time_span() -> None:
    ring = RingBuffer(timedelta(seconds=10), max_frames=1000)
    for i in range(100):  # 20 s at 5 fps
        ring.append(frame(i))
    frames = ring.frames()
    assert len(frames) == 51  # 10 s inclusive at 5 fps
    assert frames[-1].captured_at - frames[0].captured_at == timedelta(seconds=10)
    assert [f.sequence for f in ring.between(T0 + timedelta(seconds=15), T0 + timedelta(seconds=16))] == list(
        range(75, 81)
    )


def test_ring_buffer_memory_is_bounded_by_bytes_and_frames() -> None:
    one = frame(0).image.nbytes  # 230,400 bytes
    by_bytes = RingBuffer(timedelta(seconds=60), max_bytes=3 * one + 10)
    by_count = RingBuffer(timedelta(seconds=60), max_frames=4)
    for i in range(50):
        by_bytes.append(frame(i))
        by_count.append(frame(i))
        assert by_bytes.nbytes <= 3 * one + 10
    assert [f.sequence for f in by_bytes.frames()] == [47, 48, 49]
    assert by_bytes.nbytes == 3 * one
    assert len(by_count) == 4 and by_count.frames()[0].sequence == 46
    with pytest.raises(ValueError, match="capture order"):
        by_count.append(frame(10))


def test_clip_covers_5_s_before_and_5_s_after_the_firing(tmp_path: Path) -> None:
    recorder = ClipRecorder()
    clips, finished_on = [], None
    for i in range(120):  # 24 s
        current = frame(i)
        new = recorder.add(current)
        if new:
            clips += new
            finished_on = current.sequence
        if i == 60:  # fires at t = 12 s
            recorder.trigger(current.captured_at, label="pest")
    assert len(clips) == 1 and finished_on == 85  # the clip is ready with the frame at t + 5 s, not before
    clip = clips[0]
    assert clip.label == "pest" and clip.complete
    assert clip.fired_at == T0 + timedelta(seconds=12)
    assert clip.started_at == T0 + timedelta(seconds=7) and clip.ended_at == T0 + timedelta(seconds=17)
    assert clip.source_frames == clip.encoded_frames == 51 and clip.fps == 5.0
    assert not recorder.pending

    assert clip.data.startswith(EBML_MAGIC) and b"webm" in clip.data[:64]
    images = read_back(clip.data, tmp_path)
    assert abs(len(images) - 51) <= 1
    assert images[0].shape == (240, 320, 3)
    # The first decoded frame is frame 35 (grey 140), the last is frame 85 (grey 340 % 256 = 84).
    assert abs(float(np.median(images[0])) - 140) <= 6
    assert abs(float(np.median(images[-1])) - 84) <= 6


def test_a_gap_in_the_frames_keeps_the_clip_duration(tmp_path: Path) -> None:
    frames = [frame(i) for i in range(51) if not 20 <= i < 30]  # 2 s of frames dropped
    data, encoded, fps = encode_webm(frames)
    assert fps == 5.0 and encoded == 51
    assert abs(len(read_back(data, tmp_path)) - 51) <= 1


def test_fps_comes_from_the_timestamps() -> None:
    two_fps = [frame(i, fps=2) for i in range(10)]
    assert clip_fps(two_fps) == 2.0
    assert clip_fps(two_fps[:3] + two_fps[4:]) == 2.0  # a dropped frame does not change the rate
    assert clip_fps([frame(i, fps=100) for i in range(10)]) == 30.0  # capped
    assert clip_fps([frame(0)]) == 1.0


def test_a_stream_that_stops_gives_a_partial_clip_and_a_short_history_a_short_start() -> None:
    recorder = ClipRecorder()
    for i in range(10):  # only 2 s of history before the firing
        recorder.add(frame(i))
    recorder.trigger(frame(9).captured_at, label="no_hat")
    for i in range(10, 20):  # the stream stops at 3.8 s, before t + 5 s
        assert recorder.add(frame(i)) == []
    (clip,) = recorder.flush()
    assert not clip.complete
    assert clip.started_at == T0 and clip.ended_at == frame(19).captured_at
    assert clip.source_frames == 20 and is_webm(clip.data)
    assert recorder.flush() == []


def test_odd_sizes_and_vp9_encode_too(tmp_path: Path) -> None:
    frames = [frame(i, size=(321, 241)) for i in range(10)]
    data, encoded, _ = encode_webm(frames, fourcc="VP90")
    images = read_back(data, tmp_path)
    assert is_webm(data) and abs(len(images) - encoded) <= 1
    assert images[0].shape == (240, 320, 3)


def test_nothing_to_encode_is_an_error() -> None:
    with pytest.raises(ClipError):
        encode_webm([])
    with pytest.raises(ValueError, match="pre-capture"):
        ClipConfig(buffer_span=timedelta(seconds=2))
    assert not is_webm(b"\x00\x00\x00\x18ftypmp42")


def test_jpeg_snapshot_decodes_and_quality_matters() -> None:
    rng = np.random.default_rng(3)
    image = cv2.resize(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
    high, low = encode_jpeg(image), encode_jpeg(image, quality=30)
    assert high[:3] == b"\xff\xd8\xff" and len(low) < len(high)
    decoded = cv2.imdecode(np.frombuffer(high, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == image.shape
    assert float(np.mean(np.abs(decoded.astype(int) - image.astype(int)))) < 3.0
    with pytest.raises(ValueError):
        encode_jpeg(image, quality=0)
