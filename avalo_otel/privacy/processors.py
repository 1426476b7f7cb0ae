"""The privacy stage in front of every exporter: spans, log records and metric points.

Each signal is redacted once, before the fan-out to exporters, so adding an exporter adds no
redaction work and no exporter can see unredacted data:

* spans: :class:`SpanExportPipeline` is the one processor in front of the exporters' processors
  and hands them the span redacted (attributes, event and link attributes, status description,
  span name, the ``tracestate`` of the span, its parent and its links; counts of attributes the
  SDK dropped are kept);
* log records: :class:`RedactingLogProcessor` is registered first and rewrites the record in
  place (body and attributes) before the batch processors queue it;
* metrics: label keys are limited by views (see ``metric_views``) and label values are redacted
  at collection by :func:`redact_metrics` (raw route labels templated first: ``/users/{id}``),
  used by the Prometheus reader and the push exporters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional, Sequence

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import (
    Gauge, HistogramDataPoint, MetricExporter, MetricExportResult, MetricsData, NumberDataPoint,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Link, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE as _NO_STATE
from opentelemetry.trace.status import Status

from .._spans import copy_span
from ..sampling import exportable, note_kept
from .paths import template_route
from .redactor import Redactor
from .tracestate import TraceStateRedactor

#: The instrumentation scope of avalo-otel's own API.
OWN_SCOPE = "avalo_otel"
_SAMPLED = TraceFlags.SAMPLED

class SpanExportPipeline(SpanProcessor):
    """The one processor in front of every span exporter: keep (sampled or failed), redact once,
    then hand the span to each exporter's own processor.

    One flat stage rather than nested wrappers: this runs for every span, and each layer of
    ``on_start``/``on_end`` calls costs more than the work it forwards."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._trace_state = TraceStateRedactor(redactor)
        self._processors: tuple[SpanProcessor, ...] = ()

    def add(self, processor: SpanProcessor) -> None:
        self._processors = (*self._processors, processor)

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        # Exporters sit behind Batch/Simple processors, which do nothing when a span starts.
        return None

    def on_end(self, span: ReadableSpan) -> None:
        """Keep the span (sampled, or failed: see ``exportable``), redact its name, attributes,
        events, links and status description, and hand it on.

        The span the SDK hands to ``on_end`` is a fresh snapshot made for that call, and this is
        its only processor: its fields are rewritten in place (building a second snapshot would
        cost more than the redaction); any other kind of span is copied first. Written out in one
        function, reading the SDK's fields, because it runs for every span."""
        if not span._context.trace_flags & _SAMPLED:
            span = exportable(span)
            if span is None:
                return
        else:
            parent = span._parent
            if parent is not None and not parent.trace_flags & _SAMPLED:
                note_kept(span)  # a kept span under a sampled-out parent: keep the chain whole
        if type(span) is not ReadableSpan:
            span = copy_span(span)
        redactor = self.redactor
        name = span._name
        if not redactor.known_clean(name):
            clean_name = redactor.redact_text(name)
            if clean_name is not name:
                span._name = clean_name
        attributes = span._attributes
        clean_attrs = redactor.redact_attributes(attributes)
        if clean_attrs is not None:
            dropped = type(attributes) is BoundedAttributes and attributes.dropped
            span._attributes = _keep_dropped(clean_attrs, attributes) if dropped else clean_attrs
        # The SDK's BoundedList has a Python-level __len__: test the deque inside it.
        events = span._events
        if getattr(events, "_dq", events):
            clean_events = _redact_events(redactor, events)
            if clean_events is not None:
                span._events = clean_events
        context = span._context
        state = context.trace_state
        # An upstream's tracestate is exported with every span (OTLP). Most spans carry the SDK's
        # empty default, and TraceState's len() is a Python call: test identity first.
        if state is not _NO_STATE and state:
            clean_context = self._trace_state.context(context)
            if clean_context is not context:
                span._context = clean_context
                parent = span._parent
                if parent is not None and parent.trace_state:
                    span._parent = self._trace_state.context(parent)
        links = span._links
        if getattr(links, "_dq", links):
            clean_links = _redact_links(redactor, links, self._trace_state)
            if clean_links is not None:
                span._links = clean_links
        status = span._status
        description = status.description
        if description:
            clean = redactor.redact_text(description)
            if clean is not description:
                span._status = Status(status.status_code, clean)
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self._processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all([processor.force_flush(timeout_millis) for processor in self._processors])


def _keep_dropped(clean: dict[str, Any], original: Any) -> Any:
    """``clean`` as BoundedAttributes when the SDK dropped some of the original attributes, so
    exporters still report how many (``dropped_attributes_count`` in OTLP)."""
    dropped = getattr(original, "dropped", 0)
    if not dropped:
        return clean
    bounded = BoundedAttributes(maxlen=None, attributes=clean, immutable=True)
    bounded.dropped = dropped
    return bounded


def _redact_events(redactor: Redactor, events: Sequence[Event]) -> Optional[list[Event]]:
    out, changed = [], False
    for event in events:
        attrs = redactor.redact_attributes(event.attributes)
        name = redactor.redact_text(event.name)
        if attrs is None and name is event.name:
            out.append(event)
            continue
        changed = True
        attrs = event.attributes if attrs is None else _keep_dropped(attrs, event.attributes)
        out.append(Event(name, attrs, event.timestamp))
    return out if changed else None


def _redact_links(redactor: Redactor, links: Sequence[Link],
                  trace_state: TraceStateRedactor) -> Optional[list[Link]]:
    out, changed = [], False
    for link in links:
        attrs = redactor.redact_attributes(link.attributes)
        context = trace_state.context(link.context)
        if attrs is None and context is link.context:
            out.append(link)
        else:
            changed = True
            out.append(Link(context, link.attributes if attrs is None else _keep_dropped(attrs, link.attributes)))
    return out if changed else None


_UNREADABLE = "[REDACTED:unscannable]"


class RedactingLogProcessor(LogRecordProcessor):
    """Registered before the exporters' processors: rewrites body and attributes in place."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        scope = log_record.instrumentation_scope
        if scope is not None and scope.name == OWN_SCOPE:
            return  # our API redacts its events as it builds them (see _runtime.Runtime.record)
        record = log_record.log_record
        try:
            body = record.body
            if isinstance(body, str):
                record.body = self.redactor.redact_text(body)
            elif body is not None:
                record.body = self.redactor.redact_value(body)
            attrs = self.redactor.redact_attributes(record.attributes)
            if attrs is not None:
                record.attributes = attrs
        except Exception as exc:  # noqa: BLE001 - a value that cannot be read (a broken Mapping…)
            # Fail closed, never raise into the caller's logging: nothing of the record is kept.
            record.body, record.attributes = _UNREADABLE, {}
            self.redactor._invalid("unreadable_log_record", f"a log record could not be redacted "  # noqa: SLF001
                                   f"({type(exc).__name__}); its body and attributes were replaced")

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# -- metrics ------------------------------------------------------------------------------------
def metric_views(allowed_keys: Iterable[str], cardinality_limit: int) -> list[View]:
    """One view for every instrument: only allow-listed label keys, and at most
    ``cardinality_limit`` series per instrument (the rest aggregate into the OTel overflow series
    ``otel_metric_overflow="true"``)."""
    return [View(instrument_name="*", attribute_keys=set(allowed_keys),
                 aggregation_cardinality_limit=cardinality_limit)]


def redact_metrics(redactor: Redactor, data: Optional[MetricsData]) -> Optional[MetricsData]:
    """``data`` with every point's label values redacted; the same object when nothing changed."""
    if data is None:
        return None
    changed = False
    resource_metrics = []
    for rm in data.resource_metrics:
        scope_metrics = []
        for sm in rm.scope_metrics:
            metrics = []
            for metric in sm.metrics:
                points = []
                for point in metric.data.data_points:
                    templated = _templated_routes(point.attributes)
                    attrs = redactor.redact_attributes(templated or point.attributes)
                    if attrs is None:  # not `or`: {} (a hook dropped every label) is a change too
                        attrs = templated
                    if attrs is not None:
                        changed = True
                        point = dataclasses.replace(point, attributes=attrs)
                    exemplars = getattr(point, "exemplars", None)
                    if exemplars and any(e.filtered_attributes for e in exemplars):
                        # An exemplar's "filtered attributes" are exactly the labels the view
                        # refused: they must not leave by the back door. Trace links stay.
                        changed = True
                        point = dataclasses.replace(point, exemplars=[
                            dataclasses.replace(e, filtered_attributes=None) for e in exemplars])
                    points.append(point)
                if changed:
                    points = _merge_alike(metric.data, points)
                metrics.append(dataclasses.replace(metric, data=dataclasses.replace(metric.data, data_points=points)))
            scope_metrics.append(dataclasses.replace(sm, metrics=metrics))
        resource_metrics.append(dataclasses.replace(rm, scope_metrics=scope_metrics))
    return dataclasses.replace(data, resource_metrics=resource_metrics) if changed else data


#: Label keys whose values are paths: templated before redaction (one series per route).
_ROUTE_LABELS = ("route", "http.route", "url.template", "url.path", "http.target")


def _templated_routes(attrs: Any) -> Optional[dict[str, Any]]:
    """A copy of ``attrs`` with raw route labels in templated form (``/users/8fK2…`` →
    ``/users/{id}``), or None when none changed: a pseudonym would be one series per user."""
    if not attrs:
        return None
    out = None
    for key in _ROUTE_LABELS:
        value = attrs.get(key)
        if type(value) is str:
            templated = template_route(value)
            if templated is not value:
                if out is None:
                    out = dict(attrs)
                out[key] = templated
    return out


def _merge_alike(data: Any, points: list[Any]) -> list[Any]:
    """Points whose label sets became equal by redaction are one series now: merge them
    (Prometheus rejects duplicate series; OTLP forbids duplicate points of one metric)."""
    merged: dict[frozenset, Any] = {}
    for point in points:
        key = frozenset((point.attributes or {}).items())
        seen = merged.get(key)
        merged[key] = point if seen is None else _merge(data, seen, point)
    return list(merged.values()) if len(merged) < len(points) else points


def _merge(data: Any, a: Any, b: Any) -> Any:
    if isinstance(a, HistogramDataPoint) and tuple(a.explicit_bounds) == tuple(b.explicit_bounds):
        return dataclasses.replace(
            a, count=a.count + b.count, sum=a.sum + b.sum, min=min(a.min, b.min), max=max(a.max, b.max),
            bucket_counts=[x + y for x, y in zip(a.bucket_counts, b.bucket_counts)],
            time_unix_nano=max(a.time_unix_nano, b.time_unix_nano))
    if isinstance(a, NumberDataPoint):
        if isinstance(data, Gauge):
            return a if a.time_unix_nano >= b.time_unix_nano else b
        return dataclasses.replace(a, value=a.value + b.value, time_unix_nano=max(a.time_unix_nano, b.time_unix_nano))
    return a  # exponential histograms of different scales: keep one rather than send duplicates


class RedactingMetricExporter(MetricExporter):
    """Wraps a push exporter (OTLP, console) so label values are redacted before they are sent."""

    def __init__(self, redactor: Redactor, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,  # noqa: SLF001 - pass the wrapped choice on
            preferred_aggregation=inner._preferred_aggregation,  # noqa: SLF001
        )
        self.redactor = redactor
        self.inner = inner

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return self.inner.export(redact_metrics(self.redactor, metrics_data), timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
