"""The Store interface: the original design's five collections plus ``slo_rollups``, whatever
holds them.

Documents keep the original field names (``ts``, ``domain``, ``errorCode``, ``latencyMs`` …).
Times are epoch milliseconds (ints) in documents; ``expireAt`` is epoch ms too (Firestore stores
it as a timestamp for its TTL policy). Every document has a deterministic ``id`` so a retried
write never duplicates.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Optional, Protocol, Sequence, runtime_checkable

TELEMETRY_EVENTS = "telemetry_events"
METRICS = "metrics"
TRACES = "traces"
ALERT_RULES = "alert_rules"
ALERT_EVENTS = "alert_events"
#: Per-SLO, per-day minute counts kept by the SLO evaluator (see ``avalo_otel.slo.rollup``), so
#: evaluating a 30-day SLO reads ~31 small documents whatever the traffic and process count.
SLO_ROLLUPS = "slo_rollups"
COLLECTIONS = (TELEMETRY_EVENTS, METRICS, TRACES, ALERT_RULES, ALERT_EVENTS, SLO_ROLLUPS)

DAY_MS = 86_400_000
#: Retention per collection in days (None: kept), as in the original design.
RETENTION_DAYS: Mapping[str, Optional[int]] = {
    TELEMETRY_EVENTS: 90, METRICS: 30, TRACES: 30, ALERT_RULES: None, ALERT_EVENTS: 90, SLO_ROLLUPS: 93,
}
#: The time field each collection is ordered and expired by.
TIME_FIELD: Mapping[str, str] = {
    TELEMETRY_EVENTS: "ts", METRICS: "timestamp", TRACES: "startTime", ALERT_RULES: "updatedAt",
    ALERT_EVENTS: "timestamp", SLO_ROLLUPS: "day",
}

Document = dict[str, Any]


class StoreError(Exception):
    """A store could not do what was asked; ``transient`` says whether a retry may succeed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class StoreSettingError(StoreError, ValueError):
    """A store setting (a collection prefix, a timeout) has a value the store cannot use: a bad
    setting, unlike a backend that cannot be reached, so ``configure()`` raises it."""


@runtime_checkable
class Store(Protocol):
    """Storage for the six collections. Implementations must be safe to call from several
    threads at once (the exporter threads write while readers query).

    The two stores also have ``documents_read`` (an int: how many documents their reads have
    returned, for benchmarks) and ``scan_page_size`` (documents per page of ``scan_metrics``).

    A store may also have ``max_batch``: the most documents a ``StoreWriter`` should hand
    ``write`` at once (500, Firestore's commit limit, when it has none); and the pair
    ``pack(collection, document) -> item`` / ``write_packed(collection, items)``, which split
    ``write(…, prepared=True)`` in two so the writer can encode each document as soon as it has
    made it."""

    def write(self, collection: str, documents: Sequence[Document], *, prepared: bool = False) -> None:
        """Upsert documents by ``id`` (idempotent). Raises ``StoreError`` (transient or not).

        ``prepared=True`` promises the documents come from the schema's builders
        (``event_document``, ``span_document``, ``metric_documents``), which already return what
        ``prepare_document`` would: the store may skip that step."""

    def query_events(
        self, *, domain: Optional[str] = None, level: Optional[str] = None, operation: Optional[str] = None,
        success: Optional[bool] = None, start_ms: Optional[int] = None, end_ms: Optional[int] = None,
        limit: int = 100,
    ) -> list[Document]:
        """``telemetry_events`` matching every given field, ``start_ms <= ts < end_ms``, newest first."""

    def query_metrics(
        self, *, name: Optional[str] = None, type: Optional[str] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 1000,
    ) -> list[Document]:
        """``metrics`` points by name/type and ``timestamp`` range, newest first."""

    def query_traces(
        self, *, trace_id: Optional[str] = None, operation: Optional[str] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 1000,
    ) -> list[Document]:
        """``traces`` (one document per span) by traceId or operation and ``startTime`` range;
        by trace id oldest first (the trace's order), otherwise newest first."""

    def put_alert_rule(self, rule: Document) -> None:
        """Create or replace a rule (by ``id``)."""

    def get_alert_rule(self, rule_id: str) -> Optional[Document]: ...

    def list_alert_rules(self, *, enabled: Optional[bool] = None) -> list[Document]: ...

    def delete_alert_rule(self, rule_id: str) -> bool:
        """True if a rule was deleted."""

    def insert_alert_event(self, event: Document) -> None: ...

    def create_alert_event(self, event: Document) -> bool:
        """Insert an alert event only if no event has its ``id``: True if this call created it.
        Two evaluators firing the same alert (same deterministic id) store and notify it once."""

    def update_alert_event(
        self, event_id: str, changes: Mapping[str, Any], *, expect: Optional[Mapping[str, Any]] = None,
    ) -> bool:
        """Set the given top-level fields of one alert event; False if there is no such event.

        ``expect`` makes it a compare-and-set: the change is made only if every given top-level
        field currently equals its value (a missing field equals None), checked and written
        atomically, else False and nothing changes. Two evaluators resolving (or re-notifying)
        the same alert at once both read "firing"; only the one whose update wins notifies."""

    def query_alert_events(
        self, *, severity: Optional[str] = None, acknowledged: Optional[bool] = None,
        start_ms: Optional[int] = None, end_ms: Optional[int] = None, limit: int = 50,
        rule_id: Optional[str] = None, status: Optional[str] = None,
    ) -> list[Document]:
        """Alert events matching every given field (``ruleId``, ``status`` = "firing" |
        "resolved"), newest first."""

    def scan_metrics(
        self, *, names: Sequence[str], start_ms: int, end_ms: int,
    ) -> Iterator[Document]:
        """Every ``metrics`` point of any of ``names`` with ``start_ms <= timestamp < end_ms``,
        oldest first, read in pages (no limit: the SLO rollups and alert rules need them all)."""

    def get_documents(self, collection: str, ids: Sequence[str]) -> list[Document]:
        """The documents of ``collection`` with these ids that exist, in the order of ``ids``."""

    def acknowledge_alert(self, event_id: str, by: str, at_ms: Optional[int] = None) -> bool:
        """Set ``acknowledged``, ``acknowledgedBy``, ``acknowledgedAt``; False if no such event."""

    def delete_expired(self, collection: str, now_ms: int, *, batch_size: int = 500, dry_run: bool = False) -> int:
        """Delete (or with ``dry_run`` only count) documents whose ``expireAt <= now_ms``, in batches."""

    def close(self) -> None: ...


def expire_at(collection: str, time_ms: int) -> Optional[int]:
    days = RETENTION_DAYS[collection]
    return None if days is None else time_ms + days * DAY_MS


def expected_fields(expect: Any) -> Document:
    """``update_alert_event``'s ``expect`` as stored values would be (JSON-safe: a tuple is a
    list, a set a sorted list …), so it compares with what a store reads back."""
    from .values import json_safe  # (values imports this module)

    if not isinstance(expect, Mapping):
        raise StoreError(f"{ALERT_EVENTS}: expect must be a mapping, not {type(expect).__name__}")
    return {str(key): json_safe(value) for key, value in expect.items()}


def expectation_holds(document: Mapping[str, Any], expect: Mapping[str, Any]) -> bool:
    """Whether every field of ``expect`` (from ``expected_fields``) equals ``document``'s
    (missing counts as None). Booleans never equal numbers: JSON keeps ``true`` and ``1`` apart, and a
    compare-and-set on ``acknowledged`` must not take a count of 1 for "yes"."""
    return all(_same(document.get(key), value) for key, value in expect.items())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def check_collection(collection: str) -> str:
    if collection not in COLLECTIONS:
        raise StoreError(f"unknown collection {collection!r}: expected one of {', '.join(COLLECTIONS)}")
    return collection


def ids(documents: Iterable[Document]) -> list[str]:
    return [str(d["id"]) for d in documents]
