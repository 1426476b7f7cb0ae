"""The metric catalog of alert rules: what a rule's ``metric`` may name, defined once for both evaluators.

Each ``Signal`` gives the value over stored metric points (the in-process evaluator) and the PromQL
expression of the same quantity (the generated Prometheus rules), so an alert means the same thing
wherever it is evaluated. The two differ only where Prometheus itself is approximate: ``increase``
extrapolates to the window's edges, the in-process sum of delta points does not.

Windows are left-open, ``(now - window, now]``, as Prometheus 3 range selectors are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional, Sequence

from ..conventions import METRICS, OUTCOME_SERVER_ERROR, Domain, MetricKind
from ..slo.definitions import LATENCY_METRIC, OPERATIONS_METRIC
from ..slo.policy import MINUTE_MS
from .rules import AlertRuleError

if TYPE_CHECKING:
    from ..store.base import Store
    from .rules import AlertRule

PANIC_OPERATIONS = ("safety.panic_press", "safety.panic_process")
QUANTILE = 0.95

ERROR_RATE, QUANTILE_KIND, INCREASE, LATEST = "error_rate", "p95", "increase", "latest"
Matchers = Mapping[str, tuple[str, ...]]
Point = Mapping[str, Any]


@dataclass(frozen=True)
class Signal:
    """One alertable quantity over one stored/exposed metric."""

    name: str
    kind: str                 # error_rate | p95 | increase | latest
    metric: str               # the metric name, stored and on /metrics
    description: str
    unit: str = ""
    #: Label matchers the signal itself fixes (a rule's selector may not touch them).
    matchers: Matchers = field(default_factory=dict)
    #: Labels a selector may narrow by (empty: any label but the fixed ones).
    selectable: tuple[str, ...] = ()

    def selector_problem(self, label: str) -> Optional[str]:
        """Why ``label`` cannot narrow this signal, or None."""
        if label in self.matchers or (self.kind == ERROR_RATE and label == "outcome"):
            return f"{label!r} is fixed by the metric {self.name} and cannot be selected on"
        if label == "le":
            return "'le' is the histogram bucket label and cannot be selected on"
        if self.selectable and label not in self.selectable:
            return f"{self.name} has no label {label!r}; selectable: {', '.join(self.selectable)}"
        return None

    # -- in process --------------------------------------------------------------------------
    def value(self, points: Iterable[Point], selector: Matchers, now_ms: int, window_minutes: int) -> Optional[float]:
        """The signal over ``points`` whose timestamp is in ``(now - window, now]``; None: no data."""
        start = now_ms - window_minutes * MINUTE_MS
        wanted = {**self.matchers, **selector}
        chosen = [p for p in points if p.get("name") == self.metric and start < _ts(p) <= now_ms
                  and _matches(p.get("labels") or {}, wanted)]
        if self.kind == ERROR_RATE:
            total = bad = 0.0
            for labels, value in _increments(chosen, start):
                total += value
                if labels.get("outcome") == OUTCOME_SERVER_ERROR:
                    bad += value
            return 100.0 * bad / total if total > 0 else None
        if self.kind == INCREASE:
            increments = list(_increments(chosen, start))
            return float(sum(v for _, v in increments)) if increments else None
        if self.kind == LATEST:
            latest: dict[Any, Point] = {}
            for p in sorted(chosen, key=_ts):
                latest[_series(p)[:2]] = p  # a gauge's series: its service and labels
            values = [float(p["value"]) for p in latest.values() if _number(p.get("value"))]
            return float(sum(values)) if values else None
        return histogram_quantile(QUANTILE, _cumulative_buckets(_histogram_increments(chosen, start)))

    # -- Prometheus --------------------------------------------------------------------------
    def promql(self, selector: Matchers, window_minutes: int) -> str:
        """The PromQL of the same quantity; an empty result when there is no data, as in process."""
        window = f"[{window_minutes}m]"
        wanted = {**self.matchers, **selector}
        if self.kind == ERROR_RATE:
            bad = _vector(self.metric, {**wanted, "outcome": (OUTCOME_SERVER_ERROR,)})
            # "or vector(0)": no failing series yet is a 0% rate, not no data; "> 0": no events is.
            return (f"100 * (sum(increase({bad}{window})) or vector(0))"
                    f" / (sum(increase({_vector(self.metric, wanted)}{window})) > 0)")
        if self.kind == INCREASE:
            return f"sum(increase({_vector(self.metric, wanted)}{window}))"
        if self.kind == LATEST:
            return f"sum(last_over_time({_vector(self.metric, wanted)}{window}))"
        buckets = _vector(self.metric + "_bucket", wanted)
        count = _vector(self.metric + "_count", wanted)
        # histogram_quantile gives NaN without observations; the "and" makes that no result.
        return (f"histogram_quantile({QUANTILE:g}, sum by (le) (rate({buckets}{window})))"
                f" and on() (sum(increase({count}{window})) > 0)")


# -- the catalog -------------------------------------------------------------------------------
def _build_catalog() -> dict[str, Signal]:
    catalog: dict[str, Signal] = {}
    for domain in Domain:
        d = domain.value
        catalog[f"{d}_error_rate"] = Signal(
            f"{d}_error_rate", ERROR_RATE, OPERATIONS_METRIC,
            f"server-side failures of {d} operations, percent of all {d} operations", "%",
            {"domain": (d,)}, ("operation",))
        catalog[f"{d}_latency_p95_ms"] = Signal(
            f"{d}_latency_p95_ms", QUANTILE_KIND, LATENCY_METRIC, f"P95 latency of {d} operations", "ms",
            {"domain": (d,)}, ("operation",))
    catalog["panic_latency_p95_ms"] = Signal(
        "panic_latency_p95_ms", QUANTILE_KIND, LATENCY_METRIC, "P95 latency of panic press and processing", "ms",
        {"operation": PANIC_OPERATIONS}, ())
    kinds = {MetricKind.COUNTER: INCREASE, MetricKind.HISTOGRAM: QUANTILE_KIND, MetricKind.GAUGE: LATEST}
    words = {INCREASE: "increase over the window of", QUANTILE_KIND: "P95 of", LATEST: "latest value (summed) of"}
    for spec in METRICS.values():
        kind = kinds[spec.kind]
        catalog[spec.name] = Signal(spec.name, kind, spec.name, f"{words[kind]} {spec.description.lower()}",
                                    "ms" if spec.name.endswith("_ms") else "", {}, spec.labels)
    return catalog


CATALOG: Mapping[str, Signal] = _build_catalog()


def signal_for(metric: Any) -> Signal:
    """The catalog entry of ``metric``; ``AlertRuleError`` listing some known names otherwise."""
    signal = CATALOG.get(metric) if isinstance(metric, str) else None
    if signal is None:
        examples = ", ".join(["chat_error_rate", "wallet_error_rate", "panic_latency_p95_ms",
                              "api_latency_p95_ms", "chat_messages_failed_total", "active_users"])
        raise AlertRuleError(f"metric: unknown metric {metric!r}; known metrics include {examples} "
                             f"(all: <domain>_error_rate, <domain>_latency_p95_ms, panic_latency_p95_ms "
                             f"and the metrics of avalo_otel.conventions.METRICS)")
    return signal


def known_metrics() -> list[str]:
    return sorted(CATALOG)


def evaluate_signal(store: "Store", rule: "AlertRule", now_ms: int) -> Optional[float]:
    """The rule's signal now, from the store's metric points; None when there is no data."""
    signal = signal_for(rule.metric)
    start = now_ms - rule.window_minutes * MINUTE_MS
    points = store.scan_metrics(names=[signal.metric], start_ms=start + 1, end_ms=now_ms + 1)
    return signal.value(points, rule.selector, now_ms, rule.window_minutes)


def signal_promql(rule: "AlertRule") -> str:
    return signal_for(rule.metric).promql(rule.selector, rule.window_minutes)


def rule_promql(rule: "AlertRule") -> str:
    """The full alert condition in PromQL: ``(<signal>) > 2``."""
    return f"({signal_promql(rule)}) {rule.promql_operator} {_format_number(rule.threshold)}"


def prometheus_alerting_rule(rule: "AlertRule") -> dict[str, Any]:
    """The rule as a Prometheus alerting rule (one entry of a rule group's ``rules``), with the
    labels the in-process evaluator sends to Alertmanager, so both deduplicate there."""
    from .rules import alert_labels

    labels = alert_labels(rule)
    labels.pop("alertname")
    return {
        "alert": rule.id,
        "expr": rule_promql(rule),
        "labels": labels,
        "annotations": {"summary": rule.name, "description": rule.description or rule.name,
                        "value": "{{ $value }}"},
    }


# -- histogram_quantile, exactly as Prometheus computes it -------------------------------------
def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> Optional[float]:
    """Prometheus' ``histogram_quantile`` over (upper bound, cumulative count) pairs; None where
    Prometheus gives NaN (no +Inf bucket, fewer than two buckets, no observations)."""
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    merged: list[list[float]] = []  # coalesceBuckets: one entry per bound
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    for i in range(1, len(merged)):  # ensureMonotonic
        if merged[i][1] < merged[i - 1][1]:
            merged[i][1] = merged[i - 1][1]
    if len(merged) < 2:
        return None
    observations = merged[-1][1]
    if observations == 0:
        return None
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


# -- points → increments -----------------------------------------------------------------------
def _ts(point: Point) -> int:
    ts = point.get("timestamp")
    return int(ts) if isinstance(ts, (int, float)) else -1


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _matches(labels: Mapping[str, Any], wanted: Matchers) -> bool:
    return all(str(labels.get(name, "")) in values for name, values in wanted.items())


def _series(point: Point) -> tuple[Any, ...]:
    return (point.get("service"), tuple(sorted((point.get("labels") or {}).items())), point.get("startTime"))


def _cumulative_runs(points: Sequence[Point], start_ms: int) -> Iterator[tuple[Point, Optional[Point]]]:
    """(point, the point of its series before it, or None when the series starts in the window)
    for cumulative points; a point whose series began before the window and has no earlier point
    in it is only a baseline (the increase before it is outside the window)."""
    previous: dict[Any, Point] = {}
    for p in sorted(points, key=_ts):
        key = _series(p)
        before = previous.get(key)
        previous[key] = p
        started = p.get("startTime")
        if before is not None or (isinstance(started, (int, float)) and started > start_ms):
            yield p, before


def _increments(points: Sequence[Point], start_ms: int) -> Iterator[tuple[Mapping[str, Any], float]]:
    """(labels, increase) per counter point: the delta itself, or the difference to the previous
    cumulative point of its series (a drop is a counter reset: the new value is the increase)."""
    cumulative = []
    for p in points:
        if p.get("temporality") == "cumulative":
            cumulative.append(p)
        elif _number(p.get("value")):
            yield p.get("labels") or {}, float(p["value"])
    for p, before in _cumulative_runs(cumulative, start_ms):
        if not _number(p.get("value")):
            continue
        value = float(p["value"])
        base = float(before["value"]) if before is not None and _number(before.get("value")) else 0.0
        yield p.get("labels") or {}, value - base if value >= base else value


def _explicit(point: Point) -> Optional[tuple[list[float], list[float]]]:
    buckets = point.get("buckets") or {}
    bounds, counts = buckets.get("bounds"), buckets.get("counts")
    if not isinstance(bounds, list) or not isinstance(counts, list) or len(counts) != len(bounds) + 1:
        return None  # exponential or malformed: no classic buckets to interpolate in
    return [float(b) for b in bounds], [float(c) for c in counts]


def _histogram_increments(points: Sequence[Point], start_ms: int) -> Iterator[tuple[list[float], list[float]]]:
    """(bounds, per-bucket counts) observed in the window, per histogram point."""
    cumulative = []
    for p in points:
        if p.get("temporality") == "cumulative":
            cumulative.append(p)
        elif (hist := _explicit(p)) is not None:
            yield hist
    for p, before in _cumulative_runs(cumulative, start_ms):
        hist = _explicit(p)
        if hist is None:
            continue
        base = _explicit(before) if before is not None else None
        if base is None or base[0] != hist[0] or sum(hist[1]) < sum(base[1]):
            yield hist  # series start or reset: everything counted so far is new
        else:
            yield hist[0], [c - b for c, b in zip(hist[1], base[1])]


def _cumulative_buckets(histograms: Iterable[tuple[list[float], list[float]]]) -> list[tuple[float, float]]:
    """``sum by (le)`` of the histograms as Prometheus exposes them: cumulative count per ``le``."""
    by_le: dict[float, float] = {}
    for bounds, counts in histograms:
        running = 0.0
        for bound, count in zip([*bounds, math.inf], counts):
            running += count
            by_le[bound] = by_le.get(bound, 0.0) + running
    return list(by_le.items())


# -- PromQL text -------------------------------------------------------------------------------
def _promql_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _vector(metric: str, matchers: Matchers) -> str:
    parts = []
    for name in sorted(matchers):
        values = matchers[name]
        if len(values) == 1:
            parts.append(f"{name}={_promql_string(values[0])}")
        else:
            parts.append(f"{name}=~{_promql_string('|'.join(re.escape(v) for v in values))}")
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
