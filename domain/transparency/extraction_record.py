"""电子数据提取笔录: the printable record of an evidence bundle's extraction, rendered from its manifest.

The case summary is free-form; the 笔录 reads ``case_number`` (or ``case_id``), ``cause`` (案由) and
``merchant`` (``name``, ``credit_code``, ``address``) from it and shows "—" for what is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

BEIJING = ZoneInfo("Asia/Shanghai")
TEMPLATE = "extraction_record.html"
MISSING = "—"

COLLECTION_METHOD_LABELS = {
    "ai_capture": "AI 自动抓拍",
    "platform_extraction": "平台在线提取",
    "upload": "上传",
    "onsite_copy": "现场拷贝",
    "screenshot": "截屏",
}

_CONTENT_TYPE_LABELS = {
    "image/jpeg": "图片（JPEG）",
    "image/png": "图片（PNG）",
    "image/webp": "图片（WebP）",
    "video/webm": "视频（WebM）",
    "video/mp4": "视频（MP4）",
    "application/pdf": "文档（PDF）",
}


def render_extraction_record(manifest: Mapping[str, Any]) -> str:
    """The 笔录 as a self-contained HTML page (inline CSS, printable on A4) for the manifest's case and items."""
    return _environment().get_template(TEMPLATE).render(**_view(manifest))


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _view(manifest: Mapping[str, Any]) -> dict[str, Any]:
    case = _mapping(manifest.get("case"))
    merchant = _mapping(case.get("merchant"))
    generated_by = _mapping(manifest.get("generated_by"))
    log = _mapping(manifest.get("log"))
    items = [_item_view(number, _mapping(entry)) for number, entry in enumerate(manifest.get("evidence") or [], 1)]
    methods = sorted({item["method"] for item in items})
    return {
        "bundle_id": _text(manifest.get("bundle_id")),
        "unit": _text(generated_by.get("unit")),
        "case_number": _text(case.get("case_number") or case.get("case_id")),
        "cause": _text(case.get("cause")),
        "party_name": _text(merchant.get("name")),
        "party_credit_code": _text(merchant.get("credit_code")),
        "party_address": _text(merchant.get("address")),
        "reason": _text(manifest.get("reason")),
        "extracted_at": beijing_time(manifest.get("generated_at")),
        "extractor": _text(generated_by.get("actor")),
        "extractor_role": _text(generated_by.get("role")),
        "methods": "、".join(methods) or MISSING,
        "items": items,
        "log_origin": _text(log.get("origin")),
        "log_tree_size": _text(log.get("tree_size")),
        "log_root_hash": _text(log.get("root_hash")),
    }


def _item_view(number: int, entry: Mapping[str, Any]) -> dict[str, Any]:
    record = _mapping(entry.get("record"))
    content_type = _text(record.get("content_type"))
    method = record.get("collection_method")
    return {
        "number": number,
        "file": _text(entry.get("file")).rsplit("/", 1)[-1],
        "evidence_id": _text(record.get("evidence_id")),
        "type": _CONTENT_TYPE_LABELS.get(content_type, content_type),
        "size": human_size(record.get("size")),
        "captured_at": beijing_time(record.get("captured_at")),
        "method": COLLECTION_METHOD_LABELS.get(str(method), _text(method)),
        "source": describe_source(record.get("source")),
        "sha256": _text(record.get("sha256")),
        "sm3": _text(record.get("sm3")),
        "leaf_index": _text(entry.get("leaf_index")),
    }


def beijing_time(value: Any) -> str:
    """An ISO 8601 time as Beijing wall-clock time; a time without an offset is taken as UTC, as the store keeps it."""
    if not isinstance(value, str) or not value:
        return MISSING
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M:%S")


def human_size(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return MISSING
    if value < 1024:
        return f"{value} 字节"
    scaled = float(value)
    for unit in ("KB", "MB", "GB", "TB"):
        scaled /= 1024
        if scaled < 1024 or unit == "TB":
            break
    return f"{scaled:.1f} {unit}（{value:,} 字节）"


def describe_source(source: Any) -> str:
    """Camera, device, detector model (name and version) and uploader, as far as the record names them."""
    if not isinstance(source, Mapping):
        return MISSING
    parts = []
    camera = _named(source.get("camera")) or _text(source.get("camera_name") or source.get("camera_id"), "")
    if camera:
        parts.append(f"摄像头 {camera}")
    device = _named(source.get("device")) or _text(source.get("device_id"), "")
    if device:
        parts.append(f"设备 {device}")
    model = source.get("model")
    if isinstance(model, Mapping):
        model_text = " ".join(_text(model.get(key), "") for key in ("name", "version")).strip()
    else:
        model_text = " ".join(_text(source.get(key), "") for key in ("model_name", "model_version")).strip()
    if model_text:
        parts.append(f"模型 {model_text}")
    uploader = _named(source.get("uploader"))
    if uploader:
        parts.append(f"上传人 {uploader}")
    return "；".join(parts) or MISSING


def _named(value: Any) -> str:
    if isinstance(value, Mapping):
        for key in ("name", "username", "code", "id"):
            if value.get(key) not in (None, ""):
                return str(value[key])
        return ""
    return _text(value, "")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any, missing: str = MISSING) -> str:
    return missing if value is None or value == "" else str(value)
