"""OTel exporters over any Store: spans → ``traces``, log records → ``telemetry_events``,
metric points → ``metrics``. One implementation for SQLite and Firestore.

Export only hands spans and log records (immutable once exported) to a :class:`StoreWriter`,
whose thread converts them to documents and writes them: neither the app nor the SDK's batch
threads ever wait on the store or do its work. Metric points are converted at export (a few per
interval). Metrics are exported with DELTA temporality: each stored point is what happened in its
export interval (``temporality`` says so per document).

``processor()`` gives the span and log exporters a processor that needs no OTel batch processor
in front: the writer already is a bounded background batcher, so a second queue would only add
its cost to every call on the app's thread (a BatchLogRecordProcessor copies each record). The
processor hands the record itself to the writer, which converts it on its own thread.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import (
    Counter, Histogram, ObservableCounter, ObservableGauge, ObservableUpDownCounter, UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .base import METRICS, TELEMETRY_EVENTS, TRACES, Document, Store
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
        self._last_resource: Any = None
        self._last_service = ""

    def _service_of(self, resource: Any) -> str:
        if self._service:
            return self._service
        if resource is self._last_resource:  # one resource per process, as a rule
            return self._last_service
        attrs = getattr(resource, "attributes", None) or {}
        service = str(attrs.get("service.name", "unknown_service"))
        self._last_resource, self._last_service = resource, service
        return service

    def _flush(self, timeout_millis: float) -> bool:
        return self.writer.flush(timeout_millis / 1000)

    def _shutdown(self, timeout_s: float = 10.0) -> None:
        if self._owns_writer:
            self.writer.shutdown(timeout_s)
        else:
            self.writer.flush(timeout_s)


class StoreSpanExporter(_StoreExport, SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.writer.put_many(TRACES, spans, self.to_document)
        return SpanExportResult.SUCCESS

    def to_document(self, span: ReadableSpan) -> Document:
        return span_document(span, self._service_of(span.resource))

    def processor(self, schedule_delay_ms: float = 5_000) -> SpanProcessor:
        """This exporter as a span processor, with no BatchSpanProcessor in front (see above);
        a partial batch waits at most ``schedule_delay_ms`` (``OTEL_BSP_SCHEDULE_DELAY``)."""
        self.writer.linger_at_most(schedule_delay_ms / 1000)
        return _StoreSpanProcessor(self)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._flush(timeout_millis)

    def shutdown(self) -> None:
        self._shutdown()


class StoreLogExporter(_StoreExport, LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.writer.put_many(TELEMETRY_EVENTS, batch, self.to_document)
        return LogRecordExportResult.SUCCESS

    def to_document(self, data: Any) -> Document:
        return event_document(data, self._service_of(getattr(data, "resource", None)))

    def processor(self, schedule_delay_ms: float = 1_000) -> LogRecordProcessor:
        """This exporter as a log record processor, with no BatchLogRecordProcessor in front;
        a partial batch waits at most ``schedule_delay_ms`` (``OTEL_BLRP_SCHEDULE_DELAY``)."""
        self.writer.linger_at_most(schedule_delay_ms / 1000)
        return _StoreLogProcessor(self)

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
        self.writer.submit(METRICS, docs, prepared=True)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        # The SDK passes its remaining time as ``timeout`` (ms); honour whichever is shorter.
        self._shutdown(min(timeout_millis, kwargs.get("timeout") or timeout_millis) / 1000)


class _StoreLogProcessor(LogRecordProcessor):
    def __init__(self, exporter: StoreLogExporter) -> None:
        self._exporter = exporter
        self._put = exporter.writer.put

    def on_emit(self, log_record: Any) -> None:
        # The record itself, converted later on the writer's thread: nothing mutates it after the
        # processors have run (the privacy stage, added first, has already redacted it).
        self._put(TELEMETRY_EVENTS, log_record, self._exporter.to_document)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class _StoreSpanProcessor(SpanProcessor):
    def __init__(self, exporter: StoreSpanExporter) -> None:
        self._exporter = exporter
        self._put = exporter.writer.put

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._put(TRACES, span, self._exporter.to_document)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)
