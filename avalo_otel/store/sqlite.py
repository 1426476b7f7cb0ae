"""The embedded store: the six collections in one SQLite file, stdlib ``sqlite3`` only.

Each collection is a table holding the queried fields as columns plus the whole document as
JSON (``doc``); the indexes are the original design's composite Firestore indexes. A file an
older version made gets the columns added since when it is opened (``sqlite_rows.create_schema``).

Concurrency: the file is in WAL mode, so readers never block the writer nor each other. All
writes go through one connection behind a lock: SQLite admits one writer at a time anyway, and
serialising our own threads in Python means they never meet ``SQLITE_BUSY`` (``busy_timeout``
covers other processes on the same file). Queries use a small pool of read-only connections, so
a dashboard query runs while the exporter thread writes, each on a consistent snapshot. A pool
rather than one connection per thread: short-lived request threads would otherwise leave open
connections behind.
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, Union


from .base import (
    ALERT_EVENTS, ALERT_RULES, COLLECTIONS, METRICS, TELEMETRY_EVENTS, TIME_FIELD, TRACES, Document,
    StoreError, StoreSettingError, check_collection,
)
from .reads import positive
from .schema import alert_event_document, alert_rule_document, prepare_document
from .sqlite_queries import AlertEventsAndScans
from .sqlite_rows import (
    _COLUMNS, _GETTERS, MAX_ROWS, _column, _decode, _encode, _plain_row, _statements, create_schema,
)

#: Where ``SQLiteStore()`` puts its file: relative to the working directory.
#: (``AVALO_OTEL_STORE_PATH`` is read by the settings, which pass the path in.)
DEFAULT_PATH = "./avalo-telemetry.db"
BUSY_TIMEOUT_MS = 10_000
_PREFIX = re.compile(r"^[A-Za-z0-9_]*$")
_READERS_KEPT = 4
_TRANSIENT = ("locked", "busy", "disk i/o")


_stores: "weakref.WeakSet[SQLiteStore]" = weakref.WeakSet()


def _before_fork() -> None:
    # Fork only between transactions: a child that inherits SQLite's in-process record of a
    # lock held by a parent thread would wait on it forever.
    for store in list(_stores):
        store._write_lock.acquire()


def _after_fork_in_parent() -> None:
    for store in list(_stores):
        store._write_lock.release()


def _reinit_after_fork() -> None:
    for store in list(_stores):
        store._after_fork_in_child()


class SQLiteStore(AlertEventsAndScans):
    """``Store`` on one SQLite file; ``prefix`` is prepended to every table (e.g. ``"staging_"``).
    ``documents_read`` counts the documents its reads have returned."""

    #: What a ``StoreWriter`` hands ``write`` at most: one statement's rows.
    max_batch = MAX_ROWS

    def __init__(self, path: Union[str, "os.PathLike[str]", None] = None, *, prefix: str = "") -> None:
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise StoreSettingError(f"invalid collection prefix {prefix!r}: use only letters, digits and underscores")
        self.prefix = prefix
        self.path = _prepare_path(DEFAULT_PATH if path is None else path)
        # ":memory:" is private to each connection: there, reads share the writer connection.
        self._memory = self.path == ":memory:"
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self.documents_read = 0
        self._writer = self._connect(reader=False)
        try:
            with self._transaction("create tables") as conn:
                for collection in COLLECTIONS:
                    create_schema(conn, self._table(collection), collection)
        except StoreError:
            self._writer.close()
            raise
        _stores.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked child (gunicorn pre-fork) may inherit a lock held by a parent thread and the
        parent's connections: it gets fresh locks and its own connection. The inherited
        connections are abandoned, not closed: closing them would touch the parent's state."""
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._abandoned = (self._writer, self._readers)  # kept referenced: never finalised here
        self._readers = []
        if not self._closed and not self._memory:
            self._writer = self._connect(reader=False)

    # -- connections ---------------------------------------------------------------------------
    def _connect(self, *, reader: bool) -> sqlite3.Connection:
        try:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) so a writer takes the
            # write lock up front instead of failing to upgrade a read lock under contention.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite telemetry store at {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if reader:
                conn.execute("PRAGMA query_only = ON")
            else:
                self.journal_mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
                conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, fast commits
                # 16 MiB of page cache (SQLite's default is 2): index pages of a growing telemetry
                # file stay in memory between batches.
                conn.execute("PRAGMA cache_size = -16384")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot use the SQLite telemetry store at {self.path}: {exc}") from exc
        return conn

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            message = str(exc)
            transient = any(word in message.lower() for word in _TRANSIENT)
            raise StoreError(f"SQLite store ({self.path}) could not {what}: {message}", transient=transient) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the SQLite store at {self.path} is closed")

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._write_lock, self._errors(what):
            self._check_open()
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _reading(self, what: str) -> Iterator[sqlite3.Connection]:
        if self._memory:
            with self._write_lock, self._errors(what):
                self._check_open()
                yield self._writer
            return
        with self._pool_lock:
            self._check_open()
            conn: Optional[sqlite3.Connection] = self._readers.pop() if self._readers else None
        with self._errors(what):
            if conn is None:
                conn = self._connect(reader=True)
            try:
                yield conn
            finally:
                with self._pool_lock:
                    if not self._closed and len(self._readers) < _READERS_KEPT:
                        self._readers.append(conn)
                        conn = None
                if conn is not None:
                    conn.close()

    # -- schema --------------------------------------------------------------------------------
    def _table(self, collection: str) -> str:
        return self.prefix + check_collection(collection)

    # -- Store ---------------------------------------------------------------------------------
    def write(self, collection: str, documents: Sequence[Document], *, prepared: bool = False) -> None:
        """Upsert by ``id``, all of ``documents`` in one transaction."""
        if prepared:
            rows = [self.pack(collection, doc) for doc in documents]
        else:
            rows = [_plain_row(collection, prepare_document(collection, doc)) for doc in documents]
        self.write_packed(collection, rows)

    def pack(self, collection: str, document: Document) -> tuple[Any, ...]:
        """A document from the schema's builders as its table row (columns, then the JSON).
        (The builders give every column field, already of its column's type.)"""
        return (*_GETTERS[collection](document), _encode(document))

    def write_packed(self, collection: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Upsert rows made by ``pack``, all in one transaction.

        Up to ``MAX_ROWS`` rows go in one multi-row ``INSERT … VALUES (…), (…) …`` statement:
        SQLite inserts them all in one step, without the GIL. ``executemany`` would take the GIL
        back for every row, and with a busy app thread each of those waits may last a whole
        switch interval (5 ms)."""
        table = self._table(collection)
        if not rows:
            return
        statements = _statements(table, collection, list(itertools.chain.from_iterable(rows)))
        if len(statements) == 1:
            # One statement is its own transaction: no BEGIN and COMMIT, each of which would
            # release the GIL and then wait to get it back.
            with self._write_lock, self._errors(f"write to {table}"):
                self._check_open()
                self._writer.execute(*statements[0])
            return
        with self._transaction(f"write to {table}") as conn:
            for sql, params in statements:
                conn.execute(sql, params)

    def _select(self, collection: str, filters: Mapping[str, Any], start_ms: Optional[int],
                end_ms: Optional[int], limit: int, *, ascending: bool = False) -> list[Document]:
        table, time_field = self._table(collection), TIME_FIELD[collection]
        where, params = [f'"{time_field}" IS NOT NULL'], []
        for name, value in filters.items():
            if value is not None:
                where.append(f'"{name}" = ?')
                params.append(_column(_COLUMNS[collection][name], value))
        if start_ms is not None:
            where.append(f'"{time_field}" >= ?')
            params.append(int(start_ms))
        if end_ms is not None:
            where.append(f'"{time_field}" < ?')
            params.append(int(end_ms))
        order = "ASC" if ascending else "DESC"
        sql = (f'SELECT doc FROM "{table}" WHERE {" AND ".join(where)} '
               f'ORDER BY "{time_field}" {order}, id {order} LIMIT ?')
        with self._reading(f"query {table}") as conn:
            rows = conn.execute(sql, (*params, positive(limit))).fetchall()
        self.documents_read += len(rows)
        return [_decode(row[0]) for row in rows]

    def query_events(
        self, *, domain: Optional[str] = None, level: Optional[str] = None, operation: Optional[str] = None,
        success: Optional[bool] = None, start_ms: Optional[int] = None, end_ms: Optional[int] = None,
        limit: int = 100,
    ) -> list[Document]:
        filters = {"domain": domain, "level": level, "operation": operation, "success": success}
        return self._select(TELEMETRY_EVENTS, filters, start_ms, end_ms, limit)

    def query_metrics(
        self, *, name: Optional[str] = None, type: Optional[str] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 1000,
    ) -> list[Document]:
        return self._select(METRICS, {"name": name, "type": type}, start_ms, end_ms, limit)

    def query_traces(
        self, *, trace_id: Optional[str] = None, operation: Optional[str] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 1000,
    ) -> list[Document]:
        filters = {"traceId": trace_id, "operation": operation}
        return self._select(TRACES, filters, start_ms, end_ms, limit, ascending=trace_id is not None)

    def put_alert_rule(self, rule: Document) -> None:
        self.write(ALERT_RULES, [alert_rule_document(rule)])

    def get_alert_rule(self, rule_id: str) -> Optional[Document]:
        table = self._table(ALERT_RULES)
        with self._reading(f"read {table}") as conn:
            row = conn.execute(f'SELECT doc FROM "{table}" WHERE id = ?', (str(rule_id),)).fetchone()
        self.documents_read += row is not None
        return _decode(row[0]) if row else None

    def list_alert_rules(self, *, enabled: Optional[bool] = None) -> list[Document]:
        """Rules ordered by ``id``."""
        table = self._table(ALERT_RULES)
        sql, params = f'SELECT doc FROM "{table}"', []
        if enabled is not None:
            sql, params = sql + ' WHERE "enabled" = ?', [int(bool(enabled))]
        with self._reading(f"read {table}") as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        self.documents_read += len(rows)
        return [_decode(row[0]) for row in rows]

    def delete_alert_rule(self, rule_id: str) -> bool:
        table = self._table(ALERT_RULES)
        with self._transaction(f"delete from {table}") as conn:
            return conn.execute(f'DELETE FROM "{table}" WHERE id = ?', (str(rule_id),)).rowcount > 0

    def insert_alert_event(self, event: Document) -> None:
        self.write(ALERT_EVENTS, [alert_event_document(event)])

    def delete_expired(self, collection: str, now_ms: int, *, batch_size: int = 500, dry_run: bool = False) -> int:
        """Each batch is its own transaction, so exporters keep writing during a long cleanup."""
        table, batch = self._table(collection), positive(batch_size)
        if dry_run:
            with self._reading(f"count expired in {table}") as conn:
                sql = f'SELECT COUNT(*) FROM "{table}" WHERE "expireAt" <= ?'
                return int(conn.execute(sql, (int(now_ms),)).fetchone()[0])
        sql = (f'DELETE FROM "{table}" WHERE rowid IN '
               f'(SELECT rowid FROM "{table}" WHERE "expireAt" <= ? LIMIT ?)')
        total = 0
        while True:
            with self._transaction(f"delete expired from {table}") as conn:
                deleted = conn.execute(sql, (int(now_ms), batch)).rowcount
            total += deleted
            if deleted < batch:
                return total

    def close(self) -> None:
        """Close every connection; later calls raise ``StoreError``. Idempotent."""
        with self._write_lock:
            with self._pool_lock:
                if self._closed:
                    return
                self._closed = True
                readers, self._readers = self._readers, []
            for conn in readers:
                conn.close()
            self._writer.close()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, prefix={self.prefix!r})"


def _prepare_path(path: Union[str, "os.PathLike[str]"]) -> str:
    raw = os.fspath(path)
    if raw == ":memory:":
        return raw
    target = Path(raw).expanduser()
    if target.is_dir():
        raise StoreError(f"cannot use {target} as the SQLite telemetry store: it is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreError(f"cannot create the directory {target.parent} for the SQLite telemetry store "
                         f"{target}: {reason}") from exc
    return str(target)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_reinit_after_fork)
