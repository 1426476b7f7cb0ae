"""Every setting of avalo-otel, read from keyword arguments over the environment, in this one place.

Standard ``OTEL_*`` variables are used wherever OpenTelemetry defines one; ``AVALO_OTEL_*`` names
the settings that are ours. Bad values fail at once with a message naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlsplit

from .conventions import Level


class ConfigurationError(ValueError):
    """A setting has a value avalo-otel cannot use; the message names the setting and the value."""


TRACES_EXPORTERS = frozenset({"otlp", "console", "sqlite", "none"})
METRICS_EXPORTERS = frozenset({"otlp", "prometheus", "console", "sqlite", "none"})
LOGS_EXPORTERS = frozenset({"otlp", "console", "sqlite", "none"})
#: Where installed packages register more exporters (e.g. ``firestore``), by signal.
EXPORTER_GROUPS = {
    "traces": "opentelemetry_traces_exporter",
    "metrics": "opentelemetry_metrics_exporter",
    "logs": "opentelemetry_logs_exporter",
}
PRESETS = ("none", "datadog", "newrelic")
PROTOCOLS = ("grpc", "http/protobuf")
TEMPORALITIES = ("cumulative", "delta")
NEWRELIC_ENDPOINTS = {"us": "https://otlp.nr-data.net:4318", "eu": "https://otlp.eu01.nr-data.net:4318"}
_RATIO_SAMPLERS = ("avalo", "traceidratio", "parentbased_traceidratio")
#: Regions whose national phone formats (no "+") are recognised: the app's markets (Poland first,
#: the EU countries and the UK and US it serves) and Ukraine, whose people are Poland's largest
#: foreign community and keep their Ukrainian numbers.
DEFAULT_PHONE_REGIONS = ("PL", "DE", "GB", "US", "FR", "UA")
#: Names the directory where pre-fork workers leave their metrics for the process serving /metrics.
PROMETHEUS_GROUP_ENV = "AVALO_OTEL_PROMETHEUS_GROUP"


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build it with :meth:`load`; secrets never appear in ``repr``."""

    service_name: str = "avalo"
    environment: str | None = None
    min_level: Level = Level.INFO
    sampling_rate: float = 1.0
    traces_exporters: tuple[str, ...] = ()
    metrics_exporters: tuple[str, ...] = ("prometheus",)
    logs_exporters: tuple[str, ...] = ()
    preset: str = "none"
    otlp_endpoint: str | None = None
    otlp_protocol: str = "grpc"
    otlp_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    otlp_insecure: bool | None = None
    metrics_temporality: str = "cumulative"
    newrelic_license_key: str | None = field(default=None, repr=False)
    newrelic_region: str = "us"
    datadog_agent_host: str = "localhost"
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    #: Set by avalo-otel, not by you: the serving process's worker directory, inherited by its children
    #: (pre-fork workers) so their metrics are merged into its /metrics. Not compared: it is plumbing.
    prometheus_group: str | None = field(default=None, compare=False, repr=False)
    metric_export_interval_ms: int = 60_000
    #: Longest wait before a partial batch is exported (the OTel defaults: logs 1 s, spans 5 s).
    #: The store exporters' writer honours the shorter of the two it serves.
    logs_schedule_delay_ms: int = 1_000
    traces_schedule_delay_ms: int = 5_000
    export_timeout_ms: int = 10_000
    attribute_value_length_limit: int | None = None
    attribute_count_limit: int | None = None
    pseudonym_key: str | None = field(default=None, repr=False)
    #: Extra keys whose values are replaced whole (rule "custom"). Both lists match a key exactly or
    #: as its last tokens, as the built-in rules do: "display_name" also covers "user.display_name"
    #: and "displayName"; between the two lists the more specific entry wins (exact beats suffix).
    redact_keys: tuple[str, ...] = ()
    #: Keys exempt from the key rules (their string values are still scanned). A suffix entry does
    #: not exempt person ids from pseudonymisation ("id" leaves "user_id" pseudonymised).
    safe_keys: tuple[str, ...] = ()
    redact_ip_addresses: bool = True
    #: Regions (ISO 3166 codes) whose national phone formats are redacted in text (``600 123 456``,
    #: ``(415) 555-0132``); numbers with ``+`` or ``00`` are redacted whatever the region. ``none``: off.
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    redact_patterns: Mapping[str, str] = field(default_factory=dict)
    redaction_hook: Callable[[str, Any], Any] | None = None
    metric_labels: tuple[str, ...] = ()
    metric_cardinality_limit: int = 2000
    capture_logging: bool = False
    flush_on_sigterm: bool = True
    store_path: str = "avalo-telemetry.db"
    store_prefix: str = ""
    store_buffer: int = 10_000
    console_format: str = "compact"
    #: SLO definition files added to the six built-in SLOs (same format as slo/slos.yaml).
    slo_files: tuple[str, ...] = ()
    #: Latency bucket boundaries (ms) added to the built-in ones: a latency SLO's threshold must be one.
    latency_buckets_ms: tuple[float, ...] = ()
    #: Where the alert evaluator sends alerts: an Alertmanager (its /api/v2/alerts) and/or a webhook
    #: receiving Alertmanager's webhook payload.
    alertmanager_url: str | None = None
    alert_webhook_url: str | None = None
    #: The admin dashboard's token (``avalo-otel dashboard``); none: the CLI generates one and prints it once.
    dashboard_token: str | None = field(default=None, repr=False)
    strict: bool = False
    disabled: bool = False

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Keyword arguments first, then the environment, then the defaults; validated."""
        env = os.environ if environ is None else environ
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, (env_names, parse) in _SOURCES.items():
            if name in overrides and overrides[name] is not None:
                values[name] = _parse(parse, overrides[name], name)
                continue
            for var in env_names:
                raw = env.get(var)
                if raw is not None and raw.strip() != "":
                    values[name] = _parse(parse, raw, var)
                    break
        if "sampling_rate" not in values and env.get("OTEL_TRACES_SAMPLER", "") in _RATIO_SAMPLERS:
            arg = env.get("OTEL_TRACES_SAMPLER_ARG")
            if arg:
                values["sampling_rate"] = _parse(_ratio, arg, "OTEL_TRACES_SAMPLER_ARG")
        return cls(**values)._with_preset(explicit=set(values))

    def _with_preset(self, explicit: set[str]) -> "Settings":
        """Fill in what a preset implies, without overriding anything set explicitly."""
        changes: dict[str, Any] = {}
        if self.preset == "newrelic":
            if not self.newrelic_license_key:
                raise ConfigurationError(
                    "AVALO_OTEL_PRESET=newrelic needs the license key: set NEW_RELIC_LICENSE_KEY"
                )
            region = "eu" if self.newrelic_license_key.lower().startswith("eu") else self.newrelic_region
            changes.update(
                otlp_endpoint=self.otlp_endpoint or NEWRELIC_ENDPOINTS[region],
                otlp_protocol=self.otlp_protocol if "otlp_protocol" in explicit else "http/protobuf",
                metrics_temporality=self.metrics_temporality if "metrics_temporality" in explicit else "delta",
                otlp_headers={**self.otlp_headers, "api-key": self.newrelic_license_key},
                attribute_value_length_limit=self.attribute_value_length_limit or 4095,
                attribute_count_limit=self.attribute_count_limit or 64,
                newrelic_region=region,
            )
        elif self.preset == "datadog":
            # The local Datadog Agent's OTLP ingest: 4317 gRPC, 4318 HTTP; it wants delta sums.
            host = self.datadog_agent_host
            port = 4318 if self.otlp_protocol == "http/protobuf" else 4317
            changes.update(
                otlp_endpoint=self.otlp_endpoint or f"http://{host}:{port}",
                metrics_temporality=self.metrics_temporality if "metrics_temporality" in explicit else "delta",
            )
        settings = dataclasses.replace(self, **changes) if changes else self
        wants_otlp = settings.otlp_endpoint is not None or settings.preset != "none"
        defaults: dict[str, Any] = {}
        for name in ("traces_exporters", "logs_exporters"):
            if wants_otlp and name not in explicit:
                defaults[name] = ("otlp",)
        if wants_otlp and "metrics_exporters" not in explicit:
            defaults["metrics_exporters"] = (*settings.metrics_exporters, "otlp")
        return dataclasses.replace(settings, **defaults) if defaults else settings

    def describe(self) -> dict[str, Any]:
        """The settings as a dict for display, with secrets masked."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["otlp_headers"] = {k: "***" for k in self.otlp_headers}
        out["newrelic_license_key"] = "***" if self.newrelic_license_key else None
        out["pseudonym_key"] = "***" if self.pseudonym_key else None
        out["dashboard_token"] = "***" if self.dashboard_token else None
        for name in ("alertmanager_url", "alert_webhook_url"):  # webhook paths often carry a token
            parts = urlsplit(getattr(self, name) or "")
            port = f":{parts.port}" if parts.port else ""
            out[name] = f"{parts.scheme}://{parts.hostname}{port}/***" if parts.hostname else None
        out["min_level"] = self.min_level.value
        return out


def _parse(parse: Callable[[Any], Any], raw: Any, source: str) -> Any:
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{source}={_safe(raw, source)}: {exc}") from None


def _safe(raw: Any, source: str) -> str:
    lowered = source.lower()
    if any(s in lowered for s in ("key", "header", "secret", "token")):
        return "'***'"
    return repr(raw)


def _ratio(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number between 0 and 1")
    return value


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _int_in(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        try:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def installed_exporters(signal: str) -> frozenset[str]:
    """Exporter names other packages register for a signal (OTel's entry-point groups)."""
    from importlib.metadata import entry_points

    return frozenset(ep.name for ep in entry_points(group=EXPORTER_GROUPS[signal]))


def _exporters(builtin: frozenset[str], signal: str) -> Callable[[Any], tuple[str, ...]]:
    def parse(raw: Any) -> tuple[str, ...]:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        names = tuple(dict.fromkeys(str(i).strip().lower() for i in items if str(i).strip()))
        unknown = [n for n in names if n not in builtin]
        allowed = builtin | installed_exporters(signal) if unknown else builtin
        bad = [n for n in names if n not in allowed]
        if bad:
            raise ValueError(f"unknown exporter {', '.join(bad)}; expected any of {', '.join(sorted(allowed))}")
        return tuple(n for n in names if n != "none")

    return parse


def _level(raw: Any) -> Level:
    text = str(raw).strip().upper()
    text = {"WARNING": "WARN", "FATAL": "CRITICAL"}.get(text, text)
    try:
        return Level(text)
    except ValueError:
        raise ValueError(f"expected one of {', '.join(lv.value for lv in Level)}") from None


def _endpoint(raw: Any) -> str:
    value = str(raw).strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    return value.rstrip("/")


def _headers(raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k).strip().lower(): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for item in str(raw).split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("expected comma-separated key=value pairs (W3C baggage format)")
        out[unquote(key.strip()).lower()] = unquote(value.strip())
    return out


def _text(raw: Any) -> str:
    value = str(raw).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _temporality(raw: Any) -> str:
    value = str(raw).strip().lower()
    # OTel's "lowmemory" is delta for counters and histograms: what we record is that.
    return _choice(TEMPORALITIES)("delta" if value == "lowmemory" else value)


def _prefix(raw: Any) -> str:
    import re

    value = str(raw).strip()
    if value and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", value):
        raise ValueError("a collection prefix is letters, digits and underscores, starting with a letter")
    return value


def _names(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))


def _regions(raw: Any) -> tuple[str, ...]:
    import phonenumbers

    regions = tuple(r.upper() for r in _names(raw) if r.lower() != "none")  # "none": national formats off
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"unknown phone region {', '.join(unknown)} (ISO 3166 codes such as PL, DE, GB)")
    return regions


def _bounds(raw: Any) -> tuple[float, ...]:
    values = []
    for item in _names(raw):
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"{item!r} is not a number of milliseconds") from None
        if not 0 < value < float("inf"):
            raise ValueError(f"bucket boundary {item!r} must be a positive finite number of milliseconds")
        values.append(value)
    return tuple(sorted(set(values)))


def latency_buckets(settings: "Settings") -> tuple[float, ...]:
    """Every latency histogram's bucket boundaries: the built-in ones plus the configured extras."""
    from .conventions import LATENCY_BUCKETS_MS

    return tuple(sorted(set(LATENCY_BUCKETS_MS) | set(settings.latency_buckets_ms)))


def _patterns(raw: Any) -> dict[str, str]:
    import re

    if not isinstance(raw, Mapping):
        raise ValueError("expected a mapping of rule name to regular expression")
    for rule, pattern in raw.items():
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ValueError(f"rule {rule!r}: not a valid regular expression ({exc})") from None
    return {str(k): str(v) for k, v in raw.items()}


def _hook(raw: Any) -> Callable[[str, Any], Any]:
    if not callable(raw):
        raise ValueError("expected a callable (key, value) -> value")
    return raw


# setting → (environment variables, most specific first; parser). No variable: keyword only.
_SOURCES: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "service_name": (("OTEL_SERVICE_NAME",), _text),
    "environment": (("AVALO_OTEL_ENVIRONMENT",), _text),
    "min_level": (("AVALO_OTEL_MIN_LEVEL",), _level),
    "sampling_rate": (("AVALO_OTEL_SAMPLING_RATE",), _ratio),
    "traces_exporters": (("OTEL_TRACES_EXPORTER",), _exporters(TRACES_EXPORTERS, "traces")),
    "metrics_exporters": (("OTEL_METRICS_EXPORTER",), _exporters(METRICS_EXPORTERS, "metrics")),
    "logs_exporters": (("OTEL_LOGS_EXPORTER",), _exporters(LOGS_EXPORTERS, "logs")),
    "store_path": (("AVALO_OTEL_STORE_PATH",), _text),
    "store_prefix": (("AVALO_OTEL_STORE_PREFIX",), _prefix),
    "store_buffer": (("AVALO_OTEL_STORE_BUFFER",), _int_in(1, 10_000_000)),
    "preset": (("AVALO_OTEL_PRESET",), _choice(PRESETS)),
    "otlp_endpoint": (("OTEL_EXPORTER_OTLP_ENDPOINT",), _endpoint),
    "otlp_protocol": (("OTEL_EXPORTER_OTLP_PROTOCOL",), _choice(PROTOCOLS)),
    "otlp_headers": (("OTEL_EXPORTER_OTLP_HEADERS",), _headers),
    "otlp_insecure": (("OTEL_EXPORTER_OTLP_INSECURE",), _bool),
    "metrics_temporality": (("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",), _temporality),
    "newrelic_license_key": (("NEW_RELIC_LICENSE_KEY",), _text),
    "newrelic_region": (("AVALO_OTEL_NEWRELIC_REGION",), _choice(("us", "eu"))),
    "datadog_agent_host": (("DD_AGENT_HOST",), _text),
    "prometheus_host": (("OTEL_EXPORTER_PROMETHEUS_HOST",), _text),
    "prometheus_port": (("OTEL_EXPORTER_PROMETHEUS_PORT",), _int_in(0, 65535)),
    "prometheus_group": ((PROMETHEUS_GROUP_ENV,), _text),
    "metric_export_interval_ms": (("OTEL_METRIC_EXPORT_INTERVAL",), _int_in(1, 86_400_000)),
    "logs_schedule_delay_ms": (("OTEL_BLRP_SCHEDULE_DELAY",), _int_in(1, 86_400_000)),
    "traces_schedule_delay_ms": (("OTEL_BSP_SCHEDULE_DELAY",), _int_in(1, 86_400_000)),
    "export_timeout_ms": (("OTEL_EXPORTER_OTLP_TIMEOUT",), _int_in(1, 600_000)),
    "attribute_value_length_limit": (("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",), _int_in(1, 1 << 30)),
    "attribute_count_limit": (("OTEL_ATTRIBUTE_COUNT_LIMIT",), _int_in(1, 1 << 20)),
    "pseudonym_key": (("AVALO_OTEL_PSEUDONYM_KEY",), _text),
    "console_format": (("AVALO_OTEL_CONSOLE_FORMAT",), _choice(("compact", "json"))),
    "redact_keys": (("AVALO_OTEL_REDACT_KEYS",), _names),
    "safe_keys": (("AVALO_OTEL_SAFE_KEYS",), _names),
    "redact_ip_addresses": (("AVALO_OTEL_REDACT_IPS",), _bool),
    "phone_regions": (("AVALO_OTEL_PHONE_REGIONS",), _regions),
    "redact_patterns": ((), _patterns),
    "redaction_hook": ((), _hook),
    "metric_labels": (("AVALO_OTEL_METRIC_LABELS",), _names),
    "metric_cardinality_limit": (("AVALO_OTEL_METRIC_CARDINALITY_LIMIT",), _int_in(1, 1_000_000)),
    "capture_logging": (("AVALO_OTEL_CAPTURE_LOGGING",), _bool),
    "flush_on_sigterm": (("AVALO_OTEL_FLUSH_ON_SIGTERM",), _bool),
    "slo_files": (("AVALO_OTEL_SLO_FILES",), _names),
    "latency_buckets_ms": (("AVALO_OTEL_LATENCY_BUCKETS_MS",), _bounds),
    "alertmanager_url": (("AVALO_OTEL_ALERTMANAGER_URL",), _endpoint),
    "alert_webhook_url": (("AVALO_OTEL_ALERT_WEBHOOK_URL",), _endpoint),
    "dashboard_token": (("AVALO_OTEL_DASHBOARD_TOKEN",), _text),
    "strict": (("AVALO_OTEL_STRICT",), _bool),
    "disabled": (("OTEL_SDK_DISABLED",), _bool),
}
