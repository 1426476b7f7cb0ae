"""The :class:`Redactor`: nothing personal leaves the process.

Two kinds of rules, applied to every attribute of every span, log record and metric point:

* **key rules** (:mod:`.keys`): a key that names personal data (``user.email``,
  ``recipientPhoneNumber``, ``chat.message``, ``X-Api-Key``…) has its whole value replaced by
  ``"[REDACTED:<rule>]"``; a key that holds a person's id (``avalo.actor.id``, ``session.id``,
  ``user_id``, ``senderId``…) has its value pseudonymised (``p_`` + 24 hex);
* **value detectors** (:mod:`.detectors`, run by :mod:`.scanner` and :mod:`.urls`): every other
  string is scanned once for e-mails, phone numbers (``+``, ``00`` and the home regions' national
  formats), card numbers, IBANs, national ids (PESEL, NIP, SSN), coordinates, postal addresses,
  names after greetings, values named by words (``passport …``, ``born …``, ``code is …``), JWTs,
  auth headers, API keys, secrets in URLs, media URLs and IP addresses; only the matched text is
  replaced. Key rules
  also apply inside text to ``"name": "value"`` (JSON, reprs) and ``name=value`` (logfmt, query
  strings) pairs, JSON/repr string escapes are decoded before scanning, and a key that is itself
  personal data (``{"jane@example.com": true}``) is replaced by its redacted form.

Some keys hold values that are parsed first (:mod:`.parsed`): paths and ``path?query`` targets
(``url.path``, ``http.target``, raw ``http.route``, ``Referer``: ids pseudonymised, secret
parameters replaced), SQL (``db.statement``: literals become ``?``) and messaging keys. Bytes are
scanned as the UTF-8 text they hold and leave as that text; other bytes are replaced whole.

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

Bad input never breaks export: lone UTF-16 surrogates in keys and values (no exporter can
encode them) are repaired (pairs joined, lone ones become U+FFFD) and reported through
``on_invalid(reason, message)``; lists and mappings are looked into ``MAX_DEPTH`` levels deep, a
deeper value becomes ``[REDACTED:unscannable]`` (it cannot be proven clean), never a
``RecursionError``.

Cost: the rule of a key is resolved once and cached, and so is how a whole tuple of keys is
treated (a plan: which keys are denied, which values are scanned), so a span costs one lookup for
its keys, one dict update for its denied keys and one cache lookup per string value seen before;
the scan result of a string up to ``_CACHE_MAX_LEN`` characters is cached (bounded: when full, a
clean entry or the oldest redacted one makes room; ids and numbers skip both scan and cache);
nothing is copied when nothing changed.
Micro-benchmark: ``python benchmarks/bench_redaction.py --micro``.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterable, Iterator, Mapping

from .counts import RuleCounts, call_each
from .detectors import SAFE_SHAPE, VERSION_SHAPE, marker
from .keys import DEFAULT_PSEUDONYMIZE_KEYS, DENY, MSG_KEY, PATH, PSEUDO, QUERY, SAFE, SCAN, SQL, VERSION, KeyPolicy
from .parsed import ParsedValues
from .phones import DEFAULT_REGIONS
from .pseudonym import Pseudonymizer
from .scanner import ValueScanner
from .values import _CARD_MIN, _DROP, _SURROGATES_REPAIRED, ValueRedaction, has_surrogates, repair_surrogates


#: Key tuples remembered by ``redact_attributes`` (cleared when full: a new one costs a key loop).
_MAX_PLANS = 1024


class Redactor(ValueRedaction):
    """Redacts attribute values and free text; see the module docstring for the rules."""

    def __init__(self, *, pseudonymize: Callable[[str], str] | None = None,
                 extra_deny_keys: Iterable[str] = (), safe_keys: Iterable[str] = (),
                 extra_value_patterns: Mapping[str, str] = {},  # noqa: B006 - read only
                 redact_ip_addresses: bool = True,
                 phone_regions: Iterable[str] = DEFAULT_REGIONS,
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
                                     param_action=self._param_action, pseudonymize=self._pseudonym,
                                     phone_regions=tuple(phone_regions))
        # Ids and numbers skip the scan, unless a custom pattern might want them.
        self._safe_shape = None if extra_value_patterns else SAFE_SHAPE.fullmatch
        self._parsed = ParsedValues(self._scanner, self._pseudonym, self._count)
        self._warned_callback = False
        #: ``on_invalid(reason, message)``: told about input repaired here (lone surrogates, too
        #: deep nesting); the runtime counts it in ``avalo_otel_invalid_input_total``.
        self.on_invalid: Callable[[str, str], None] | None = None
        self._nesting = threading.local()  # depth of the list/mapping being looked into, per thread

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

    @contextlib.contextmanager
    def uncounted(self) -> Iterator[None]:
        """Redactions inside the block are left out of :meth:`redaction_counts` (the configure-time
        self-check's canary is not personal data an app sent)."""
        before = self._counts.totals()
        try:
            yield
        finally:
            self._counts.discount(before)

    def redact_text(self, text: str) -> str:
        """Free text (span names, status descriptions, exception messages, log bodies): value
        detectors only; the same object when nothing was found."""
        return self._str(text) if isinstance(text, str) else text

    # -- keys -----------------------------------------------------------------------------------
    def _resolve(self, key: str) -> tuple:
        # A key can itself be personal data ({"jane@example.com": True}): scanned once, cached.
        found: list[str] = []
        fixed = repair_surrogates(key) if has_surrogates(key) else key
        new_key = self._scanner.scan(fixed, found)
        kind, rule = self._keys.decide(fixed)
        action = (kind, rule, rule and marker(rule)) + ((new_key, tuple(found)) if new_key is not key else (None, ()))
        action += (fixed is not key,)  # repaired: counted as invalid input each time it is used
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
            if new_key is not None or kind == PSEUDO or kind == QUERY or kind == VERSION or kind >= PATH:
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
        if action[5]:
            self._invalid("invalid_unicode", _SURROGATES_REPAIRED)
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
        if kind == SCAN or kind == SAFE:
            return self._value(value, kind == SAFE)  # repairs surrogates itself, where it scans
        value = self._repaired(value)  # before the parsers below see it
        if kind == VERSION and type(value) is str and VERSION_SHAPE.fullmatch(value):
            return value
        if kind == PATH or kind == SQL or kind == MSG_KEY:
            return self._parsed.value(kind, value, self._value)
        if kind == QUERY and isinstance(value, str) and value:
            rules: list[str] = []
            out = self._scanner._params(value, rules)  # noqa: SLF001 - same package
            self._count(rules)
            return out
        return self._value(value, kind == SAFE)
