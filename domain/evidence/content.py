"""What evidence may be: still images (JPEG, PNG, WebP) and video (WebM, MP4), told by their bytes.

The declared type of an upload (file name, Content-Type header) is a claim; only the magic bytes decide.
The refusals are exceptions whose message names the problem, for the intake API to map to 413/415.
"""

from __future__ import annotations

from domain.errors import ValidationFailed

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
WEBM = "video/webm"
MP4 = "video/mp4"
ACCEPTED_CONTENT_TYPES = frozenset({JPEG, PNG, WEBP, WEBM, MP4})

# How many leading bytes the sniffer wants to see (fewer only when the whole content is shorter).
SNIFF_BYTES = 64

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = b"\x42\x82"
# ISO base media brands of MP4 video. HEIF/AVIF stills and QuickTime share the `ftyp` box but are refused.
_MP4_BRANDS = frozenset(
    {"isom", "iso2", "iso3", "iso4", "iso5", "iso6", "mp41", "mp42", "mp71", "avc1", "dash", "M4V ", "f4v ", "mmp4"}
)
_STILL_IMAGE_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "mif1", "msf1", "avif", "avis", "jpeg"})


class EvidenceRejected(ValidationFailed):
    """The content was refused; nothing was stored. The message says why."""


class UnsupportedContent(EvidenceRejected):
    """Not one of the accepted image or video formats (or empty)."""


class ContentTypeMismatch(EvidenceRejected):
    """The declared content type disagrees with what the bytes are."""


class EvidenceTooLarge(EvidenceRejected):
    """More bytes than the configured limit."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"evidence exceeds the limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


def sniff_content_type(head: bytes) -> str | None:
    """The accepted content type that ``head`` (the first SNIFF_BYTES bytes) starts, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(_EBML_MAGIC) and _ebml_doctype(head) == b"webm":
        return WEBM
    if _is_mp4(head):
        return MP4
    return None


def check_content_type(head: bytes, *, declared: str | None = None) -> str:
    """The sniffed content type, or raise UnsupportedContent / ContentTypeMismatch."""
    if not head:
        raise UnsupportedContent("evidence is empty")
    sniffed = sniff_content_type(head)
    if sniffed is None:
        raise UnsupportedContent("content is not an accepted evidence format (JPEG, PNG, WebP images; WebM, MP4 video)")
    if declared is not None and normalise_content_type(declared) != sniffed:
        raise ContentTypeMismatch(f"declared content type {declared!r} but the bytes are {sniffed}")
    return sniffed


def normalise_content_type(value: str) -> str:
    """``"Image/JPEG; charset=x"`` → ``"image/jpeg"``; the legacy ``image/jpg`` means JPEG."""
    essence = value.split(";", 1)[0].strip().lower()
    return JPEG if essence in {"image/jpg", "image/pjpeg"} else essence


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType string of an EBML header ("webm", "matroska"), from its first element."""
    at = head.find(_EBML_DOCTYPE_ID, len(_EBML_MAGIC))
    if at < 0 or at + 3 > len(head):
        return None
    size_byte = head[at + 2]
    if not size_byte & 0x80:  # only the one-byte size form is used for so short a string
        return None
    size = size_byte & 0x7F
    return head[at + 3 : at + 3 + size]


def _is_mp4(head: bytes) -> bool:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(head[:4], "big")
    if box_size < 16:
        return False
    major = head[8:12].decode("latin-1")
    if major in _MP4_BRANDS:
        return True
    if major in _STILL_IMAGE_BRANDS:
        return False
    # Some encoders write a vendor major brand and list the MP4 brands as compatible (after minor version).
    compatible_end = min(box_size, len(head))
    compatible = {head[i : i + 4].decode("latin-1") for i in range(16, compatible_end - 3, 4)}
    return bool(compatible & _MP4_BRANDS) and not compatible & _STILL_IMAGE_BRANDS
