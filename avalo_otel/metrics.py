"""Counters, gauges and latency histograms under Avalo's metric names (the original's argument order).

Names of the original design (``METRIC_NAMES``) are used as they are; an unknown name that is
a valid Prometheus name is accepted with a one-time warning; using a name as the wrong kind
(``set_gauge`` on a counter) raises ``TypeError``. Bad values are dropped and counted, never raised.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

from . import _runtime
from .conventions import MetricKind

Labels = Optional[Mapping[str, Any]]


def inc_counter(name: str, labels: Labels = None, *, value: float = 1) -> None:
    """Add ``value`` (default 1) to a counter: ``inc_counter("chat_messages_sent_total", {"domain": "chat"})``."""
    _record(name, MetricKind.COUNTER, value, labels, "add", non_negative=True)


def set_gauge(name: str, value: float, labels: Labels = None) -> None:
    """Set a gauge to its current value: ``set_gauge("active_users", 1250, {"region": "eu-central"})``."""
    _record(name, MetricKind.GAUGE, value, labels, "set", non_negative=False)


def observe_latency(name: str, value_ms: float, labels: Labels = None) -> None:
    """Record a latency in milliseconds into a histogram (buckets suit the SLO thresholds)."""
    _record(name, MetricKind.HISTOGRAM, value_ms, labels, "record", non_negative=True)


def _record(name: str, kind: MetricKind, value: Any, labels: Labels, method: str, *, non_negative: bool) -> None:
    runtime = _runtime.current()
    if runtime is None:
        return
    instrument = runtime.instrument(name, kind)
    if not _finite(value) or (non_negative and value < 0):
        expected = "a non-negative number" if non_negative else "a finite number"
        runtime.invalid("invalid_metric_value", f"{kind.value} {name}: value {value!r} is not {expected}")
        return
    getattr(instrument, method)(value, _attrs(runtime, name, labels))


def flush_metrics(timeout_s: float = 10.0) -> bool:
    """Export metrics now (push exporters), within ``timeout_s`` seconds; Prometheus always
    serves the latest on scrape."""
    from . import _configure

    return _configure.force_flush(timeout_s)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _attrs(runtime: _runtime.Runtime, name: str, labels: Labels) -> Optional[Mapping[str, Any]]:
    if not labels:
        return None
    labels = runtime.allowed_labels(name, labels)
    # Redacted before aggregation, so values that redact alike are one series, not many.
    clean = runtime.redactor.redact_attributes(labels)
    if clean is not None:
        labels = clean
    for value in labels.values():
        if not isinstance(value, (str, bool, int, float)):
            # Label values must be scalars: anything else is stringified rather than lost.
            return {k: v if isinstance(v, (str, bool, int, float)) else str(v) for k, v in labels.items()}
    return labels
