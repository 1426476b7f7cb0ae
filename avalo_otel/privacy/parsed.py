"""Values parsed for what they are before they are scanned: paths, SQL, messaging keys.

:class:`ParsedValues` serves the key kinds ``PATH``, ``SQL`` and ``MSG_KEY`` of
:mod:`.keys` for the :class:`~avalo_otel.privacy.redactor.Redactor`:

* ``PATH`` (``url.path``, ``http.target``, raw ``http.route``/``route``, ``Referer``): a
  ``path?query#fragment`` taken apart like a URL's (:meth:`UrlRules.target
  <avalo_otel.privacy.urls.UrlRules.target>`): ids in the path pseudonymised, secret parameters
  replaced, the rest decoded and scanned; a full URL is scanned as one;
* ``SQL`` (``db.statement``, ``db.query.text``): literals replaced by ``?`` (:mod:`.sql`), then
  scanned; what cannot be parsed becomes ``[REDACTED:db_statement]``;
* ``MSG_KEY`` (``messaging.kafka.message.key``, routing and ordering keys): ids pseudonymised
  (:func:`.paths.key_ids`), then scanned.

Only keys of these kinds pay for it (the redactor's plans route them here). Results are cached
per (kind, text) for texts up to 1024 characters, bounded like the scan cache.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Optional

from .detectors import marker
from .keys import MSG_KEY, PATH, SQL
from .paths import key_ids
from .scanner import ValueScanner
from .sql import is_statement, sanitize

_CACHE_MAX_LEN = 1024
_NOT_SQL = re.compile(r"\w@|://").search
_CACHE_SIZE = 4096


class ParsedValues:
    """``value(kind, value, fallback)``: ``value`` redacted for its kind; ``fallback(value, safe)``
    handles what is neither text nor a list of texts (numbers, mappings)."""

    def __init__(self, scanner: ValueScanner, pseudonym: Callable[[str], str],
                 count: Callable[[Iterable[str]], None]) -> None:
        self._scanner = scanner
        self._pseudonym = pseudonym
        self._count = count
        # Per kind: text -> (redacted text, or None when clean; rules found).
        self._caches: dict[int, dict[str, tuple[Optional[str], tuple[str, ...]]]] = {
            PATH: {}, SQL: {}, MSG_KEY: {}}

    def value(self, kind: int, value: Any, fallback: Callable[[Any, bool], Any]) -> Any:
        t = type(value)
        if t is str:
            hit = self._caches[kind].get(value)  # the common case, inline: routes repeat
            if hit is not None:
                if hit[1]:
                    self._count(hit[1])
                return value if hit[0] is None else hit[0]
            return self._text(kind, value) if value else value
        if t is list or t is tuple:  # header values are lists
            new = [self.value(kind, v, fallback) for v in value]
            if all(a is b for a, b in zip(new, value)):
                return value
            return new if t is list else tuple(new)
        if t is bytes or t is bytearray:
            try:
                text = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return fallback(value, False)  # not text: the redactor's rule for binary
            return self._text(kind, text)  # as text, like any bytes (see Redactor._bytes)
        return fallback(value, False)

    def _text(self, kind: int, text: str) -> str:
        found: list[str] = []
        try:
            out = self._parse(kind, text, found)
        except RecursionError:  # URLs in URLs in URLs…: fail closed
            found, out = ["unscannable"], marker("unscannable")
        if len(text) <= _CACHE_MAX_LEN:
            cache = self._caches[kind]
            if len(cache) >= _CACHE_SIZE:
                cache.clear()  # rare: values of these keys repeat (routes, statements)
            cache[text] = (None if out is text else out, tuple(found))
        if found:
            self._count(found)
        return out

    def _parse(self, kind: int, text: str, found: list[str]) -> str:
        scanner = self._scanner
        if kind == PATH:
            return scanner.target(text, found)
        if kind == SQL:
            clean = sanitize(text)
            if clean is None:
                found.append("db_statement")
                return marker("db_statement")
            if clean is not text:
                found.append("sql_literal")
            # What is left of SQL is keywords, names, operators and placeholders: only text that
            # is no SQL (an unquoted e-mail, a URL, a Redis command) is scanned, "email = ?" must
            # stay as it is.
            if _NOT_SQL(clean) or not (is_statement(clean) or clean[:1] in ("{", "[")):
                clean = scanner.scan(clean, found)
            return text if clean == text else clean
        if kind == MSG_KEY:
            out = key_ids(text, self._pseudonym)
            scanned = scanner.scan(out, found)
            return text if scanned == text else scanned
        raise ValueError(f"not a parsed kind: {kind}")  # pragma: no cover
