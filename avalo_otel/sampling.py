"""Sampling that keeps what matters: every error and every critical-domain operation.

Head sampling cannot know at a span's start that it will fail, so two parts work together:

* :class:`AvaloSampler` keeps a ratio of routine traces (by trace id, so a trace is kept or
  dropped whole), and always keeps spans of critical domains and spans that start already
  marked as failed. A dropped span of our own API is re-emitted by the API if the operation fails;
  a dropped third-party span is *recorded* (not sampled) so that the export pipeline (:func:`exportable`)
  can still export it if it ends in error.
* :func:`keep_event` applies the same rule to telemetry events (log records).

A span kept that way must not point at a parent that is never exported (backends show orphans).
So a kept span whose parent was sampled out asks for that parent (:func:`note_kept`): a recorded
third-party parent is then exported when it ends (:func:`exportable`), and a dropped span of our
own API is re-emitted (:func:`reemit`) with the *same* ids it had, through
:class:`ReplayIdGenerator`, so its children already exported find it. The chain goes up to the
first sampled (or remote) ancestor.

Metrics are never sampled: every operation is counted.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Mapping, Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags, Tracer, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.status import StatusCode
from opentelemetry.util.types import Attributes

from ._spans import copy_span
from .conventions import CRITICAL_DOMAINS, Attr

_TRACE_ID_LIMIT = (1 << 64) - 1
_WARN_RANK = 2
_SAMPLED = TraceFlags.SAMPLED
#: Sampled-out spans asked for by a kept child, by span id. Bounded: a parent that never ends (or
#: ends in another process) must not make it grow; the oldest requests go first.
_MAX_WANTED = 4096
_wanted: dict[int, None] = {}


class _Forced(threading.local):
    on = False


#: Set on a thread while :func:`reemit` starts a span: the sampler keeps it.
_forced = _Forced()


def _bound(rate: float) -> int:
    return round(rate * (_TRACE_ID_LIMIT + 1))


class AvaloSampler(Sampler):
    """Ratio sampling by trace id that never drops errors or wallet/safety operations."""

    def __init__(self, rate: float = 1.0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sampling rate must be between 0 and 1, got {rate!r}")
        self.rate = rate
        self._bound = _bound(rate)

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        decision = self._decide(parent, trace_id, attributes)
        # The SDK gives the span only the attributes in the result, and the parent's tracestate
        # (vendor data such as Datadog's) must carry on to the child.
        return SamplingResult(
            decision,
            attributes if decision is not Decision.DROP else None,
            parent.trace_state if parent.is_valid else None,
        )

    def _decide(self, parent: SpanContext, trace_id: int, attributes: Attributes) -> Decision:
        if parent.is_valid:
            if parent.trace_flags.sampled:
                return Decision.RECORD_AND_SAMPLE
        elif trace_id & _TRACE_ID_LIMIT < self._bound:
            return Decision.RECORD_AND_SAMPLE
        if _forced.on:
            return Decision.RECORD_AND_SAMPLE  # a re-emitted span (see reemit)
        if attributes:
            if attributes.get(Attr.DOMAIN) in CRITICAL_DOMAINS or attributes.get(Attr.SUCCESS) is False:
                return Decision.RECORD_AND_SAMPLE
            if Attr.OPERATION in attributes:
                # Our own API re-emits the span if the operation fails: no need to record it.
                return Decision.DROP
        return Decision.RECORD_ONLY

    def get_description(self) -> str:
        return f"AvaloSampler{{rate={self.rate}}}"


def sampler_from_arg(arg: str) -> AvaloSampler:
    """``opentelemetry_traces_sampler`` entry point: ``OTEL_TRACES_SAMPLER=avalo``, ``..._ARG=0.1``."""
    return AvaloSampler(float(arg) if arg and arg.strip() else 1.0)


def exportable(span: ReadableSpan) -> Optional[ReadableSpan]:
    """The span to export: itself if sampled, a sampled copy if it was only recorded and ended in
    error (errors are always kept) or a kept child asked for it, else ``None``."""
    ctx = span.context
    if ctx.trace_flags.sampled:
        return span
    if span.status.status_code is StatusCode.ERROR or wanted(ctx.span_id):
        flags = TraceFlags(TraceFlags.SAMPLED)
        kept = copy_span(span, context=SpanContext(ctx.trace_id, ctx.span_id, ctx.is_remote, flags, ctx.trace_state))
        note_kept(kept)
        return kept
    return None


def note_kept(span: ReadableSpan) -> None:
    """``span`` is exported: if its parent (in this process) was sampled out, ask for it."""
    parent = span.parent
    if parent is not None and not parent.trace_flags & _SAMPLED and not parent.is_remote:
        if len(_wanted) >= _MAX_WANTED:
            try:
                del _wanted[next(iter(_wanted))]
            except (KeyError, RuntimeError, StopIteration):  # another thread made room first
                pass
        _wanted[parent.span_id] = None


def wanted(span_id: int) -> bool:
    """Whether a kept child asked for this sampled-out span (the request is consumed)."""
    return _wanted.pop(span_id, False) is None


class ReplayIdGenerator(IdGenerator):
    """Random ids, except for a span :func:`reemit` re-creates: it gets the ids it had."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._pending = threading.local()

    def generate_span_id(self) -> int:
        ids = getattr(self._pending, "ids", None)
        if ids is not None:
            self._pending.ids = None
            return ids[1]
        return self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = getattr(self._pending, "ids", None)
        return ids[0] if ids is not None else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return self._random.is_trace_id_random()

    def replay(self, ctx: SpanContext) -> None:
        """The next span started on this thread gets ``ctx``'s trace and span ids."""
        self._pending.ids = (ctx.trace_id, ctx.span_id)

    def cancel(self) -> None:
        self._pending.ids = None


def reemit(tracer: Tracer, id_generator: Any, name: str, parent: Any, dropped: SpanContext,
           start_time: int, attributes: Mapping[str, Any]) -> Span:
    """Start again, sampled, a span of our API that was sampled out and must be kept (it failed,
    or a kept child needs it): the same ids when ``id_generator`` can replay them, the same parent
    and start time; :class:`AvaloSampler` keeps it."""
    replay = isinstance(id_generator, ReplayIdGenerator) and dropped.is_valid
    if replay:
        id_generator.replay(dropped)
    _forced.on = True
    try:
        return tracer.start_span(name, context=parent, start_time=start_time, attributes=attributes)
    finally:
        _forced.on = False
        if replay:
            id_generator.cancel()


def keep_event(rate: float, level_rank: int, success: bool, domain: str, span_context: SpanContext) -> bool:
    """Whether a telemetry event survives sampling (the level filter is applied before)."""
    if rate >= 1.0 or not success or level_rank >= _WARN_RANK or domain in CRITICAL_DOMAINS:
        return True
    if span_context.is_valid:
        # Follow the trace's decision so a kept trace has its events and a dropped one has none.
        return bool(span_context.trace_flags.sampled)
    return random.random() < rate
