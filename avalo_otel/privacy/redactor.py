"""The :class:`Redactor`: nothing personal leaves the process.

Two kinds of rules, applied to every attribute of every span, log record and metric point:

* **key rules** (:mod:`.keys`): a key that names personal data (``user.email``,
  ``recipientPhoneNumber``, ``chat.message``, ``X-Api-Key``…) has its whole value replaced by
  ``"[REDACTED:<rule>]"``; a key that holds a person's id (``avalo.actor.id``, ``session.id``,
  ``user_id``, ``senderId``…) has its value pseudonymised (``p_`` + 24 hex);
* **value detectors** (:mod:`.detectors`, run by :mod:`.scanner` and :mod:`.urls`): every other
  string is scanned once for e-mails, phone numbers, card numbers, IBANs, JWTs, auth headers, API
  keys, secrets in URLs, media URLs and IP addresses; only the matched text is replaced. Key rules
  also apply inside text to ``"name": "value"`` (JSON, reprs) and ``name=value`` (logfmt, query
  strings) pairs, JSON/repr string escapes are decoded before scanning, and a key that is itself
  personal data (``{"jane@example.com": true}``) is replaced by its redacted form.

Markers name the rule and never echo any part of the value. Booleans and None under a denied key
are kept (a flag carries no personal data); any other value under it is replaced whole, lists
included. A dotted version (``1.2.3.4``) under a version key (``service.version``, ``app.build``)
or after "version", "build" or "v" in text is not taken for an IP address.

Key lists (``safe_keys``, ``extra_deny_keys``, ``pseudonymize_keys``) match a key exactly or as
its last tokens, like the built-in rules (``display_name`` also matches ``user.display_name`` and
``displayName``); see :class:`~avalo_otel.privacy.keys.KeyPolicy` for the precedence. A safe key
gets no key rule and no card check of ints; its string values are still scanned.

Counting: every redaction is counted by rule, cache hits included, pseudonymisation not. With
``on_redact`` that is one ``on_redact(rule)`` call per redaction; without it the redactor counts
by itself (one dict per thread, one C-level update per span) and :meth:`redaction_counts` sums.
``callback(key, value)`` runs last, for keyed values only (not for free text); returning None
drops the attribute; if it raises, the value becomes ``[REDACTED:callback_error]``.

Cost: the rule of a key is resolved once and cached, and so is how a whole tuple of keys is
treated (a plan: which keys are denied, which values are scanned), so a span costs one lookup for
its keys, one dict update for its denied keys and one cache lookup per string value seen before;
the scan result of a string up to ``_CACHE_MAX_LEN`` characters is cached (bounded: when full, a
clean entry or the oldest redacted one makes room; ids and numbers skip both scan and cache);
nothing is copied when nothing changed.
Micro-benchmark: ``python benchmarks/bench_redaction.py --micro``.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, Mapping

from .counts import RuleCounts, call_each
from .detectors import SAFE_SHAPE, VERSION_SHAPE, is_card_number, marker
from .keys import DEFAULT_PSEUDONYMIZE_KEYS, DENY, PSEUDO, QUERY, SAFE, VERSION, KeyPolicy
from .pseudonym import Pseudonymizer
from .scanner import ValueScanner

_log = logging.getLogger("avalo_otel")

#: Key tuples remembered by ``redact_attributes`` (cleared when full: a new one costs a key loop).
_MAX_PLANS = 1024
_DROP = object()
_CACHE_MAX_LEN = 256
_CARD_MIN = 10**12  # ints below this (in absolute value) are too short to be card numbers
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")


class Redactor:
    """Redacts attribute values and free text; see the module docstring for the rules."""

    def __init__(self, *, pseudonymize: Callable[[str], str] | None = None,
                 extra_deny_keys: Iterable[str] = (), safe_keys: Iterable[str] = (),
                 extra_value_patterns: Mapping[str, str] = {},  # noqa: B006 - read only
                 redact_ip_addresses: bool = True,
                 pseudonymize_keys: Iterable[str] = DEFAULT_PSEUDONYMIZE_KEYS,
                 callback: Callable[[str, Any], Any] | None = None,
                 on_redact: Callable[[str], None] | None = None,
                 cache_size: int = 4096) -> None:
        self._pseudonymize: Callable[[str], str] = pseudonymize if pseudonymize is not None else Pseudonymizer()
        self._keys = KeyPolicy(safe_keys=safe_keys, deny_keys=extra_deny_keys, pseudonymize_keys=pseudonymize_keys,
                               ips=redact_ip_addresses)
        self._callback = callback
        # Rules found are counted once per call (a span's attributes, a text), not one by one.
        self._counts = RuleCounts()
        self._count = self._counts.add if on_redact is None else call_each(on_redact)
        self._cache_size = max(0, int(cache_size))
        # Scan results of strings: the clean ones in a set (an ``in`` test is the cheapest check
        # there is, and most strings are clean), the others with their redacted form and rules.
        self._clean: set[str] = set()
        self._dirty: dict[str, tuple[str, tuple[str, ...]]] = {}
        #: ``known_clean(text)``: whether ``text`` was seen before and found clean; a C-level
        #: call, for per-span callers (a span name is usually one of a few).
        self.known_clean: Callable[[str], bool] = self._clean.__contains__
        self._actions: dict[str, tuple] = {}  # key -> (kind, rule, marker, new key, key rules)
        self._plans: dict[tuple[str, ...], tuple] = {}  # key tuple -> plan (see _plan)
        self._scanner = ValueScanner(redact_ips=redact_ip_addresses, extra_patterns=dict(extra_value_patterns),
                                     param_action=self._param_action, pseudonymize=self._pseudonym)
        # Ids and numbers skip the scan, unless a custom pattern might want them.
        self._safe_shape = None if extra_value_patterns else SAFE_SHAPE.fullmatch
        self._warned_callback = False

    # -- public API -----------------------------------------------------------------------------
    def key_rule(self, key: str) -> str | None:
        """The deny rule ``key`` falls under (``"email"``, ``"phone"``, ``"name"``, ``"address"``,
        ``"content"``, ``"photo"``, ``"secret"``, ``"card"``, ``"bank"``, ``"government_id"``,
        ``"birthdate"``, ``"location"``, ``"sensitive"``, ``"ip"``, ``"custom"``) or None."""
        return (self._actions.get(key) or self._resolve(key))[1]

    def redact_value(self, value: Any, key: str | None = None) -> Any:
        """``value`` with personal data removed; the same object when nothing was found.

        Strings are scanned (and, with ``key``, the key rules apply first); lists, tuples and
        mappings element-wise; an int that is a card number is redacted unless ``key`` is safe;
        other scalars are returned as they are. With ``key`` the ``callback`` runs last (a None
        from it becomes None here)."""
        if key is None:
            return self._value(value, False)
        new = self._apply(value, self._actions.get(key) or self._resolve(key))
        if self._callback is not None:
            new = self._hook(key, new)
            if new is _DROP:
                return None
        return new

    def redact_attributes(self, attrs: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A redacted copy of ``attrs``, or None when nothing changed (no copy is made). A key
        whose ``callback`` returned None is left out of the copy."""
        # OTel's BoundedAttributes is a Python-level Mapping (even len() is a Python call): use
        # the dict inside it.
        inner = attrs if type(attrs) is dict else getattr(attrs, "_dict", None)
        if type(inner) is not dict:
            inner = dict(attrs) if attrs else None
        if not inner:
            return None
        if self._callback is not None:
            return self._hooked_attributes(inner)
        # This runs for every span. Spans from one call site carry the same keys in the same
        # order, so the keys' rules are looked up once per key tuple (a plan): denied keys are
        # replaced by one C-level dict update, and only the other values are looked at one by one.
        shape = tuple(inner)
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plan(shape)
        markers, rules, scan, safe_keys, keyed = plan
        out = None
        if markers:
            for key in markers:
                value = inner[key]
                if value is None or type(value) is bool:  # a flag or nothing carries no personal data
                    out, rules = self._deny_some(inner, markers)
                    break
            else:
                out = dict(inner)
                out.update(markers)
        clean, dirty = self._clean, self._dirty
        for key in scan:
            value = inner[key]
            t = type(value)
            if t is str:
                if value in clean:
                    continue
                hit = dirty.get(value)
                if hit is None:
                    new = self._scan(value)
                    if new is value:
                        continue
                else:
                    new = hit[0]
                    rules += hit[1]
            elif t is float or t is bool or (t is int and -_CARD_MIN < value < _CARD_MIN):
                continue
            else:
                new = self._value(value, key in safe_keys)
                if new is value:
                    continue
            if out is None:
                out = dict(inner)
            out[key] = new
        for key in keyed:
            value = inner[key]
            new_key, new = self._keyed(key, value)
            if new is not value or new_key is not key:
                if out is None:
                    out = dict(inner)
                if new_key is not key:
                    del out[key]
                out[new_key] = new
        if rules:
            self._count(rules)
        return out

    def redaction_counts(self) -> dict[str, int]:
        """Redactions so far by rule, when no ``on_redact`` was given (then it is empty)."""
        return self._counts.totals()

    def redact_text(self, text: str) -> str:
        """Free text (span names, status descriptions, exception messages, log bodies): value
        detectors only; the same object when nothing was found."""
        return self._str(text) if isinstance(text, str) else text

    # -- keys -----------------------------------------------------------------------------------
    def _resolve(self, key: str) -> tuple:
        # A key can itself be personal data ({"jane@example.com": True}): scanned once, cached.
        found: list[str] = []
        new_key = self._scanner.scan(key, found)
        kind, rule = self._keys.decide(key)
        action = (kind, rule, rule and marker(rule)) + ((new_key, tuple(found)) if new_key is not key else (None, ()))
        if len(self._actions) >= 16384:
            self._actions.clear()
        self._actions[key] = action
        return action

    def _plan(self, shape: tuple[str, ...]) -> tuple:
        """How :meth:`redact_attributes` treats this tuple of keys: ``(markers by denied key,
        their rules, keys of values to scan, the safe ones among those, keys whose own rules
        apply)``."""
        markers: dict[str, str] = {}
        rules, scan, safe, keyed = [], [], [], []
        for key in shape:
            kind, rule, mark, new_key = (self._actions.get(key) or self._resolve(key))[:4]
            if new_key is not None or kind == PSEUDO or kind == QUERY or kind == VERSION:
                keyed.append(key)
            elif kind == DENY:
                markers[key] = mark
                rules.append(rule)
            else:
                scan.append(key)
                if kind == SAFE:
                    safe.append(key)
        plan = (markers, tuple(rules), tuple(scan), frozenset(safe), tuple(keyed))
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[shape] = plan
        return plan

    def _deny_some(self, attrs: dict[str, Any], markers: dict[str, str]) -> tuple[dict | None, tuple]:
        """Denied keys when some hold flags (kept): the copy, or None, and the rules applied."""
        out, rules = dict(attrs), []
        for key, mark in markers.items():
            value = attrs[key]
            if value is not None and type(value) is not bool:
                out[key] = mark
                rules.append(self.key_rule(key))
        return (out if rules else None), tuple(rules)

    def _param_action(self, name: str) -> tuple | None:
        action = self._actions.get(name) or self._resolve(name)
        kind, rule = action[0], action[1]
        if kind == DENY:
            return ("deny", rule)
        if kind == PSEUDO:
            return ("pseudo", None)
        if kind == VERSION:
            return ("version", None)
        return None

    # -- values ---------------------------------------------------------------------------------
    def _keyed(self, key: str, value: Any) -> tuple[str, Any]:
        """``(key, value)`` after the key's rules: the key is the redacted one when the key itself
        holds personal data (its rules counted each time)."""
        action = self._actions.get(key) or self._resolve(key)
        new = self._apply(value, action)
        if action[3] is None:
            return key, new
        self._count(action[4])
        return action[3], new

    def _hooked_attributes(self, attrs: dict[str, Any]) -> dict[str, Any] | None:
        out: dict[str, Any] | None = None
        for key, value in attrs.items():
            new_key, new = self._keyed(key, value)
            new = self._hook(new_key, new)
            if new is value and new_key is key:
                continue
            if out is None:
                out = dict(attrs)
            if new_key is key and new is not _DROP:
                out[key] = new
                continue
            del out[key]
            if new is not _DROP:
                out[new_key] = new
        return out

    def _apply(self, value: Any, action: tuple) -> Any:
        kind = action[0]
        if kind == DENY:
            if value is None or isinstance(value, bool):
                return value  # a flag or nothing carries no personal data
            self._emit(action[1])
            return action[2]
        if kind == PSEUDO:
            return self._pseudo_value(value)
        if kind == VERSION and type(value) is str and VERSION_SHAPE.fullmatch(value):
            return value
        if kind == QUERY and isinstance(value, str) and value:
            rules: list[str] = []
            out = self._scanner._params(value, rules)  # noqa: SLF001 - same package
            self._count(rules)
            return out
        return self._value(value, kind == SAFE)

    def _value(self, value: Any, safe: bool) -> Any:
        t = type(value)
        if t is str:
            return self._str(value)
        if t is bool or t is float or value is None:
            return value
        if t is int:
            if not safe and (value >= _CARD_MIN or value <= -_CARD_MIN) and is_card_number(str(abs(value))):
                self._emit("card")
                return marker("card")
            return value
        if t is list or t is tuple:
            new = [self._value(v, safe) for v in value]
            if all(a is b for a, b in zip(new, value)):
                return value
            return new if t is list else tuple(new)
        if isinstance(value, Mapping):
            return self._mapping(value)
        if isinstance(value, str):
            return self._str(value)
        return value

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
        if isinstance(value, str):
            return self._pseudonym(value)
        if isinstance(value, (list, tuple)):
            new = [self._pseudo_value(v) for v in value]
            if all(a is b for a, b in zip(new, value)):
                return value
            return new if isinstance(value, list) else tuple(new)
        return self._pseudonymize(str(value))

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
