"""One timed, traced operation: the engine behind ``time_operation`` and ``trace_operation``.

Usable as a context manager (sync and async), as a decorator (sync and async functions) and as
a wrapper that runs a callable at once. An exception marks the operation failed with its error
code and is re-raised unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from typing import Any, Callable, Mapping, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span

from . import _runtime
from .conventions import ERROR_CODES, Attr, Level
from .sampling import reemit, wanted
from .tracing import Parent, TraceContext, mark_outcome, parent_context

_log = logging.getLogger("avalo_otel")


class AvaloError(Exception):
    """An exception that carries an Avalo error code, e.g. ``AvaloError("INSUFFICIENT_FUNDS")``."""

    def __init__(self, error_code: str, message: str = "") -> None:
        super().__init__(message or error_code)
        self.error_code = error_code


def error_code_of(exc: BaseException) -> str:
    """The Avalo error code an exception stands for (``INTERNAL`` when it names none)."""
    code = getattr(exc, "error_code", None) or getattr(exc, "code", None)
    if isinstance(code, str) and code in ERROR_CODES:
        return code
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "TIMEOUT"
    if isinstance(exc, ConnectionError):
        return "UNAVAILABLE"
    if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
        return "CANCELLED"
    return "INTERNAL"


def recording_failed(runtime: "_runtime.Runtime", operation: str, error: Exception) -> None:
    """Telemetry that could not be recorded: counted and said once, never raised to the app."""
    _log.debug("avalo-otel: recording %s failed", operation, exc_info=error)
    runtime.invalid("recording_failed", f"recording {operation} failed ({type(error).__name__}); "
                                        "the application is unaffected")


class Operation:
    """A running operation. Inside ``with``: ``op.fail(code)``, ``op.metadata[...]``, ``op.trace_id``."""

    __slots__ = (
        "domain", "name", "events", "level", "actor_type", "actor_id", "session_id", "metadata",
        "_parent", "_runtime", "_span", "_token", "_t0", "_wall0", "_error_code", "_ctx",
    )

    def __init__(
        self,
        domain: Optional[str],
        name: str,
        events: bool,
        parent: Parent = None,
        level: Any = None,
        actor_type: Optional[str] = None,
        actor_id: Any = None,
        session_id: Any = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.domain = domain
        self.name = name
        self.events = events
        self.level = _runtime.level_of(level) if level is not None else None
        self.actor_type = actor_type
        self.actor_id = actor_id
        self.session_id = session_id
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self._parent = parent
        self._runtime: Optional[_runtime.Runtime] = None
        self._span: Span = INVALID_SPAN
        self._error_code: Optional[str] = None

    # -- inside the block ------------------------------------------------------------------
    def fail(self, error_code: str) -> None:
        """Mark the operation failed without raising (e.g. a declined payment)."""
        self._error_code = _runtime.check_error_code(error_code)

    @property
    def trace(self) -> Optional[TraceContext]:
        ctx = self._span.get_span_context()
        return TraceContext(ctx) if ctx.is_valid else None

    @property
    def trace_id(self) -> Optional[str]:
        found = self.trace
        return found.trace_id if found else None

    @property
    def span_id(self) -> Optional[str]:
        found = self.trace
        return found.span_id if found else None

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> "Operation":
        runtime = self._runtime = _runtime.current()
        if runtime is None:
            return self
        # The parent as it is now: a span re-emitted at the end must have this one, not the
        # current context of that moment (which holds this operation's own sampled-out span).
        self._ctx = parent_context(self._parent) or otel_context.get_current()
        attrs = {Attr.OPERATION: self.name}
        if self.domain is not None:
            attrs[Attr.DOMAIN] = self.domain
        self._wall0 = time.time_ns()
        self._span = span = runtime.tracer.start_span(self.name, context=self._ctx, attributes=attrs)
        self._token = otel_context.attach(trace.set_span_in_context(span, self._ctx))
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        runtime = self._runtime
        if runtime is None:
            return False
        span = self._span
        # Recording must never break the operation it times: its result or exception is the
        # caller's, and the span is always ended and its context detached (else it would be the
        # parent of the next span on this thread).
        try:
            latency_ms = (time.perf_counter_ns() - self._t0) / 1e6
            code = self._error_code
            if exc is not None and code is None:
                code = error_code_of(exc)
            success = code is None
            if not span.is_recording() and (not success or wanted(span.get_span_context().span_id)):
                # Sampled out at the start; a failure is always kept (and so is the parent of a kept
                # child): emit the span now, with the ids its children already point at.
                span = reemit(runtime.tracer, runtime.id_generator, self.name, self._ctx, span.get_span_context(),
                              self._wall0, {Attr.OPERATION: self.name, Attr.DOMAIN: self.domain or "", Attr.SUCCESS: success})
            mark_outcome(span, success, code, exc)
            if self.events and self.domain is not None:
                level = self.level or (Level.INFO if success else Level.ERROR)
                runtime.record(
                    self.domain, self.name, level, success, code, latency_ms, self.actor_type,
                    self.actor_id, self.session_id, self.metadata,
                    context=trace.set_span_in_context(span) if span is not self._span else None,
                )
        except Exception as error:  # noqa: BLE001
            recording_failed(runtime, self.name, error)
        finally:
            try:
                span.end()
            except Exception as error:  # noqa: BLE001 - a failing span processor
                recording_failed(runtime, self.name, error)
            finally:
                otel_context.detach(self._token)
        return False

    async def __aenter__(self) -> "Operation":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


class OperationFactory:
    """What ``time_operation(...)``/``trace_operation(...)`` return without a callable:
    a decorator, or a context manager for one block."""

    __slots__ = ("_args", "_entered")

    def __init__(self, domain: Optional[str], name: str, events: bool, parent: Parent = None, level: Any = None,
                 actor_type: Optional[str] = None, actor_id: Any = None, session_id: Any = None,
                 metadata: Optional[Mapping[str, Any]] = None) -> None:
        self._args = (domain, name, events, parent, level, actor_type, actor_id, session_id, metadata)
        self._entered: list[Operation] = []

    def new(self) -> Operation:
        return Operation(*self._args)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.new():
                    return await fn(*args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.new():
                return fn(*args, **kwargs)
        return wrapper

    def __enter__(self) -> Operation:
        op = self.new()
        self._entered.append(op)
        return op.__enter__()

    def __exit__(self, *exc_info: Any) -> bool:
        return self._entered.pop().__exit__(*exc_info)

    async def __aenter__(self) -> Operation:
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> bool:
        return self.__exit__(*exc_info)


def run(factory: OperationFactory, fn: Callable[..., Any], pass_trace: bool) -> Any:
    """Run ``fn`` inside one operation now; a coroutine function gives an awaitable."""
    if inspect.iscoroutinefunction(fn):
        async def run_async() -> Any:
            with factory.new() as op:
                return await (fn(op.trace) if pass_trace else fn())
        return run_async()
    with factory.new() as op:
        return fn(op.trace) if pass_trace else fn()
