"""The SQLite store's alert-event updates and bulk reads (a mixin of ``SQLiteStore``, kept apart
so each module stays readable): create-if-new, field updates (optionally compare-and-set),
``scan_metrics`` and ``get_documents``.

The host class provides ``_table``, ``_transaction`` (the write lock and ``BEGIN IMMEDIATE``),
``_reading`` (a pooled read connection), ``_select`` and the ``documents_read`` counter.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional, Sequence

from . import reads
from .base import ALERT_EVENTS, METRICS, Document, expectation_holds, expected_fields
from .schema import acknowledgement, alert_event_changes, alert_event_document, prepare_document
from .sqlite_rows import _create_sql, _decode, _plain_row, _statements

# SQLite's smallest limit on parameters per statement (999 before 3.32): ids per ``IN (…)``.
_IDS_PER_QUERY = 500


class AlertEventsAndScans:
    """``SQLiteStore``'s methods for alert events and bulk reads."""

    #: Points per page of ``scan_metrics``: one short read each, the connection back in the
    #: pool between pages (a scan may be consumed slowly).
    scan_page_size = 5000
    documents_read: int

    _table: Any
    _transaction: Any
    _reading: Any
    _select: Any

    def create_alert_event(self, event: Document) -> bool:
        """True if no event had this id. SQLite admits one writer at a time, so of two stores
        (or processes) creating the same id, exactly one inserts it."""
        table = self._table(ALERT_EVENTS)
        row = _plain_row(ALERT_EVENTS, alert_event_document(event))
        with self._transaction(f"create in {table}") as conn:
            return conn.execute(_create_sql(table, ALERT_EVENTS), row).rowcount == 1  # type: ignore[no-any-return]

    def update_alert_event(
        self, event_id: str, changes: Mapping[str, Any], *, expect: Optional[Mapping[str, Any]] = None,
    ) -> bool:
        """Read, change and rewrite the whole row in one write transaction, so the columns
        (``status``, ``acknowledged`` …) always match the document. ``expect`` is checked on
        the row read inside that transaction (``BEGIN IMMEDIATE`` holds the file's write lock
        from the start), so no other store or process can change it between check and write."""
        table, fields = self._table(ALERT_EVENTS), alert_event_changes(event_id, changes)
        expected = None if expect is None else expected_fields(expect)
        with self._transaction(f"update in {table}") as conn:
            found = conn.execute(f'SELECT doc FROM "{table}" WHERE id = ?', (str(event_id),)).fetchone()
            if found is None:
                return False
            current = _decode(found[0])
            if expected is not None and not expectation_holds(current, expected):
                return False
            doc = prepare_document(ALERT_EVENTS, {**current, **fields})
            for sql, params in _statements(table, ALERT_EVENTS, list(_plain_row(ALERT_EVENTS, doc))):
                conn.execute(sql, params)
        return True

    def acknowledge_alert(self, event_id: str, by: str, at_ms: Optional[int] = None) -> bool:
        return self.update_alert_event(event_id, acknowledgement(by, at_ms))

    def query_alert_events(
        self, *, severity: Optional[str] = None, acknowledged: Optional[bool] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 50,
        rule_id: Optional[str] = None, status: Optional[str] = None,
    ) -> list[Document]:
        filters = {"severity": severity, "acknowledged": acknowledged, "ruleId": rule_id, "status": status}
        return self._select(ALERT_EVENTS, filters, start_ms, end_ms, limit)  # type: ignore[no-any-return]

    def scan_metrics(self, *, names: Sequence[str], start_ms: int, end_ms: int) -> Iterator[Document]:
        """One keyset-paginated stream per name, merged (see ``reads``)."""
        page = reads.page_size(self.scan_page_size)
        streams = [self._scan_name(name, int(start_ms), int(end_ms), page) for name in reads.scan_names(names)]
        return reads.merge_scans(streams)

    def _scan_name(self, name: str, start: int, end: int, page: int) -> Iterator[reads.Scanned]:
        """Pages after the last (timestamp, id) seen: exact however many points share a
        timestamp, and each page a fresh query, so no read transaction spans the yields."""
        table = self._table(METRICS)
        sql = (f'SELECT "timestamp", id, doc FROM "{table}" WHERE name = ? AND "timestamp" >= ? '
               f'AND "timestamp" < ? AND ("timestamp" > ? OR id > ?) ORDER BY "timestamp", id LIMIT ?')
        after: tuple[int, str] = (start, "")  # (ids are never empty)
        while True:
            with self._reading(f"scan {table}") as conn:
                rows = conn.execute(sql, (name, after[0], end, after[0], after[1], page)).fetchall()
            self.documents_read += len(rows)
            for timestamp, key, doc in rows:
                yield timestamp, key, _decode(doc)
            if len(rows) < page:
                return
            after = rows[-1][0], rows[-1][1]

    def get_documents(self, collection: str, ids: Sequence[str]) -> list[Document]:
        """``WHERE id IN (…)``, a chunk of ids per statement, then back in the order of ``ids``."""
        table, wanted = self._table(collection), reads.unique_ids(ids)
        found: dict[str, str] = {}
        with self._reading(f"read {table}") as conn:
            for chunk in reads.chunks(wanted, _IDS_PER_QUERY):
                sql = f'SELECT id, doc FROM "{table}" WHERE id IN ({", ".join("?" * len(chunk))})'
                found.update(conn.execute(sql, list(chunk)).fetchall())
        docs = [_decode(found[doc_id]) for doc_id in wanted if doc_id in found]
        self.documents_read += len(docs)
        return docs
