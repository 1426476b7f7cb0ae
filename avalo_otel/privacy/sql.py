"""Query text sanitised the way the OTel semantic conventions recommend: literals become ``?``.

:func:`sanitize` runs a small tokenizer over ``db.statement`` / ``db.query.text`` and rebuilds the
text with every string literal (``'…'`` with ``''`` and backslash escapes, ``E'…'``, ``N'…'``,
``X'…'``, ``_utf8mb4'…'``, ``$tag$…$tag$``) and every number (``42``, ``-1.5e3``, ``0x1F``)
replaced by ``?``; comments are dropped (``/* user=… */`` can hold anything); keywords,
identifiers, operators and placeholders (``?``, ``$1``, ``:name``, ``@p1``, ``%s``, ``%(name)s``)
are kept. A double-quoted token is an identifier in standard SQL and a string in MySQL: it is kept
only where an identifier is expected and only when it reads like one (``"users"."email"``), and
becomes ``?`` after a comparison, inside ``VALUES (…)`` or ``IN (…)``, or when it holds anything
but a name.

It fails closed (None: the caller replaces the whole value) on text it cannot tokenize
(unterminated quotes or comments, stray characters, ``user:jane``) and on text longer than
:data:`MAX_LEN`. A JSON document (MongoDB, Elasticsearch) keeps its keys and has every value
replaced by ``"?"``. :func:`is_statement` tells SQL from other query text (``GET ?``, ``find``):
the caller scans the latter like any text, since words there may be values.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Optional

#: Longer statements are not parsed (fail closed): bulk inserts of megabytes are not worth it.
MAX_LEN = 1 << 20
_CACHE_LEN = 4096

_TOKEN = re.compile(r"""
 (?P<ws>\s+)
|(?P<comment>--[^\n]*|\#(?![A-Za-z_@#$>])[^\n]*)
|(?P<block>/\*)
|(?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
|(?P<string>(?:[NnEeXxBbRr]|[Uu]&|_[A-Za-z0-9]+)?'(?:[^'\\]|\\.|'')*')
|(?P<qident>"(?:[^"]|"")*")
|(?P<bident>`(?:[^`]|``)*`|\[[A-Za-z_#@$][\w$#@]*\])
|(?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?(?![\w$])|[0-9][\w$]*|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
|(?P<param>\?[0-9]*|\$[0-9]+|%\([A-Za-z_]\w*\)s|%[sd]|:[A-Za-z_]\w*|@@?[A-Za-z_]\w*)
|(?P<word>[^\W\d][\w$]*|\#[A-Za-z_@#$][\w$#@]*)
|(?P<op>::|<=|>=|<>|!=|==|\|\||->>|->|\#>>|\#>|[-+*/%<>=~!^&|.,;()\[\]{}:?])
""", re.X)
_IDENT = re.compile(r"[^\W\d][\w$]{0,127}")
_RANDOM_ID = re.compile(r"(?=[\w-]*[0-9])(?=[\w-]*[A-Za-z])[\w-]{10,}")

#: Words a SQL (or CQL, N1QL, SQLite, T-SQL) statement starts with.
STATEMENT_WORDS = frozenset("""
SELECT INSERT UPDATE DELETE WITH MERGE UPSERT REPLACE CREATE ALTER DROP TRUNCATE GRANT REVOKE BEGIN
START COMMIT ROLLBACK SAVEPOINT RELEASE SET SHOW EXPLAIN DESCRIBE DESC USE CALL EXEC EXECUTE PREPARE
DEALLOCATE DECLARE FETCH CLOSE OPEN MOVE COPY LOCK UNLOCK VACUUM ANALYZE ANALYSE PRAGMA ATTACH DETACH
REINDEX VALUES TABLE LISTEN NOTIFY UNLISTEN COMMENT REFRESH CLUSTER CHECKPOINT DISCARD RESET LOAD
END ABORT OPTIMIZE RENAME KILL DO BATCH APPLY IF PRINT RAISERROR THROW TRY GO INFER PREPARE
""".split())
#: Tokens after which a double-quoted token is a value, not a name.
_VALUE_BEFORE = frozenset({"=", "==", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "||", "LIKE", "ILIKE",
                           "THEN", "ELSE", "BETWEEN", "AGAINST", "DEFAULT"})


class _Unparsable(Exception):
    """The text cannot be tokenized: fail closed."""


def sanitize(text: str) -> Optional[str]:
    """``text`` with its literals replaced by ``?`` (``text`` itself when it has none), or None
    when it is not a statement this can parse (the caller then redacts the whole value)."""
    if len(text) <= _CACHE_LEN:
        return _cached(text)
    return _sanitize(text)


@lru_cache(maxsize=2048)
def _cached(text: str) -> Optional[str]:
    return _sanitize(text)


def _sanitize(text: str) -> Optional[str]:
    if len(text) > MAX_LEN:
        return None
    start = text.lstrip()[:1]
    if start in ("{", "["):
        out = _json(text)
        if out is not None:
            return out
    try:
        return _statement(text)
    except _Unparsable:
        return None


_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")


def is_statement(text: str) -> bool:
    """Whether ``text`` starts like a SQL statement (``SELECT``, ``WITH``, ``(SELECT``…)."""
    m = _FIRST_WORD.match(text)
    return m is not None and m.group(1).upper() in STATEMENT_WORDS


def _json(text: str) -> Optional[str]:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return json.dumps(_blank(doc), separators=(",", ":"), ensure_ascii=False)


def _blank(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _blank(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v) for v in value]
    return value if value is None or isinstance(value, bool) else "?"


def _block_end(text: str, pos: int) -> int:
    """The end of the ``/* … */`` opened at ``pos`` (nested, as in PostgreSQL)."""
    depth, i = 0, pos
    while True:
        opening, closing = text.find("/*", i), text.find("*/", i)
        if closing == -1:
            raise _Unparsable
        if opening != -1 and opening < closing:
            depth += 1
            i = opening + 2
        else:
            depth -= 1
            i = closing + 2
            if depth == 0:
                return i


def _statement(text: str) -> Optional[str]:
    out: list[str] = []
    changed = False
    prev = ""  # the previous significant token (upper-cased words)
    lists: list[bool] = [False]  # per open parenthesis: a list of values (VALUES (…), IN (…))
    values_chain = False  # just after "VALUES (…)": ", (…)" is a list of values too
    pos, n = 0, len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            raise _Unparsable
        kind, tok = m.lastgroup, m.group()
        end = m.end()
        if kind == "ws":
            out.append(tok)
            pos = end
            continue
        if kind in ("comment", "block"):
            if kind == "block":
                end = _block_end(text, pos)
            if out and not out[-1][-1:].isspace():
                out.append(" ")
            changed = True
            pos = end
            continue
        if kind == "dollar":
            close = text.find(tok, end)
            if close == -1:
                raise _Unparsable
            end = close + len(tok)
            kind = "string"
        value = kind in ("string", "number")
        if kind == "qident" or kind == "bident":
            inner = tok[1:-1]
            value = (kind == "qident" and (prev in _VALUE_BEFORE or lists[-1])) or not _IDENT.fullmatch(inner) \
                or bool(_RANDOM_ID.fullmatch(inner))
        elif kind == "param" and tok[0] == ":" and pos and (text[pos - 1].isalnum() or text[pos - 1] == "_"):
            raise _Unparsable  # "user:jane" is no SQL: a key, not a placeholder
        if value:
            out.append("?")
            changed = True
        else:
            out.append(tok)
        upper = tok.upper() if kind == "word" else tok
        if tok == "(":
            lists.append(lists[-1] or prev in ("VALUES", "IN") or (prev == "," and values_chain))
            values_chain = False
        elif tok == ")":
            values_chain = len(lists) > 1 and lists.pop() and not lists[-1]
        elif tok != ",":
            values_chain = False
        prev = upper
        pos = end
    if not changed:
        return text
    result = "".join(out)
    return result if text[-1:].isspace() else result.rstrip()  # a dropped trailing comment
