"""Server-side SVG charts for the overview pages: inline markup, no JavaScript, nothing fetched.

Labels and titles come from the database (office names, merchant names), so every piece of text goes through
``markupsafe`` formatting, which escapes it; only markup built here is trusted. Each chart is ``role="img"``
with a ``<title>`` for its name and a ``<desc>`` listing every value, so a screen reader gets the numbers the
picture shows. Colours are presentation attributes with class names beside them, so a stylesheet can
restyle a chart (CSS wins over presentation attributes) while the bare SVG still reads on its own.

Values must be finite and non-negative: the charts show counts and rates, and a bar below the axis would be
a bug upstream, better raised than drawn.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence

from markupsafe import Markup

ValueFormat = Callable[[float], str]

FONT_SIZE = 12
TITLE_SIZE = 14
TITLE_BAND = 26  # height kept for the visible title
VALUE_BAND = 16  # room above the tallest bar for its value
RIGHT_PAD = 12
LABEL_ANGLE = 35  # degrees, for category labels too long to sit flat under their bar
MAX_LABEL_WIDTH = 120.0  # longer category labels are shortened; the full text stays in the tooltip
BAR_FILL = 0.6  # share of a category's slot the bar takes
PALETTE = ("#2f6fb0", "#e08a1e", "#3a9d5d", "#c44e52", "#8172b2", "#937860")
AXIS_COLOUR = "#999"
GRID_COLOUR = "#e5e5e5"
TEXT_COLOUR = "#333"


def plain_number(value: float) -> str:
    """Whole numbers without decimals (counts), others with at most two."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 640,
    height: int = 320,
    value_format: ValueFormat = plain_number,
    empty_text: str = "No data",
) -> Markup:
    """One bar per ``(label, value)``, in the given order, with the value above each bar."""
    rows = [(label, [value]) for label, value in items]
    return _bars(
        rows,
        series=[title],
        title=title,
        width=width,
        height=height,
        value_format=value_format,
        empty_text=empty_text,
    )


def stacked_bar_chart(
    rows: Sequence[tuple[str, Sequence[float]]],
    *,
    series: Sequence[str],
    title: str,
    width: int = 640,
    height: int = 320,
    value_format: ValueFormat = plain_number,
    empty_text: str = "No data",
) -> Markup:
    """One bar per ``(label, values)``, its ``values`` stacked bottom-up in ``series`` order, with a legend and
    the total above each bar (for example open cases per office, split by status)."""
    for label, values in rows:
        if len(values) != len(series):
            raise ValueError(f"row {label!r} has {len(values)} values for {len(series)} series")
    return _bars(
        [(label, list(values)) for label, values in rows],
        series=list(series),
        title=title,
        width=width,
        height=height,
        value_format=value_format,
        empty_text=empty_text,
        legend=True,
    )


def line_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
    value_format: ValueFormat = plain_number,
    max_x_labels: int = 8,
    empty_text: str = "No data",
) -> Markup:
    """A line through ``(label, value)`` points at even steps (a daily trend), with a dot per point.

    At most ``max_x_labels`` labels are written under the axis, always including the last (most recent) one;
    every point keeps its label in the dot's tooltip and in the description.
    """
    if max_x_labels < 1:
        raise ValueError("max_x_labels must be at least 1")
    values = [_checked(value) for _, value in points]
    description = _describe([(label, value_format(value)) for (label, _), value in zip(points, values, strict=True)])
    if not points:
        return _frame(
            title=title, width=width, height=height, description=description, body=_empty(width, height, empty_text)
        )

    top, ticks = _nice_scale(max(values), integers=all(value.is_integer() for value in values))
    # The first and last labels are centred on the ends of the line: keep half of each inside the picture.
    plot = _Plot(
        left=max(_axis_label_width(ticks, value_format), _text_width(points[0][0]) / 2 + 2),
        right=width - max(RIGHT_PAD, _text_width(points[-1][0]) / 2 + 2),
        top=TITLE_BAND + VALUE_BAND / 2,
        bottom=height - FONT_SIZE * 2,
        scale_top=top,
    )
    count = len(points)
    step = (plot.right - plot.left) / (count - 1) if count > 1 else 0.0

    def x_at(index: int) -> float:
        return plot.left + index * step if count > 1 else (plot.left + plot.right) / 2

    parts = [_grid(plot, ticks, value_format)]
    coordinates = [(x_at(index), plot.y(value)) for index, value in enumerate(values)]
    if count > 1:
        parts.append(
            Markup('<polyline class="chart-line" fill="none" stroke="{}" stroke-width="2" points="{}"/>').format(
                PALETTE[0], " ".join(f"{_n(x)},{_n(y)}" for x, y in coordinates)
            )
        )
    label_every = math.ceil(count / max_x_labels)
    for index, ((label, _), value, (x, y)) in enumerate(zip(points, values, coordinates, strict=True)):
        parts.append(
            Markup('<circle class="chart-point" cx="{}" cy="{}" r="3" fill="{}"><title>{}: {}</title></circle>').format(
                _n(x), _n(y), PALETTE[0], label, value_format(value)
            )
        )
        if (count - 1 - index) % label_every == 0:
            parts.append(
                Markup('<text class="chart-label" x="{}" y="{}" text-anchor="middle" fill="{}">{}</text>').format(
                    _n(x), _n(plot.bottom + FONT_SIZE + 4), TEXT_COLOUR, label
                )
            )
    return _frame(title=title, width=width, height=height, description=description, body=Markup("").join(parts))


class _Plot:
    """The plotting rectangle and the value scale: value 0 sits on ``bottom``, ``scale_top`` on ``top``."""

    def __init__(self, *, left: float, right: float, top: float, bottom: float, scale_top: float) -> None:
        self.left, self.right, self.top, self.bottom, self.scale_top = left, right, top, bottom, scale_top

    def length(self, value: float) -> float:
        return value / self.scale_top * (self.bottom - self.top)

    def y(self, value: float) -> float:
        return self.bottom - self.length(value)


def _bars(
    rows: list[tuple[str, list[float]]],
    *,
    series: list[str],
    title: str,
    width: int,
    height: int,
    value_format: ValueFormat,
    empty_text: str,
    legend: bool = False,
) -> Markup:
    checked = [(label, [_checked(value) for value in values]) for label, values in rows]
    totals = [sum(values) for _, values in checked]
    description = _describe(
        [
            (label, _breakdown(values, series, value_format) if legend else value_format(total))
            for (label, values), total in zip(checked, totals, strict=True)
        ]
    )
    if not checked:
        return _frame(
            title=title, width=width, height=height, description=description, body=_empty(width, height, empty_text)
        )

    all_values = [value for _, values in checked for value in values]
    top, ticks = _nice_scale(max(totals), integers=all(value.is_integer() for value in all_values))
    left = _axis_label_width(ticks, value_format)
    slot = (width - RIGHT_PAD - left) / len(checked)
    labels = [_shorten(label) for label, _ in checked]
    label_width = max(_text_width(label) for label in labels)
    rotate = label_width > slot * 0.95
    if rotate:
        # A slanted label runs left from under its bar: the first one needs room before the axis.
        overhang = label_width * math.cos(math.radians(LABEL_ANGLE)) - slot / 2
        if overhang > left:
            left = overhang
            slot = (width - RIGHT_PAD - left) / len(checked)
    label_band = FONT_SIZE * 2 if not rotate else label_width * math.sin(math.radians(LABEL_ANGLE)) + FONT_SIZE * 2
    legend_band = FONT_SIZE + 8 if legend else 0
    plot = _Plot(
        left=left,
        right=width - RIGHT_PAD,
        top=TITLE_BAND + legend_band + VALUE_BAND,
        # A chart too short for its labels still keeps half its height for the bars.
        bottom=max(height - label_band, (height + TITLE_BAND) / 2),
        scale_top=top,
    )

    parts = [_grid(plot, ticks, value_format)]
    if legend:
        parts.append(_legend(series, x=left, y=TITLE_BAND + 4))
    bar_width = slot * BAR_FILL
    for index, ((label, values), total, short_label) in enumerate(zip(checked, totals, labels, strict=True)):
        x = plot.left + index * slot + (slot - bar_width) / 2
        centre = x + bar_width / 2
        base = plot.bottom
        segments = []
        for series_index, (name, value) in enumerate(zip(series, values, strict=True)):
            length = plot.length(value)
            tooltip = f"{label} · {name}: {value_format(value)}" if legend else f"{label}: {value_format(value)}"
            segments.append(
                Markup(
                    '<rect class="chart-bar chart-series-{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}</title></rect>"
                ).format(
                    series_index,
                    _n(x),
                    _n(base - length),
                    _n(bar_width),
                    _n(length),
                    PALETTE[series_index % len(PALETTE)],
                    tooltip,
                )
            )
            base -= length
        parts.append(Markup('<g class="chart-category">{}</g>').format(Markup("").join(segments)))
        parts.append(
            Markup('<text class="chart-value" x="{}" y="{}" text-anchor="middle" fill="{}">{}</text>').format(
                _n(centre), _n(base - 4), TEXT_COLOUR, value_format(total)
            )
        )
        label_y = plot.bottom + FONT_SIZE + 4
        if rotate:
            parts.append(
                Markup(
                    '<text class="chart-label" x="{x}" y="{y}" text-anchor="end" fill="{fill}" '
                    'transform="rotate(-{angle} {x} {y})"><title>{full}</title>{text}</text>'
                ).format(x=_n(centre), y=_n(label_y), fill=TEXT_COLOUR, angle=LABEL_ANGLE, full=label, text=short_label)
            )
        else:
            parts.append(
                Markup(
                    '<text class="chart-label" x="{}" y="{}" text-anchor="middle" fill="{}"><title>{}</title>{}</text>'
                ).format(_n(centre), _n(label_y), TEXT_COLOUR, label, short_label)
            )
    return _frame(title=title, width=width, height=height, description=description, body=Markup("").join(parts))


def _frame(*, title: str, width: int, height: int, description: str, body: Markup) -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{title}" '
        'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="{font_size}">'
        "<title>{title}</title><desc>{description}</desc>"
        '<text class="chart-title" x="0" y="{title_y}" font-size="{title_size}" font-weight="bold" fill="{fill}">'
        "{title}</text>{body}</svg>"
    ).format(
        title=title,
        width=width,
        height=height,
        font_size=FONT_SIZE,
        description=description,
        title_y=TITLE_SIZE + 2,
        title_size=TITLE_SIZE,
        fill=TEXT_COLOUR,
        body=body,
    )


def _empty(width: int, height: int, text: str) -> Markup:
    return Markup('<text class="chart-empty" x="{}" y="{}" text-anchor="middle" fill="{}">{}</text>').format(
        _n(width / 2), _n((height + TITLE_BAND) / 2), AXIS_COLOUR, text
    )


def _grid(plot: _Plot, ticks: list[float], value_format: ValueFormat) -> Markup:
    parts = []
    for tick in ticks:
        y = _n(plot.y(tick))
        parts.append(
            Markup(
                '<line class="chart-grid" x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="{colour}"/>'
                '<text class="chart-tick" x="{label_x}" y="{y}" dy="4" text-anchor="end" fill="{fill}">{text}</text>'
            ).format(
                left=_n(plot.left),
                right=_n(plot.right),
                y=y,
                colour=AXIS_COLOUR if tick == 0 else GRID_COLOUR,
                label_x=_n(plot.left - 6),
                fill=TEXT_COLOUR,
                text=value_format(tick),
            )
        )
    return Markup("").join(parts)


def _legend(series: list[str], *, x: float, y: float) -> Markup:
    parts = []
    for index, name in enumerate(series):
        parts.append(
            Markup(
                '<rect class="chart-series-{index}" x="{x}" y="{y}" width="10" height="10" fill="{fill}"/>'
                '<text class="chart-legend" x="{text_x}" y="{text_y}" fill="{colour}">{name}</text>'
            ).format(
                index=index,
                x=_n(x),
                y=_n(y),
                fill=PALETTE[index % len(PALETTE)],
                text_x=_n(x + 14),
                text_y=_n(y + 10),
                colour=TEXT_COLOUR,
                name=name,
            )
        )
        x += 14 + _text_width(name) + 12
    return Markup('<g class="chart-legend">{}</g>').format(Markup("").join(parts))


def _describe(entries: list[tuple[str, str]]) -> str:
    return "; ".join(f"{label}: {value}" for label, value in entries)


def _breakdown(values: list[float], series: list[str], value_format: ValueFormat) -> str:
    total = value_format(sum(values))
    return f"{total} ({', '.join(f'{name} {value_format(value)}' for name, value in zip(series, values, strict=True))})"


def _checked(value: float) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"chart values must be finite and non-negative, not {value!r}")
    return number


def _nice_scale(maximum: float, *, integers: bool) -> tuple[float, list[float]]:
    """The axis top and its ticks: about four steps of 1, 2 or 5 × 10ⁿ (whole steps for whole-number data).

    An all-zero chart gets the scale 0–1, so the bars are flat rather than divided by zero.
    """
    if maximum <= 0:
        return 1.0, [0.0, 1.0]
    raw_step = maximum / 4
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw_step)
    if integers:
        step = max(step, 1.0)
    # The epsilon keeps 0.3 / 0.1 = 2.9999999999999996 from adding a needless tick.
    count = math.ceil(maximum / step - 1e-9)
    return count * step, [round(step * index, 10) for index in range(count + 1)]


def _axis_label_width(ticks: list[float], value_format: ValueFormat) -> float:
    return max(_text_width(value_format(tick)) for tick in ticks) + 10


def _text_width(text: str) -> float:
    """Estimated rendered width: wide (CJK) characters take a full em, others a bit over half."""
    return sum(FONT_SIZE if unicodedata.east_asian_width(char) in "WF" else FONT_SIZE * 0.6 for char in text)


def _shorten(label: str) -> str:
    if _text_width(label) <= MAX_LABEL_WIDTH:
        return label
    shortened = label
    while shortened and _text_width(shortened + "…") > MAX_LABEL_WIDTH:
        shortened = shortened[:-1]
    return shortened + "…"


def _n(value: float) -> str:
    """A coordinate with at most two decimals: enough for a screen, and short markup."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
