"""Compressed time for the demo: a simulated clock, and store exporters that stamp with it.

``--speed 60`` makes a wall second a simulated minute. The traffic goes through the real API and
the real SDK (whose clock is the wall clock); what reaches the store is restamped on the way:
the store exporters here map every timestamp from wall to simulated time before writing, so the
alert windows (5 minutes), the burn-rate windows (up to days) and the dashboard's charts see a
compressed day. Durations are not compressed: a span that took 180 ms still did.

The simulated clock ends where the wall clock is: the live run covers the simulated stretch
``[end - duration * speed, end)`` with ``end`` = the planned wall-clock end, and the history is
backfilled before it. After the run (``--linger``) simulated time runs at 1x, a few seconds
behind the wall clock, so ``avalo-otel slo report`` and the dashboard afterwards see the run as
the last hour or so of real time.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Optional

from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from .store.base import METRICS
from .store.schema import metric_documents

MINUTE_MS = 60_000


class SimClock:
    """Wall time → simulated time (epoch ms), piecewise linear: 1x before the live run, ``speed``x
    during it, 1x after."""

    def __init__(self, speed: float, duration_s: float, now_ms: Optional[int] = None) -> None:
        now = _wall_ms() if now_ms is None else now_ms
        self.speed = float(speed)
        self.duration_ms = int(duration_s * 1000)
        span = int(self.duration_ms * self.speed)
        #: Where the history ends and the live run starts, in simulated time (a whole minute).
        self.sim_start_ms = now + self.duration_ms - span
        self.sim_start_ms -= self.sim_start_ms % MINUTE_MS
        self.sim_end_ms = self.sim_start_ms + span
        self._live_start: Optional[int] = None  # wall ms

    def start_live(self, now_ms: Optional[int] = None) -> None:
        self._live_start = _wall_ms() if now_ms is None else now_ms

    @property
    def live_start_wall_ms(self) -> Optional[int]:
        return self._live_start

    def sim_ms(self, wall_ms: float) -> int:
        start = self._live_start if self._live_start is not None else _wall_ms()
        elapsed = wall_ms - start
        if elapsed < 0:
            return int(self.sim_start_ms + elapsed)
        if elapsed <= self.duration_ms:
            return int(self.sim_start_ms + elapsed * self.speed)
        return int(self.sim_end_ms + elapsed - self.duration_ms)

    def now_ms(self) -> int:
        return self.sim_ms(_wall_ms())

    def now_s(self) -> float:
        """The simulated clock in seconds, as ``AlertEvaluator(clock=…)`` takes it."""
        return self.now_ms() / 1000.0

    def offset_ms(self, wall_ms: float) -> int:
        return self.sim_ms(wall_ms) - int(wall_ms)


class Restamper:
    """Moves stored documents onto the simulated clock. All documents of one trace move by the
    same offset (taken from the first of them seen), so a trace keeps its shape: a waterfall's
    spans stay where they were relative to each other."""

    def __init__(self, clock: SimClock, max_traces: int = 20_000) -> None:
        self.clock = clock
        self._traces: "collections.OrderedDict[str, int]" = collections.OrderedDict()
        self._max = max_traces
        self._lock = threading.Lock()
        self.points = 0  # metric points restamped (the live run's)

    def _trace_offset(self, trace_id: Optional[str], at_ms: Any) -> int:
        if not isinstance(at_ms, (int, float)):
            at_ms = _wall_ms()
        if not trace_id:
            return self.clock.offset_ms(at_ms)
        with self._lock:
            offset = self._traces.get(trace_id)
            if offset is None:
                offset = self._traces[trace_id] = self.clock.offset_ms(at_ms)
                if len(self._traces) > self._max:
                    self._traces.popitem(last=False)
            return offset

    @staticmethod
    def _move(doc: dict[str, Any], offset: int, *fields: str) -> dict[str, Any]:
        for name in (*fields, "expireAt"):
            value = doc.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                doc[name] = int(value) + offset
        return doc

    def event(self, doc: dict[str, Any]) -> dict[str, Any]:
        return self._move(doc, self._trace_offset(doc.get("traceId"), doc.get("ts")), "ts")

    def span(self, doc: dict[str, Any]) -> dict[str, Any]:
        offset = self._trace_offset(doc.get("traceId"), doc.get("startTime"))
        for event in doc.get("events") or ():
            self._move(event, offset, "timestamp")
        return self._move(doc, offset, "startTime", "endTime")

    def point(self, doc: dict[str, Any]) -> dict[str, Any]:
        # A delta point's interval is scaled, not shifted: [start, end) in wall time is what
        # happened in [sim(start), sim(end)) of simulated time.
        self.points += 1
        timestamp, start = doc.get("timestamp"), doc.get("startTime")
        if isinstance(start, (int, float)):
            doc["startTime"] = self.clock.sim_ms(start)
        if isinstance(timestamp, (int, float)):
            return self._move(doc, self.clock.sim_ms(timestamp) - int(timestamp), "timestamp")
        return doc


def restamping_exporters(store: Any, writer: Any, metrics_writer: Any, restamp: Restamper, *,
                         firestore: bool = False) -> tuple[Any, Any, Any]:
    """(span, log, metric) exporters writing to ``store`` on simulated time: the store's own
    exporters (or the ``firestore`` ones), restamping each document they make. Metric points
    have a writer of their own: at 300x a second in a queue behind spans is five simulated
    minutes, the length of an alert window."""
    if firestore:
        from avalo_otel_exporter_firestore.otel import (
            FirestoreLogExporter as Logs, FirestoreMetricExporter as Metrics, FirestoreSpanExporter as Spans,
        )
    else:
        from .store.exporters import StoreLogExporter as Logs, StoreMetricExporter as Metrics, StoreSpanExporter as Spans

    class SpanExporter(Spans):  # type: ignore[misc, valid-type]
        def to_document(self, span: Any) -> Any:
            return restamp.span(super().to_document(span))

    class LogExporter(Logs):  # type: ignore[misc, valid-type]
        def to_document(self, data: Any) -> Any:
            return restamp.event(super().to_document(data))

    class MetricExporter(Metrics):  # type: ignore[misc, valid-type]
        def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
            docs = []
            for rm in metrics_data.resource_metrics:
                docs.extend(metric_documents(MetricsData(resource_metrics=[rm]), self._service_of(rm.resource)))
            self.writer.submit(METRICS, [restamp.point(d) for d in docs], prepared=True)
            return MetricExportResult.SUCCESS

    return (SpanExporter(store, writer=writer), LogExporter(store, writer=writer),
            MetricExporter(store, writer=metrics_writer))


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
