"""Building the exporters that settings name: OTLP (gRPC or HTTP, presets applied), console, Prometheus.

Exporter modules are imported only when chosen, so an app without OTLP never loads gRPC.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any, Optional

from opentelemetry.sdk.metrics import (
    Counter, Histogram, ObservableCounter, ObservableGauge, ObservableUpDownCounter, UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData

from .privacy.processors import redact_metrics
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


def otlp_span_exporter(settings: Settings) -> Any:
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(**_otlp_kwargs(settings, "traces"))


def otlp_log_exporter(settings: Settings) -> Any:
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    return OTLPLogExporter(**_otlp_kwargs(settings, "logs"))


def otlp_metric_exporter(settings: Settings) -> Any:
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    return OTLPMetricExporter(preferred_temporality=temporality(settings), **_otlp_kwargs(settings, "metrics"))


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
@dataclass
class PrometheusEndpoint:
    reader: MetricReader
    server: Any
    url: str

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_prometheus(settings: Settings, redactor: Redactor) -> Optional[PrometheusEndpoint]:
    """Serve /metrics with Avalo's names exactly; a taken port is a warning, not a crash."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    class RedactingPrometheusReader(PrometheusMetricReader):
        # A scrape collects through here: label values are redacted before they are served.
        def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
            super()._receive_metrics(redact_metrics(redactor, metrics_data), timeout_millis, **kwargs)

    registry = CollectorRegistry(auto_describe=False)
    try:
        server, _thread = start_http_server(settings.prometheus_port, settings.prometheus_host, registry=registry)
    except OSError as exc:
        _log.warning(
            "avalo-otel: cannot serve Prometheus metrics on %s:%s (%s); the app keeps running without "
            "/metrics: set OTEL_EXPORTER_PROMETHEUS_PORT to a free port",
            settings.prometheus_host, settings.prometheus_port, exc,
        )
        return None
    # Scope labels (otel_scope_name …) would make every Avalo series differ from the original's.
    reader = RedactingPrometheusReader(registry=registry, scope_info_enabled=False)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return PrometheusEndpoint(reader=reader, server=server, url=f"http://{shown}:{port}/metrics")
