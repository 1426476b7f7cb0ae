"""Building the exporters that settings name: OTLP (gRPC or HTTP, presets applied), console, Prometheus.

Exporter modules are imported only when chosen, so an app without OTLP never loads gRPC.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.sdk.metrics import (
    Counter, Histogram, ObservableCounter, ObservableGauge, ObservableUpDownCounter, UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricsData

from .privacy import Redactor
from .settings import Settings

_log = logging.getLogger("avalo_otel")
_SIGNAL_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


def _otlp_kwargs(settings: Settings, signal: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"timeout": settings.export_timeout_ms / 1000}
    if settings.otlp_endpoint:
        endpoint = settings.otlp_endpoint
        if settings.otlp_protocol == "http/protobuf":
            endpoint += _SIGNAL_PATHS[signal]
        kwargs["endpoint"] = endpoint
    if settings.otlp_headers:
        kwargs["headers"] = dict(settings.otlp_headers)
    if settings.otlp_insecure is not None and settings.otlp_protocol == "grpc":
        kwargs["insecure"] = settings.otlp_insecure
    return kwargs


#: gRPC waits 1 s after a failed connection attempt, then 1.6 times longer each time, up to 120 s:
#: after a collector restart an exporter would fail fast ("UNAVAILABLE") for as long as that wait,
#: losing every batch. Try again every 0.1-0.5 s instead (two TCP connects a second per signal).
GRPC_RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
)


#: The stock exporter class per protocol and signal, imported only when chosen.
_OTLP_CLASSES = {
    ("grpc", "traces"): ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
    ("grpc", "logs"): ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    ("grpc", "metrics"): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
    ("http/protobuf", "traces"): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("http/protobuf", "logs"): ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
    ("http/protobuf", "metrics"): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
}


def _otlp(settings: Settings, signal: str, **extra: Any) -> Any:
    """The stock OTLP exporter for ``signal``, its failures counted in ``avalo_otel_export_dropped_total``."""
    from importlib import import_module

    from .export_faults import guard_exporter, retry_promptly

    module, name = _OTLP_CLASSES[(settings.otlp_protocol, signal)]
    kwargs = {**_otlp_kwargs(settings, signal), **extra}
    if settings.otlp_protocol == "grpc":
        kwargs["channel_options"] = GRPC_RECONNECT_OPTIONS
    return guard_exporter(retry_promptly(getattr(import_module(module), name)(**kwargs)), "otlp", signal)


def otlp_span_exporter(settings: Settings) -> Any:
    return _otlp(settings, "traces")


def otlp_log_exporter(settings: Settings) -> Any:
    return _otlp(settings, "logs")


def otlp_metric_exporter(settings: Settings) -> Any:
    return _otlp(settings, "metrics", preferred_temporality=temporality(settings))


def temporality(settings: Settings) -> dict[type, AggregationTemporality]:
    """Delta for counters and histograms when asked (Datadog, New Relic); up-down counters stay
    cumulative, as both backends document."""
    delta = AggregationTemporality.DELTA if settings.metrics_temporality == "delta" else AggregationTemporality.CUMULATIVE
    cumulative = AggregationTemporality.CUMULATIVE
    return {
        Counter: delta, ObservableCounter: delta, Histogram: delta,
        UpDownCounter: cumulative, ObservableUpDownCounter: cumulative, ObservableGauge: cumulative,
    }


def installed_exporter(signal: str, name: str) -> Any:
    """An exporter another package registered under OTel's entry points (e.g. ``firestore``)."""
    from importlib.metadata import entry_points

    from .settings import EXPORTER_GROUPS, ConfigurationError

    for entry_point in entry_points(group=EXPORTER_GROUPS[signal], name=name):
        return entry_point.load()()
    raise ConfigurationError(f"no {signal} exporter named {name!r} is installed")


# -- console ------------------------------------------------------------------------------------
def _short(value: int, width: int) -> str:
    return format(value, f"0{width}x")[:8] if value else "-"


def compact_span(span: Any) -> str:
    ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    status = span.status.status_code.name.lower()
    attrs = span.attributes or {}
    extra = f" error={attrs.get('error.type')}" if "error.type" in attrs else ""
    return f"span  {span.name:<24} {ms:9.2f}ms {status:<5}{extra} trace={_short(span.context.trace_id, 32)}\n"


def compact_log(data: Any) -> str:
    record = getattr(data, "log_record", data)
    attrs = dict(record.attributes or {})
    keep = ("avalo.domain", "avalo.success", "error.type", "avalo.latency_ms", "avalo.actor.id")
    shown = " ".join(f"{k.split('.')[-1]}={attrs[k]}" for k in keep if k in attrs)
    return f"event {record.severity_text or '-':<8} {record.body!s:<24} {shown} trace={_short(record.trace_id or 0, 32)}\n"


def compact_metrics(data: MetricsData) -> str:
    lines = []
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    labels = ",".join(f"{k}={v}" for k, v in sorted((point.attributes or {}).items()))
                    value = getattr(point, "value", None)
                    if value is None:
                        value = f"count={point.count} sum={point.sum:.1f}"
                    lines.append(f"metric {metric.name}{{{labels}}} {value}\n")
    return "".join(lines)


def console_span_exporter(settings: Settings) -> Any:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if settings.console_format == "json":
        return ConsoleSpanExporter(out=sys.stdout)
    return ConsoleSpanExporter(out=sys.stdout, formatter=compact_span)


def console_log_exporter(settings: Settings) -> Any:
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    if settings.console_format == "json":
        return ConsoleLogRecordExporter(out=sys.stdout)
    return ConsoleLogRecordExporter(out=sys.stdout, formatter=compact_log)


def console_metric_exporter(settings: Settings) -> Any:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    if settings.console_format == "json":
        return ConsoleMetricExporter(out=sys.stdout)
    return ConsoleMetricExporter(out=sys.stdout, formatter=compact_metrics)


# -- Prometheus ---------------------------------------------------------------------------------
if TYPE_CHECKING:  # imported only when Prometheus is chosen
    from ._prometheus import PrometheusEndpoint


def start_prometheus(settings: Settings, redactor: Redactor, resource: Any = None) -> Optional["PrometheusEndpoint"]:
    """Serve /metrics with Avalo's names exactly, merged over pre-fork workers (``_prometheus``)."""
    from ._prometheus import start_prometheus as start

    return start(settings, redactor, resource)
