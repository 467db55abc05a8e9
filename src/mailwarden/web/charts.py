"""Geometry of the console's SVG charts, computed on the server (no script runs in the page).

Only numbers and the caller's labels come out of here; the templates put them into SVG
presentation attributes and escaped text, and the stylesheet colours them by class (the
content security policy allows neither inline scripts nor inline style attributes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 760
HEIGHT = 260
# The phone layout: drawn at about the width it is shown at, so that its 11-unit labels are
# still about 11 px on the screen (the wide chart scaled down to a phone made them 5 px).
NARROW_WIDTH = 360
NARROW_HEIGHT = 240
# Average advance of an 11 px label character, in user units: how many characters fit a bar.
_LABEL_CHAR_WIDTH = 6.4
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 36


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    total: int


@dataclass(frozen=True, slots=True)
class LineChart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    maximum: int


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above `value` (at least 1): round axis ends."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def line_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    x_tick_count: int = 6,
) -> LineChart:
    """One polyline per series over evenly spaced points, a y axis from 0 to a round maximum,
    and about `x_tick_count` labelled x positions."""
    count = len(labels)
    right, bottom = width - RIGHT, height - BOTTOM
    maximum = nice_ceiling(max((max(values, default=0) for values in series.values()), default=0))

    def x(index: int) -> float:
        if count <= 1:
            return float(LEFT)
        return round(LEFT + (right - LEFT) * index / (count - 1), 1)

    def y(value: int) -> float:
        return round(bottom - (bottom - TOP) * value / maximum, 1)

    lines = [
        Line(
            name,
            " ".join(f"{x(index)},{y(value)}" for index, value in enumerate(values)),
            sum(values),
        )
        for name, values in series.items()
    ]
    every = max(1, -(-count // x_tick_count))
    x_ticks = [Tick(x(index), labels[index]) for index in range(0, count, every)]
    y_ticks = [Tick(y(value), f"{value:,}") for value in (0, maximum // 2, maximum)]
    return LineChart(width, height, LEFT, TOP, right, bottom, lines, x_ticks, y_ticks, maximum)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    count: int
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


def bar_chart(entries: Sequence[tuple[str, int]], *, width: int = WIDTH) -> BarChart:
    """Horizontal bars, longest for the largest count; labels sit above each bar, cut with an
    ellipsis where they would run past the chart (the chart's description keeps them whole)."""
    bar_height, gap, label_height = 14, 10, 16
    row = label_height + bar_height + gap
    largest = max((count for _, count in entries), default=0) or 1
    usable = width - 80
    fits = int(width / _LABEL_CHAR_WIDTH)
    bars = [
        Bar(
            label if len(label) <= fits else label[: fits - 1] + "\u2026",
            count,
            index * row,
            round(max(1.0, usable * count / largest), 1),
        )
        for index, (label, count) in enumerate(entries)
    ]
    return BarChart(width, max(row, row * len(bars)), label_height, bar_height, bars)
