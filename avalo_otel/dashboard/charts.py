"""Chart geometry for server-drawn SVG: axes with labelled ticks, lines, stacked bars, reference
lines, legends and the trace waterfall.

Only numbers and plain text come out of here: ``templates/_charts.html`` draws them with Jinja's
autoescaping, so a hostile operation name in a label is text, never markup. No inline styles:
colours are CSS classes (``s0``…, ``ok``/``warn``/``bad``), allowed by a strict CSP.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from . import fmt

Formatter = Callable[[float], str]
WIDTH, HEIGHT = 480, 230
LEFT, RIGHT, TOP, BOTTOM = 60, 14, 14, 40
_TIME_STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 7200, 10080)


@dataclass
class Tick:
    pos: float
    label: str


@dataclass
class Line:
    name: str
    css: str
    segments: list[str]          # SVG polyline "x,y x,y …" per run without gaps
    dashed: bool = False
    dots: list[tuple[float, float]] = field(default_factory=list)  # lone points of a segment of one


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass
class Ref:
    y: float
    label: str
    css: str


@dataclass
class Chart:
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    x0: float = LEFT
    y0: float = TOP
    x1: float = WIDTH - RIGHT
    y1: float = HEIGHT - BOTTOM
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    legend: list[tuple[str, str, Optional[bool]]] = field(default_factory=list)   # (name, css, dashed; None: bars)
    x_caption: str = "time (UTC)"
    empty: bool = False
    empty_text: str = "No data in this range"
    summary: str = ""
    note: str = ""
    #: Reference-line labels right of the plot (where bars would hide them) instead of inside it.
    refs_outside: bool = False
    #: Value labels: (x, y, text).
    texts: list[tuple[float, float, str]] = field(default_factory=list)

    @property
    def plot_height(self) -> float:
        return self.y1 - self.y0

    @property
    def plot_width(self) -> float:
        return self.x1 - self.x0


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first = math.floor(lo / step + 1e-9) * step
    ticks, value = [], first
    while value < hi - 1e-9 * step or not ticks:
        ticks.append(round(value, 10))
        value += step
    ticks.append(round(value, 10))
    return ticks


def time_ticks(start_ms: int, end_ms: int, max_ticks: int = 7) -> list[tuple[int, str]]:
    """UTC-aligned ticks: "HH:MM", or the date at midnight and for multi-day steps."""
    span_min = max(1, (end_ms - start_ms) / 60_000)
    step_min = next((s for s in _TIME_STEPS_MIN if span_min / s <= max_ticks), _TIME_STEPS_MIN[-1])
    step = step_min * 60_000
    first = start_ms - start_ms % step + (step if start_ms % step else 0)
    out = []
    for t in range(first, end_ms + 1, step):
        moment = _dt.datetime.fromtimestamp(t / 1000, tz=_dt.timezone.utc)
        if step_min >= 1440 or (moment.hour == 0 and moment.minute == 0):
            label = moment.strftime("%d %b")
        else:
            label = moment.strftime("%H:%M")
        out.append((t, label))
    return out


class _Scale:
    def __init__(self, chart: Chart, start_ms: int, end_ms: int, lo: float, hi: float) -> None:
        self.chart, self.start, self.end, self.lo, self.hi = chart, start_ms, end_ms, lo, hi

    def x(self, t: float) -> float:
        span = max(1, self.end - self.start)
        return round(self.chart.x0 + (t - self.start) / span * self.chart.plot_width, 1)

    def y(self, v: float) -> float:
        span = (self.hi - self.lo) or 1.0
        v = min(self.hi, max(self.lo, v))
        return round(self.chart.y1 - (v - self.lo) / span * self.chart.plot_height, 1)


Points = Sequence[tuple[int, Optional[float]]]


def time_chart(
    title: str, start_ms: int, end_ms: int, *, unit: str, y_format: Formatter,
    lines: Sequence[tuple[str, str, Points, bool]] = (), bars: Sequence[tuple[str, str, Points]] = (),
    step_ms: Optional[int] = None, refs: Sequence[tuple[float, str, str]] = (),
    y_min: Optional[float] = 0.0, y_max: Optional[float] = None, clip: Optional[tuple[float, float]] = None,
    empty_text: str = "No data in this range", note: str = "", width: int = WIDTH, height: int = HEIGHT,
) -> Chart:
    """A chart over time: ``lines`` (name, css, points, dashed) and/or stacked ``bars`` (name, css,
    points; each bar ``step_ms`` wide), with horizontal reference lines (value, label, css)."""
    chart = Chart(title, unit, width=width, height=height, x1=width - RIGHT, y1=height - BOTTOM,
                  empty_text=empty_text, note=note)
    values = [v for _, _, pts, _ in lines for _, v in pts if v is not None and math.isfinite(v)]
    stacks: dict[int, float] = {}
    for _, _, pts in bars:
        for t, v in pts:
            if v:
                stacks[t] = stacks.get(t, 0.0) + v
    values += list(stacks.values())
    data_values = [v for v in values if v != 0] if not lines else values
    chart.empty = not data_values or (not lines and not stacks)
    values += [r[0] for r in refs]
    lo = min(values + ([y_min] if y_min is not None else [])) if values else 0.0
    hi = max(values + ([y_max] if y_max is not None else [])) if values else 1.0
    if clip is not None:
        lo, hi = max(lo, clip[0]), min(hi, clip[1])
        if any(v < clip[0] or v > clip[1] for v in values):
            chart.note = (chart.note + " " if chart.note else "") + "Values beyond the axis are drawn at its edge."
    ticks = nice_ticks(lo, hi)
    scale = _Scale(chart, start_ms, end_ms, ticks[0], ticks[-1])
    chart.y_ticks = [Tick(scale.y(v), y_format(v)) for v in ticks]
    chart.x_ticks = [Tick(scale.x(t), label) for t, label in time_ticks(start_ms, end_ms)]
    for value, label, css in refs:
        chart.refs.append(Ref(scale.y(value), label, css))
    if bars:
        width = (step_ms or (end_ms - start_ms)) / max(1, end_ms - start_ms) * chart.plot_width
        base: dict[int, float] = {}
        for name, css, pts in bars:
            for t, v in pts:
                if not v:
                    continue
                bottom = base.get(t, 0.0)
                top = bottom + v
                base[t] = top
                y_top, y_bottom = scale.y(top), scale.y(bottom)
                chart.bars.append(Bar(round(scale.x(t) + 0.5, 1), y_top, round(max(1.0, width - 1.0), 1),
                                      round(max(0.5, y_bottom - y_top), 1), css,
                                      f"{name}: {y_format(v)} at {fmt.when(t)}"))
            chart.legend.append((name, css, None))  # None: a box (bars), True/False: a (dashed) line
    for name, css, pts, dashed in lines:
        line = Line(name, css, [], dashed)
        run: list[tuple[float, float]] = []
        for t, v in list(pts) + [(end_ms, None)]:
            if v is None or not math.isfinite(v):
                if len(run) > 1:
                    line.segments.append(" ".join(f"{x},{y}" for x, y in run))
                elif run:
                    line.dots.append(run[0])
                run = []
            else:
                run.append((scale.x(t), scale.y(v)))
        chart.lines.append(line)
        chart.legend.append((name, css, dashed))
    chart.summary = f"{title}, {fmt.when(start_ms)} to {fmt.when(end_ms)}"
    return chart


def burn_chart(title: str, rates: Mapping[str, Any]) -> Chart:
    """Burn rate per window as bars on a log scale, with the 1x (on budget) and 14.4x (page) lines."""
    chart = Chart(title, "× budget", width=330, height=170, x0=46, y0=12, x1=286, y1=140, x_caption="window",
                  refs_outside=True)
    numbers = {w: fmt.number(v) for w, v in rates.items()}
    finite = [v for v in numbers.values() if v is not None and math.isfinite(v) and v > 0]
    chart.empty = all(v is None for v in numbers.values())
    chart.empty_text = "No events"
    top = max([100.0] + [v * 1.5 for v in finite])
    lo_exp, hi_exp = -2, math.ceil(math.log10(top))

    def y(v: float) -> float:
        v = min(10.0 ** hi_exp, max(10.0 ** lo_exp, v))
        return round(chart.y1 - (math.log10(v) - lo_exp) / (hi_exp - lo_exp) * chart.plot_height, 1)

    chart.y_ticks = [Tick(y(10.0 ** e), f"{10.0 ** e:g}×") for e in range(lo_exp, hi_exp + 1)]
    slot = chart.plot_width / max(1, len(numbers))
    for i, (window, v) in enumerate(numbers.items()):
        x = chart.x0 + i * slot
        chart.x_ticks.append(Tick(round(x + slot / 2, 1), window))
        if v is None or v <= 0:
            chart.texts.append((round(x + slot / 2, 1), chart.y1 - 4, "–" if v is None else "0"))
            continue
        top_y = chart.y0 if math.isinf(v) else y(v)
        short = "∞" if math.isinf(v) else (f"{v:.2g}×" if v < 100 else f"{v:.0f}×")
        chart.texts.append((round(x + slot / 2, 1), max(chart.y0 + 9, top_y - 3), short))
        chart.bars.append(Bar(round(x + slot * 0.2, 1), top_y, round(slot * 0.6, 1),
                              round(max(1.0, chart.y1 - top_y), 1), fmt.burn_class(v),
                              f"{window}: burn rate {fmt.burn(v)}"))
    chart.refs = [Ref(y(1.0), "1×", "ref-ok"), Ref(y(14.4), "14.4×", "ref-bad")]
    chart.summary = f"{title}: " + ", ".join(f"{w} {fmt.burn(v)}" for w, v in numbers.items())
    return chart


@dataclass
class SpanRow:
    name: str
    service: str
    depth: int
    y: float
    x: float
    w: float
    css: str
    label: str
    span_id: str
    title: str


@dataclass
class Waterfall:
    width: int
    height: int
    label_width: int
    rows: list[SpanRow]
    ticks: list[Tick]
    total_ms: float
    row_height: int = 26


def waterfall(spans: Sequence[Mapping[str, Any]], width: int = 1240) -> Optional[Waterfall]:
    """A trace's spans as rows under a shared time axis, children under their parent."""
    timed = [s for s in spans if isinstance(s.get("startTime"), (int, float))]
    if not timed:
        return None
    t0 = min(float(s["startTime"]) for s in timed)

    def end(s: Mapping[str, Any]) -> float:
        d = fmt.number(s.get("durationMs"))
        if d is not None:
            return float(s["startTime"]) + d
        e = fmt.number(s.get("endTime"))
        return e if e is not None else float(s["startTime"])

    total = max(1.0, max(end(s) for s in timed) - t0)
    by_id = {str(s.get("spanId")): s for s in timed}
    children: dict[Optional[str], list[Mapping[str, Any]]] = {}
    for s in sorted(timed, key=lambda s: (float(s["startTime"]), str(s.get("spanId")))):
        parent = s.get("parentSpanId")
        parent = str(parent) if parent and str(parent) in by_id else None
        children.setdefault(parent, []).append(s)
    ordered: list[tuple[Mapping[str, Any], int]] = []
    seen: set[str] = set()

    def walk(parent: Optional[str], depth: int) -> None:
        for s in children.get(parent, []):
            sid = str(s.get("spanId"))
            if sid in seen:
                continue
            seen.add(sid)
            ordered.append((s, depth))
            walk(sid, min(depth + 1, 12))

    walk(None, 0)
    for s in timed:  # a cycle of parents never hides a span
        if str(s.get("spanId")) not in seen:
            ordered.append((s, 0))
    label_width, row_h, top = 340, 26, 30
    plot = width - label_width - 90
    rows = []
    for i, (s, depth) in enumerate(ordered):
        start = float(s["startTime"]) - t0
        dur = max(0.0, end(s) - float(s["startTime"]))
        x = label_width + start / total * plot
        ok = s.get("success") is not False and s.get("status") != "error"
        name = str(s.get("name") or s.get("operation") or "span")
        rows.append(SpanRow(name, str(s.get("service") or ""), depth, top + i * row_h, round(x, 1),
                            round(max(2.0, dur / total * plot), 1), "ok" if ok else "bad", fmt.ms(dur),
                            str(s.get("spanId") or ""),
                            f"{name}: {fmt.ms(dur)} from +{fmt.ms(start)}" + ("" if ok else " (failed)")))
    ticks = [Tick(round(label_width + f * plot, 1), fmt.ms(f * total) if f else "0") for f in (0, .25, .5, .75, 1)]
    return Waterfall(width, top + len(rows) * row_h + 10, label_width, rows, ticks, total)
