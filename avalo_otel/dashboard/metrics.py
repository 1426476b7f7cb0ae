"""Recent stored metric points, bucketised for the charts: one bounded scan per view.

Reads the two metrics every event records (``avalo_operations_total`` by outcome and the
``avalo_operation_latency_ms`` histogram) with ``store.scan_metrics`` over a bounded recent range
and folds them, as they stream in, into per-bucket counts keyed by (domain, operation, region,
service): memory grows with buckets x series, never with the number of points. Cumulative
points are differenced the way the SLO rollups do it (``PointDeltas``).

Percentiles are interpolated within histogram buckets exactly as Prometheus' ``histogram_quantile``
does (the dashboard shows them; SLIs never use them).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from ..alerts.signals import histogram_quantile
from ..conventions import OUTCOME_CLIENT_ERROR, OUTCOME_SERVER_ERROR
from ..slo.definitions import LATENCY_METRIC, OPERATIONS_METRIC
from ..slo.policy import MINUTE_MS
from ..slo.rollup import BASELINE_MS, PointDeltas
from ..store.base import Store

#: (domain, operation, region, service): what every count is kept by.
Key = tuple[str, str, str, str]
Select = Callable[[Key], bool]
QUANTILES = (0.5, 0.95, 0.99)
MAX_HOURS = 48
#: Bucket widths the charts may use, in minutes; the smallest giving at most ~96 buckets.
_STEPS = (1, 2, 5, 10, 15, 30, 60)
#: Domains that are not user traffic (the reliability layer's own events).
INTERNAL_DOMAINS = frozenset({"system"})


def step_for(hours: int) -> int:
    minutes = hours * 60
    return next((s for s in _STEPS if minutes / s <= 96), _STEPS[-1]) * MINUTE_MS


def everything(key: Key) -> bool:
    return key[0] not in INTERNAL_DOMAINS


def in_domains(*domains: str) -> Select:
    wanted = frozenset(domains)
    return lambda key: key[0] in wanted


def in_operations(*operations: str) -> Select:
    wanted = frozenset(operations)
    return lambda key: key[1] in wanted


@dataclass
class Counts:
    """Events by outcome."""

    total: float = 0.0
    client_errors: float = 0.0
    server_errors: float = 0.0

    def add(self, other: "Counts") -> None:
        self.total += other.total
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors

    @property
    def ok(self) -> float:
        return max(0.0, self.total - self.client_errors - self.server_errors)

    @property
    def error_rate(self) -> Optional[float]:
        """Server-class failures / all events (a fraction); None without events."""
        return None if self.total <= 0 else self.server_errors / self.total

    @property
    def success_rate(self) -> Optional[float]:
        """Events without any error / all events; None without events."""
        return None if self.total <= 0 else self.ok / self.total


@dataclass
class Histogram:
    """Per-bucket counts, summed over points sharing the same bounds."""

    by_bounds: dict[tuple[float, ...], list[float]] = field(default_factory=dict)

    def add(self, bounds: tuple[float, ...], counts: Sequence[float]) -> None:
        mine = self.by_bounds.get(bounds)
        if mine is None:
            self.by_bounds[bounds] = [float(c) for c in counts]
        else:
            for i, c in enumerate(counts):
                mine[i] += c

    def merge(self, other: "Histogram") -> None:
        for bounds, counts in other.by_bounds.items():
            self.add(bounds, counts)

    @property
    def count(self) -> float:
        return sum(sum(c) for c in self.by_bounds.values())

    def quantile(self, q: float) -> Optional[float]:
        """``histogram_quantile(q, sum by (le) (…))`` over these buckets, in ms; None without data."""
        by_le: dict[float, float] = defaultdict(float)
        for bounds, counts in self.by_bounds.items():
            running = 0.0
            for bound, c in zip([*bounds, math.inf], counts):
                running += c
                by_le[bound] += running
        value = histogram_quantile(q, list(by_le.items()))
        return None if value is None or not math.isfinite(value) else value


class MetricWindow:
    """The recent range ``[start_ms, end_ms)`` in ``n`` buckets of ``step_ms``, folded from one scan."""

    def __init__(self, start_ms: int, end_ms: int, step_ms: int, now_ms: int) -> None:
        self.start_ms, self.end_ms, self.step_ms, self.now_ms = start_ms, end_ms, step_ms, now_ms
        self.n = max(1, (end_ms - start_ms) // step_ms)
        self.ops: dict[Key, dict[int, Counts]] = defaultdict(dict)
        self.latency: dict[Key, dict[int, Histogram]] = defaultdict(dict)
        self.points = 0
        self.has_region = False

    # -- folding ---------------------------------------------------------------------------
    def fold(self, point: Mapping[str, Any], delta: tuple[float, Optional[list[float]]]) -> None:
        ts = point.get("timestamp")
        if not isinstance(ts, int) or not self.start_ms <= ts < self.end_ms:
            return
        labels = point.get("labels") or {}
        region = labels.get("region")
        if region:
            self.has_region = True
        key: Key = (str(labels.get("domain") or "unknown"), str(labels.get("operation") or "unknown"),
                    str(region or ""), str(point.get("service") or "unknown"))
        index = (ts - self.start_ms) // self.step_ms
        value, counts = delta
        self.points += 1
        if point.get("name") == OPERATIONS_METRIC:
            cell = self.ops[key].get(index)
            if cell is None:
                cell = self.ops[key][index] = Counts()
            outcome = labels.get("outcome")
            cell.total += value
            if outcome == OUTCOME_SERVER_ERROR:
                cell.server_errors += value
            elif outcome == OUTCOME_CLIENT_ERROR:
                cell.client_errors += value
        elif counts is not None:
            bounds = (point.get("buckets") or {}).get("bounds")
            if not isinstance(bounds, list) or len(counts) != len(bounds) + 1:
                return  # exponential or malformed: nothing to interpolate in
            hist = self.latency[key].get(index)
            if hist is None:
                hist = self.latency[key][index] = Histogram()
            hist.add(tuple(float(b) for b in bounds), counts)

    # -- reading ---------------------------------------------------------------------------
    def bucket_starts(self) -> list[int]:
        return [self.start_ms + i * self.step_ms for i in range(self.n)]

    def bucket_minutes(self, index: int) -> float:
        """How many minutes bucket ``index`` covers so far (the last one is still filling)."""
        start = self.start_ms + index * self.step_ms
        covered = min(self.step_ms, max(MINUTE_MS, self.now_ms - start))
        return covered / MINUTE_MS

    def counts_series(self, select: Select = everything) -> list[Counts]:
        series = [Counts() for _ in range(self.n)]
        for key, cells in self.ops.items():
            if select(key):
                for index, cell in cells.items():
                    series[index].add(cell)
        return series

    def counts(self, select: Select = everything) -> Counts:
        total = Counts()
        for cell in self.counts_series(select):
            total.add(cell)
        return total

    def latency_series(self, select: Select = everything) -> list[Histogram]:
        series = [Histogram() for _ in range(self.n)]
        for key, cells in self.latency.items():
            if select(key):
                for index, hist in cells.items():
                    series[index].merge(hist)
        return series

    def latency_total(self, select: Select = everything) -> Histogram:
        total = Histogram()
        for hist in self.latency_series(select):
            total.merge(hist)
        return total

    def quantile_series(self, select: Select = everything,
                        quantiles: Iterable[float] = QUANTILES) -> dict[float, list[Optional[float]]]:
        series = self.latency_series(select)
        return {q: [h.quantile(q) for h in series] for q in quantiles}

    def rate_series(self, select: Select = everything) -> list[Optional[float]]:
        """Events per minute in each bucket."""
        return [c.total / self.bucket_minutes(i) for i, c in enumerate(self.counts_series(select))]

    def keys(self, select: Select = everything) -> set[Key]:
        return {k for k in (*self.ops, *self.latency) if select(k)}

    def group(self, by: Callable[[Key], str], select: Select = everything) -> dict[str, Select]:
        """A selector per value of ``by`` among the keys ``select`` keeps."""
        names = sorted({by(k) for k in self.keys(select)})
        return {name: (lambda key, name=name: select(key) and by(key) == name) for name in names}

    @property
    def empty(self) -> bool:
        return not self.ops and not self.latency


def read_window(store: Store, now_ms: int, hours: int = 6) -> MetricWindow:
    """The last ``hours`` (1 to ``MAX_HOURS``) of operations and latency, bucketised."""
    hours = max(1, min(MAX_HOURS, int(hours)))
    step = step_for(hours)
    end = now_ms - now_ms % step + step
    start = end - hours * 60 * MINUTE_MS
    start -= start % step
    window = MetricWindow(start, end, step, now_ms)
    deltas = PointDeltas()
    # Cumulative points need the one before the range as their baseline, as the rollups do.
    for point in store.scan_metrics(names=[OPERATIONS_METRIC, LATENCY_METRIC], start_ms=start - BASELINE_MS,
                                    end_ms=end):
        delta = deltas(point)
        if delta is not None:
            window.fold(point, delta)
    return window
