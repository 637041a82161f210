"""The server-side SVG charts: well-formed, escaped, accessible, and honest about their numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from api.web.charts import bar_chart, line_chart, plain_number, stacked_bar_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&"\''


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def with_class(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [element for element in root.iter(f"{SVG}{tag}") if css_class in element.get("class", "").split()]


def all_text(root: ET.Element) -> str:
    return " ".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))


def assert_accessible_and_inert(root: ET.Element, title: str) -> None:
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == title
    title_element = root.find(f"{SVG}title")
    assert title_element is not None and title_element.text == title
    for element in root.iter():
        assert element.tag not in {f"{SVG}script", f"{SVG}image", f"{SVG}use", f"{SVG}foreignObject"}
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on")
            assert "href" not in attribute.lower()


def bar_heights(root: ET.Element) -> list[float]:
    return [float(rect.get("height", "nan")) for rect in with_class(root, "rect", "chart-bar")]


def test_bar_chart_is_well_formed_accessible_svg() -> None:
    root = parse(bar_chart([("友谊路街市场监管所", 4), ("马场街市场监管所", 2)], title="在办案件"))
    assert_accessible_and_inert(root, "在办案件")
    description = root.find(f"{SVG}desc")
    assert description is not None
    assert description.text == "友谊路街市场监管所: 4; 马场街市场监管所: 2"


def test_bar_heights_are_proportional_to_values() -> None:
    root = parse(bar_chart([("a", 10), ("b", 5), ("c", 2.5), ("d", 0)], title="t"))
    heights = bar_heights(root)
    assert len(heights) == 4
    assert heights[0] > 0
    assert heights[1] == pytest.approx(heights[0] / 2, abs=0.02)
    assert heights[2] == pytest.approx(heights[0] / 4, abs=0.02)
    assert heights[3] == 0


def test_bars_stand_on_a_common_baseline() -> None:
    root = parse(bar_chart([("a", 3), ("b", 7)], title="t"))
    bottoms = {
        round(float(rect.get("y", "0")) + float(rect.get("height", "0")), 1)
        for rect in with_class(root, "rect", "chart-bar")
    }
    assert len(bottoms) == 1


def test_every_database_label_and_the_title_are_escaped() -> None:
    svg = bar_chart([(HOSTILE, 1)], title=HOSTILE)
    assert "<script" not in str(svg)
    root = parse(svg)
    assert_accessible_and_inert(root, HOSTILE)
    # The text survives escaping intact: the reader sees exactly what was stored.
    assert HOSTILE in all_text(root)
    tooltips = [element.text for element in root.iter(f"{SVG}title")]
    assert f"{HOSTILE}: 1" in tooltips


def test_line_and_stacked_charts_escape_labels_and_series_names_too() -> None:
    line = line_chart([(HOSTILE, 1), ("b", 2)], title="trend")
    stacked = stacked_bar_chart([(HOSTILE, [1, 2])], series=[HOSTILE, "ok"], title="s")
    for svg in (line, stacked):
        assert "<script" not in str(svg)
        assert HOSTILE in all_text(parse(svg)) or HOSTILE in " ".join(
            element.text or "" for element in parse(svg).iter(f"{SVG}title")
        )


@pytest.mark.parametrize("render", [bar_chart, line_chart])
def test_empty_input_draws_the_frame_and_says_so(render) -> None:
    root = parse(render([], title="空", empty_text="暂无数据"))
    assert_accessible_and_inert(root, "空")
    assert "暂无数据" in all_text(root)
    assert not with_class(root, "rect", "chart-bar")
    assert root.find(f"{SVG}polyline") is None


def test_empty_stacked_chart() -> None:
    root = parse(stacked_bar_chart([], series=["a", "b"], title="空"))
    assert "No data" in all_text(root)


def test_all_zero_bars_are_flat_without_dividing_by_zero() -> None:
    root = parse(bar_chart([("a", 0), ("b", 0)], title="zero"))
    assert bar_heights(root) == [0, 0]
    assert [text.text for text in with_class(root, "text", "chart-value")] == ["0", "0"]


def test_all_zero_trend_lies_on_the_axis() -> None:
    root = parse(line_chart([("12-01", 0), ("12-02", 0), ("12-03", 0)], title="zero"))
    ys = {circle.get("cy") for circle in with_class(root, "circle", "chart-point")}
    assert len(ys) == 1
    axis = [line for line in with_class(root, "line", "chart-grid") if line.get("y1") in ys]
    assert axis, "the points sit on the zero grid line"


def test_a_single_point_is_a_dot_without_a_line() -> None:
    root = parse(line_chart([("12-02", 3)], title="one"))
    assert root.find(f"{SVG}polyline") is None
    points = with_class(root, "circle", "chart-point")
    assert len(points) == 1
    assert "12-02" in all_text(root)


def test_a_single_bar() -> None:
    root = parse(bar_chart([("only", 5)], title="one"))
    assert len(bar_heights(root)) == 1
    assert bar_heights(root)[0] > 0


def test_line_points_are_ordered_and_proportional() -> None:
    root = parse(line_chart([("a", 0), ("b", 4), ("c", 2)], title="t"))
    circles = with_class(root, "circle", "chart-point")
    xs = [float(circle.get("cx", "nan")) for circle in circles]
    ys = [float(circle.get("cy", "nan")) for circle in circles]
    assert xs == sorted(xs)
    baseline = ys[0]
    assert baseline - ys[2] == pytest.approx((baseline - ys[1]) / 2, abs=0.02)
    polyline = root.find(f"{SVG}polyline")
    assert polyline is not None
    assert len(polyline.get("points", "").split()) == 3


def test_thirty_day_trend_thins_x_labels_and_keeps_the_last_day() -> None:
    points = [(f"11-{day:02d}", day % 3) for day in range(1, 31)]
    root = parse(line_chart(points, title="30 天", max_x_labels=6))
    labels = [text.text for text in with_class(root, "text", "chart-label")]
    assert 1 < len(labels) <= 6
    assert labels[-1] == "11-30"
    # Every day is still in the tooltips and the description.
    assert len(with_class(root, "circle", "chart-point")) == 30
    description = root.find(f"{SVG}desc")
    assert description is not None and "11-01: 1" in (description.text or "")


def test_few_points_keep_every_label() -> None:
    root = parse(line_chart([("a", 1), ("b", 2), ("c", 3)], title="t"))
    assert [text.text for text in with_class(root, "text", "chart-label")] == ["a", "b", "c"]


def test_value_format_is_used_for_values_and_ticks() -> None:
    root = parse(bar_chart([("a", 0.5), ("b", 1.0)], title="rate", value_format=lambda value: f"{value:.0%}"))
    assert [text.text for text in with_class(root, "text", "chart-value")] == ["50%", "100%"]
    assert "100%" in [text.text for text in with_class(root, "text", "chart-tick")]


def test_whole_number_data_gets_whole_number_ticks() -> None:
    root = parse(bar_chart([("a", 1)], title="t"))
    assert [text.text for text in with_class(root, "text", "chart-tick")] == ["0", "1"]


def test_stacked_segments_add_up_to_the_total_and_are_proportional() -> None:
    root = parse(stacked_bar_chart([("a", [2, 1, 0]), ("b", [1, 0, 3])], series=["x", "y", "z"], title="s"))
    heights = bar_heights(root)
    assert len(heights) == 6
    a_total, b_total = sum(heights[:3]), sum(heights[3:])
    assert b_total == pytest.approx(a_total * 4 / 3, abs=0.05)
    assert heights[0] == pytest.approx(2 * heights[1], abs=0.02)
    assert [text.text for text in with_class(root, "text", "chart-value")] == ["3", "4"]
    assert [text.text for text in with_class(root, "text", "chart-legend")] == ["x", "y", "z"]


def test_stacked_rows_must_match_the_series() -> None:
    with pytest.raises(ValueError, match="series"):
        stacked_bar_chart([("a", [1])], series=["x", "y"], title="s")


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_negative_or_non_finite_values_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        bar_chart([("a", value)], title="t")
    with pytest.raises(ValueError, match="non-negative"):
        line_chart([("a", value)], title="t")


def test_long_labels_are_shortened_on_the_axis_but_whole_in_the_tooltip() -> None:
    long_name = "河西区友谊路街道市场监督管理所第一分中心食品安全监管科"
    root = parse(bar_chart([(long_name, 1), ("短", 2)], title="t", width=320))
    shown = [("".join(text.itertext())) for text in with_class(root, "text", "chart-label")]
    assert any(label.endswith("…") for label in shown)
    assert long_name in [element.text for element in root.iter(f"{SVG}title")]


@pytest.mark.parametrize(("value", "text"), [(3, "3"), (3.0, "3"), (0.5, "0.5"), (2 / 3, "0.67"), (0, "0")])
def test_plain_number(value: float, text: str) -> None:
    assert plain_number(value) == text
