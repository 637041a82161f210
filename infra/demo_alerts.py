"""A few demo alerts through the real intake, so that every queue has work on a fresh `make run`.

They go through ``AlertIntake`` exactly like an edge box's alerts (evidence stored and hashed, then the
case workflow started), with a drawn picture as the snapshot: a kitchen wall, a worker, and the detector's box.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client

from domain.merchants.models import Camera, Merchant
from infra.clients import connect_temporal
from infra.evidence_store import EvidenceStore
from infra.intake import AlertIntake, AlertSender, AlertSubmission, EvidenceUpload
from infra.settings import Settings

DEMO_SOURCE = "system:demo"
WIDTH, HEIGHT = 320, 180
# (merchant index in the seed, alert type, minutes ago): spread over the streets, some fresh, some older.
DEMO_ALERTS: Sequence[tuple[int, str, int]] = (
    (0, "no_hat", 20),
    (1, "no_mask", 95),
    (2, "trash_can_open", 240),
    (3, "smoking", 600),
    (4, "pest", 1300),
    (10, "no_uniform", 45),
    (11, "phone_use", 400),
    (20, "no_hat", 30),
    (21, "trash_can_open", 700),
)


@dataclass(frozen=True)
class Rectangle:
    x: int
    y: int
    w: int
    h: int
    rgb: tuple[int, int, int]


def demo_snapshot(seed: int) -> bytes:
    """A small PNG: tiles, a counter, a worker and the red detection box around the worker's head."""
    offset = (seed * 37) % 120
    shapes = [
        Rectangle(0, 0, WIDTH, HEIGHT, (222, 226, 230)),
        Rectangle(0, 120, WIDTH, 60, (150, 155, 160)),
        Rectangle(40 + offset, 50, 40, 90, (245, 245, 245)),  # white coat
        Rectangle(48 + offset, 26, 24, 24, (230, 190, 160)),  # head
        Rectangle(200, 95, 100, 30, (120, 90, 60)),  # counter
    ]
    box = Rectangle(44 + offset, 22, 32, 32, (220, 30, 30))
    rows = []
    for y in range(HEIGHT):
        row = bytearray(b"\x00")
        for x in range(WIDTH):
            colour = next(s.rgb for s in reversed(shapes) if s.x <= x < s.x + s.w and s.y <= y < s.y + s.h)
            on_box_edge = box.x <= x < box.x + box.w and box.y <= y < box.y + box.h and (
                x in (box.x, box.x + 1, box.x + box.w - 2, box.x + box.w - 1)
                or y in (box.y, box.y + 1, box.y + box.h - 2, box.y + box.h - 1)
            )
            row += bytes(box.rgb if on_box_edge else colour)
        rows.append(bytes(row))
    return _png(b"".join(rows))


def _png(raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _cameras(engine: Engine) -> list[int]:
    """The first camera of each merchant, in the seed's merchant order."""
    with Session(engine) as session:
        rows = session.exec(
            select(Merchant.id, Camera.id).join(Camera, col(Camera.merchant_id) == col(Merchant.id))
            .order_by(col(Merchant.id), col(Camera.id))
        ).all()
    first: dict[int, int] = {}
    for merchant_id, camera_id in rows:
        if merchant_id is not None and camera_id is not None:
            first.setdefault(merchant_id, camera_id)
    return list(first.values())


async def raise_demo_alerts(settings: Settings, engine: Engine, *, printer: Callable[[str], None] = print) -> int:
    """Raise the demo alerts; returns how many cases they opened. Safe to repeat (fixed event ids)."""
    cameras = _cameras(engine)
    client = await connect_temporal(settings)
    intake = AlertIntake(
        engine=engine,
        evidence_store=EvidenceStore.from_settings(settings, engine),
        temporal_client_factory=lambda: _ready(client),
        task_queue=settings.temporal_task_queue,
    )
    opened = 0
    now = datetime.now(UTC)
    try:
        for number, (merchant_index, alert_type, minutes_ago) in enumerate(DEMO_ALERTS):
            if merchant_index >= len(cameras):
                continue
            meta = {
                "event_id": f"demo-{number}",
                "camera_id": cameras[merchant_index],
                "alert_type": alert_type,
                "captured_at": (now - timedelta(minutes=minutes_ago)).isoformat(),
                "score": 0.86,
                "boxes": [{"x": 44 + (number * 37) % 120, "y": 22, "w": 32, "h": 32, "label": alert_type}],
                "model": {"name": "demo-detector", "version": "0", "sha256": "0" * 64},
            }
            result = await intake.receive(
                AlertSubmission(
                    sender=AlertSender(source=DEMO_SOURCE, role="system", unit="demo"),
                    meta=meta,
                    snapshot=EvidenceUpload(demo_snapshot(number), "image/png"),
                )
            )
            opened += 0 if result.merged else 1
    finally:
        intake.close()
    printer(f"raised {len(DEMO_ALERTS)} demo alerts ({opened} cases opened)")
    return opened


async def _ready(client: Client) -> Client:
    return client
