"""The live state behind the public API: tracer, instruments, logger and the event recording path.

``current()`` is what every API call asks first. It is the runtime built by ``configure()``, or,
when the app configured OpenTelemetry itself, one bound to the global providers; with neither it
is ``None`` and the API returns at once (the cheap no-op path).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Mapping, Optional

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, get_logger_provider
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider, get_meter_provider
from opentelemetry.trace import ProxyTracerProvider, NoOpTracerProvider, TracerProvider

from . import _metadata
from . import conventions as c
from .conventions import Attr, Level, MetricKind
from .privacy import Pseudonymizer, Redactor, build_redactor
from .sampling import keep_event
from .settings import Settings, latency_buckets
from .version import __version__

_log = logging.getLogger("avalo_otel")
_SCOPE = "avalo_otel"
_DOMAIN_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_ERROR_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Plain dicts: enum properties cost more than the lookups on this path.
_RANK = {lv: lv.rank for lv in Level}
_SEVERITY = {lv: lv.severity for lv in Level}
_TEXT = {lv: lv.value for lv in Level}
_LEVELS: dict[Any, Level] = {**{lv.value: lv for lv in Level}, "WARNING": Level.WARN, "FATAL": Level.CRITICAL}
#: Distinct values (operation names, error codes, their combinations, metric names) remembered
#: per process. Apps use tens; more means names are built from data (ids, user input). Past the
#: limit values are still checked, but no longer remembered.
CACHE_LIMIT = 2048
#: Unknown names warned about one by one; then one line says the rest go unreported.
_MAX_UNKNOWN_WARNINGS = 100
_unknown_warnings = 0


class Runtime:
    """Instruments and settings for one configuration; the hot path of every API call."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        logger_provider: LoggerProvider,
        redactor: Optional["Redactor"] = None,
        pseudonymize: Optional[Callable[[Any], str]] = None,
    ) -> None:
        self.settings = settings
        self.tracer = tracer_provider.get_tracer(_SCOPE, __version__)
        self.id_generator = getattr(tracer_provider, "id_generator", None)
        self.meter = meter_provider.get_meter(_SCOPE, __version__)
        self.logger = logger_provider.get_logger(_SCOPE, __version__)
        self.min_rank = settings.min_level.rank
        self.rate = settings.sampling_rate
        self.strict = settings.strict
        self.pseudonymize = pseudonymize or Pseudonymizer(settings.pseudonym_key)
        # Events are redacted here, as they are built, rather than again in the log pipeline.
        self.redactor = redactor or build_redactor(settings, self.pseudonymize, lambda rule: None)
        # Repairs made in the privacy stage (lone surrogates, too deep nesting) count as invalid input.
        self.redactor.on_invalid = self.invalid
        self.metadata_cap = _metadata.key_cap(settings.attribute_count_limit)
        self._lock = threading.Lock()
        self._instruments: dict[str, tuple[MetricKind, Any]] = {}
        self._op_attrs: dict[tuple, dict[str, str]] = {}
        self._lat_attrs: dict[tuple, dict[str, str]] = {}
        self._allowed: dict[str, frozenset[str]] = {}
        self._invalid = self.meter.create_counter(
            "avalo_otel_invalid_input_total", description="Telemetry input that was malformed or dropped"
        )
        self._ops = self.instrument("avalo_operations_total", MetricKind.COUNTER)
        self._latency = self.instrument("avalo_operation_latency_ms", MetricKind.HISTOGRAM)

    # -- instruments -------------------------------------------------------------------------
    def instrument(self, name: str, kind: MetricKind) -> Any:
        found = self._instruments.get(name)
        if found is not None and found[0] is kind:
            return found[1]
        with self._lock:
            found = self._instruments.get(name)
            if found is None:
                if len(self._instruments) >= CACHE_LIMIT and name not in c.METRICS:
                    # Metric names built from data: each would be a new series family forever.
                    over_limit("metric names", dropped=True)
                    return _DROPPED[kind]
                made = self._create(name, kind)
                self._instruments[name] = (kind, made)
                return made
        raise TypeError(f"metric {name!r} is a {found[0].value}, not a {kind.value}")

    def _create(self, name: str, kind: MetricKind) -> Any:
        if not isinstance(name, str) or not c.METRIC_NAME_PATTERN.match(name):
            raise ValueError(f"metric name {name!r} is not a valid Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*)")
        spec = c.METRICS.get(name)
        if spec is None:
            self.unknown("metric", name)
            description = ""
        elif spec.kind is not kind:
            raise TypeError(f"metric {name!r} is a {spec.kind.value}, not a {kind.value}")
        else:
            description = spec.description
        # No OTel unit: Avalo's names carry theirs (…_ms), and a unit would be appended again on /metrics.
        if kind is MetricKind.COUNTER:
            return self.meter.create_counter(name, description=description)
        if kind is MetricKind.GAUGE:
            return self.meter.create_gauge(name, description=description)
        buckets = latency_buckets(self.settings) if name.endswith("_ms") else None
        return self.meter.create_histogram(
            name, description=description, explicit_bucket_boundaries_advisory=buckets
        )

    def allowed_labels(self, name: str, labels: Mapping[str, Any]) -> Mapping[str, Any]:
        """Only the label keys allowed for this metric: free-form labels never reach a backend."""
        spec = c.METRICS.get(name)
        if spec is None:
            return labels  # custom metric: the global allow-list (metric view) applies
        allowed = self._allowed.get(name)
        if allowed is None:
            allowed = self._allowed.setdefault(name, frozenset(spec.labels) | frozenset(self.settings.metric_labels))
        if labels.keys() <= allowed:
            return labels
        dropped = sorted(set(labels) - allowed)
        self.invalid("label_not_allowed", f"metric {name}: labels {dropped} are not allowed and were dropped "
                                          "(allow them with AVALO_OTEL_METRIC_LABELS)")
        return {k: v for k, v in labels.items() if k in allowed}

    # -- input problems ----------------------------------------------------------------------
    def unknown(self, what: str, value: str) -> None:
        message = f"avalo-otel: unknown {what} {value!r} (accepted; add it to the conventions to silence this)"
        if self.strict:
            raise ValueError(message)
        global _unknown_warnings
        _unknown_warnings += 1
        if _unknown_warnings <= _MAX_UNKNOWN_WARNINGS:
            _log.warning(message)
        elif _unknown_warnings == _MAX_UNKNOWN_WARNINGS + 1:
            _log.warning("avalo-otel: more than %d unknown names; further ones are accepted without a warning",
                         _MAX_UNKNOWN_WARNINGS)

    def invalid(self, reason: str, message: str) -> None:
        """Count a dropped or repaired input and say so once per reason."""
        self._invalid.add(1, {"reason": reason})
        if reason not in _warned:
            _warned.add(reason)
            _log.warning("avalo-otel: %s", message)

    # -- the telemetry event -----------------------------------------------------------------
    def record(
        self,
        domain: str,
        operation: str,
        level: Level,
        success: bool,
        error_code: Optional[str],
        latency_ms: Optional[float],
        actor_type: Optional[str],
        actor_id: Any,
        session_id: Any,
        metadata: Optional[Mapping[str, Any]],
        context: Optional[Context] = None,
    ) -> None:
        key = (domain, operation, success, error_code)
        attrs = self._op_attrs.get(key)
        if attrs is None:
            attrs = {
                "domain": domain,
                "operation": operation,
                "outcome": c.outcome_of(success, error_code),
                "error_code": error_code or "",
            }
            remember(self._op_attrs, key, attrs, "label sets")
        self._ops.add(1, attrs)
        if latency_ms is not None:
            lat_key = (domain, operation)
            lat_attrs = self._lat_attrs.get(lat_key)
            if lat_attrs is None:
                lat_attrs = {"domain": domain, "operation": operation}
                remember(self._lat_attrs, lat_key, lat_attrs, "label sets")
            self._latency.record(latency_ms, lat_attrs)

        rank = _RANK[level]
        if rank < self.min_rank:
            return
        if self.rate < 1.0:
            span_ctx = trace.get_current_span(context).get_span_context()
            if not keep_event(self.rate, rank, success, domain, span_ctx):
                return
        # Metadata first: when an attribute count limit applies, the SDK evicts the oldest keys,
        # and the event's own fields must be the ones that survive.
        attributes: dict[str, Any] = {}
        if metadata:
            try:
                attributes = _metadata.flatten(metadata, self.metadata_cap, self.invalid)
                clean = self.redactor.redact_attributes(attributes)
            except Exception as exc:  # noqa: BLE001 - a metadata object that fails to be read
                attributes, clean = {}, None
                self.invalid("unreadable_metadata", f"metadata could not be read ({type(exc).__name__}); "
                                                    "the event is recorded without it")
            if clean is not None:
                attributes = clean
        attributes[Attr.DOMAIN] = domain
        attributes[Attr.OPERATION] = operation
        attributes[Attr.SUCCESS] = success
        if error_code is not None:
            attributes[Attr.ERROR_TYPE] = error_code
            attributes[Attr.ERROR_CLASS] = c.error_class(error_code).value
        if latency_ms is not None:
            attributes[Attr.LATENCY_MS] = latency_ms
        if actor_type is not None:
            attributes[Attr.ACTOR_TYPE] = self.redactor.redact_text(str(actor_type))
        if actor_id is not None:
            attributes[Attr.ACTOR_ID] = self.pseudonymize(actor_id)
        if session_id is not None:
            attributes[Attr.SESSION_ID] = self.pseudonymize(session_id)
        self.logger.emit(
            timestamp=time.time_ns(),
            context=context,
            severity_number=_SEVERITY[level],
            severity_text=_TEXT[level],
            body=operation,
            attributes=attributes,
        )


_warned: set[str] = set()


# -- the active runtime ------------------------------------------------------------------------
_active: Optional[Runtime] = None
_from_globals: Optional[tuple[object, Runtime]] = None
_seen_names: dict[tuple[str, str], None] = {}
#: The providers configure() installed as OTel globals, by id (held, so ids are never reused).
owned: dict[int, object] = {}


def is_owned(provider: object) -> bool:
    return id(provider) in owned


def current() -> Optional[Runtime]:
    """The runtime the API records into, or ``None`` when nothing is configured (no-op)."""
    if _active is not None:
        return _active
    provider = trace.get_tracer_provider()
    if isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider)) or is_owned(provider):
        # A provider of ours left global after shutdown() is not the app's own configuration.
        return None
    return _globals_runtime(provider)


def _globals_runtime(provider: object) -> Runtime:
    global _from_globals
    cached = _from_globals
    if cached is not None and cached[0] is provider:
        return cached[1]
    runtime = Runtime(Settings.load(), provider, get_meter_provider(), get_logger_provider())  # type: ignore[arg-type]
    _from_globals = (provider, runtime)
    return runtime


def install(runtime: Optional[Runtime]) -> None:
    global _active
    _active = runtime


# -- input validation, cached per distinct value so the hot path pays one dict lookup -----------
def level_of(level: Any) -> Level:
    found = _LEVELS.get(level)
    if found is None and isinstance(level, str):
        found = _LEVELS.get(level.upper())
    if found is None:
        raise ValueError(f"unknown level {level!r}: expected one of {', '.join(lv.value for lv in Level)}")
    return found


def check_names(domain: Any, operation: Any) -> None:
    """Reject malformed domain/operation names; accept unknown well-formed ones with a warning."""
    key = (domain, operation)
    if key in _seen_names:
        return
    if not isinstance(domain, str) or not _DOMAIN_PATTERN.match(domain):
        raise ValueError(f"domain {domain!r} is malformed: expected a lower-case word such as 'chat'")
    if not isinstance(operation, str) or not c.OPERATION_PATTERN.match(operation):
        raise ValueError(f"operation {operation!r} is malformed: expected 'domain.verb' such as 'chat.send'")
    runtime = current()
    if runtime is not None:
        if domain not in c.Domain._value2member_map_:
            runtime.unknown("domain", domain)
        if operation not in c.KNOWN_OPERATIONS:
            runtime.unknown("operation", operation)
    remember(_seen_names, key, None, "operation names")


def check_error_code(code: Any) -> Optional[str]:
    if code is None:
        return None
    if code in c.ERROR_CODES:
        return code
    if not isinstance(code, str) or not _ERROR_CODE_PATTERN.match(code):
        raise ValueError(f"error code {code!r} is malformed: expected UPPER_SNAKE_CASE such as 'TIMEOUT'")
    runtime = current()
    if runtime is not None and code not in _seen_codes:
        runtime.unknown("error code (counted as server-side)", code)
        remember(_seen_codes, code, None, "error codes")
    return code


_seen_codes: dict[str, None] = {}


def remember(cache: dict, key: Any, value: Any, what: str) -> bool:
    """Put ``key`` in a cache keyed by values the app supplies, unless it is full (then count
    the miss and warn once): False when it was not remembered."""
    if len(cache) < CACHE_LIMIT:
        cache[key] = value
        return True
    over_limit(what)
    return False


def over_limit(what: str, dropped: bool = False) -> None:
    runtime = current()
    if runtime is not None:
        fate = "dropped" if dropped else "still recorded but no longer remembered or warned about"
        runtime.invalid(
            "too_many_distinct_values",
            f"more than {CACHE_LIMIT} distinct {what}: they look built from data (ids, user input); "
            f"further ones are {fate} (counted in avalo_otel_invalid_input_total"
            "{reason=\"too_many_distinct_values\"})",
        )


class _DroppedInstrument:
    """What an instrument call gets past the metric-name limit: the value is counted as dropped."""

    def add(self, amount: Any, attributes: Any = None) -> None:
        return None

    set = record = add


_DROPPED: dict[MetricKind, Any] = {kind: _DroppedInstrument() for kind in MetricKind}


def reset_caches() -> None:
    """Forget warnings already given (a new configuration warns afresh)."""
    global _unknown_warnings
    _seen_names.clear()
    _seen_codes.clear()
    _warned.clear()
    _unknown_warnings = 0

