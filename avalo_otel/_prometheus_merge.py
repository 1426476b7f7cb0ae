"""One /metrics for several processes: their collected (already redacted) metrics as snapshots, merged.

A snapshot is what one process collected, keyed by metric and label set, in a JSON-able form. The
merged result is what a single process receiving every process's calls would report:

* counters (monotonic sums) and histograms are summed, bucket by bucket, over every process that
  ever wrote, exited ones included, so a counter never goes down when a worker exits;
* up-down counters (non-monotonic sums) are summed over live processes only;
* gauges (``set_gauge``, observable gauges) take the value that changed most recently among live
  processes: the last ``set`` wins, as it would in one process.

Names, label names and label values are left exactly as collected: no ``pid`` label is added, so
every series keeps Avalo's name and labels (the merged series *is* the service's series).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Optional

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, MetricsData, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

_log = logging.getLogger("avalo_otel")

#: (name, description, unit, kind): what must agree for two processes' points to be one series.
MetricId = tuple[str, str, str, str]
PointKey = tuple[tuple[str, Any], ...]
#: metric → label set → point (``{"a": attributes, "v": value}`` or a histogram's fields).
Snapshot = dict[MetricId, dict[PointKey, dict[str, Any]]]

SUMMED_KINDS = ("counter", "histogram")  # kept from exited processes
_warned: set[str] = set()


def _kind(metric: Metric) -> Optional[str]:
    data = metric.data
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "updown"
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    return None  # exponential histograms: the Prometheus exporter does not serve them either


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def point_key(attributes: Optional[Mapping[str, Any]]) -> PointKey:
    return tuple(sorted((k, _hashable(v)) for k, v in (attributes or {}).items()))


def _plain_attributes(attributes: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attributes or {}).items()}


class GaugeStamps:
    """When each gauge series of one process last changed value: what "most recent" compares.

    The SDK keeps no time of a ``set``; a change seen between two collections is stamped with the
    second one, so the resolution is the writer's interval (one second)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[MetricId, PointKey], tuple[Any, float]] = {}

    def stamp(self, metric: MetricId, key: PointKey, value: Any, now: float) -> float:
        seen = self._seen.get((metric, key))
        if seen is not None and seen[0] == value:
            return seen[1]
        self._seen[(metric, key)] = (value, now)
        return now


def snapshot(data: Optional[MetricsData], stamps: Optional[GaugeStamps] = None, now: float = 0.0) -> Snapshot:
    """``data`` (cumulative, redacted) as a snapshot; gauge points get their change time."""
    snap: Snapshot = {}
    if data is None:
        return snap
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = _kind(metric)
                if kind is None:
                    continue
                mid = (metric.name, metric.description or "", metric.unit or "", kind)
                points = snap.setdefault(mid, {})
                for p in metric.data.data_points:
                    key = point_key(p.attributes)
                    if kind == "histogram":
                        point = {"a": _plain_attributes(p.attributes), "b": list(p.explicit_bounds),
                                 "c": list(p.bucket_counts), "s": p.sum, "n": p.count, "min": p.min, "max": p.max}
                    else:
                        point = {"a": _plain_attributes(p.attributes), "v": p.value}
                        if kind == "gauge":
                            point["t"] = stamps.stamp(mid, key, p.value, now) if stamps else now
                    if key in points:  # the same series from two scopes: one series on /metrics
                        _add_point(kind, points[key], point, mid)
                    else:
                        points[key] = point
    return snap


def subtract(snap: Snapshot, baseline: Snapshot) -> Snapshot:
    """What happened since ``baseline``: a forked child starts with its parent's counts, which the
    parent already reports; only what the child added since the fork is the child's."""
    out: Snapshot = {}
    for mid, points in snap.items():
        base_points = baseline.get(mid, {})
        kind = mid[3]
        out_points = out.setdefault(mid, {})
        for key, point in points.items():
            base = base_points.get(key)
            if base is None or kind == "gauge":
                out_points[key] = point
            elif kind == "histogram":
                if base["b"] != point["b"]:
                    out_points[key] = point
                    continue
                out_points[key] = {**point, "c": [a - b for a, b in zip(point["c"], base["c"])],
                                   "s": point["s"] - base["s"], "n": point["n"] - base["n"]}
            else:
                out_points[key] = {**point, "v": point["v"] - base["v"]}
    return out


def _add_point(kind: str, into: dict[str, Any], point: Mapping[str, Any], mid: MetricId) -> None:
    if kind == "histogram":
        if into["b"] != point["b"]:
            if mid[0] not in _warned:
                _warned.add(mid[0])
                _log.warning("avalo-otel: histogram %s has other bucket bounds in another process; "
                             "/metrics keeps the first process's series only", mid[0])
            return
        into["c"] = [a + b for a, b in zip(into["c"], point["c"])]
        into["s"] += point["s"]
        into["n"] += point["n"]
        into["min"] = min(into["min"], point["min"])
        into["max"] = max(into["max"], point["max"])
    elif kind == "gauge":
        if point.get("t", 0) > into.get("t", 0):
            into.update(v=point["v"], t=point["t"])
    else:
        into["v"] += point["v"]


def add(into: Snapshot, other: Snapshot, *, kinds: Optional[Iterable[str]] = None) -> Snapshot:
    """Merge ``other`` into ``into`` (in place, also returned); only metrics of ``kinds`` if given."""
    allowed = None if kinds is None else frozenset(kinds)
    # One series per name and kind: a description or unit that differs between processes (another
    # version deployed meanwhile) must not make two families of one name.
    canonical = {(m[0], m[3]): m for m in into}
    for mid, points in other.items():
        if allowed is not None and mid[3] not in allowed:
            continue
        target = into.setdefault(canonical.setdefault((mid[0], mid[3]), mid), {})
        for key, point in points.items():
            if key in target:
                _add_point(mid[3], target[key], point, mid)
            else:
                target[key] = {**point, **({"c": list(point["c"])} if "c" in point else {})}
    return into


def merge(own: Snapshot, live: Iterable[Snapshot], retired: Snapshot) -> Snapshot:
    """The serving process's own snapshot, its live workers' and what exited workers left."""
    merged = add({}, own)
    for snap in live:
        add(merged, snap)
    return add(merged, retired, kinds=SUMMED_KINDS)


def to_metrics_data(snap: Snapshot, resource: Resource) -> MetricsData:
    """A snapshot as OTel metrics data, for the Prometheus exporter to translate as it always does."""
    cumulative = AggregationTemporality.CUMULATIVE
    metrics = []
    for (name, description, unit, kind), points in snap.items():
        if kind == "histogram":
            data: Any = Histogram(
                data_points=[HistogramDataPoint(
                    attributes=p["a"], start_time_unix_nano=0, time_unix_nano=0, count=p["n"], sum=p["s"],
                    bucket_counts=p["c"], explicit_bounds=p["b"], min=p["min"], max=p["max"])
                    for p in points.values()],
                aggregation_temporality=cumulative)
        else:
            numbers = [NumberDataPoint(attributes=p["a"], start_time_unix_nano=0, time_unix_nano=0, value=p["v"])
                       for p in points.values()]
            data = (Gauge(data_points=numbers) if kind == "gauge" else
                    Sum(data_points=numbers, aggregation_temporality=cumulative, is_monotonic=kind == "counter"))
        metrics.append(Metric(name=name, description=description, unit=unit, data=data))
    scope = ScopeMetrics(scope=InstrumentationScope("avalo_otel.merged"), metrics=metrics, schema_url="")
    return MetricsData(resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[scope], schema_url="")])


def to_json(snap: Snapshot) -> list[dict[str, Any]]:
    return [{"name": m[0], "description": m[1], "unit": m[2], "kind": m[3], "points": list(points.values())}
            for m, points in snap.items()]


def from_json(metrics: Iterable[Mapping[str, Any]]) -> Snapshot:
    snap: Snapshot = {}
    for m in metrics:
        mid = (m["name"], m["description"], m["unit"], m["kind"])
        snap[mid] = {point_key(p["a"]): p for p in m["points"]}
    return snap
