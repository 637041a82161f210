"""Frame sources: camera URLs in, sampled ``Frame``s out, with reconnects and connection events.

One source per camera. ``open_source`` picks the implementation by URL scheme:

* ``rtsp://`` / ``rtsps://`` and ``http(s)://`` MJPEG streams: OpenCV's FFmpeg backend, with open/read timeouts so a
  dead camera fails instead of hanging. Frames are grabbed as fast as the camera sends them (the network paces us)
  and only those due at ``sample_fps`` are decoded into images; the rest are dropped, so latency never builds up.
* ``http(s)://`` snapshot URLs (``snapshot=True``; chosen by configuration, never guessed): one JPEG fetched with
  httpx per sample, decoded with ``cv2.imdecode``.
* ``file://`` videos for demos and analysis: looped, paced to the wall clock (``realtime=True``), or read as fast as
  the caller asks with timestamps taken from the file position (``realtime=False``).

Failures are reported as ``ConnectionEvent``s (connected, connect_failed, stalled, reconnecting) to an optional
callback, which is how ``vision.health`` counts reconnects and stalls. ``read()`` never blocks for longer than one
back-off wait plus one connection attempt: it returns ``None`` when that attempt yields no frame, so the caller can
keep its health checks ticking during an outage.

Credentials are never logged: every URL shown (``repr``, events, logs) goes through ``mask_url``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import cv2
import httpx
import numpy as np

from vision.types import Frame, Image

logger = logging.getLogger(__name__)

# OpenCV and its FFmpeg backend print a line for every failed attempt of every unreachable camera, bypassing the
# logging configuration; the sources report connection failures themselves, with the URL masked.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when the backend first opens a stream
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https"})
HTTP_SCHEMES = frozenset({"http", "https"})

# Query parameters that carry secrets in camera URLs (Dahua/Hikvision CGI snapshot URLs put them there).
_SECRET_QUERY_KEY = re.compile(r"user|login|pass|pwd|token|secret|key|auth|sig", re.IGNORECASE)
# ...and XiongMai-style cameras in the path: rtsp://ip:554/user=admin&password=123456&channel=1&stream=0.sdp or
# /user=admin_password=x_channel=1; a value runs to the next separator or the next ``_name=``.
_SECRET_PATH_PAIR = re.compile(
    r"(?P<key>\w*?(?:user|login|pass|pwd|token|secret|key|auth|sig)\w*?)=(?P<value>.*?)(?=[&;/?]|_[A-Za-z]+=|$)",
    re.IGNORECASE)
_MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with the user name, password and secret-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _MASK  # unparseable: show nothing rather than risk leaking a password
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{_MASK}:{_MASK}@{host}" if ":" in userinfo else f"{_MASK}@{host}"
    path = _SECRET_PATH_PAIR.sub(lambda match: f"{match['key']}={_MASK}", parts.path)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(key, _MASK if _SECRET_QUERY_KEY.search(key) else value) for key, value in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


class Clock(Protocol):
    """Wall time and waiting, injected so tests run simulated time without sleeping."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect delay: ``initial_s × factor^(failures − 1)``, capped at ``max_s``.

    The cap defaults to Frigate's ffmpeg ``retry_interval`` (10 s): a camera that comes back is picked up within
    10 s, and a dead one costs one connection attempt per 10 s. ``jitter`` (a fraction, e.g. 0.2 = ±20 %) spreads
    the retries of many cameras behind one failed switch.
    """

    initial_s: float = 1.0
    max_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt after ``failures`` consecutive failures (≥ 1)."""
        exponent = max(0, failures - 1)
        # min() before pow() could overflow: cap the exponent where the delay already exceeds max_s
        base = self.initial_s * self.factor ** min(exponent, 64)
        delay = min(self.max_s, base)
        if self.jitter > 0 and rng is not None:
            delay *= 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return max(0.0, delay)


@dataclass(frozen=True)
class SourceConfig:
    """How to read one camera (everything except the URL and the sampling rate)."""

    snapshot: bool = False  # http(s): fetch one JPEG per sample instead of reading an MJPEG stream
    realtime: bool = True  # file://: pace to the wall clock; False = analysis, timestamps from the file position
    loop: bool = True  # file://: start again at the end (demos); False ends the source at the last frame
    start_at: datetime | None = None  # file:// analysis: capture time of the file's first frame (default: open time)
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    snapshot_auth: str = "basic"  # "basic" or "digest" (Hikvision ISAPI snapshots want digest)
    backoff: Backoff = field(default_factory=Backoff)


class ConnectionEventKind(StrEnum):
    CONNECTED = "connected"  # a connection attempt succeeded (first time or after a drop)
    CONNECT_FAILED = "connect_failed"  # an attempt to connect failed
    STALLED = "stalled"  # a working connection stopped delivering frames (read timeout, stream ended)
    RECONNECTING = "reconnecting"  # a new attempt is scheduled in ``retry_in_s``


@dataclass(frozen=True)
class ConnectionEvent:
    kind: ConnectionEventKind
    at: datetime
    source: str  # masked URL
    failures: int  # consecutive failures (connect failures and stalls) without a frame in between
    retry_in_s: float | None = None
    detail: str = ""


EventSink = Callable[[ConnectionEvent], None]


class _ConnectFailed(Exception):
    pass


class _Stalled(Exception):
    pass


class FrameSource(ABC):
    """A camera that yields sampled frames; reconnects by itself with back-off.

    ``read()`` returns the next sampled frame, or ``None`` when this attempt produced none (a connection attempt
    failed or the stream stalled: an event was reported and the back-off wait is taken at the start of the next
    ``read()``), or when the source is finished (``finished`` is then true: closed, or a non-looping file ended).
    """

    def __init__(self, url: str, *, sample_fps: float, config: SourceConfig, clock: Clock,
                 on_event: EventSink | None) -> None:
        if not sample_fps > 0:
            raise ValueError(f"sample_fps must be positive, got {sample_fps}")
        self._url = url
        self.masked_url = mask_url(url)
        self.sample_fps = sample_fps
        self.config = config
        self._clock = clock
        self._on_event = on_event
        self._period = timedelta(seconds=1.0 / sample_fps)
        self._connected = False
        self._failures = 0
        self._retry_at: datetime | None = None
        self._next_due: datetime | None = None
        self._finished = False
        self._rng = random.Random() if config.backoff.jitter > 0 else None  # noqa: S311 - jitter, not security

    # -- public ------------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def finished(self) -> bool:
        return self._finished

    def read(self) -> Frame | None:
        if self._finished:
            return None
        if not self._connected and not self._connect_after_backoff():
            return None
        try:
            frame = self._next_frame()
        except _Stalled as stalled:
            self._drop_connection(ConnectionEventKind.STALLED, str(stalled))
            return None
        except _ConnectFailed as failed:
            self._drop_connection(ConnectionEventKind.CONNECT_FAILED, str(failed))
            return None
        if frame is None:
            self._finished = True
            self._disconnect()
            self._connected = False
            return None
        self._failures = 0
        return frame

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the source finishes; failed attempts are skipped (use ``read()`` to see them)."""
        while not self._finished:
            frame = self.read()
            if frame is not None:
                yield frame

    def close(self) -> None:
        if self._connected:
            self._disconnect()
        self._connected = False
        self._finished = True

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.masked_url} @ {self.sample_fps:g} fps>"

    __str__ = __repr__

    # -- for subclasses ----------------------------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> None:
        """Open the camera; raise ``_ConnectFailed`` with a reason (never containing the URL)."""

    @abstractmethod
    def _disconnect(self) -> None: ...

    @abstractmethod
    def _next_frame(self) -> Frame | None:
        """The next sampled frame; ``None`` only when the source has ended for good; ``_Stalled`` on a lost stream."""

    def _is_due(self, now: datetime) -> bool:
        return self._next_due is None or now >= self._next_due

    def _mark_sampled(self, at: datetime) -> None:
        """Schedule the next sample one period later; a late caller gets no burst of catch-up frames."""
        due = at + self._period if self._next_due is None else self._next_due + self._period
        self._next_due = due if due > at else at + self._period

    def _wait_until_due(self) -> None:
        if self._next_due is not None:
            self._clock.sleep((self._next_due - self._clock.now()).total_seconds())

    # -- connection bookkeeping --------------------------------------------------------------------------------

    def _connect_after_backoff(self) -> bool:
        if self._retry_at is not None:
            self._clock.sleep((self._retry_at - self._clock.now()).total_seconds())
        try:
            self._connect()
        except _ConnectFailed as failed:
            self._failures += 1
            self._emit(ConnectionEventKind.CONNECT_FAILED, str(failed))
            self._schedule_retry()
            return False
        self._connected = True
        self._retry_at = None
        self._emit(ConnectionEventKind.CONNECTED)
        return True

    def _drop_connection(self, kind: ConnectionEventKind, detail: str) -> None:
        self._disconnect()
        self._connected = False
        # a stall counts toward the back-off too: a camera that accepts and then drops at once must not spin
        self._failures += 1
        self._emit(kind, detail)
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        delay = self.config.backoff.delay(self._failures, self._rng)
        self._retry_at = self._clock.now() + timedelta(seconds=delay)
        self._emit(ConnectionEventKind.RECONNECTING, retry_in_s=delay)

    def _emit(self, kind: ConnectionEventKind, detail: str = "", retry_in_s: float | None = None) -> None:
        event = ConnectionEvent(kind=kind, at=self._clock.now(), source=self.masked_url, failures=self._failures,
                                retry_in_s=retry_in_s, detail=detail)
        level = logging.INFO if kind in (ConnectionEventKind.CONNECTED, ConnectionEventKind.RECONNECTING) else (
            logging.WARNING)
        logger.log(level, "camera %s: %s%s%s", self.masked_url, kind.value, f" ({detail})" if detail else "",
                   f" in {retry_in_s:.1f} s" if retry_in_s is not None else "")
        if self._on_event is not None:
            self._on_event(event)


class StreamSource(FrameSource):
    """RTSP or HTTP MJPEG through OpenCV's FFmpeg backend."""

    _capture: cv2.VideoCapture | None = None
    _grabbed = 0

    def _connect(self) -> None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(self.config.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(self.config.read_timeout_s * 1000)]
        capture = cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise _ConnectFailed("could not open stream")
        self._capture = capture

    def _disconnect(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _next_frame(self) -> Frame | None:
        capture = self._capture
        assert capture is not None
        while True:
            # grab() demuxes and decodes; retrieve() (colour conversion and copy) only for frames we keep
            if not capture.grab():
                raise _Stalled("no frame within the read timeout, or the stream ended")
            self._grabbed += 1
            now = self._clock.now()
            if not self._is_due(now):
                continue
            ok, image = capture.retrieve()
            if not ok or image is None:
                raise _Stalled("frame could not be decoded")
            self._mark_sampled(now)
            return Frame(image=np.asarray(image, dtype=np.uint8), captured_at=now, sequence=self._grabbed)


class SnapshotSource(FrameSource):
    """One JPEG per sample from an HTTP snapshot URL. "Connected" means the last fetch returned an image."""

    _client: httpx.Client | None = None
    _pending: Frame | None = None
    _fetches = 0

    def _connect(self) -> None:
        if self._client is None:
            self._client = self._make_client()
        image = self._fetch()  # a snapshot camera is reachable when it hands out a picture
        now = self._clock.now()
        self._pending = Frame(image=image, captured_at=now, sequence=self._fetches)

    def _disconnect(self) -> None:
        self._pending = None

    def close(self) -> None:
        super().close()
        if self._client is not None:
            self._client.close()
            self._client = None

    def _next_frame(self) -> Frame | None:
        frame, self._pending = self._pending, None
        if frame is None:
            self._wait_until_due()
            try:
                image = self._fetch()
            except _ConnectFailed as failed:
                raise _Stalled(str(failed)) from None
            frame = Frame(image=image, captured_at=self._clock.now(), sequence=self._fetches)
        self._mark_sampled(frame.captured_at)
        return frame

    def _make_client(self) -> httpx.Client:
        parts = urlsplit(self._url)
        auth: httpx.Auth | None = None
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
            auth = httpx.DigestAuth(user, password) if self.config.snapshot_auth == "digest" else httpx.BasicAuth(
                user, password)
        timeout = httpx.Timeout(self.config.read_timeout_s, connect=self.config.open_timeout_s)
        return httpx.Client(auth=auth, timeout=timeout, follow_redirects=True)

    def _fetch(self) -> Image:
        assert self._client is not None
        parts = urlsplit(self._url)
        host = parts.netloc.rsplit("@", 1)[-1]  # credentials go through ``auth``, not the request line
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
        self._fetches += 1
        try:
            response = self._client.get(url)
        except httpx.HTTPError as error:
            # the exception text can quote the URL; the class name says enough (timeout, refused, ...)
            raise _ConnectFailed(type(error).__name__) from None
        if response.status_code != httpx.codes.OK:
            raise _ConnectFailed(f"HTTP {response.status_code}")
        image = cv2.imdecode(np.frombuffer(response.content, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise _ConnectFailed("response is not a decodable image")
        return np.asarray(image, dtype=np.uint8)


class FileSource(FrameSource):
    """A video file, looped for demos; ``realtime=False`` reads it as fast as asked, for analysis."""

    _capture: cv2.VideoCapture | None = None
    _file_fps = 0.0
    _frames_per_loop = 0  # from the container, corrected at the first end of file; 0 = unknown
    _position_in_file = 0  # frames grabbed since the file was (re)opened
    _next_index = 0  # frames grabbed since the source started, across loops: the next frame's index
    _cursor = 0.0  # analysis: the wanted file position in frames
    _origin: datetime | None = None  # realtime: wall time of the first sample
    _finished_file = False  # a non-looping file reached its end

    def __init__(self, url: str, *, sample_fps: float, config: SourceConfig, clock: Clock,
                 on_event: EventSink | None) -> None:
        super().__init__(url, sample_fps=sample_fps, config=config, clock=clock, on_event=on_event)
        self.path = file_url_path(url)
        if not self.path.is_file():
            raise FileNotFoundError(f"no video file at {self.path}")
        start_at = config.start_at if config.start_at is not None else clock.now()
        if start_at.tzinfo is None:
            raise ValueError("start_at must be timezone-aware")
        self._start_at = start_at

    def _connect(self) -> None:
        self._open()
        assert self._capture is not None
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self._file_fps = fps if math.isfinite(fps) and fps > 0 else self.sample_fps
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        if not self._frames_per_loop and math.isfinite(count) and count > 0:
            self._frames_per_loop = int(count)

    def _open(self) -> None:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise _ConnectFailed("could not open video file")
        self._capture = capture
        self._position_in_file = 0

    def _disconnect(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _next_frame(self) -> Frame | None:
        sampled_at: datetime | None = None
        if self.config.realtime:
            # play the file at its own speed: the position follows the wall clock, frames in between are dropped
            self._wait_until_due()
            sampled_at = self._clock.now()
            self._origin = self._origin or sampled_at
            # A file recorded slower than the sampling rate (a 1-frame/s demo sampled at 5/s): wait for its next
            # frame rather than play it faster than it was recorded (each file frame is handed out once).
            next_frame_at = self._origin + timedelta(seconds=self._next_index / self._file_fps)
            if sampled_at < next_frame_at:
                self._clock.sleep((next_frame_at - sampled_at).total_seconds())
                sampled_at = self._clock.now()
            wanted = math.floor((sampled_at - self._origin).total_seconds() * self._file_fps + 1e-9)
        else:
            wanted = math.floor(self._cursor + 1e-9)
            self._cursor += self._file_fps / self.sample_fps
        # never hand out the same file frame twice: a repeated frame would look frozen to the health checks
        index = max(wanted, self._next_index)
        image = self._grab_until(index)
        if image is None:
            return None
        if sampled_at is not None:
            self._mark_sampled(sampled_at)
            captured_at = sampled_at
        else:
            captured_at = self._start_at + timedelta(seconds=index / self._file_fps)
        return Frame(image=image, captured_at=captured_at, sequence=index)

    def _grab_until(self, index: int) -> Image | None:
        """Decode forward to frame ``index`` (counted across loops); ``None`` at the end of a non-looping file."""
        to_grab = index - self._next_index + 1
        if self._frames_per_loop and to_grab > self._frames_per_loop:
            # far behind (a suspended demo, a simulated clock): skip whole loops instead of decoding them
            skipped = (to_grab - 1) // self._frames_per_loop * self._frames_per_loop
            self._next_index += skipped
            to_grab -= skipped
        for _ in range(to_grab):
            self._grab_one()
            if self._finished_file:
                return None
        assert self._capture is not None
        ok, image = self._capture.retrieve()
        if not ok or image is None:
            raise _Stalled("frame could not be decoded")
        return np.asarray(image, dtype=np.uint8)

    def _grab_one(self) -> None:
        assert self._capture is not None
        if self._capture.grab():
            self._position_in_file += 1
            self._next_index += 1
            return
        if not self.config.loop:
            self._finished_file = True
            return
        if self._position_in_file == 0:
            raise _Stalled("video file has no readable frames")
        self._frames_per_loop = self._position_in_file  # the container's count can be an estimate
        self._disconnect()
        self._open()
        self._grab_one()


def file_url_path(url: str) -> Path:
    """``file:///abs/clip.webm`` → ``/abs/clip.webm``; ``file://clips/a.avi`` (host part as a folder) is relative."""
    parts = urlsplit(url)
    host = parts.netloc if parts.netloc not in ("", "localhost") else ""
    return Path(unquote(host + parts.path))


def open_source(url: str, *, sample_fps: float, config: SourceConfig | None = None, clock: Clock | None = None,
                on_event: EventSink | None = None) -> FrameSource:
    """A frame source for ``url``, chosen by scheme; nothing is opened until the first ``read()``."""
    config = config or SourceConfig()
    clock = clock or SystemClock()
    scheme = urlsplit(url).scheme.lower()
    if config.snapshot and scheme not in HTTP_SCHEMES:
        raise ValueError(f"snapshot mode needs an http(s) URL, got {mask_url(url)}")
    if config.snapshot_auth not in ("basic", "digest"):
        raise ValueError(f"snapshot_auth must be 'basic' or 'digest', got {config.snapshot_auth!r}")
    source_class: type[FrameSource]
    if scheme == "file":
        source_class = FileSource
    elif config.snapshot:
        source_class = SnapshotSource
    elif scheme in STREAM_SCHEMES:
        source_class = StreamSource
    else:
        raise ValueError(f"unsupported camera URL scheme {scheme!r} in {mask_url(url)}")
    return source_class(url, sample_fps=sample_fps, config=config, clock=clock, on_event=on_event)
