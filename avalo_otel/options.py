"""The keyword arguments of ``configure()``, typed: editors complete them and type checkers check
them. Each is a :class:`~avalo_otel.settings.Settings` field (its docs and defaults are there and
in the README); a list can also be given as the comma-separated text its variable takes."""

from __future__ import annotations

from typing import Any, Callable, Literal, Mapping, Sequence, Union

from typing_extensions import TypedDict

from .conventions import Level

Names = Union[str, Sequence[str]]
LevelName = Literal["DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"]


class Options(TypedDict, total=False):
    """``configure(**options)``; every key is optional."""

    service_name: str
    environment: str
    min_level: Union[Level, LevelName]
    sampling_rate: float
    traces_exporters: Names
    metrics_exporters: Names
    logs_exporters: Names
    preset: Literal["none", "datadog", "newrelic"]
    otlp_endpoint: str
    otlp_protocol: Literal["grpc", "http/protobuf"]
    otlp_headers: Union[str, Mapping[str, str]]
    otlp_insecure: bool
    metrics_temporality: Literal["cumulative", "delta", "lowmemory"]
    newrelic_license_key: str
    newrelic_region: Literal["us", "eu"]
    datadog_agent_host: str
    prometheus_host: str
    prometheus_port: int
    metric_export_interval_ms: int
    logs_schedule_delay_ms: int
    traces_schedule_delay_ms: int
    export_timeout_ms: int
    attribute_value_length_limit: int
    attribute_count_limit: int
    pseudonym_key: str
    redact_keys: Names
    safe_keys: Names
    redact_ip_addresses: bool
    phone_regions: Names
    redact_patterns: Mapping[str, str]
    redaction_hook: Callable[[str, Any], Any]
    metric_labels: Names
    metric_cardinality_limit: int
    capture_logging: bool
    flush_on_sigterm: bool
    store_path: str
    store_prefix: str
    store_buffer: int
    console_format: Literal["compact", "json"]
    slo_files: Names
    latency_buckets_ms: Union[str, Sequence[float]]
    alertmanager_url: str
    alert_webhook_url: str
    dashboard_token: str
    strict: bool
    disabled: bool


#: Settings fields that are not options: set by avalo-otel itself.
INTERNAL_SETTINGS = frozenset({"prometheus_group"})
