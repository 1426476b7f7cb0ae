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
included. Pseudonymisation is not counted by ``on_redact``; everything else is, once per
redaction, cache hits included. ``callback(key, value)`` runs last, for keyed values only (not for
free text); returning None drops the attribute; if it raises, the value becomes
``[REDACTED:callback_error]``.

Precedence for a key: ``pseudonymize_keys`` (exact) → ``safe_keys`` (exact: no key rule and no
card check of ints, string values still scanned) → ``extra_deny_keys`` (exact, or as a token suffix: ``promo_code`` also denies
``avalo.metadata.promoCode``; rule ``custom``) → OTel safe keys → person-id suffixes
(pseudonymised) → built-in deny rules → scan.

Cost: the rule of a key is resolved once and cached; the scan result of a string up to
``_CACHE_MAX_LEN`` characters is cached (bounded, oldest first out; ids and numbers skip both scan
and cache), and a string found clean is returned as the same object, so :meth:`redact_attributes`
returns None without copying. Micro-benchmark: ``python -m avalo_otel.privacy.redactor``.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, Mapping

from .detectors import SAFE_SHAPE, is_card_number, marker
from .keys import OTEL_SAFE_KEYS, PERSON_ID_SUFFIXES, ends_with_any, suffix_rule, tokens
from .pseudonym import Pseudonymizer
from .scanner import ValueScanner

_log = logging.getLogger("avalo_otel")

# Key actions: (kind, deny rule, marker, redacted key or None, rules found in the key).
_SCAN, _SAFE, _DENY, _PSEUDO, _QUERY = range(5)
_RENAMED = 8  # added to the kind in ``_kinds`` when the key itself holds personal data
_SCAN_ACTION = (_SCAN, None, None)
_SAFE_ACTION = (_SAFE, None, None)
_PSEUDO_ACTION = (_PSEUDO, None, None)
_QUERY_ACTION = (_QUERY, None, None)
#: Keys whose values are URL query strings without the ``?``.
_QUERY_KEYS = frozenset({"url.query", "http.query", "http.query_string"})

_MISSING = object()
_DROP = object()
_CACHE_MAX_LEN = 256
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
_DEFAULT_PSEUDONYMIZE_KEYS = ("avalo.actor.id", "session.id", "enduser.id", "user.id", "user_id", "userId",
                              "actor_id", "actorId", "session_id", "sessionId")


class Redactor:
    """Redacts attribute values and free text; see the module docstring for the rules."""

    def __init__(self, *, pseudonymize: Callable[[str], str] | None = None,
                 extra_deny_keys: Iterable[str] = (), safe_keys: Iterable[str] = (),
                 extra_value_patterns: Mapping[str, str] = {},  # noqa: B006 - read only
                 redact_ip_addresses: bool = True,
                 pseudonymize_keys: Iterable[str] = _DEFAULT_PSEUDONYMIZE_KEYS,
                 callback: Callable[[str, Any], Any] | None = None,
                 on_redact: Callable[[str], None] | None = None,
                 cache_size: int = 4096) -> None:
        self._pseudonymize: Callable[[str], str] = pseudonymize if pseudonymize is not None else Pseudonymizer()
        self._ips = redact_ip_addresses
        self._safe_keys = frozenset(safe_keys)
        deny = tuple(extra_deny_keys)
        self._deny_exact = frozenset(deny)
        self._deny_suffixes = frozenset(t for t in map(tokens, deny) if t)
        pseudo = tuple(pseudonymize_keys)
        self._pseudo_exact = frozenset(pseudo)
        self._pseudo_suffixes = frozenset(t for t in map(tokens, pseudo) if t) | PERSON_ID_SUFFIXES
        self._callback = callback
        self._on_redact = on_redact
        self._cache_size = max(0, int(cache_size))
        self._cache: dict[str, Any] = {}
        self._actions: dict[str, tuple] = {}  # key -> (kind, rule, marker)
        self._kinds: dict[str, int] = {}  # key -> kind: the hot path's view of _actions
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
        if not attrs:
            return None
        out: dict[str, Any] | None = None
        kinds = self._kinds
        cache = self._cache
        callback = self._callback
        # OTel's BoundedAttributes is a Python-level Mapping: iterate the dict inside it instead.
        inner = attrs if type(attrs) is dict else getattr(attrs, "_dict", None)
        items = inner.items() if type(inner) is dict else attrs.items()
        for key, value in items:
            kind = kinds.get(key)
            if kind is None:
                self._resolve(key)
                kind = kinds[key]
            if kind <= 1:  # _SCAN or _SAFE: the common case, inlined
                t = type(value)
                if t is str:
                    new = value if cache.get(value, _MISSING) is None else self._str(value)
                elif t is bool or t is float:
                    new = value
                else:
                    new = self._value(value, kind == 1)
            else:
                action = self._actions.get(key) or self._resolve(key)
                new = self._apply(value, action)
                if action[3] is not None:  # the key itself is redacted: the entry moves
                    for rule in action[4]:
                        self._emit(rule)
                    if callback is not None:
                        new = self._hook(action[3], new)
                    if out is None:
                        out = dict(inner) if type(inner) is dict else dict(attrs)
                    del out[key]
                    if new is not _DROP:
                        out[action[3]] = new
                    continue
            if callback is not None:
                new = self._hook(key, new)
            if new is not value:
                if out is None:
                    out = dict(inner) if type(inner) is dict else dict(attrs)
                if new is _DROP:
                    del out[key]
                else:
                    out[key] = new
        return out

    def redact_text(self, text: str) -> str:
        """Free text (span names, status descriptions, exception messages, log bodies): value
        detectors only; the same object when nothing was found."""
        return self._str(text) if isinstance(text, str) else text

    # -- keys -----------------------------------------------------------------------------------
    def _resolve(self, key: str) -> tuple:
        # A key can itself be personal data ({"jane@example.com": True}): scanned once, cached.
        found: list[str] = []
        new_key = self._scanner.scan(key, found)
        action = self._decide(key) + ((new_key, tuple(found)) if new_key is not key else (None, ()))
        if len(self._actions) >= 16384:
            self._actions.clear()
            self._kinds.clear()
        self._actions[key] = action
        self._kinds[key] = action[0] + (_RENAMED if new_key is not key else 0)
        return action

    def _decide(self, key: str) -> tuple:
        if key in self._pseudo_exact:
            return _PSEUDO_ACTION
        if key in self._safe_keys:
            return _SAFE_ACTION
        toks = tokens(key)
        if key in self._deny_exact or ends_with_any(toks, self._deny_suffixes):
            return (_DENY, "custom", marker("custom"))
        if key in OTEL_SAFE_KEYS:
            return _QUERY_ACTION if key in _QUERY_KEYS else _SCAN_ACTION
        if ends_with_any(toks, self._pseudo_suffixes):
            return _PSEUDO_ACTION
        rule = suffix_rule(toks, ips=self._ips)
        if rule is not None:
            return (_DENY, rule, marker(rule))
        return _SCAN_ACTION

    def _param_action(self, name: str) -> tuple | None:
        action = self._actions.get(name) or self._resolve(name)
        kind, rule = action[0], action[1]
        if kind == _DENY:
            return ("deny", rule)
        if kind == _PSEUDO:
            return ("pseudo", None)
        return None

    # -- values ---------------------------------------------------------------------------------
    def _apply(self, value: Any, action: tuple) -> Any:
        kind = action[0]
        if kind == _DENY:
            if value is None or isinstance(value, bool):
                return value  # a flag or nothing carries no personal data
            self._emit(action[1])
            return action[2]
        if kind == _PSEUDO:
            return self._pseudo_value(value)
        if kind == _QUERY and isinstance(value, str) and value:
            rules: list[str] = []
            out = self._scanner._params(value, rules)  # noqa: SLF001 - same package
            for rule in rules:
                self._emit(rule)
            return out
        return self._value(value, kind == _SAFE)

    def _value(self, value: Any, safe: bool) -> Any:
        t = type(value)
        if t is str:
            return self._str(value)
        if t is bool or t is float or value is None:
            return value
        if t is int:
            if not safe and (value >= 10**12 or value <= -10**12) and is_card_number(str(abs(value))):
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
        cache = self._cache
        hit = cache.get(text, _MISSING)
        if hit is None:
            return text
        if hit is not _MISSING:
            out, rules = hit
            for rule in rules:
                self._emit(rule)
            return out
        if self._safe_shape is not None and self._safe_shape(text):
            return text  # a UUID, hex id or number: clean, and too unique to be worth caching
        found: list[str] = []
        try:
            out = self._scanner.scan(text, found)
        except RecursionError:  # URLs in URLs in URLs…: fail closed
            found, out = ["unscannable"], marker("unscannable")
        if len(text) <= _CACHE_MAX_LEN and self._cache_size:
            if len(cache) >= self._cache_size:
                try:
                    del cache[next(iter(cache))]
                except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                    pass
            cache[text] = None if out is text else (out, tuple(found))
        for rule in found:
            self._emit(rule)
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
        if self._on_redact is not None:
            try:
                self._on_redact(rule)
            except Exception:  # noqa: BLE001 - counting must never break export
                pass


# -- micro-benchmark: python -m avalo_otel.privacy.redactor -------------------------------------
def _bench() -> None:  # pragma: no cover - manual tool
    import time
    import uuid

    redactor = Redactor(pseudonymize=Pseudonymizer("bench-key"))
    five = {"avalo.domain": "wallet", "avalo.operation": "wallet.spend", "avalo.latency_ms": 12.5,
            "user.email": "jane.doe@example.com", "avalo.metadata.note": "call me on +44 20 7946 0018"}
    safe = {f"avalo.metadata.k{i}": v for i, v in enumerate(
        ["chat.send", "INSUFFICIENT_FUNDS", 42, "/v1/users/{id}", "1.45.2", 3.5, "success",
         "2024-05-01T12:30:45Z", True, "client"])}
    pii = {f"avalo.metadata.p{i}": v for i, v in enumerate(
        ["mail jane@example.com", "+1 415 555 0132", "4111 1111 1111 1111", "Bearer abc.def-123456",
         "https://u:pw@api.example.com/x?token=s3cr3t", "10.1.2.3", "DE89 3704 0044 0532 0130 00",
         "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "AKIAIOSFODNN7EXAMPLE", "from 203.0.113.9"])}
    twenty = {**safe, **pii}
    five_clean = {"avalo.domain": "wallet", "avalo.operation": "wallet.spend", "avalo.latency_ms": 12.5,
                  "error.type": "INSUFFICIENT_FUNDS", "avalo.success": False}

    def run(label: str, make: Callable[[], Mapping[str, Any]], n: int = 20000) -> None:
        batches = [make() for _ in range(n)]
        call = redactor.redact_attributes
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter_ns()
            for attrs in batches:
                call(attrs)
            best = min(best, (time.perf_counter_ns() - start) / n)
        print(f"{label:<58} {best:8.0f} ns/call")

    run("5 attrs, clean (warm cache)", lambda: five_clean)
    run("5 attrs, half PII (warm cache)", lambda: five)
    run("20 attrs, half PII (warm cache)", lambda: twenty)
    run("5 attrs, half PII + fresh request id (uuid) each call",
        lambda: {**five, "http.request.id": str(uuid.uuid4())}, 5000)
    run("20 attrs, half PII + fresh email each call (cache miss)",
        lambda: {**twenty, "avalo.metadata.p0": f"mail {uuid.uuid4().hex[:8]}@example.com"}, 5000)
    text = "user jane@example.com paid 100.50 with card 4111 1111 1111 1111 from 203.0.113.9"
    start = time.perf_counter_ns()
    for i in range(2000):
        redactor._scanner.scan(text + str(i), [])  # noqa: SLF001 - uncached scan of free text
    print(f"{'uncached scan of an 85-char log line with 3 PII':<58} "
          f"{(time.perf_counter_ns() - start) / 2000:8.0f} ns/call")


if __name__ == "__main__":  # pragma: no cover
    _bench()
