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

__all__ = [
    "configure", "Telemetry", "Settings", "ConfigurationError",
    "log_telemetry", "log_success", "log_error", "time_operation", "trace_operation",
    "Operation", "AvaloError",
    "inc_counter", "set_gauge", "observe_latency", "flush_metrics",
    "start_trace", "end_trace", "trace_operation", "current_trace", "Trace", "TraceContext",
    "extract_trace_from_headers", "inject_trace_into_headers",
    "Domain", "Level", "ActorType", "Op", "ErrorClass", "Attr",
    "TELEMETRY_OPERATIONS", "TELEMETRY_ERROR_CODES", "METRIC_NAMES", "LATENCY_BUCKETS_MS",
    "__version__",
]
