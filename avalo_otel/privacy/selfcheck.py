"""Proof, at configure time, that the privacy stage really redacts what exporters read.

The privacy stage rewrites fields of OTel SDK objects that are not public API (a span's
``_attributes``, ``_events``, ``_links``, ``_name``, ``_status``; a log record in place before the
other processors see it; the Prometheus reader's ``_receive_metrics``). An SDK release that
renamed one would not fail: exporters would read the original, unredacted value. So
``configure()`` pushes a canary carrying a fake e-mail address through each signal's privacy stage
as configured (the same redactor and privacy processors, in SDK providers built with the same
limits) into the SDK's own in-memory exporters, standing in for the real ones (the canary never
reaches a backend), and checks what arrived: the canary is there, the address is nowhere in it,
and the redaction marker is. A signal that fails is not exported at all (fail closed), and an
ERROR says which signal and why; ``Telemetry.selfcheck`` and ``avalo-otel doctor`` report it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable, Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, LogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter, MetricExportResult
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Link, SpanContext, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from .detectors import marker
from .processors import RedactingMetricExporter, SpanExportPipeline, redact_metrics
from .redactor import Redactor

_log = logging.getLogger("avalo_otel")
SIGNALS = ("traces", "logs", "metrics")
#: Fake personal data: an address of the reserved example.com domain.
CANARY = "canary.selfcheck@example.com"
#: A key no rule denies, so its value is redacted by the value scan (the marker proves it).
CANARY_KEY = "avalo_otel.selfcheck.detail"
#: A metric label every configuration allows (see ``OWN_METRIC_LABELS``).
CANARY_LABEL = "reason"
SCOPE = "avalo_otel.selfcheck"
#: Any marker: a user's rules may name another one (``redact_keys`` → ``[REDACTED:custom]``).
_MARKER = marker("email").split(":")[0] + ":"

Check = Callable[..., Optional[str]]


class SelfCheck:
    """The results: ``failures`` maps a signal to why it is not exported; ``elapsed_ms`` is what
    the checks cost at configure time."""

    def __init__(self, redactor: Optional[Redactor] = None) -> None:
        self.failures: dict[str, str] = {}
        self.elapsed_ms = 0.0
        # The canary's redactions are not the app's: kept out of avalo_otel_redactions_total.
        self._uncounted = redactor.uncounted if redactor is not None else contextlib.nullcontext

    @property
    def ok(self) -> bool:
        return not self.failures

    def passed(self, signal: str) -> bool:
        return signal not in self.failures

    def run(self, signal: str, check: Check, *args: Any) -> bool:
        """Run one signal's check; on failure record it and say so loudly. True when it passed."""
        start = time.perf_counter()
        try:
            with self._uncounted():
                why = check(*args)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run proves nothing: fail closed
            why = f"the canary could not be sent through it ({type(exc).__name__}: {exc})"
        self.elapsed_ms += (time.perf_counter() - start) * 1000
        if why is None:
            return True
        self.failures[signal] = why
        _log.error(
            "avalo-otel: PRIVACY SELF-CHECK FAILED for %s: %s. No %s are exported (failing closed rather "
            "than risk unredacted data); the installed OpenTelemetry packages may have changed an "
            "internal the privacy stage relies on: install the versions pyproject.toml allows",
            signal, why, signal)
        return False

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"failed: {self.failures}"
        return f"SelfCheck({state}, {self.elapsed_ms:.1f} ms)"


def run_for(settings: Any) -> SelfCheck:
    """The checks ``configure()`` runs, for ``settings``, without building a pipeline (for
    ``avalo-otel doctor``: nothing is exported, no port is opened)."""
    from . import Pseudonymizer, allowed_metric_labels, build_redactor
    from .processors import RedactingLogProcessor, metric_views

    redactor = build_redactor(settings, Pseudonymizer("selfcheck"))
    resource = Resource.create({})
    count, length = settings.attribute_count_limit, settings.attribute_value_length_limit
    result = SelfCheck()
    result.run("traces", check_traces, redactor, resource,
               SpanLimits(max_span_attributes=count, max_span_attribute_length=length))
    result.run("logs", check_logs, RedactingLogProcessor(redactor), resource,
               LogRecordLimits(max_attributes=count, max_attribute_length=length))
    result.run("metrics", check_metrics, redactor,
               metric_views(allowed_metric_labels(settings), settings.metric_cardinality_limit),
               "prometheus" in settings.metrics_exporters)
    return result


# -- the checks: None when the canary arrived redacted, else why not -------------------------------
def check_traces(redactor: Redactor, resource: Resource, limits: SpanLimits) -> Optional[str]:
    """A canary span through a :class:`SpanExportPipeline` into the SDK's in-memory exporter."""
    sink = InMemorySpanExporter()
    pipeline = SpanExportPipeline(redactor)
    pipeline.add(SimpleSpanProcessor(sink))
    provider = TracerProvider(resource=resource, sampler=ALWAYS_ON, span_limits=limits, shutdown_on_exit=False)
    provider.add_span_processor(pipeline)
    elsewhere = SpanContext(trace_id=1, span_id=1, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    span = provider.get_tracer(SCOPE).start_span(
        f"selfcheck {CANARY}", context=Context(), attributes={CANARY_KEY: CANARY},
        links=[Link(elsewhere, {CANARY_KEY: CANARY})])
    span.add_event(f"selfcheck {CANARY}", {CANARY_KEY: CANARY})
    span.set_status(Status(StatusCode.ERROR, f"selfcheck {CANARY}"))
    span.end()
    spans = sink.get_finished_spans()
    if len(spans) != 1:
        return f"the canary span did not reach the exporters ({len(spans)} arrived)"
    got = spans[0]
    # What span exporters read (the OTLP encoder, the console, the stores): the public properties.
    fields = {
        "name": got.name, "attributes": dict(got.attributes or {}), "status": got.status.description,
        "events": [(e.name, dict(e.attributes or {})) for e in got.events],
        "links": [dict(link.attributes or {}) for link in got.links],
    }
    return _verdict("span", fields, got.name)


def check_logs(processor: LogRecordProcessor, resource: Resource, limits: LogRecordLimits) -> Optional[str]:
    """Canary log records (text and structured body) through the redacting processor, registered
    first as in ``configure()``, into the SDK's in-memory exporter."""
    sink = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource, log_record_limits=limits, shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    provider.add_log_record_processor(SimpleLogRecordProcessor(sink))
    logger = provider.get_logger(SCOPE)
    logger.emit(body=f"selfcheck {CANARY}", attributes={CANARY_KEY: CANARY}, severity_text="INFO")
    logger.emit(body={CANARY_KEY: CANARY}, severity_text="INFO")
    records = [getattr(d, "log_record", d) for d in sink.get_finished_logs()]
    if len(records) != 2:
        return f"the canary log records did not reach the exporters ({len(records)} of 2 arrived)"
    fields = {"bodies": [r.body for r in records], "attributes": [dict(r.attributes or {}) for r in records]}
    return _verdict("log record", fields, str(records[0].body))


def check_metrics(redactor: Redactor, views: Sequence[View], prometheus: bool = False) -> Optional[str]:
    """A canary label through the push exporters' wrapper and, with ``prometheus``, through a
    Prometheus reader that redacts in the same SDK hook as the configured one, on a registry of
    its own (the configured reader is bound to the live endpoint)."""
    memory = InMemoryMetricReader()
    readers: list[Any] = [memory]
    registry = None
    if prometheus:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        readers.append(_prometheus_probe(redactor, registry))
    provider = MeterProvider(metric_readers=readers, views=list(views), shutdown_on_exit=False)
    try:
        counter = provider.get_meter(SCOPE).create_counter("avalo_otel_selfcheck")
        counter.add(1, {CANARY_LABEL: CANARY})
        sink = _MetricSink()
        RedactingMetricExporter(redactor, sink).export(memory.get_metrics_data())
        labels = [point.attributes.get(CANARY_LABEL) for point in sink.points()]
        if not labels:
            return "the canary metric point did not reach the push exporters"
        # A redaction hook may drop the label (None): then there is no marker to look for.
        marked = labels[0] is not None
        why = _verdict("metric point (push exporters)", {"labels": labels}, str(labels[0]) if marked else None)
        if why is None and registry is not None:
            from prometheus_client import generate_latest

            text = generate_latest(registry).decode("utf-8")
            if "avalo_otel_selfcheck" not in text:
                return "the canary metric series did not reach Prometheus"
            why = _verdict("metric series (Prometheus)", {"/metrics": text}, text if marked else None)
        return why
    finally:
        provider.shutdown()


def _verdict(what: str, fields: dict[str, Any], redacted: Optional[str]) -> Optional[str]:
    """Why the canary as exporters read it (``fields``) is not redacted, or None: the address is
    nowhere in it, and ``redacted`` (a field no redaction hook touches) holds the marker."""
    leaked = [name for name, value in fields.items() if CANARY in repr(value)]
    if leaked:
        return f"the canary {what} reached the exporters unredacted (in its {', '.join(leaked)})"
    if redacted is not None and _MARKER not in redacted:
        return f"the canary {what} reached the exporters without the redaction marker"
    return None


def _prometheus_probe(redactor: Redactor, registry: Any) -> Any:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    class Probe(PrometheusMetricReader):
        # The hook ``_prometheus._GroupReader`` overrides: if the SDK stops calling it, both leak.
        def _receive_metrics(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> None:
            super()._receive_metrics(redact_metrics(redactor, metrics_data), timeout_millis, **kwargs)

    return Probe(registry=registry, scope_info_enabled=False)


class _MetricSink(MetricExporter):
    """Keeps what a push exporter would have sent."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[Any] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.data.append(metrics_data)
        return MetricExportResult.SUCCESS

    def points(self) -> list[Any]:
        return [point for data in self.data if data for rm in data.resource_metrics for sm in rm.scope_metrics
                for metric in sm.metrics if metric.name == "avalo_otel_selfcheck"
                for point in metric.data.data_points]

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


__all__ = ["CANARY", "SIGNALS", "SelfCheck", "check_logs", "check_metrics", "check_traces", "run_for"]
