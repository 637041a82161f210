"""Evidence from the sampled frames: a per-camera ring buffer, a clip around a firing, JPEG snapshots (item 7).

The clip is a *derived* artefact: WebM VP8 written by OpenCV's bundled FFmpeg, which browsers play (H.264 cannot
be written by the wheel, reference §10). Where the camera's own recording exists, the stream-copied segment is the
primary evidence; this clip is what the web app shows next to the alert.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from vision.types import Frame, Image

WEBM_CONTENT_TYPE = "video/webm"
EBML_MAGIC = bytes.fromhex("1A45DFA3")


class ClipError(RuntimeError):
    """The clip could not be written (codec missing, nothing to encode) or came out invalid."""


@dataclass(frozen=True)
class ClipConfig:
    before: timedelta = timedelta(seconds=5)  # Frigate's pre-capture
    after: timedelta = timedelta(seconds=5)  # and post-capture
    # The buffer must hold at least ``before``; the margin covers a firing decided a little after its frame.
    buffer_span: timedelta = timedelta(seconds=10)
    # Memory bound per camera, whatever the frame rate: 720p BGR is 2.6 MiB a frame, so 10 s at 5 fps ≈ 132 MiB.
    max_buffer_frames: int = 150
    max_buffer_bytes: int = 256 * 1024 * 1024
    fourcc: str = "VP80"  # or "VP90"; both play in browsers
    min_fps: float = 1.0
    max_fps: float = 30.0

    def __post_init__(self) -> None:
        if self.buffer_span < self.before:
            raise ValueError("buffer_span must cover the pre-capture time (before)")
        if len(self.fourcc) != 4:
            raise ValueError("fourcc is four characters")


class RingBuffer:
    """The last ``span`` of frames, bounded also by a frame count and a byte size (the oldest go first)."""

    def __init__(self, span: timedelta, *, max_frames: int = 150, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError("max_frames and max_bytes must be positive")
        self.span, self.max_frames, self.max_bytes = span, max_frames, max_bytes
        self._frames: deque[Frame] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def frames(self) -> list[Frame]:
        return list(self._frames)

    def append(self, frame: Frame) -> None:
        if self._frames and frame.captured_at < self._frames[-1].captured_at:
            raise ValueError("frames must arrive in capture order")
        self._frames.append(frame)
        self._bytes += frame.image.nbytes
        oldest = frame.captured_at - self.span
        while self._frames and (
            self._frames[0].captured_at < oldest or len(self._frames) > self.max_frames or self._bytes > self.max_bytes
        ):
            self._bytes -= self._frames.popleft().image.nbytes

    def between(self, start: datetime, end: datetime) -> list[Frame]:
        return [f for f in self._frames if start <= f.captured_at <= end]

    def clear(self) -> None:
        self._frames.clear()
        self._bytes = 0


@dataclass(frozen=True)
class Clip:
    data: bytes  # WebM
    label: str  # whatever the caller passed to trigger (e.g. the alert type)
    fired_at: datetime
    started_at: datetime  # first frame's capture time
    ended_at: datetime  # last frame's capture time
    source_frames: int  # frames taken from the camera
    encoded_frames: int  # frames in the file (gaps are filled by repeating a frame)
    fps: float
    complete: bool  # False when the stream ended before the post-capture time was reached
    content_type: str = WEBM_CONTENT_TYPE


@dataclass
class PendingClip:
    """A clip waiting for its post-capture frames."""

    label: str
    fired_at: datetime
    start: datetime
    end: datetime
    frames: list[Frame] = field(default_factory=list)

    def add(self, frame: Frame) -> bool:
        """Take the frame if it falls in the window; True once the window is over."""
        if self.start <= frame.captured_at <= self.end and (
            not self.frames or frame.captured_at > self.frames[-1].captured_at
        ):
            self.frames.append(frame)
        return frame.captured_at >= self.end


class ClipRecorder:
    """One per camera. ``add`` every sampled frame; ``trigger`` when a finding fires; the clip comes out of a later
    ``add`` once the post-capture frames have arrived (or out of ``flush`` when the stream ends)."""

    def __init__(self, config: ClipConfig | None = None) -> None:
        self.config = config or ClipConfig()
        self.buffer = RingBuffer(
            self.config.buffer_span,
            max_frames=self.config.max_buffer_frames,
            max_bytes=self.config.max_buffer_bytes,
        )
        self._pending: list[PendingClip] = []

    @property
    def pending(self) -> tuple[PendingClip, ...]:
        return tuple(self._pending)

    def trigger(self, at: datetime, label: str = "") -> PendingClip:
        pending = PendingClip(label, at, at - self.config.before, at + self.config.after)
        for frame in self.buffer.between(pending.start, pending.end):
            pending.add(frame)
        self._pending.append(pending)
        return pending

    def add(self, frame: Frame) -> list[Clip]:
        self.buffer.append(frame)
        done = [p for p in self._pending if p.add(frame)]
        self._pending = [p for p in self._pending if p not in done]
        return [self._encode(p, complete=True) for p in done]

    def flush(self) -> list[Clip]:
        """Encode what the pending clips have (the stream stopped); clips without frames are dropped."""
        pending, self._pending = self._pending, []
        return [self._encode(p, complete=False) for p in pending if p.frames]

    def _encode(self, pending: PendingClip, *, complete: bool) -> Clip:
        data, encoded, fps = encode_webm(
            pending.frames, fourcc=self.config.fourcc, min_fps=self.config.min_fps, max_fps=self.config.max_fps
        )
        return Clip(
            data=data,
            label=pending.label,
            fired_at=pending.fired_at,
            started_at=pending.frames[0].captured_at,
            ended_at=pending.frames[-1].captured_at,
            source_frames=len(pending.frames),
            encoded_frames=encoded,
            fps=fps,
            complete=complete,
        )


def clip_fps(frames: Sequence[Frame], *, min_fps: float = 1.0, max_fps: float = 30.0) -> float:
    """The output rate from the frames' own timestamps: the median interval, so a dropped frame does not halve it."""
    intervals = [(b.captured_at - a.captured_at).total_seconds() for a, b in itertools.pairwise(frames)]
    positive = [i for i in intervals if i > 0]
    if not positive:
        return min_fps
    return round(min(max_fps, max(min_fps, 1.0 / statistics.median(positive))), 3)


def encode_webm(
    frames: Sequence[Frame], *, fourcc: str = "VP80", min_fps: float = 1.0, max_fps: float = 30.0
) -> tuple[bytes, int, float]:
    """Frames → (WebM bytes, frames written, fps). Each frame is placed at its own time at the chosen rate, so the
    clip lasts as long as the real scene did: a gap repeats the previous frame, two frames in one slot keep the
    later. Frames of another size are resized to the first one's (even) size."""
    if not frames:
        raise ClipError("no frames to encode")
    fps = clip_fps(frames, min_fps=min_fps, max_fps=max_fps)
    first = frames[0]
    # libvpx works on 4:2:0 chroma: even sizes.
    width, height = max(2, first.width - first.width % 2), max(2, first.height - first.height % 2)
    slots: dict[int, Image] = {}
    for frame in frames:
        slot = round((frame.captured_at - first.captured_at).total_seconds() * fps)
        slots[slot] = _fit(frame.image, width, height)
    last_slot = max(slots)
    with tempfile.TemporaryDirectory(prefix="clip-") as folder:
        path = Path(folder) / "clip.webm"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
        if not writer.isOpened():
            raise ClipError(f"OpenCV cannot write WebM with fourcc {fourcc!r}")
        try:
            image = slots[0]
            for slot in range(last_slot + 1):
                image = slots.get(slot, image)
                writer.write(image)
        finally:
            writer.release()
        data = path.read_bytes() if path.exists() else b""
    if not is_webm(data):
        raise ClipError(f"the encoder produced no valid WebM ({len(data)} bytes)")
    return data, last_slot + 1, fps


def is_webm(data: bytes) -> bool:
    """EBML header with the 'webm' DocType (browsers refuse a Matroska doctype in a <video> WebM source)."""
    return data.startswith(EBML_MAGIC) and b"webm" in data[:64]


def encode_jpeg(image: Image, quality: int = 90) -> bytes:
    if not 1 <= quality <= 100:
        raise ValueError("JPEG quality is 1–100")
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ClipError("JPEG encoding failed")
    return buffer.tobytes()


def _fit(image: Image, width: int, height: int) -> Image:
    if image.ndim == 2:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    extra_columns, extra_rows = image.shape[1] - width, image.shape[0] - height
    if 0 <= extra_columns <= 1 and 0 <= extra_rows <= 1:
        return np.ascontiguousarray(image[:height, :width])  # just drop the odd column or row
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)
