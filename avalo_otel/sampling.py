"""Sampling that keeps what matters: every error and every critical-domain operation.

Head sampling cannot know at a span's start that it will fail, so two parts work together:

* :class:`AvaloSampler` keeps a ratio of routine traces (by trace id, so a trace is kept or
  dropped whole), and always keeps spans of critical domains and spans that start already
  marked as failed. A dropped span of our own API is re-emitted by the API if the operation fails;
  a dropped third-party span is *recorded* (not sampled) so that the export pipeline (:func:`exportable`)
  can still export it if it ends in error.
* :func:`keep_event` applies the same rule to telemetry events (log records).

Metrics are never sampled: every operation is counted.
"""

from __future__ import annotations

import random
from typing import Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.status import StatusCode
from opentelemetry.util.types import Attributes

from ._spans import copy_span
from .conventions import CRITICAL_DOMAINS, Attr

_TRACE_ID_LIMIT = (1 << 64) - 1
_WARN_RANK = 2


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
    error (errors are always kept), else ``None``."""
    ctx = span.context
    if ctx.trace_flags.sampled:
        return span
    if span.status.status_code is StatusCode.ERROR:
        flags = TraceFlags(TraceFlags.SAMPLED)
        return copy_span(span, context=SpanContext(ctx.trace_id, ctx.span_id, ctx.is_remote, flags, ctx.trace_state))
    return None


def keep_event(rate: float, level_rank: int, success: bool, domain: str, span_context: SpanContext) -> bool:
    """Whether a telemetry event survives sampling (the level filter is applied before)."""
    if rate >= 1.0 or not success or level_rank >= _WARN_RANK or domain in CRITICAL_DOMAINS:
        return True
    if span_context.is_valid:
        # Follow the trace's decision so a kept trace has its events and a dropped one has none.
        return bool(span_context.trace_flags.sampled)
    return random.random() < rate
