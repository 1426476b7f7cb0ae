"""OTel exporters over any Store: spans → ``traces``, log records → ``telemetry_events``,
metric points → ``metrics``. One implementation for SQLite and Firestore.

Export only converts to documents and hands them to a :class:`StoreWriter`, so neither the app
nor the SDK's batch threads ever wait on the store. Metrics are exported with DELTA temporality:
each stored point is what happened in its export interval (``temporality`` says so per document).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import (
    Counter, Histogram, ObservableCounter, ObservableGauge, ObservableUpDownCounter, UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .base import METRICS, TELEMETRY_EVENTS, TRACES, Store
from .schema import event_document, metric_documents, span_document
from .writer import StoreWriter

_DELTA = {
    Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE, ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


class _StoreExport:
    """What the three exporters share: a writer (their own, or one shared per store) and a service."""

    def __init__(self, store: Store, *, service: Optional[str] = None, writer: Optional[StoreWriter] = None,
                 name: str = "store", max_buffer: int = 10_000) -> None:
        self.store = store
        # A writer handed in is shared with other exporters: its owner shuts it down, not us.
        self._owns_writer = writer is None
        self.writer = writer or StoreWriter(store, name=name, max_buffer=max_buffer)
        self._service = service

    def _service_of(self, resource: Any) -> str:
        if self._service:
            return self._service
        attrs = getattr(resource, "attributes", None) or {}
        return str(attrs.get("service.name", "unknown_service"))

    def _flush(self, timeout_millis: float) -> bool:
        return self.writer.flush(timeout_millis / 1000)

    def _shutdown(self, timeout_s: float = 10.0) -> None:
        if self._owns_writer:
            self.writer.shutdown(timeout_s)
        else:
            self.writer.flush(timeout_s)


class StoreSpanExporter(_StoreExport, SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        docs = [span_document(span, self._service_of(span.resource)) for span in spans]
        self.writer.submit(TRACES, docs)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._flush(timeout_millis)

    def shutdown(self) -> None:
        self._shutdown()


class StoreLogExporter(_StoreExport, LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        docs = [event_document(data, self._service_of(getattr(data, "resource", None))) for data in batch]
        self.writer.submit(TELEMETRY_EVENTS, docs)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._flush(timeout_millis)

    def shutdown(self) -> None:
        self._shutdown()


class StoreMetricExporter(_StoreExport, MetricExporter):
    def __init__(self, store: Store, **kwargs: Any) -> None:
        _StoreExport.__init__(self, store, **kwargs)
        MetricExporter.__init__(self, preferred_temporality=_DELTA)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        docs = []
        for rm in metrics_data.resource_metrics:
            single = MetricsData(resource_metrics=[rm])
            docs.extend(metric_documents(single, self._service_of(rm.resource)))
        self.writer.submit(METRICS, docs)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        # The SDK passes its remaining time as ``timeout`` (ms); honour whichever is shorter.
        self._shutdown(min(timeout_millis, kwargs.get("timeout") or timeout_millis) / 1000)
