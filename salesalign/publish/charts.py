"""Inline SVG charts for the alignment brief: no plotting library, no network, readable in any browser.

One chart type covers every figure of the brief: rows of estimates with intervals on a shared axis
(a forest plot; with many unlabeled rows, a caterpillar plot), with optional extra series per row
(intended vs actual, promised vs realised).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

COLOURS = {
    "positive": "#1b7f3b",  # interval above zero: a real gain
    "negative": "#b3261e",  # interval below zero: a real loss
    "uncertain": "#7a7a7a",  # interval contains zero
    "reference": "#1f4e9c",  # a target or a prediction to compare with
}


@dataclass(frozen=True)
class Point:
    """One estimate, with its interval when it has one."""

    value: float
    low: float | None = None
    high: float | None = None
    series: str = ""
    tone: str = ""  # key of COLOURS; by default from the interval

    @property
    def colour(self) -> str:
        if self.tone:
            return COLOURS[self.tone]
        if self.low is not None and self.high is not None:
            if self.low > 0:
                return COLOURS["positive"]
            if self.high < 0:
                return COLOURS["negative"]
        return COLOURS["uncertain"]


@dataclass(frozen=True)
class Row:
    label: str
    points: Sequence[Point]
    note: str = ""  # printed right of the plot (the number in words, the verdict)


@dataclass
class IntervalChart:
    rows: Sequence[Row]
    axis_label: str
    fmt: Callable[[float], str] = field(default=lambda v: f"{v:,.0f}")
    zero_line: bool = True
    row_height: int = 26
    label_width: int = 230
    plot_width: int = 420
    note_width: int = 300
    show_labels: bool = True
    legend: Sequence[tuple[str, str, str]] = ()  # (series, tone, mark: "square" | "point" | "interval")

    def svg(self) -> str:
        """The chart as an inline <svg> element."""
        values = [v for r in self.rows for p in r.points for v in (p.value, p.low, p.high) if _finite(v)]
        if self.zero_line:
            values.append(0.0)
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        ticks = nice_ticks(lo, hi)
        lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        left = self.label_width if self.show_labels else 10
        top, bottom = 10 + (20 if self.legend else 0), 38
        width = left + self.plot_width + self.note_width
        height = top + len(self.rows) * self.row_height + bottom

        def x(v: float) -> float:
            return left + (v - lo) / (hi - lo or 1.0) * self.plot_width

        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" font-family="Helvetica, Arial, sans-serif" font-size="12">'
        ]
        plot_bottom = top + len(self.rows) * self.row_height
        for t in ticks:
            parts.append(
                f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{plot_bottom}" stroke="#e6e6e6"/>'
            )
            parts.append(
                f'<text x="{x(t):.1f}" y="{plot_bottom + 14}" text-anchor="middle" fill="#555">'
                f"{escape(self.fmt(t))}</text>"
            )
        if self.zero_line and lo <= 0 <= hi:
            parts.append(
                f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top}" y2="{plot_bottom}" stroke="#333"/>'
            )
        parts.append(
            f'<text x="{left + self.plot_width / 2:.1f}" y="{plot_bottom + 32}" text-anchor="middle" '
            f'fill="#333">{escape(self.axis_label)}</text>'
        )
        for i, row in enumerate(self.rows):
            y0 = top + i * self.row_height
            if i % 2 == 0 and self.show_labels:
                parts.append(
                    f'<rect x="0" y="{y0}" width="{width}" height="{self.row_height}" fill="#f7f7f7"/>'
                )
            mid = y0 + self.row_height / 2
            if self.show_labels:
                parts.append(
                    f'<text x="{left - 8}" y="{mid + 4:.1f}" text-anchor="end">{escape(row.label)}</text>'
                )
            n = len(row.points)
            for j, p in enumerate(row.points):
                if not _finite(p.value):
                    continue
                y = mid + (j - (n - 1) / 2) * min(8, self.row_height / max(n, 1))
                if _finite(p.low) and _finite(p.high):
                    parts.append(
                        f'<line x1="{x(p.low):.1f}" x2="{x(p.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                        f'stroke="{p.colour}" stroke-width="2"/>'
                    )
                radius = 4 if self.row_height >= 16 else 2.5
                shape = (
                    f'<circle cx="{x(p.value):.1f}" cy="{y:.1f}" r="{radius}" fill="{p.colour}">'
                    if p.series in ("", "actual", "realised")
                    else f'<rect x="{x(p.value) - radius:.1f}" y="{y - radius:.1f}" width="{2 * radius}" '
                    f'height="{2 * radius}" fill="white" stroke="{p.colour}" stroke-width="2">'
                )
                tip = escape(f"{row.label} {p.series}: {self.fmt(p.value)}" + _interval(p, self.fmt))
                parts.append(f"{shape}<title>{tip}</title>{shape.split()[0].replace('<', '</')}>")
            if row.note:
                parts.append(
                    f'<text x="{left + self.plot_width + 10}" y="{mid + 4:.1f}" fill="#333">'
                    f"{escape(row.note)}</text>"
                )
        for k, (series, tone, mark) in enumerate(self.legend):
            lx = left + k * 170
            colour = COLOURS[tone]
            if mark == "interval":
                parts.append(
                    f'<line x1="{lx}" x2="{lx + 20}" y1="10" y2="10" stroke="{colour}" stroke-width="2"/>'
                )
            if mark == "square":
                parts.append(
                    f'<rect x="{lx + 6}" y="6" width="8" height="8" fill="white" stroke="{colour}" '
                    'stroke-width="2"/>'
                )
            else:
                parts.append(f'<circle cx="{lx + 10}" cy="10" r="4" fill="{colour}"/>')
            parts.append(f'<text x="{lx + 26}" y="14" fill="#333">{escape(series)}</text>')
        parts.append("</svg>")
        return "".join(parts)


def _interval(p: Point, fmt: Callable[[float], str]) -> str:
    return f" (95% interval {fmt(p.low)} to {fmt(p.high)})" if _finite(p.low) and _finite(p.high) else ""


def _finite(v) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    return ticks
