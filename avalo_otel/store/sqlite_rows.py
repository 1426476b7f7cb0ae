"""The SQLite store's tables, rows and statements: which fields are columns, how a document
becomes a row (orjson for the JSON), the multi-row upserts that write a batch, and the schema
(with the migration of files an older version made)."""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
from typing import Any, Mapping, Optional, Sequence

import orjson

from .base import ALERT_EVENTS, ALERT_RULES, METRICS, SLO_ROLLUPS, TELEMETRY_EVENTS, TRACES, Document

# Queried fields per collection (column → "text" | "int" | "bool"); expireAt is in every table.
_COLUMNS: Mapping[str, Mapping[str, str]] = {
    TELEMETRY_EVENTS: {"domain": "text", "level": "text", "operation": "text", "success": "bool", "ts": "int"},
    METRICS: {"name": "text", "type": "text", "timestamp": "int"},
    TRACES: {"traceId": "text", "operation": "text", "startTime": "int"},
    ALERT_RULES: {"enabled": "bool", "updatedAt": "int"},
    ALERT_EVENTS: {"severity": "text", "acknowledged": "bool", "timestamp": "int", "ruleId": "text", "status": "text"},
    SLO_ROLLUPS: {"slo": "text", "day": "int"},
}
# The original composite indexes, plus the time field alone (unfiltered queries) and expireAt.
_INDEXES: Mapping[str, Sequence[tuple[str, ...]]] = {
    TELEMETRY_EVENTS: [("domain", "ts"), ("level", "ts"), ("operation", "ts"), ("success", "ts"), ("ts",)],
    METRICS: [("name", "timestamp"), ("type", "timestamp"), ("timestamp",)],
    TRACES: [("traceId", "startTime"), ("operation", "startTime"), ("startTime",)],
    ALERT_RULES: [("enabled",)],
    ALERT_EVENTS: [("severity", "timestamp"), ("acknowledged", "timestamp"), ("ruleId", "timestamp"),
                   ("status", "timestamp"), ("timestamp",)],
    SLO_ROLLUPS: [("slo", "day")],
}
_SQL_TYPES = {"text": "TEXT", "int": "INTEGER", "bool": "INTEGER"}
# Per collection: the fields that are columns, in table order (id first, expireAt then doc last).
_FIELDS = {collection: ("id", *columns, "expireAt") for collection, columns in _COLUMNS.items()}
_WIDTH = {collection: len(fields) + 1 for collection, fields in _FIELDS.items()}
_GETTERS = {collection: operator.itemgetter(*fields) for collection, fields in _FIELDS.items()}
# SQLite's default limit on parameters per statement (999 before 3.32).
_MAX_PARAMS = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
#: Rows per statement, and so the most documents worth handing ``write`` at once. Many, because
#: every statement costs the writer's thread a fixed toll on top of its rows (the GIL is released
#: and retaken around each SQLite call, and with a busy app thread each retake may wait a whole
#: switch interval, 5 ms); not the 4095 the parameter limit allows, because compiling a statement
#: shape costs ~1 ms per 250 rows, once per connection.
MAX_ROWS = min(2048, _MAX_PARAMS // max(_WIDTH.values()))


def _plain_row(collection: str, document: Document) -> tuple[Any, ...]:
    """Any prepared document as its row: missing or odd column fields as ``_column`` has them."""
    kinds = {"id": "text", **_COLUMNS[collection], "expireAt": "int"}
    return (*(_column(kind, document.get(name)) for name, kind in kinds.items()), _encode(document))


def _statements(table: str, collection: str, params: list[Any]) -> list[tuple[str, list[Any]]]:
    """``params`` split into statements of at most ``MAX_ROWS`` rows, each padded with NULL rows
    to a power of two (or ``MAX_ROWS``): a dozen statement shapes, all soon compiled and cached,
    whatever the batch sizes are."""
    width = _WIDTH[collection]
    statements = []
    for start in range(0, len(params), MAX_ROWS * width):
        chunk = params[start:start + MAX_ROWS * width]
        rows = len(chunk) // width
        shape = min(1 << (rows - 1).bit_length(), MAX_ROWS)
        chunk.extend([None] * ((shape - rows) * width))
        statements.append((_insert_sql(table, collection, shape), chunk))
    return statements


@functools.lru_cache(maxsize=None)
def _insert_sql(table: str, collection: str, rows: int) -> str:
    names = [f'"{name}"' for name in (*_FIELDS[collection], "doc")]
    row = "(" + ", ".join("?" * len(names)) + ")"
    updates = ", ".join(f"{name} = excluded.{name}" for name in names[1:])
    # The padding rows have a NULL id and are filtered out; "WHERE" also keeps SQLite's parser
    # from reading "ON CONFLICT" as a join constraint.
    return (f'INSERT INTO "{table}" ({", ".join(names)}) SELECT * FROM (VALUES {", ".join([row] * rows)}) '
            f"WHERE column1 IS NOT NULL ON CONFLICT(id) DO UPDATE SET {updates}")


@functools.lru_cache(maxsize=None)
def _create_sql(table: str, collection: str) -> str:
    """One row inserted only if its id is new (``rowcount`` says whether it was)."""
    names = [f'"{name}"' for name in (*_FIELDS[collection], "doc")]
    return (f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))}) '
            "ON CONFLICT(id) DO NOTHING")


# -- schema ------------------------------------------------------------------------------------
def create_schema(conn: sqlite3.Connection, table: str, collection: str) -> None:
    """The table and its indexes, in a transaction of the caller's. A table an older version made
    first gets the columns it lacks (so their indexes can be made)."""
    defs = ", ".join(f'"{name}" {_SQL_TYPES[kind]}' for name, kind in _COLUMNS[collection].items())
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" '
                 f'(id TEXT PRIMARY KEY, {defs}, "expireAt" INTEGER, doc TEXT NOT NULL)')
    _add_missing_columns(conn, table, collection)
    indexes = list(_INDEXES[collection]) + ([] if collection == ALERT_RULES else [("expireAt",)])
    for fields in indexes:
        name = f"{table}__{'_'.join(fields)}"
        columns = ", ".join(f'"{field}"' for field in fields)
        conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({columns})')


_MIGRATION_ROWS = 1000


def _add_missing_columns(conn: sqlite3.Connection, table: str, collection: str) -> None:
    """Adds the columns of ``_COLUMNS`` the table lacks and fills them from each row's document.
    Filled in Python by ``_column``, not by ``json_extract``: a column must hold exactly what a
    query parameter becomes (``json_extract`` would make ``true`` 1 where ``_column`` says
    "true"). Runs inside the caller's ``BEGIN IMMEDIATE``, so of two processes opening an old
    file at once, the second finds the columns there."""
    present = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    missing = {name: kind for name, kind in _COLUMNS[collection].items() if name not in present}
    if not missing:
        return
    for name, kind in missing.items():
        conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {_SQL_TYPES[kind]}')
    assignments = ", ".join(f'"{name}" = ?' for name in missing)
    update = f'UPDATE "{table}" SET {assignments} WHERE rowid = ?'
    last = 0  # (rowids SQLite chose are positive)
    while True:  # in pages by rowid: never the whole table in memory
        rows = conn.execute(f'SELECT rowid, doc FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?',
                            (last, _MIGRATION_ROWS)).fetchall()
        conn.executemany(update, [(*_columns_of(_decode(doc), missing), rowid) for rowid, doc in rows])
        if len(rows) < _MIGRATION_ROWS:
            return
        last = rows[-1][0]


def _columns_of(doc: Any, kinds: Mapping[str, str]) -> list[Any]:
    fields = doc if isinstance(doc, dict) else {}
    return [_column(kind, fields.get(name)) for name, kind in kinds.items()]


def _column(kind: str, value: Any) -> Any:
    """A document value as its column holds it (None when it cannot be: the doc keeps it)."""
    return _TO_COLUMN[kind](value)


def _text(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    # Numbers and JSON as text, as in a column with text affinity.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _encode(value)


def _bool(value: Any) -> Optional[int]:
    return int(bool(value)) if isinstance(value, (bool, int, float)) else None


def _int(value: Any) -> Optional[int]:
    if type(value) is int:
        return value
    if isinstance(value, int) or (isinstance(value, float) and value == value and abs(value) < 2**63):
        return int(value)
    return None


_TO_COLUMN = {"text": _text, "bool": _bool, "int": _int}


# The stdlib encoder for what orjson refuses (lone surrogates, escaped as \uXXXX since they have no
# UTF-8 form; ints beyond 64 bits, non-text keys in documents stored without preparing).
_encode_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


def _encode(value: Any) -> str:
    """Compact JSON text for a document column (orjson: several times the stdlib's speed)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _encode_ascii(value)


def _decode(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # (escaped lone surrogates: only the stdlib decodes them)
        return json.loads(text)
