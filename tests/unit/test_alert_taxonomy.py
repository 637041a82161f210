from datetime import timedelta

import pytest

from domain.alerts.taxonomy import ALERT_TYPES, AlertCategory, AlertType, alert_type_info


def test_every_type_is_described_once_with_a_chinese_label() -> None:
    assert set(ALERT_TYPES) == set(AlertType)
    for info in ALERT_TYPES.values():
        assert info.label_zh and not info.label_zh.isascii()
        assert timedelta(0) < info.merge_window <= timedelta(days=30)
        assert info.legal_basis


@pytest.mark.parametrize(
    ("alert_type", "category", "basis_fragment", "immediate"),
    [
        ("no_hat", AlertCategory.dress, "第一百二十六条第一款第十三项", True),
        ("smoking", AlertCategory.behaviour, "第一百二十六条第一款第十三项", True),
        ("pest", AlertCategory.pest, "第一百二十六条第一款第十三项", False),
        ("health_cert_expired", AlertCategory.certificate, "第一百二十六条第一款第六项", False),
        ("licence_expired", AlertCategory.certificate, "第一百二十二条", False),
        ("camera_moved", AlertCategory.camera, "第十二条", True),
    ],
)
def test_category_legal_basis_and_rectification(alert_type: str, category: AlertCategory, basis_fragment: str,
                                                 immediate: bool) -> None:
    info = alert_type_info(alert_type)
    assert info.category is category
    assert basis_fragment in info.legal_basis
    assert info.immediate_rectification is immediate


def test_unknown_type_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="unknown alert type 'no_gloves'"):
        alert_type_info("no_gloves")
