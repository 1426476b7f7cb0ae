"""``FirestoreStore``'s reads (a mixin, kept apart so each module stays readable): the queries,
``get_documents`` (batched ``BatchGetDocuments``) and ``scan_metrics`` (cursor-paginated).

The host class provides ``client``, ``timeout``, ``_collection``, ``_call`` and ``_stream``
(every RPC goes through those two: errors become ``StoreError``, forks wait for them) and the
``documents_read`` counter.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional, Sequence

from google.cloud import firestore
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from avalo_otel.store import reads
from avalo_otel.store.base import ALERT_EVENTS, ALERT_RULES, METRICS, TELEMETRY_EVENTS, TIME_FIELD, TRACES, Document

from . import _codec
from ._errors import NO_RETRY

#: References per ``BatchGetDocuments`` call: one round trip each.
GET_BATCH = 300


class Reads:
    """``FirestoreStore``'s read methods."""

    #: Points per page of ``scan_metrics``: each page is one call, within ``timeout``.
    scan_page_size = 1000
    documents_read: int
    timeout: float

    client: Any
    _collection: Any
    _call: Any
    _stream: Any

    def _documents(self, snapshots: Sequence[Any]) -> list[Document]:
        self.documents_read += len(snapshots)
        return [_codec.from_firestore(s.id, s.to_dict()) for s in snapshots]

    def _query(
        self, collection: str, equal: Mapping[str, Any], start_ms: Optional[int], end_ms: Optional[int],
        limit: int, *, descending: bool = True,
    ) -> list[Document]:
        limit = reads.positive(limit)
        field = TIME_FIELD[collection]
        query: Any = self._collection(collection)
        for key, value in equal.items():
            if value is not None:
                query = query.where(filter=FieldFilter(key, "==", value))
        # Always a numeric range: Firestore range filters match numbers only, which leaves out
        # documents whose time is null, missing or not a number (as the SQLite store does).
        low = float("-inf") if start_ms is None else int(start_ms)
        query = query.where(filter=FieldFilter(field, ">=", low))
        if end_ms is not None:
            query = query.where(filter=FieldFilter(field, "<", int(end_ms)))
        direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
        query = query.order_by(field, direction=direction).limit(limit)
        return self._documents(self._stream(query, f"query {collection}"))

    def query_events(
        self, *, domain: Optional[str] = None, level: Optional[str] = None, operation: Optional[str] = None,
        success: Optional[bool] = None, start_ms: Optional[int] = None, end_ms: Optional[int] = None,
        limit: int = 100,
    ) -> list[Document]:
        """``telemetry_events`` matching every given field, ``start_ms <= ts < end_ms``, newest first."""
        equal = {"domain": domain, "level": level, "operation": operation, "success": success}
        return self._query(TELEMETRY_EVENTS, equal, start_ms, end_ms, limit)

    def query_metrics(
        self, *, name: Optional[str] = None, type: Optional[str] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 1000,
    ) -> list[Document]:
        """``metrics`` points by name/type and ``timestamp`` range, newest first."""
        return self._query(METRICS, {"name": name, "type": type}, start_ms, end_ms, limit)

    def query_traces(
        self, *, trace_id: Optional[str] = None, operation: Optional[str] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 1000,
    ) -> list[Document]:
        """Spans by trace id (oldest first) or operation (newest first) and ``startTime`` range."""
        equal = {"traceId": trace_id, "operation": operation}
        return self._query(TRACES, equal, start_ms, end_ms, limit, descending=trace_id is None)

    def query_alert_events(
        self, *, severity: Optional[str] = None, acknowledged: Optional[bool] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 50,
        rule_id: Optional[str] = None, status: Optional[str] = None,
    ) -> list[Document]:
        """Alert events matching every given field, newest first."""
        equal = {"severity": severity, "acknowledged": acknowledged, "ruleId": rule_id, "status": status}
        return self._query(ALERT_EVENTS, equal, start_ms, end_ms, limit)

    def get_alert_rule(self, rule_id: str) -> Optional[Document]:
        found = self.get_documents(ALERT_RULES, [rule_id])
        return found[0] if found else None

    def list_alert_rules(self, *, enabled: Optional[bool] = None) -> list[Document]:
        """All rules (optionally only enabled or disabled ones), by id."""
        query: Any = self._collection(ALERT_RULES)
        if enabled is not None:
            query = query.where(filter=FieldFilter("enabled", "==", enabled))
        rules = self._documents(self._stream(query, "list alert rules"))
        return sorted(rules, key=lambda rule: str(rule["id"]))

    def get_documents(self, collection: str, ids: Sequence[str]) -> list[Document]:
        """``GET_BATCH`` references per call; the answers (in no particular order, missing
        documents as snapshots that do not exist) put back in the order of ``ids``."""
        keys = [_codec.document_key(doc_id) for doc_id in reads.unique_ids(ids)]
        ref = self._collection(collection).document
        found: dict[str, Any] = {}
        for chunk in reads.chunks(keys, GET_BATCH):
            refs = [ref(key) for key in chunk]
            snapshots = self._call(f"get {collection}", lambda: list(self.client.get_all(
                refs, retry=NO_RETRY, timeout=self.timeout)))
            found.update((s.id, s) for s in snapshots if s.exists)
        return self._documents([found[key] for key in dict.fromkeys(keys) if key in found])

    def scan_metrics(self, *, names: Sequence[str], start_ms: int, end_ms: int) -> Iterator[Document]:
        """One cursor-paginated query per name (``name ==``, the range, by timestamp then
        document id), merged (see ``avalo_otel.store.reads``)."""
        page = reads.page_size(self.scan_page_size)
        streams = [self._scan_name(name, int(start_ms), int(end_ms), page) for name in reads.scan_names(names)]
        return reads.merge_scans(streams)

    def _scan_name(self, name: str, start: int, end: int, page: int) -> Iterator[reads.Scanned]:
        """Each page starts after the last snapshot of the previous one: by (timestamp,
        document id), so exact however many points share a timestamp."""
        query = (
            self._collection(METRICS).where(filter=FieldFilter("name", "==", name))
            .where(filter=FieldFilter("timestamp", ">=", start)).where(filter=FieldFilter("timestamp", "<", end))
            .order_by("timestamp").order_by(FieldPath.document_id()).limit(page)
        )
        next_page = query
        while True:
            snapshots = self._stream(next_page, f"scan {METRICS}")
            for snapshot, doc in zip(snapshots, self._documents(snapshots)):
                yield doc["timestamp"], snapshot.id, doc
            if len(snapshots) < page:
                return
            next_page = query.start_after(snapshots[-1])
