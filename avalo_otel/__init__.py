"""avalo-otel: Avalo's observability on OpenTelemetry.

``configure()`` once at start-up (or run under ``opentelemetry-instrument``), then record with
the original design's calls. Everything here works as a cheap no-op when nothing is configured.
"""

from ._configure import Telemetry, configure
from ._operation import AvaloError, Operation
from .conventions import (
    LATENCY_BUCKETS_MS,
    METRIC_NAMES,
    TELEMETRY_ERROR_CODES,
    TELEMETRY_OPERATIONS,
    ActorType,
    Attr,
    Domain,
    ErrorClass,
    Level,
    Operation as Op,
)
from .metrics import flush_metrics, inc_counter, observe_latency, set_gauge
from .settings import ConfigurationError, Settings
from .telemetry import log_error, log_success, log_telemetry, time_operation, trace_operation
from .tracing import (
    Trace,
    TraceContext,
    current_trace,
    end_trace,
    extract_trace_from_headers,
    inject_trace_into_headers,
    start_trace,
)
from .version import __version__

# The reliability layer is imported on first use: an instrumented app that never evaluates SLOs
# or alerts does not pay for YAML parsing and the rule machinery at start-up.
_LAZY = {
    "set_alert_rule": "alerts", "get_alert_rule": "alerts", "list_alert_rules": "alerts",
    "enable_alert_rule": "alerts", "disable_alert_rule": "alerts", "delete_alert_rule": "alerts",
    "get_alert_events": "alerts", "acknowledge_alert": "alerts", "AlertRule": "alerts", "AlertRuleError": "alerts",
    "evaluate_slos": "slo", "load_slos": "slo", "SLOReport": "slo", "SLODefinitionError": "slo",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avalo_otel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "configure", "Telemetry", "Settings", "ConfigurationError",
    "log_telemetry", "log_success", "log_error", "time_operation", "trace_operation",
    "Operation", "AvaloError",
    "inc_counter", "set_gauge", "observe_latency", "flush_metrics",
    "start_trace", "end_trace", "trace_operation", "current_trace", "Trace", "TraceContext",
    "extract_trace_from_headers", "inject_trace_into_headers",
    "Domain", "Level", "ActorType", "Op", "ErrorClass", "Attr",
    "TELEMETRY_OPERATIONS", "TELEMETRY_ERROR_CODES", "METRIC_NAMES", "LATENCY_BUCKETS_MS",
    "__version__", *_LAZY,
]
