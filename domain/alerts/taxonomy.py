"""预警类型: every alert type the platform raises, what it is about and how it is handled (办法 第十二、十五条)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class AlertCategory(StrEnum):
    dress = "dress"  # 着装规范
    behaviour = "behaviour"  # 行为规范
    pest = "pest"  # 有害生物
    certificate = "certificate"  # 许可证/健康证逾期
    camera = "camera"  # 视频信号 (办法 第十二条)


CATEGORY_LABELS: dict[AlertCategory, str] = {
    AlertCategory.dress: "着装规范",
    AlertCategory.behaviour: "行为规范",
    AlertCategory.pest: "有害生物",
    AlertCategory.certificate: "证照逾期",
    AlertCategory.camera: "视频信号异常",
}


class AlertType(StrEnum):
    no_hat = "no_hat"
    no_uniform = "no_uniform"
    no_mask = "no_mask"
    trash_can_open = "trash_can_open"
    smoking = "smoking"
    phone_use = "phone_use"
    pest = "pest"
    licence_expiring = "licence_expiring"
    licence_expired = "licence_expired"
    health_cert_expired = "health_cert_expired"
    camera_offline = "camera_offline"
    camera_covered = "camera_covered"
    camera_moved = "camera_moved"
    camera_blurred = "camera_blurred"


# 食品安全法 (2021) articles behind the alerts; which item of 126 a locality cites for dress and behaviour
# varies, this follows the bureau's reading (domain note §4.2).
PROCESS_CONTROL = "《中华人民共和国食品安全法》第一百二十六条第一款第十三项"
HEALTH_CERTIFICATE = "《中华人民共和国食品安全法》第一百二十六条第一款第六项"
LAPSED_LICENCE = "《中华人民共和国食品安全法》第一百二十二条"
LICENCE_RENEWAL = "《食品经营许可和备案管理办法》(延续申请) — 临期提醒，尚无违法"
CAMERA_SIGNAL = "《河西区阳光食品工程智慧监管平台运行使用办法(试行)》第十二条"


@dataclass(frozen=True)
class AlertTypeInfo:
    alert_type: AlertType
    label_zh: str
    category: AlertCategory
    # Alerts of the same camera and type within this window fold into one open case.
    merge_window: timedelta
    legal_basis: str
    # 办法 第十八条: problems that can be put right at once (put a hat on) must be within 24 h.
    immediate_rectification: bool
    # A violation of food-safety law (as opposed to a reminder or a camera fault).
    is_violation: bool = True


_INFO = (
    AlertTypeInfo(AlertType.no_hat, "未戴工作帽", AlertCategory.dress, timedelta(hours=2), PROCESS_CONTROL, True),
    AlertTypeInfo(AlertType.no_uniform, "未穿工作服", AlertCategory.dress, timedelta(hours=2), PROCESS_CONTROL, True),
    AlertTypeInfo(AlertType.no_mask, "未戴口罩", AlertCategory.dress, timedelta(hours=2), PROCESS_CONTROL, True),
    AlertTypeInfo(AlertType.trash_can_open, "垃圾桶未加盖", AlertCategory.behaviour, timedelta(hours=4),
                  PROCESS_CONTROL, True),
    AlertTypeInfo(AlertType.smoking, "吸烟", AlertCategory.behaviour, timedelta(hours=2), PROCESS_CONTROL, True),
    AlertTypeInfo(AlertType.phone_use, "玩手机", AlertCategory.behaviour, timedelta(hours=2), PROCESS_CONTROL, True),
    # Pests need pest control and sealing of entry points: a deadline, not an immediate fix.
    AlertTypeInfo(AlertType.pest, "发现有害生物", AlertCategory.pest, timedelta(hours=24), PROCESS_CONTROL, False),
    AlertTypeInfo(AlertType.licence_expiring, "许可证临期", AlertCategory.certificate, timedelta(days=30),
                  LICENCE_RENEWAL, False, is_violation=False),
    AlertTypeInfo(AlertType.licence_expired, "许可证过期", AlertCategory.certificate, timedelta(days=30),
                  LAPSED_LICENCE, False),
    AlertTypeInfo(AlertType.health_cert_expired, "健康证过期", AlertCategory.certificate, timedelta(days=7),
                  HEALTH_CERTIFICATE, False),
    AlertTypeInfo(AlertType.camera_offline, "摄像头离线", AlertCategory.camera, timedelta(hours=24), CAMERA_SIGNAL,
                  True, is_violation=False),
    AlertTypeInfo(AlertType.camera_covered, "摄像头遮挡", AlertCategory.camera, timedelta(hours=24), CAMERA_SIGNAL,
                  True, is_violation=False),
    AlertTypeInfo(AlertType.camera_moved, "摄像头角度异常", AlertCategory.camera, timedelta(hours=24), CAMERA_SIGNAL,
                  True, is_violation=False),
    AlertTypeInfo(AlertType.camera_blurred, "画面模糊", AlertCategory.camera, timedelta(hours=24), CAMERA_SIGNAL,
                  True, is_violation=False),
)

ALERT_TYPES: dict[AlertType, AlertTypeInfo] = {info.alert_type: info for info in _INFO}


def alert_type_info(alert_type: AlertType | str) -> AlertTypeInfo:
    """Raises ValueError naming the unknown type and the known ones."""
    try:
        return ALERT_TYPES[AlertType(alert_type)]
    except ValueError:
        known = ", ".join(t.value for t in AlertType)
        raise ValueError(f"unknown alert type {alert_type!r}; known types: {known}") from None


def alert_type_label(alert_type: str) -> str:
    """The Chinese name of a type; an unknown code (from an older or newer version) as it is."""
    try:
        return ALERT_TYPES[AlertType(alert_type)].label_zh
    except ValueError:
        return alert_type
