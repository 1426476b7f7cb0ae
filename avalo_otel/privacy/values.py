"""How the :class:`~avalo_otel.privacy.redactor.Redactor` treats one value: text scanned (and its
result cached), bytes decoded, ints checked for card numbers, lists and mappings looked into up to
``MAX_DEPTH`` levels, ids pseudonymised, the user's hook applied, lone surrogates repaired.

A base class rather than functions: these run for every value, and an attribute lookup on
``self`` is the cheapest way to reach the caches and counters they share with the redactor.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Callable, Mapping

from .detectors import is_card_number, marker

_log = logging.getLogger("avalo_otel")

_DROP = object()  # what a hook returns to have the attribute left out
_CACHE_MAX_LEN = 256
_CARD_MIN = 10**12  # ints below this (in absolute value) are too short to be card numbers
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
#: Nesting of lists and mappings looked into (log bodies, extended log attributes); a value
#: nested deeper cannot be scanned without risking the stack, so it is replaced (fail closed).
MAX_DEPTH = 32
#: A lone UTF-16 surrogate (``"\ud800"``, from ``surrogateescape`` decoding or a broken JSON
#: escape): no exporter can encode it (UTF-8, protobuf, SQLite), so it is repaired here.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATES_REPAIRED = ("lone UTF-16 surrogates in an attribute key or value (not encodable as UTF-8) were "
                        "replaced by U+FFFD")


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds UTF-16 surrogates; ``isascii()`` is O(1) in CPython, so ASCII text
    (most of it) costs no scan."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def repair_surrogates(text: str) -> str:
    """``text`` with surrogate pairs joined into the character they stand for and lone
    surrogates replaced by U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class ValueRedaction:
    """The value half of the redactor; the caches, counters and scanner are set up by
    :class:`~avalo_otel.privacy.redactor.Redactor`."""

    _clean: set[str]
    _dirty: dict[str, tuple[str, tuple[str, ...]]]
    _cache_size: int
    _count: Callable[[Any], None]
    _nesting: threading.local
    _pseudonymize: Callable[[str], str]
    _callback: Callable[[str, Any], Any] | None
    _warned_callback: bool
    on_invalid: Callable[[str, str], None] | None

    def _value(self, value: Any, safe: bool) -> Any:
        t = type(value)
        if t is str:
            return self._str(value)
        if t is bool or t is float or value is None:
            return value
        if t is bytes or t is bytearray:
            return self._bytes(value, safe)
        if t is int:
            if not safe and (value >= _CARD_MIN or value <= -_CARD_MIN) and is_card_number(str(abs(value))):
                self._emit("card")
                return marker("card")
            return value
        if t is list or t is tuple:
            return self._deeper(self._sequence, value, safe)
        if isinstance(value, Mapping):
            return self._deeper(self._mapping, value)
        if isinstance(value, str):
            return self._str(value)
        return value

    def _sequence(self, value: list | tuple, safe: bool) -> Any:
        new = [self._value(v, safe) for v in value]
        if all(a is b for a, b in zip(new, value)):
            return value
        return new if type(value) is list else tuple(new)

    def _deeper(self, look_into: Callable[..., Any], value: Any, *args: Any) -> Any:
        """``look_into(value, *args)`` one nesting level deeper; past ``MAX_DEPTH`` the value is
        replaced (it cannot be proven clean) and counted, never a ``RecursionError``."""
        local = self._nesting
        depth = getattr(local, "depth", 0)
        if depth >= MAX_DEPTH:
            self._emit("unscannable")
            self._invalid("nesting_too_deep", f"a value nested more than {MAX_DEPTH} levels deep was replaced "
                                              "by [REDACTED:unscannable]")
            return marker("unscannable")
        local.depth = depth + 1
        try:
            return look_into(value, *args)
        finally:
            local.depth = depth

    def _bytes(self, value: bytes | bytearray, safe: bool) -> Any:
        """Bytes leave as the UTF-8 text they hold, scanned like any text (the SDK's console
        exporter cannot even print bytes); bytes that are not UTF-8 cannot be scanned and are
        replaced whole (fail closed)."""
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            self._emit("binary")
            return marker("binary")
        return self._value(text, safe)

    def _mapping(self, value: Mapping[Any, Any]) -> Any:
        if all(isinstance(k, str) for k in value):
            out = self.redact_attributes(value)
            return value if out is None else out
        out = None
        for k, v in value.items():
            new = self.redact_value(v, k) if isinstance(k, str) else self._value(v, False)
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out

    def _str(self, text: str) -> str:
        if text in self._clean:
            return text
        hit = self._dirty.get(text)
        if hit is None:
            return self._scan(text)
        self._count(hit[1])
        return hit[0]

    def _scan(self, text: str) -> str:
        """``_str`` for text not seen before."""
        if has_surrogates(text):
            # Not cached as it is, so each occurrence is counted; the repaired text is.
            return self._str(self._fix(text))
        if self._safe_shape is not None and self._safe_shape(text):
            return text  # a UUID, hex id or number: clean, and too unique to be worth caching
        found: list[str] = []
        try:
            out = self._scanner.scan(text, found)
        except RecursionError:  # URLs in URLs in URLs…: fail closed
            found, out = ["unscannable"], marker("unscannable")
        if len(text) <= _CACHE_MAX_LEN and self._cache_size:
            clean, dirty = self._clean, self._dirty
            if len(clean) + len(dirty) >= self._cache_size:
                try:  # make room: any clean text, else the oldest redacted one
                    if len(clean) >= len(dirty):
                        clean.pop()
                    else:
                        del dirty[next(iter(dirty))]
                except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                    pass
            if out is text:
                clean.add(text)
            else:
                dirty[text] = (out, tuple(found))
        self._count(found)
        return out

    def _pseudonym(self, value: str) -> str:
        return value if _PSEUDONYM.fullmatch(value) else self._pseudonymize(value)

    def _pseudo_value(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (bytes, bytearray)):  # the same id as text or bytes: one pseudonym
            value = bytes(value).decode("utf-8", "surrogateescape")
        if isinstance(value, str):
            return self._pseudonym(value)
        if isinstance(value, (list, tuple)):
            return self._deeper(self._pseudo_sequence, value)
        try:
            return self._pseudonymize(str(value))
        except RecursionError:  # the repr of a deeply nested value
            self._emit("unscannable")
            return marker("unscannable")

    def _pseudo_sequence(self, value: list | tuple) -> Any:
        new = [self._pseudo_value(v) for v in value]
        if all(a is b for a, b in zip(new, value)):
            return value
        return new if isinstance(value, list) else tuple(new)

    def _hook(self, key: str, value: Any) -> Any:
        try:
            new = self._callback(key, value)  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - a broken hook must not break export nor leak
            if not self._warned_callback:
                self._warned_callback = True
                _log.warning("avalo-otel: redaction hook failed; the value is redacted", exc_info=True)
            self._emit("callback_error")
            return marker("callback_error")
        if new is value:
            return value
        if new is None:
            self._emit("callback")
            return _DROP
        if type(new) is type(value) and new == value:
            return value
        self._emit("callback")
        return new

    def _emit(self, rule: str) -> None:
        self._count((rule,))

    def _repaired(self, value: Any) -> Any:
        """``value`` (text, or a list or tuple of it: header values) with surrogates repaired."""
        t = type(value)
        if t is str:
            return self._fix(value) if has_surrogates(value) else value
        if (t is list or t is tuple) and any(type(v) is str and has_surrogates(v) for v in value):
            return t(self._fix(v) if type(v) is str and has_surrogates(v) else v for v in value)
        return value

    def _fix(self, text: str) -> str:
        """``text`` with its surrogates repaired, counted as invalid input."""
        self._invalid("invalid_unicode", _SURROGATES_REPAIRED)
        return repair_surrogates(text)

    def _invalid(self, reason: str, message: str) -> None:
        report = self.on_invalid
        if report is not None:
            try:
                report(reason, message)
            except Exception:  # noqa: BLE001 - counting must never break export
                pass
