"""Traces in the original design's shape: ``start_trace``/``end_trace``, parents, header propagation.

Propagation is W3C Trace Context (``traceparent``/``tracestate``). The original design's
``x-trace-id`` header is read when no valid ``traceparent`` is present, and written beside it,
so services not yet on OTel stay correlated. Malformed headers never raise: they start a new trace.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from typing import Any, Iterable, Mapping, Optional, Union

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.status import Status, StatusCode

from . import _runtime
from .conventions import Attr
from .sampling import reemit, wanted

_W3C = TraceContextTextMapPropagator()
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
LEGACY_TRACE_HEADER = "x-trace-id"
LEGACY_SPAN_HEADERS = ("x-span-id", "x-parent-span-id")


class TraceContext:
    """Where a trace stands: ids as lower-case hex, usable as ``parent=`` anywhere in the API."""

    __slots__ = ("span_context",)

    def __init__(self, span_context: SpanContext) -> None:
        self.span_context = span_context

    @property
    def trace_id(self) -> str:
        return format(self.span_context.trace_id, "032x")

    @property
    def span_id(self) -> str:
        return format(self.span_context.span_id, "016x")

    @property
    def sampled(self) -> bool:
        return bool(self.span_context.trace_flags.sampled)

    @property
    def context(self) -> Context:
        """An OTel ``Context`` with this trace as the parent span."""
        return trace.set_span_in_context(NonRecordingSpan(self.span_context))

    def __repr__(self) -> str:
        return f"TraceContext(trace_id={self.trace_id}, span_id={self.span_id}, sampled={self.sampled})"


class Trace(TraceContext):
    """A span started by :func:`start_trace`; end it with :func:`end_trace` (or ``trace.end()``)."""

    __slots__ = ("span", "operation", "_ended", "_parent", "_start_ns")

    def __init__(self, span: Span, operation: str, parent: Optional[Context] = None, start_ns: int = 0) -> None:
        super().__init__(span.get_span_context())
        self.span = span
        self.operation = operation
        self._ended = False
        self._parent = parent  # kept to re-emit the span, if it was sampled out and then fails
        self._start_ns = start_ns

    @property
    def context(self) -> Context:
        return trace.set_span_in_context(self.span)

    def end(self, success: bool = True, error_code: Optional[str] = None) -> None:
        end_trace(self, success, error_code)


Parent = Union[TraceContext, SpanContext, Context, None]


def parent_context(parent: Parent) -> Optional[Context]:
    """The OTel ``Context`` for ``parent=``; ``None`` means the current context."""
    if parent is None or isinstance(parent, Context):
        return parent
    if isinstance(parent, Trace):
        return trace.set_span_in_context(parent.span)
    if isinstance(parent, TraceContext):
        return parent.context
    if isinstance(parent, SpanContext):
        return trace.set_span_in_context(NonRecordingSpan(parent))
    raise TypeError(f"parent must be a TraceContext, SpanContext or Context, not {type(parent).__name__}")


def start_trace(
    operation: str, parent: Parent = None, *, attributes: Optional[Mapping[str, Any]] = None
) -> Trace:
    """Start a span named after ``operation`` (not made current: pass it on as ``parent=``)."""
    runtime = _runtime.current()
    tracer = runtime.tracer if runtime is not None else trace.get_tracer("avalo_otel")
    # The caller's attributes first, capped: past the SDK's count limit it would evict the oldest
    # (the operation) with a warning per attribute.
    attrs = {**_capped(runtime, attributes), Attr.OPERATION: operation} if attributes else {Attr.OPERATION: operation}
    ctx = parent_context(parent) or context_api.get_current()
    start_ns = time.time_ns()
    span = tracer.start_span(operation, context=ctx, attributes=attrs, start_time=start_ns)
    return Trace(span, operation, ctx, start_ns)


def _capped(runtime: Optional[_runtime.Runtime], attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    cap = runtime.metadata_cap if runtime is not None else None
    if cap is None or len(attributes) <= cap:
        return attributes
    runtime.invalid("too_many_attributes", f"start_trace got more than {cap} attributes: the first {cap} are kept "
                                           "(raise OTEL_ATTRIBUTE_COUNT_LIMIT to keep more)")
    return dict(itertools.islice(attributes.items(), cap))


def end_trace(handle: Trace, success: bool = True, error_code: Optional[str] = None) -> None:
    """End a trace once; a failure sets the span's error status and ``error.type``."""
    if handle._ended:
        return
    code = _runtime.check_error_code(error_code)  # a malformed code raises, and the span stays open
    handle._ended = True
    span = handle.span
    runtime = _runtime.current()
    dropped = span.get_span_context()
    if runtime is not None and not span.is_recording() and (not success or wanted(dropped.span_id)):
        # Sampled out at the start; kept now (a failure, or the parent of a kept child).
        attrs = {Attr.OPERATION: handle.operation, Attr.SUCCESS: success}
        span = handle.span = reemit(runtime.tracer, runtime.id_generator, handle.operation, handle._parent,
                                    dropped, handle._start_ns, attrs)
    mark_outcome(span, success, code)
    span.end()


def mark_outcome(span: Span, success: bool, error_code: Optional[str], exc: Optional[BaseException] = None) -> None:
    if not span.is_recording():
        return
    span.set_attribute(Attr.SUCCESS, success)
    if success:
        return
    code = error_code or "UNKNOWN"
    span.set_attribute(Attr.ERROR_TYPE, code)
    if exc is not None:
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, code))


def current_trace() -> Optional[TraceContext]:
    """The active span's context, or ``None`` outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return TraceContext(ctx) if ctx.is_valid else None


# -- headers -----------------------------------------------------------------------------------
Headers = Union[Mapping[str, Any], Iterable[tuple[Any, Any]]]


def _normalise(headers: Headers) -> dict[str, str]:
    """Lower-cased keys, first value of lists, bytes decoded (ASGI sends ``[(b"k", b"v")]``)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for key, value in items:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(key, str) and isinstance(value, str):
            out.setdefault(key.lower(), value.strip())
    return out


def extract_trace_from_headers(headers: Optional[Headers]) -> Optional[TraceContext]:
    """The remote parent carried by request headers, or ``None`` (then a new trace starts)."""
    try:
        carrier = _normalise(headers or {})
    except (TypeError, ValueError, AttributeError):
        _count_malformed("headers are not a mapping or list of pairs")
        return None
    if "traceparent" in carrier:
        ctx = trace.get_current_span(_W3C.extract(carrier)).get_span_context()
        if ctx.is_valid:
            return TraceContext(ctx)
        _count_malformed("malformed traceparent header")
    legacy = carrier.get(LEGACY_TRACE_HEADER)
    if legacy is None:
        return None
    trace_hex = legacy.replace("-", "").lower()
    if not _HEX32.match(trace_hex) or int(trace_hex, 16) == 0:
        _count_malformed("malformed x-trace-id header")
        return None
    span_hex = next((carrier[h].lower() for h in LEGACY_SPAN_HEADERS if h in carrier), "")
    # The original design sent no span id: an unknown parent gets a random one so the trace joins.
    span_id = int(span_hex, 16) if _HEX16.match(span_hex) and int(span_hex, 16) else secrets.randbits(64) or 1
    return TraceContext(SpanContext(int(trace_hex, 16), span_id, is_remote=True,
                                    trace_flags=TraceFlags(TraceFlags.SAMPLED)))


def inject_trace_into_headers(
    trace_ctx: Optional[TraceContext] = None, headers: Optional[dict[str, str]] = None
) -> dict[str, str]:
    """Headers for an outgoing request: ``traceparent``, ``tracestate`` and ``x-trace-id``."""
    out = headers if headers is not None else {}
    ctx = trace_ctx.span_context if trace_ctx is not None else trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return out
    _W3C.inject(out, context=trace.set_span_in_context(NonRecordingSpan(ctx)))
    out[LEGACY_TRACE_HEADER] = format(ctx.trace_id, "032x")
    return out


def _count_malformed(message: str) -> None:
    runtime = _runtime.current()
    if runtime is not None:
        runtime.invalid("malformed_trace_header", f"{message}; a new trace is started")


__all__ = [
    "Trace", "TraceContext", "TraceState", "start_trace", "end_trace", "current_trace",
    "extract_trace_from_headers", "inject_trace_into_headers",
]
