"""Per-SLO, per-day minute rollups: what makes a 30-day evaluation cost the same at any traffic.

The store holds per-process delta points (one per series per export interval per process).
Evaluating 30 days by scanning them would read 10 processes x 43,200 minutes x every series.
Instead ``RollupUpdater.update`` folds new points into one ``slo_rollups`` document per SLO and
UTC day, holding each indicator's good/bad counts per minute (1440 numbers a series). A 30-day
report then reads 31 documents per SLO, however many events and processes made them.

Idempotent by construction, so evaluators may run anywhere and several at once: every update
*recomputes* each minute it touches from all the raw points of that minute and replaces the
minute in the day document; nothing is incremented. Each update re-scans the last
``lateness`` before its watermark, so points that arrive late (a buffering exporter, a slow
process) are still counted if they arrive within it.

Counter resets and restarts: stored points are deltas (our store exporters always ask for delta
temporality), so a restarted process simply starts sending small deltas again. Cumulative
points (from another producer) are differenced per series; a value that drops, or a new start
time, is a reset and counts from zero, as Prometheus' ``increase()`` does.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import orjson

from ..store.base import DAY_MS, SLO_ROLLUPS, Document, Store
from .definitions import AVAILABILITY, LATENCY, LATENCY_METRIC, OPERATIONS_METRIC, SLO, Indicator, is_bad_outcome
from .policy import MINUTE_MS

_log = logging.getLogger("avalo_otel.slo")
MINUTES_PER_DAY = DAY_MS // MINUTE_MS
STATE_ID = "_state"
#: Late points are counted if they arrive within this long after the minute they belong to.
DEFAULT_LATENESS_MS = 10 * MINUTE_MS
BASELINE_MS = 2 * MINUTE_MS


def day_start(ms: int) -> int:
    return ms - ms % DAY_MS


def rollup_id(slo_id: str, day_ms: int) -> str:
    day = _dt.datetime.fromtimestamp(day_ms / 1000, tz=_dt.timezone.utc).strftime("%Y-%m-%d")
    return f"{slo_id}:{day}"


def series_key(indicator: Indicator, name: str) -> str:
    return f"{indicator.id}.{name}"


@dataclass
class DayRollup:
    """One SLO's counts for one UTC day: ``series["<indicator>.<total|bad|warn_bad>"][minute]``."""

    slo_id: str
    day_ms: int
    series: dict[str, list[float]] = field(default_factory=dict)

    def column(self, key: str) -> list[float]:
        values = self.series.get(key)
        if values is None:
            values = self.series[key] = [0] * MINUTES_PER_DAY
        return values

    def to_document(self, now_ms: int) -> Document:
        # The counts as one JSON text field: a few KB per SLO and day, decoded in one call, where
        # 1440-element arrays would cost Firestore a value per minute to encode and decode.
        return {"id": rollup_id(self.slo_id, self.day_ms), "slo": self.slo_id, "day": self.day_ms,
                "data": orjson.dumps(self.series).decode(), "updatedAt": now_ms}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "DayRollup":
        data = doc.get("data")
        series = orjson.loads(data) if isinstance(data, str) and data else {}
        return cls(str(doc["slo"]), int(doc["day"]),
                   {k: list(v) for k, v in series.items() if isinstance(v, list) and len(v) == MINUTES_PER_DAY})


@dataclass
class UpdateStats:
    points: int = 0
    unusable_points: int = 0
    minutes: int = 0
    documents_written: int = 0
    start_ms: int = 0
    end_ms: int = 0


class PointDeltas:
    """Turns each point into its delta: delta points as they are, cumulative ones differenced (a
    reset counts from zero). One instance per scan, points oldest first; the dashboard's charts use
    it too, so they count what the rollups count."""

    def __init__(self) -> None:
        self._last: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def __call__(self, point: Mapping[str, Any]) -> Optional[tuple[float, Optional[list[float]]]]:
        """(value or count, bucket counts or None) as a delta; None for a baseline or a bad point."""
        kind = point.get("type")
        counts = (point.get("buckets") or {}).get("counts") if kind == "histogram" else None
        value = point.get("count") if kind == "histogram" else point.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        if point.get("temporality") != "cumulative":
            return value, counts
        key = (point.get("service"), point.get("name"), tuple(sorted((point.get("labels") or {}).items())))
        start = point.get("startTime")
        previous = self._last.get(key)
        self._last[key] = (start, (value, counts))
        if previous is None:
            return None
        prev_start, (prev_value, prev_counts) = previous
        if prev_start != start or value < prev_value:  # a reset: counted from zero
            return value, counts
        if counts is not None and prev_counts is not None and len(counts) == len(prev_counts):
            counts = [a - b for a, b in zip(counts, prev_counts)]
        return value - prev_value, counts


class RollupUpdater:
    """Keeps the ``slo_rollups`` of ``slos`` up to date from the store's raw metric points."""

    def __init__(self, store: Store, slos: Sequence[SLO], *, lateness_ms: int = DEFAULT_LATENESS_MS,
                 backfill_days: Optional[int] = None) -> None:
        self.store = store
        self.slos = list(slos)
        self.lateness_ms = int(lateness_ms)
        # A first run folds in the whole window (metrics are kept 30 days anyway).
        self.backfill_ms = (backfill_days or max((s.window_days for s in self.slos), default=30) + 1) * DAY_MS
        self._warned: set[tuple[str, str]] = set()

    def watermark(self) -> Optional[int]:
        state = self.store.get_documents(SLO_ROLLUPS, [STATE_ID])
        return int(state[0]["watermark"]) if state and isinstance(state[0].get("watermark"), int) else None

    def update(self, now_ms: int) -> UpdateStats:
        """Fold every point up to ``now_ms`` in; returns what it read and wrote."""
        watermark = self.watermark()
        earliest = now_ms - self.backfill_ms
        start = earliest if watermark is None else max(earliest, min(watermark, now_ms) - self.lateness_ms)
        start -= start % MINUTE_MS
        stats = UpdateStats(start_ms=start, end_ms=now_ms)
        # Day by day, so a 30-day backfill never holds more than a day of counts in memory.
        chunk, end = start, now_ms + 1  # a point stamped exactly now counts
        while chunk < end:
            chunk_end = min(day_start(chunk) + DAY_MS, end)
            self._update_range(chunk, chunk_end, stats)
            chunk = chunk_end
        self.store.write(SLO_ROLLUPS, [{"id": STATE_ID, "slo": STATE_ID, "day": day_start(now_ms),
                                        "watermark": now_ms, "updatedAt": now_ms}])
        return stats

    def _update_range(self, start: int, end: int, stats: UpdateStats) -> None:
        """Recompute the minutes of ``[start, end)`` (within one UTC day) from the raw points."""
        if end <= start:
            return
        names = sorted({m for slo in self.slos for m in slo.metrics})
        deltas = PointDeltas()
        counts: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
        # Cumulative points need the one before the range as a baseline: read a little earlier
        # (two export intervals of the default 60 s).
        for point in self.store.scan_metrics(names=names, start_ms=start - BASELINE_MS, end_ms=end):
            ts = point.get("timestamp")
            delta = deltas(point)
            if delta is None or not isinstance(ts, int) or ts < start:
                continue
            stats.points += 1
            minute = (ts % DAY_MS) // MINUTE_MS
            if not self._fold(point, delta, minute, counts):
                stats.unusable_points += 1
        day = day_start(start)
        first, last = (start - day) // MINUTE_MS, (end - 1 - day) // MINUTE_MS
        stats.minutes += last - first + 1
        ids = [rollup_id(slo.id, day) for slo in self.slos]
        existing = {doc["id"]: DayRollup.from_document(doc) for doc in self.store.get_documents(SLO_ROLLUPS, ids)}
        docs = []
        for slo, doc_id in zip(self.slos, ids):
            fresh = counts.get(slo.id)
            rollup = existing.get(doc_id)
            if rollup is None:
                if not fresh:
                    continue  # nothing before and nothing now: no document to write
                rollup = DayRollup(slo.id, day)
            for indicator in slo.indicators:
                for name in indicator.series:
                    key = series_key(indicator, name)
                    column, new = rollup.column(key), (fresh or {}).get(key, {})
                    for minute in range(first, last + 1):
                        column[minute] = new.get(minute, 0)
            docs.append(rollup.to_document(end))
        if docs:
            self.store.write(SLO_ROLLUPS, docs)
            stats.documents_written += len(docs)

    def _fold(self, point: Mapping[str, Any], delta: tuple[float, Optional[list[float]]], minute: int,
              counts: dict[str, dict[str, dict[int, float]]]) -> bool:
        value, buckets = delta
        labels = point.get("labels") or {}
        name = point.get("name")
        usable = True
        for slo in self.slos:
            if not slo.select.matches(labels):
                continue
            target = counts[slo.id]
            for indicator in slo.indicators:
                if indicator.kind == AVAILABILITY and name == OPERATIONS_METRIC:
                    _add(target, series_key(indicator, "total"), minute, value)
                    if is_bad_outcome(labels):
                        _add(target, series_key(indicator, "bad"), minute, value)
                elif indicator.kind == LATENCY and name == LATENCY_METRIC:
                    bad = self._slower(point, buckets, value, indicator.threshold_ms, slo, indicator)
                    if bad is None:
                        usable = False
                        continue
                    _add(target, series_key(indicator, "total"), minute, value)
                    _add(target, series_key(indicator, "bad"), minute, bad)
                    if indicator.warn_threshold_ms is not None:
                        warn_bad = self._slower(point, buckets, value, indicator.warn_threshold_ms, slo, indicator)
                        _add(target, series_key(indicator, "warn_bad"), minute, warn_bad or 0)
        return usable

    def _slower(self, point: Mapping[str, Any], counts: Optional[list[float]], total: float,
                threshold: Optional[float], slo: SLO, indicator: Indicator) -> Optional[float]:
        """Observations above ``threshold``: total minus the buckets up to the exact boundary."""
        bounds = (point.get("buckets") or {}).get("bounds")
        if not isinstance(bounds, list) or counts is None or len(counts) != len(bounds) + 1:
            return self._unusable(slo, indicator, "it has no explicit bucket counts (exponential histogram?)")
        try:
            index = [float(b) for b in bounds].index(float(threshold or 0))
        except ValueError:
            return self._unusable(slo, indicator, f"{threshold:g} ms is not one of its bucket boundaries "
                                                   f"({', '.join(f'{b:g}' for b in bounds)})")
        return total - sum(counts[: index + 1])

    def _unusable(self, slo: SLO, indicator: Indicator, why: str) -> None:
        key = (slo.id, indicator.id)
        if key not in self._warned:
            self._warned.add(key)
            _log.warning("SLO %s indicator %s: a %s point cannot be used because %s; such points are left out "
                         "(the SLI would otherwise be an estimate)", slo.id, indicator.id, LATENCY_METRIC, why)
        return None


def _add(target: dict[str, dict[int, float]], key: str, minute: int, value: float) -> None:
    column = target[key]
    column[minute] = column.get(minute, 0) + value


def read_rollups(store: Store, slo: SLO, start_ms: int, end_ms: int) -> list[DayRollup]:
    """The day documents of ``slo`` covering ``[start_ms, end_ms)``: one read per day."""
    days = range(day_start(start_ms), end_ms, DAY_MS)
    return [DayRollup.from_document(doc) for doc in store.get_documents(SLO_ROLLUPS, [rollup_id(slo.id, d) for d in days])]

