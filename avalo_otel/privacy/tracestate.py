"""W3C ``tracestate`` redacted: it travels on every exported span of a trace (and on links).

An upstream client writes what it likes there (``tracestate: acme=jane@example.com,
usr=8fK2…``), and OTLP exports it with every span of the trace. Each entry is redacted like an
attribute (its key's rules, then the value detectors); a value made of ``name:value`` fields
(``dd=s:1;t.usr.id:…``) gets each field's name rules too; a value or field that is a random
token (a Firebase-UID shape or a UUID, see :func:`.paths.id_shaped`) is pseudonymised, while
single-case hex runs (vendors' trace and span ids: ``p:00f067aa0ba902b7``) are kept. An entry whose key is personal data is
dropped. Spans of one trace share one ``TraceState`` object, so the last result is reused.
"""

from __future__ import annotations

import re
from typing import Optional

from opentelemetry.trace import SpanContext, TraceState

from .paths import id_shaped
from .redactor import Redactor

_HEXISH = re.compile(r"[0-9a-f]+|[0-9A-F]+")  # a vendor's span or trace id, not a random token


class TraceStateRedactor:
    """``context(ctx)``: ``ctx`` with its trace state redacted (``ctx`` itself when clean)."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._last: tuple[Optional[TraceState], Optional[TraceState]] = (None, None)

    def context(self, ctx: SpanContext) -> SpanContext:
        state = ctx.trace_state
        if not state:
            return ctx
        new = self.trace_state(state)
        if new is state:
            return ctx
        return SpanContext(ctx.trace_id, ctx.span_id, ctx.is_remote, ctx.trace_flags, new)

    def trace_state(self, state: TraceState) -> TraceState:
        last_in, last_out = self._last
        if state is last_in:
            return last_out  # type: ignore[return-value]
        pairs, changed = [], False
        for key, value in state.items():
            new = self._entry(key, value)
            if new is not value:
                changed = True
                if new is None:
                    continue
            pairs.append((key, new))
        out = TraceState(pairs) if changed else state
        self._last = (state, out)
        return out

    def _entry(self, key: str, value: str) -> Optional[str]:
        redactor = self._redactor
        if redactor.redact_text(key) is not key:
            return None  # the key itself is personal data
        fields = value.split(";")
        changed = False
        for i, field in enumerate(fields):
            name, sep, sub = field.partition(":")
            if sep:
                new_sub = redactor.redact_value(sub, name)
                if new_sub is sub and self._random(sub):
                    new_sub = redactor._pseudonym(sub)  # noqa: SLF001 - same package
                if new_sub is not sub:
                    fields[i] = f"{name}:{new_sub}" if isinstance(new_sub, str) else name
                    changed = True
            elif self._random(field):
                fields[i] = redactor._pseudonym(field)  # noqa: SLF001
                changed = True
        fielded = ";".join(fields) if changed else value
        new = redactor.redact_value(fielded, key)  # the key's own rules, then the detectors
        return new if isinstance(new, str) else None

    @staticmethod
    def _random(token: str) -> bool:
        return id_shaped(token) and not _HEXISH.fullmatch(token)
