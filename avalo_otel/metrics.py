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
    runtime = _runtime.current()
    if runtime is None:
        return
    counter = runtime.instrument(name, MetricKind.COUNTER)
    if not _finite(value) or value < 0:
        runtime.invalid("invalid_metric_value", f"counter {name}: value {value!r} is not a non-negative number")
        return
    counter.add(value, _attrs(runtime, name, labels))


def set_gauge(name: str, value: float, labels: Labels = None) -> None:
    """Set a gauge to its current value: ``set_gauge("active_users", 1250, {"region": "eu-central"})``."""
    runtime = _runtime.current()
    if runtime is None:
        return
    gauge = runtime.instrument(name, MetricKind.GAUGE)
    if not _finite(value):
        runtime.invalid("invalid_metric_value", f"gauge {name}: value {value!r} is not a finite number")
        return
    gauge.set(value, _attrs(runtime, name, labels))


def observe_latency(name: str, value_ms: float, labels: Labels = None) -> None:
    """Record a latency in milliseconds into a histogram (buckets suit the SLO thresholds)."""
    runtime = _runtime.current()
    if runtime is None:
        return
    histogram = runtime.instrument(name, MetricKind.HISTOGRAM)
    if not _finite(value_ms) or value_ms < 0:
        runtime.invalid("invalid_metric_value", f"histogram {name}: value {value_ms!r} is not a non-negative number")
        return
    histogram.record(value_ms, _attrs(runtime, name, labels))


def flush_metrics(timeout_millis: int = 10_000) -> bool:
    """Export metrics now (push exporters); Prometheus always serves the latest on scrape."""
    from . import _configure

    return _configure.force_flush(timeout_millis)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _attrs(runtime: _runtime.Runtime, name: str, labels: Labels) -> Optional[Mapping[str, Any]]:
    if not labels:
        return None
    labels = runtime.allowed_labels(name, labels)
    for value in labels.values():
        if not isinstance(value, (str, bool, int, float)):
            # Label values must be scalars: anything else is stringified rather than lost.
            return {k: v if isinstance(v, (str, bool, int, float)) else str(v) for k, v in labels.items()}
    return labels
