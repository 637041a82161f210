"""告知卡: the PNG that stands in for a camera snapshot on a certificate alert (pure: no I/O, no Pillow).

Intake files every alert with a snapshot, and a certificate problem has no picture. The check renders a small
notice card instead: a coloured header (amber: expiring, red: lapsed) and a few lines of ASCII in a built-in
5×7 font (alert, credit code, kind, number, valid-until date, check date; characters outside the font, such as
Chinese, show as a box). The card is a convenience for people; the record is the metadata: the facts as
canonical JSON in an ``iTXt`` chunk ``sunshine.notice`` (UTF-8, so holder names survive), a Chinese summary in
``Description`` and a ``Title``. ``read_png_text`` reads them back.

Deterministic: the same facts give the same bytes, on any Python or zlib build — no timestamp chunk, and the
image data is a zlib stream of *stored* deflate blocks written here (compressed output may differ between
zlib implementations; stored blocks cannot). A retried check therefore hits the same evidence object
(content-addressed by SHA-256) instead of adding a second one. At 400×240 pixels and 2 bits per pixel the card
is about 25 KB.

Which camera the alert is filed under is not decided here: see ``domain.certificates.expiry.pick_notice_camera``
(the merchant's first enabled camera).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from datetime import date

from domain.alerts.taxonomy import AlertType, alert_type_info
from domain.certificates.expiry import CERTIFICATE_KIND_LABELS, CertificateFinding
from domain.merchants.models import CertificateKind

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDTH, HEIGHT = 400, 240
BIT_DEPTH = 2  # four palette entries
NOTICE_KEYWORD = "sunshine.notice"

# Palette indices
_WHITE, _INK, _ACCENT, _GREY = 0, 1, 2, 3
_INK_RGB = (0x1F, 0x29, 0x33)
_GREY_RGB = (0x7B, 0x87, 0x94)
_AMBER_RGB = (0xD9, 0x77, 0x06)  # a reminder: licence_expiring
_RED_RGB = (0xC6, 0x28, 0x28)  # lapsed

_KIND_TEXT: dict[CertificateKind, str] = {
    CertificateKind.business_licence: "BUSINESS LICENCE",
    CertificateKind.food_business_licence: "FOOD BUSINESS LICENCE",
    CertificateKind.vendor_registration: "VENDOR REGISTRATION",
    CertificateKind.health_certificate: "HEALTH CERTIFICATE",
}
_TITLE_TEXT: dict[AlertType, str] = {
    AlertType.licence_expiring: "LICENCE EXPIRING",
    AlertType.licence_expired: "LICENCE EXPIRED",
    AlertType.health_cert_expired: "HEALTH CERT EXPIRED",
}


@dataclass(frozen=True)
class NoticeFacts:
    """Everything the card shows and records; equal facts give equal bytes."""

    alert_type: AlertType
    merchant_credit_code: str
    certificate_kind: CertificateKind
    certificate_number: str
    holder_name: str | None
    valid_until: date
    checked_on: date  # the Beijing day of the check

    @classmethod
    def from_finding(cls, finding: CertificateFinding, *, merchant_credit_code: str) -> NoticeFacts:
        return cls(
            alert_type=finding.alert_type,
            merchant_credit_code=merchant_credit_code,
            certificate_kind=finding.kind,
            certificate_number=finding.number,
            holder_name=finding.holder_name,
            valid_until=finding.valid_until,
            checked_on=finding.as_of,
        )

    @property
    def days_left(self) -> int:
        return (self.valid_until - self.checked_on).days

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces, UTF-8 text): the ``sunshine.notice`` chunk."""
        facts = {
            "alert_type": self.alert_type.value,
            "merchant_credit_code": self.merchant_credit_code,
            "certificate_kind": self.certificate_kind.value,
            "certificate_number": self.certificate_number,
            "holder_name": self.holder_name,
            "valid_until": self.valid_until.isoformat(),
            "checked_on": self.checked_on.isoformat(),
            "days_left": self.days_left,
        }
        return json.dumps(facts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def summary_zh(self) -> str:
        days = self.days_left
        status = f"已过期{-days}天" if days < 0 else ("今日到期" if days == 0 else f"{days}天后到期")
        lines = [
            f"预警类型：{alert_type_info(self.alert_type).label_zh}",
            f"统一社会信用代码：{self.merchant_credit_code}",
            f"证照类型：{CERTIFICATE_KIND_LABELS[self.certificate_kind]}",
            f"证照编号：{self.certificate_number}",
        ]
        if self.holder_name:
            lines.append(f"持证人：{self.holder_name}")
        lines += [f"有效期至：{self.valid_until.isoformat()}", f"检查日期：{self.checked_on.isoformat()}", status]
        return "\n".join(lines)


def render_notice_png(facts: NoticeFacts) -> bytes:
    """The notice card as PNG bytes (palette, 2 bits per pixel, text chunks before the image data)."""
    canvas = _Canvas(WIDTH, HEIGHT)
    canvas.fill(0, 0, WIDTH, 44, _ACCENT)
    canvas.text(16, 15, _title(facts), _WHITE, scale=2)
    label_x, value_x = 16, 16 + 7 * 12
    rows = (
        ("CODE", facts.merchant_credit_code),
        ("KIND", _KIND_TEXT[facts.certificate_kind]),
        ("NO.", facts.certificate_number),
        ("UNTIL", facts.valid_until.isoformat()),
        ("CHECK", facts.checked_on.isoformat()),
    )
    for index, (label, value) in enumerate(rows):
        y = 60 + index * 28
        canvas.text(label_x, y, label, _GREY, scale=2)
        canvas.text(value_x, y, value, _INK, scale=2)
    canvas.text(16, HEIGHT - 20, "SUNSHINE CERTIFICATE CHECK", _GREY, scale=1)
    canvas.frame(3, _ACCENT)

    accent = _AMBER_RGB if facts.alert_type is AlertType.licence_expiring else _RED_RGB
    palette = bytes((255, 255, 255, *_INK_RGB, *accent, *_GREY_RGB))
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", struct.pack(">IIBBBBB", WIDTH, HEIGHT, BIT_DEPTH, 3, 0, 0, 0)),
            _chunk(b"PLTE", palette),
            _itxt("Title", "证照预警告知卡 certificate notice"),
            _itxt("Description", facts.summary_zh()),
            _itxt(NOTICE_KEYWORD, facts.to_json()),
            _chunk(b"IDAT", _zlib_stored(canvas.scanlines())),
            _chunk(b"IEND", b""),
        )
    )


def read_png_text(data: bytes) -> dict[str, str]:
    """The ``tEXt`` and uncompressed ``iTXt`` chunks of a PNG by keyword; raises ValueError on a malformed
    file (bad signature, truncated chunk or CRC mismatch)."""
    texts: dict[str, str] = {}
    for kind, body in iter_png_chunks(data):
        if kind == b"tEXt":
            keyword, _, text = body.partition(b"\0")
            texts[keyword.decode("latin-1")] = text.decode("latin-1")
        elif kind == b"iTXt":
            keyword, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]  # compression flag, method
            _language, _, rest = rest.partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            if not compressed:
                texts[keyword.decode("latin-1")] = text.decode("utf-8")
    return texts


def iter_png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk after the signature, each CRC checked; ValueError when malformed."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG: the signature is missing")
    chunks = []
    offset = len(PNG_SIGNATURE)
    while offset < len(data):
        if offset + 8 > len(data):
            raise ValueError("truncated PNG chunk header")
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        end = offset + 8 + length
        if end + 4 > len(data):
            raise ValueError(f"truncated PNG chunk {kind!r}")
        body = data[offset + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if crc != zlib.crc32(kind + body):
            raise ValueError(f"CRC mismatch in PNG chunk {kind!r}")
        chunks.append((kind, body))
        offset = end + 4
    return chunks


# Encoding


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _itxt(keyword: str, text: str) -> bytes:
    # keyword (Latin-1, 1–79 bytes) NUL, compression flag 0, method 0, language tag "" NUL,
    # translated keyword "" NUL, then the UTF-8 text
    return _chunk(b"iTXt", keyword.encode("latin-1") + b"\0" + b"\0\0" + b"\0" + b"\0" + text.encode("utf-8"))


def _zlib_stored(raw: bytes) -> bytes:
    """A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4): the same bytes on any zlib."""
    out = bytearray(b"\x78\x01")  # deflate, 32 KiB window, no dictionary; 0x7801 is a multiple of 31
    block = 0xFFFF
    for start in range(0, max(len(raw), 1), block):
        piece = raw[start : start + block]
        final = 1 if start + block >= len(raw) else 0
        out += struct.pack("<BHH", final, len(piece), len(piece) ^ 0xFFFF) + piece
    out += struct.pack(">I", zlib.adler32(raw))
    return bytes(out)


def _title(facts: NoticeFacts) -> str:
    days = facts.days_left
    if days < 0:
        when = f"{-days} DAY{'S' if days != -1 else ''} AGO"
    elif days == 0:
        when = "TODAY"
    else:
        when = f"IN {days} DAY{'S' if days != 1 else ''}"
    return f"{_TITLE_TEXT[facts.alert_type]} {when}"


# Drawing


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(width * height)  # palette indices, all _WHITE

    def fill(self, x0: int, y0: int, x1: int, y1: int, colour: int) -> None:
        x0, x1 = max(x0, 0), min(x1, self.width)
        for y in range(max(y0, 0), min(y1, self.height)):
            row = y * self.width
            self.pixels[row + x0 : row + x1] = bytes([colour]) * (x1 - x0)

    def frame(self, thickness: int, colour: int) -> None:
        self.fill(0, 0, self.width, thickness, colour)
        self.fill(0, self.height - thickness, self.width, self.height, colour)
        self.fill(0, 0, thickness, self.height, colour)
        self.fill(self.width - thickness, 0, self.width, self.height, colour)

    def text(self, x: int, y: int, text: str, colour: int, *, scale: int) -> None:
        """Draw ``text`` in the 5×7 font; what does not fit before the right margin is left out."""
        for char in text.upper():
            if x + 5 * scale > self.width - 8:
                return
            for row_index, bits in enumerate(_GLYPHS.get(char, _UNKNOWN_GLYPH)):
                for column in range(5):
                    if bits & (0x10 >> column):
                        px, py = x + column * scale, y + row_index * scale
                        self.fill(px, py, px + scale, py + scale, colour)
            x += 6 * scale

    def scanlines(self) -> bytes:
        """Filter type 0 per row, four 2-bit pixels per byte, the leftmost in the high bits."""
        out = bytearray()
        per_byte = 8 // BIT_DEPTH
        for y in range(self.height):
            out.append(0)
            row = self.pixels[y * self.width : (y + 1) * self.width]
            for start in range(0, self.width, per_byte):
                value = 0
                for index in range(start, start + per_byte):
                    value = (value << BIT_DEPTH) | (row[index] if index < self.width else 0)
                out.append(value)
        return bytes(out)


def _glyphs(table: str) -> dict[str, tuple[int, ...]]:
    glyphs: dict[str, tuple[int, ...]] = {}
    for entry in table.split():
        char, rows = entry[0], tuple(bytes.fromhex(entry[2:]))
        assert len(rows) == 7 and all(row < 0x20 for row in rows), entry
        glyphs[" " if char == "_" else char] = rows
    return glyphs


# A character = seven rows of five bits, bit 4 the leftmost column; "_" stands for the space.
_GLYPHS = _glyphs(
    """
    0=0E11131519110E 1=040C040404040E 2=0E11010204081F 3=1F02040201110E 4=02060A121F0202
    5=1F101E0101110E 6=0608101E11110E 7=1F010204080808 8=0E11110E11110E 9=0E11110F01020C
    A=0E1111111F1111 B=1E11111E11111E C=0E11101010110E D=1C12111111121C E=1F10101E10101F
    F=1F10101E101010 G=0E11101711110F H=1111111F111111 I=0E04040404040E J=0702020202120C
    K=11121418141211 L=1010101010101F M=111B1515111111 N=11111915131111 O=0E11111111110E
    P=1E11111E101010 Q=0E11111115120D R=1E11111E141211 S=0F10100E01011E T=1F040404040404
    U=1111111111110E V=11111111110A04 W=1111111515150A X=11110A040A1111 Y=1111110A040404
    Z=1F01020408101F -=0000001F000000 :=000C0C000C0C00 /=00010204081000 .=00000000000C0C
    _=00000000000000
    """
)
_UNKNOWN_GLYPH = (0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F)
