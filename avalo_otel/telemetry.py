"""The original design's telemetry calls in Python style.

Each event becomes one OTel log record (correlated with the current span) and two never-sampled
metrics: ``avalo_operations_total{domain,operation,outcome,error_code}`` and
``avalo_operation_latency_ms{domain,operation}``. With nothing configured every call is a no-op.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional, TypeVar, overload

from . import _runtime
from ._operation import Operation, OperationFactory, recording_failed, run
from .tracing import Parent

T = TypeVar("T")


def log_telemetry(
    domain: str,
    operation: str,
    *,
    level: Any = "INFO",
    success: bool = True,
    actor_type: Optional[str] = None,
    actor_id: Any = None,
    session_id: Any = None,
    error_code: Optional[str] = None,
    latency_ms: Optional[float] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> None:
    """Record one telemetry event (the original ``logTelemetry``).

    Malformed names, levels or error codes raise ``ValueError``; unknown but well-formed ones are
    accepted with a one-time warning. ``actor_id`` and ``session_id`` leave only pseudonymised.
    """
    lvl = _runtime.level_of(level)
    _runtime.check_names(domain, operation)
    code = _runtime.check_error_code(error_code)
    runtime = _runtime.current()
    if runtime is None:
        return
    if latency_ms is not None:
        latency_ms = _latency(runtime, latency_ms)
    try:
        runtime.record(domain, operation, lvl, bool(success) and code is None, code, latency_ms,
                       actor_type, actor_id, session_id, metadata)
    except Exception as error:  # noqa: BLE001 - a bad value is counted, never raised to the app
        recording_failed(runtime, operation, error)


def log_success(domain: str, operation: str, **fields: Any) -> None:
    """A successful event: ``log_success("chat", "chat.send", actor_id=uid, latency_ms=200)``."""
    log_telemetry(domain, operation, success=True, **fields)


def log_error(domain: str, operation: str, error_code: str, **fields: Any) -> None:
    """A failed event; level ``ERROR`` unless given: ``log_error("wallet", "wallet.spend", "TIMEOUT")``."""
    fields.setdefault("level", "ERROR")
    log_telemetry(domain, operation, success=False, error_code=error_code, **fields)


@overload
def time_operation(domain: str, operation: str, fn: None = None, **fields: Any) -> OperationFactory: ...
@overload
def time_operation(domain: str, operation: str, fn: Callable[[], T], **fields: Any) -> T: ...


def time_operation(
    domain: str,
    operation: str,
    fn: Optional[Callable[[], Any]] = None,
    *,
    parent: Parent = None,
    level: Any = None,
    actor_type: Optional[str] = None,
    actor_id: Any = None,
    session_id: Any = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Any:
    """Time an operation: a span, the latency and the outcome as a telemetry event.

    ``time_operation("wallet", "wallet.spend", fn)`` runs ``fn`` now (an ``async def`` gives an
    awaitable); without ``fn`` it is a decorator or a ``with``/``async with`` block.
    """
    _runtime.check_names(domain, operation)
    factory = OperationFactory(domain, operation, True, parent, level, actor_type, actor_id, session_id, metadata)
    return factory if fn is None else run(factory, fn, pass_trace=False)


def trace_operation(
    operation: str,
    fn: Optional[Callable[..., Any]] = None,
    *,
    parent: Parent = None,
    domain: Optional[str] = None,
) -> Any:
    """A span around an operation, no event. ``trace_operation("wallet.spend", fn)`` calls
    ``fn(trace_ctx)`` now, as the original did; without ``fn`` it is a decorator or ``with`` block."""
    _runtime.check_names(domain or operation.split(".", 1)[0], operation)
    factory = OperationFactory(domain, operation, False, parent)
    return factory if fn is None else run(factory, fn, pass_trace=True)


def _latency(runtime: _runtime.Runtime, value: Any) -> Optional[float]:
    try:
        latency = float(value)
    except (TypeError, ValueError):
        latency = float("nan")
    if 0.0 <= latency < math.inf:  # false for NaN too
        return latency
    runtime.invalid("invalid_latency", f"latency_ms={value!r} is not a non-negative number; recorded without it")
    return None


__all__ = ["log_telemetry", "log_success", "log_error", "time_operation", "trace_operation", "Operation"]
