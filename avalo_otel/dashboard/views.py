"""The overview's models: SLO cards, error-budget burn-down and burn-rate charts, system health.

Each function turns what ``data`` read into plain dicts and ``charts.Chart`` geometry for the
templates, and the same numbers for the JSON API, so page and API never disagree.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..slo import SLOReport
from ..slo.history import BudgetHistory
from . import charts, fmt
from .metrics import QUANTILES, MetricWindow, everything

PALETTE = ("s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7")
QUANTILE_NAMES = {0.5: "P50", 0.95: "P95", 0.99: "P99"}


def slo_card(report: SLOReport) -> dict[str, Any]:
    """One SLO as the overview card shows it (and /api/slos returns it): the report plus display text."""
    data = report.to_dict()
    primary = next(i for i in data["indicators"] if i["indicator"] == data["primary_indicator"])
    data["target"] = primary["objective"] / 100.0
    data["events"] = primary["events"]
    data["display"] = {
        "status": fmt.status_text(data["status"]), "status_class": fmt.status_class(data["status"]),
        "budget_status": fmt.status_text(data["budget_status"]),
        "sli": fmt.pct(data["sli"], 3), "target": fmt.pct(data["target"], 3),
        "budget_remaining": fmt.pct(data["budget_remaining"], 1),
        "time_to_exhaustion": _exhaustion(data),
        "burn_rates": {w: fmt.burn(v) for w, v in data["burn_rates"].items()},
    }
    remaining = fmt.number(data["budget_remaining"])
    # The budget bar: 0..100% of its width (an SVG rect's width attribute, not an inline style).
    data["display"]["budget_bar"] = 0.0 if remaining is None else round(max(0.0, min(1.0, remaining)) * 100, 1)
    for ind in data["indicators"]:
        ind["display"] = {
            "name": (f"latency ≤ {ind['threshold_ms']:g} ms" if ind["kind"] == "latency" else "availability"),
            "status": fmt.status_text(ind["status"]), "status_class": fmt.status_class(ind["status"]),
            "sli": fmt.pct(ind["sli"], 3), "objective": f"{ind['objective']:g}%",
            "budget_remaining": fmt.pct(ind["error_budget"]["remaining"], 1),
            "events": fmt.count(ind["events"]), "bad_events": fmt.count(ind["bad_events"]),
        }
    return data


def _exhaustion(data: Mapping[str, Any]) -> str:
    if data["status"] == "no_data":
        return "no data"
    remaining = fmt.number(data["budget_remaining"])
    if remaining is not None and remaining <= 0:
        return "exhausted"
    seconds = fmt.number(data["time_to_exhaustion_s"])
    if seconds is None:
        return "not burning"
    return fmt.duration(seconds)


def budget_chart(history: BudgetHistory, report: SLOReport) -> charts.Chart:
    """Remaining budget of each indicator through the window, against the ideal (even) burn."""
    lines = [("ideal burn", "ideal", [(history.start_ms, 1.0), (history.period_end_ms, 0.0)], True)]
    for i, ind in enumerate(history.indicators):
        found = next((r.indicator for r in report.indicators if r.indicator.id == ind.indicator), None)
        label = (f"latency ≤ {found.threshold_ms:g} ms" if found is not None and found.kind == "latency"
                 else ind.indicator)
        lines.append((label, PALETTE[i % len(PALETTE)], list(ind.points), False))
    chart = charts.time_chart(
        f"{report.slo.name}: error budget remaining", history.start_ms, history.period_end_ms,
        unit="% of budget", y_format=lambda v: fmt.pct(v, 0), lines=lines, y_min=0.0, y_max=1.0,
        clip=(-1.0, 1.0), refs=[(0.5, "warning", "ref-warn"), (0.2, "critical", "ref-bad")],
        empty_text="No events in the window", width=640, height=240)
    chart.empty = all(v is None for ind in history.indicators for _, v in ind.points)
    return chart


def burn_chart(card: Mapping[str, Any]) -> charts.Chart:
    return charts.burn_chart(f"{card['name']}: burn rate by window", card["burn_rates"])


def health(window: MetricWindow) -> dict[str, Any]:
    """Request rate, error rate and latency percentiles of all user traffic, as KPIs and charts."""
    totals = window.counts(everything)
    latency = window.latency_total(everything)
    minutes = sum(window.bucket_minutes(i) for i in range(window.n))
    recent = [window.bucket_minutes(i) for i in range(window.n)][-3:]
    recent_counts = window.counts_series(everything)[-3:]
    recent_rate = sum(c.total for c in recent_counts) / max(1.0, sum(recent))
    p = {q: latency.quantile(q) for q in QUANTILES}
    kpis = [
        kpi("Requests", fmt.count(totals.total), f"last {window_hours(window)} h"),
        kpi("Request rate", fmt.rate(recent_rate), f"avg {fmt.rate(totals.total / max(1.0, minutes))}"),
        kpi("Availability", fmt.pct(None if totals.error_rate is None else 1 - totals.error_rate, 3),
            "without server errors", fmt.rate_class(totals.error_rate, 0.005, 0.02)),
        kpi("Error rate", fmt.pct(totals.error_rate, 2), f"{fmt.count(totals.server_errors)} server errors",
            fmt.rate_class(totals.error_rate, 0.005, 0.02)),
        kpi("Latency P95", fmt.ms(p[0.95]), f"P50 {fmt.ms(p[0.5])} · P99 {fmt.ms(p[0.99])}"),
    ]
    return {"kpis": kpis, "charts": [volume_chart(window, everything, "Request volume"),
                                     error_rate_chart(window, everything, "Error rate", refs=[(0.01, "1%", "ref-warn")]),
                                     latency_chart(window, everything, "Latency percentiles")],
            "json": {"start_ms": window.start_ms, "end_ms": window.end_ms, "step_ms": window.step_ms,
                     "requests": totals.total, "server_errors": totals.server_errors,
                     "client_errors": totals.client_errors, "error_rate": totals.error_rate,
                     "request_rate_per_min": recent_rate,
                     "latency_ms": {QUANTILE_NAMES[q]: v for q, v in p.items()},
                     "series": series_json(window, everything)}}


def window_hours(window: MetricWindow) -> int:
    return round((window.end_ms - window.start_ms) / 3_600_000)


def kpi(label: str, value: str, sub: str = "", css: str = "") -> dict[str, str]:
    return {"label": label, "value": value, "sub": sub, "css": css}


def volume_chart(window: MetricWindow, select: Any, title: str, unit: str = "events") -> charts.Chart:
    series = window.counts_series(select)
    starts = window.bucket_starts()
    bars = [("ok", "ok", [(t, c.ok) for t, c in zip(starts, series)]),
            ("client errors", "warn", [(t, c.client_errors) for t, c in zip(starts, series)]),
            ("server errors", "bad", [(t, c.server_errors) for t, c in zip(starts, series)])]
    step_min = window.step_ms // 60_000
    return charts.time_chart(title, window.start_ms, window.end_ms,
                             unit=f"{unit} / {step_min} min", y_format=fmt.count, bars=bars,
                             step_ms=window.step_ms, empty_text="No events in this range")


def stacked_chart(window: MetricWindow, groups: Mapping[str, Any], title: str, unit: str) -> charts.Chart:
    starts = window.bucket_starts()
    bars = []
    for i, (name, select) in enumerate(groups.items()):
        series = window.counts_series(select)
        bars.append((name, PALETTE[i % len(PALETTE)], [(t, c.total) for t, c in zip(starts, series)]))
    step_min = window.step_ms // 60_000
    return charts.time_chart(title, window.start_ms, window.end_ms,
                             unit=f"{unit} / {step_min} min", y_format=fmt.count, bars=bars,
                             step_ms=window.step_ms, empty_text="No events in this range")


def error_rate_chart(window: MetricWindow, select: Any, title: str,
                     refs: Sequence[tuple[float, str, str]] = (), client: bool = True) -> charts.Chart:
    series = window.counts_series(select)
    starts = _mid(window)
    lines = [("server errors", "bad", [(t, c.error_rate) for t, c in zip(starts, series)], False)]
    if client:
        lines.append(("client errors", "warn",
                      [(t, None if c.total <= 0 else c.client_errors / c.total) for t, c in zip(starts, series)], True))
    return charts.time_chart(title, window.start_ms, window.end_ms, unit="% of events",
                             y_format=lambda v: fmt.pct(v, 1), lines=lines, refs=refs, y_max=0.01,
                             empty_text="No events in this range")


def success_chart(window: MetricWindow, select: Any, title: str,
                  refs: Sequence[tuple[float, str, str]] = ()) -> charts.Chart:
    series = window.counts_series(select)
    starts = _mid(window)
    lines = [("without server errors", "ok",
              [(t, None if c.error_rate is None else 1 - c.error_rate) for t, c in zip(starts, series)], False),
             ("without any error", "s0", [(t, c.success_rate) for t, c in zip(starts, series)], True)]
    values = [v for _, _, pts, _ in lines for _, v in pts if v is not None]
    low = min(values + [r[0] for r in refs]) if values else 0.9
    return charts.time_chart(title, window.start_ms, window.end_ms, unit="% of events",
                             y_format=lambda v: fmt.pct(v, 1), lines=lines, refs=refs,
                             y_min=max(0.0, low - 0.01), y_max=1.0, empty_text="No events in this range")


def latency_chart(window: MetricWindow, select: Any, title: str,
                  refs: Sequence[tuple[float, str, str]] = ()) -> charts.Chart:
    quantiles = window.quantile_series(select)
    starts = _mid(window)
    lines = [(QUANTILE_NAMES[q], PALETTE[i], list(zip(starts, values)), False)
             for i, (q, values) in enumerate(quantiles.items())]
    return charts.time_chart(title, window.start_ms, window.end_ms, unit="milliseconds", y_format=fmt.ms,
                             lines=lines, refs=refs, empty_text="No latency recorded in this range",
                             note="Percentiles interpolated within histogram buckets, as Prometheus does.")


def group_latency_chart(window: MetricWindow, groups: Mapping[str, Any], title: str, q: float = 0.95,
                        refs: Sequence[tuple[float, str, str]] = ()) -> charts.Chart:
    starts = _mid(window)
    lines = []
    for i, (name, select) in enumerate(list(groups.items())[:len(PALETTE)]):
        values = [h.quantile(q) for h in window.latency_series(select)]
        lines.append((name, PALETTE[i], list(zip(starts, values)), False))
    return charts.time_chart(title, window.start_ms, window.end_ms, unit="milliseconds", y_format=fmt.ms,
                             lines=lines, refs=refs, empty_text="No latency recorded in this range")


def _mid(window: MetricWindow) -> list[int]:
    """Each bucket's point in time for lines: its middle."""
    return [t + window.step_ms // 2 for t in window.bucket_starts()]


def series_json(window: MetricWindow, select: Any) -> list[dict[str, Any]]:
    counts = window.counts_series(select)
    quantiles = window.quantile_series(select)
    out = []
    for i, (t, c) in enumerate(zip(window.bucket_starts(), counts)):
        out.append({"t": t, "events": c.total, "client_errors": c.client_errors, "server_errors": c.server_errors,
                    "error_rate": c.error_rate, "events_per_min": c.total / window.bucket_minutes(i),
                    **{f"p{int(q * 100)}_ms": quantiles[q][i] for q in QUANTILES}})
    return out


def operations_table(window: MetricWindow, select: Any, title: str, limit: Optional[int] = None,
                     by_p95: bool = False) -> dict[str, Any]:
    """Per operation: events, errors, error rate and latency percentiles over the range."""
    rows = []
    for op, sel in window.group(lambda k: k[1], select).items():
        counts, latency = window.counts(sel), window.latency_total(sel)
        p = {q: latency.quantile(q) for q in QUANTILES}
        domain = next(iter(sorted(k[0] for k in window.keys(sel))), "")
        rows.append({"operation": op, "domain": domain, "events": counts.total,
                     "client_errors": counts.client_errors, "server_errors": counts.server_errors,
                     "error_rate": counts.error_rate, **{f"p{int(q * 100)}_ms": v for q, v in p.items()}})
    if by_p95:
        rows.sort(key=lambda r: -(r["p95_ms"] or -1))
    else:
        rows.sort(key=lambda r: -r["events"])
    return {"title": title, "rows": rows[:limit] if limit else rows}
