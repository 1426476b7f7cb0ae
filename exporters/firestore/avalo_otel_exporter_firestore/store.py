"""``FirestoreStore``: the avalo-otel ``Store`` protocol on Cloud Firestore (or its emulator)."""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import firestore
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import firestore as _firestore_types

from avalo_otel.store import schema
from avalo_otel.store.base import (
    ALERT_EVENTS, ALERT_RULES, COLLECTIONS, METRICS, TIME_FIELD, TELEMETRY_EVENTS, TRACES, Document,
    StoreError, check_collection,
)

from . import _codec, _fork
from ._errors import store_error

_CommitRequest = _firestore_types.CommitRequest

__all__ = ["FirestoreStore"]

T = TypeVar("T")

# Never retry inside the client: the exporter above owns retry and backoff, and a dead backend
# must fail within ``timeout`` instead of after the client's 60 s default retry deadline. (A
# Retry that retries nothing rather than ``retry=None``, because Query.stream dereferences it.)
_NO_RETRY = Retry(predicate=lambda exc: False)
_stores: "weakref.WeakSet[FirestoreStore]" = weakref.WeakSet()


_fork.register(_stores)


class FirestoreStore:
    """The five avalo-otel collections in Firestore, documents keyed by their ``id``.

    ``client`` is used as given (and not closed by :meth:`close`); otherwise one is created on
    first use from ``project``/``database`` (and ``FIRESTORE_EMULATOR_HOST``). A process forked
    after use gets its own client: gRPC channels must not cross ``os.fork``. Every call runs
    once with ``timeout`` seconds and raises ``StoreError`` (``transient`` if a retry may help).
    """

    def __init__(
        self, client: firestore.Client | None = None, *, project: str | None = None,
        database: str | None = None, prefix: str = "", timeout: float = 10.0,
    ) -> None:
        self._names = {name: _codec.collection_id(prefix, name) for name in COLLECTIONS}
        if not timeout > 0:
            raise StoreError(f"timeout must be positive, got {timeout!r}")
        self.prefix = prefix
        self.timeout = float(timeout)
        self._project, self._database = project, database
        self._client: firestore.Client | None = client
        self._owned = client is None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.calls = _fork.CallsInFlight()  # what a fork waits for (see _fork)
        self._inherited: list[Any] = []
        self._closed = False
        _stores.add(self)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "FirestoreStore":
        """A store configured by the environment: ``AVALO_OTEL_FIRESTORE_PROJECT`` (else
        ``GOOGLE_CLOUD_PROJECT``, else the credentials' project), ``AVALO_OTEL_FIRESTORE_DATABASE``,
        ``AVALO_OTEL_FIRESTORE_PREFIX``, ``AVALO_OTEL_FIRESTORE_TIMEOUT`` (seconds). The client
        itself honours ``FIRESTORE_EMULATOR_HOST``."""
        env = os.environ if environ is None else environ
        raw_timeout = env.get("AVALO_OTEL_FIRESTORE_TIMEOUT") or "10"
        try:
            timeout = float(raw_timeout)
        except ValueError:
            raise StoreError(f"AVALO_OTEL_FIRESTORE_TIMEOUT={raw_timeout!r} is not a number of seconds") from None
        return cls(
            project=env.get("AVALO_OTEL_FIRESTORE_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or None,
            database=env.get("AVALO_OTEL_FIRESTORE_DATABASE") or None,
            prefix=env.get("AVALO_OTEL_FIRESTORE_PREFIX", ""),
            timeout=timeout,
        )

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def client(self) -> firestore.Client:
        """This process's Firestore client (created on first use)."""
        if self._closed:
            raise StoreError("firestore store is closed")
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._new_client(self._client)
                self._owned = True
                self._pid = os.getpid()
            return self._client

    def _new_client(self, inherited: firestore.Client | None) -> firestore.Client:
        try:
            if inherited is None:
                return firestore.Client(project=self._project, database=self._database)
            # The inherited client's channel and sockets are the parent's: closing (or finalising)
            # them here could disturb the parent, so keep a reference and never use it.
            self._inherited.append(inherited)
            client = firestore.Client(
                project=inherited.project, credentials=getattr(inherited, "_credentials", None),
                database=getattr(inherited, "_database", self._database),
                client_options=getattr(inherited, "_client_options", None),
            )
            # Talk to the same backend as the parent even if the environment changed since.
            client._emulator_host = getattr(inherited, "_emulator_host", client._emulator_host)
            return client
        except Exception as exc:
            error = store_error(exc, "client setup")
            error.transient = error.transient and not isinstance(exc, OSError)
            raise error from exc

    def collection_name(self, collection: str) -> str:
        """The Firestore collection id holding ``collection`` (with the prefix)."""
        return self._names[check_collection(collection)]

    def _collection(self, collection: str) -> Any:
        return self.client.collection(self.collection_name(collection))

    def _after_fork_in_child(self) -> None:
        # A parent thread may have held these at fork time; their copies would never unlock.
        self._lock = threading.Lock()
        self.calls = _fork.CallsInFlight()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            with self.calls:
                return fn()
        except StoreError:
            raise
        except Exception as exc:
            raise store_error(exc, what) from exc

    def _stream(self, query: Any, what: str) -> list[Any]:
        return self._call(what, lambda: list(query.stream(retry=_NO_RETRY, timeout=self.timeout)))

    def _count(self, query: Any, what: str) -> int:
        result = self._call(what, lambda: query.count(alias="n").get(retry=_NO_RETRY, timeout=self.timeout))
        return int(result[0][0].value) if result and result[0] else 0

    def _commit(self, batch: Any, what: str) -> None:
        self._call(what, lambda: batch.commit(retry=_NO_RETRY, timeout=self.timeout))

    # -- writes ---------------------------------------------------------------------------------

    def write(self, collection: str, documents: Sequence[Document], *, prepared: bool = False) -> None:
        """Upsert ``documents`` by ``id`` (prepared as every store does unless ``prepared``
        says the schema's builders made them), at most 500 per commit.

        Commits are not one transaction: after a failure some batches may be stored, which is
        harmless because a retry rewrites the same ids.
        """
        name = self.collection_name(collection)
        docs: dict[str, Document] = {}
        for document in documents:
            doc = document if prepared else schema.prepare_document(collection, document)
            # A later copy of the same id wins, as if the upserts ran one after another.
            docs[_codec.document_key(doc["id"])] = doc
        if not docs:
            return
        # The absolute name the client's own set() sends, less the key (keys never contain "/").
        path = self._collection(collection).document("-")._document_path[:-1]
        what = f"write to {name}"
        for request in _codec.commit_requests(self.client._database_string, path, docs, name):
            self._commit_request(request, what)

    def _commit_request(self, request: Any, what: str) -> None:
        # Committed through the client's own API stub (its channel, metadata, timeout and error
        # mapping): WriteBatch.commit would convert every write and every result through
        # proto-plus, a few µs each on the exporter's thread, and we need neither.
        api, metadata = self.client._firestore_api, self.client._rpc_metadata
        wrapped = _CommitRequest.wrap(request)
        try:
            self._call(what, lambda: api.commit(request=wrapped, metadata=metadata, retry=_NO_RETRY,
                                                timeout=self.timeout))
        except StoreError as error:
            # Our byte estimate is Firestore's storage formula, not the wire size: if the request
            # still came out too large, halve it rather than retry the same request forever.
            if not _too_large(error.__cause__):
                raise
            if len(request.writes) == 1:
                error.transient = False
                raise
            for half in _codec.halves(request):
                self._commit_request(half, what)

    def put_alert_rule(self, rule: Document) -> None:
        """Create or replace a rule (by ``id``; ``enabled`` and ``updatedAt`` defaulted)."""
        self.write(ALERT_RULES, [schema.alert_rule_document(rule)])

    def insert_alert_event(self, event: Document) -> None:
        self.write(ALERT_EVENTS, [schema.alert_event_document(event)])

    def acknowledge_alert(self, event_id: str, by: str, at_ms: Optional[int] = None) -> bool:
        """Mark one alert event acknowledged; False if there is no such event."""
        at = int(time.time() * 1000) if at_ms is None else int(at_ms)
        ref = self._collection(ALERT_EVENTS).document(_codec.document_key(str(event_id)))
        try:
            self._call("acknowledge alert", lambda: ref.update(
                {"acknowledged": True, "acknowledgedBy": by, "acknowledgedAt": at},
                retry=_NO_RETRY, timeout=self.timeout,
            ))
        except StoreError as error:
            if isinstance(error.__cause__, gexc.NotFound):
                return False
            raise
        return True

    def delete_alert_rule(self, rule_id: str) -> bool:
        """Delete a rule; False if there was none (one round trip: a precondition, not a read)."""
        ref = self._collection(ALERT_RULES).document(_codec.document_key(str(rule_id)))
        exists = self.client.write_option(exists=True)
        try:
            self._call("delete alert rule", lambda: ref.delete(option=exists, retry=_NO_RETRY, timeout=self.timeout))
        except StoreError as error:
            if isinstance(error.__cause__, gexc.NotFound):
                return False
            raise
        return True

    def delete_expired(self, collection: str, now_ms: int, *, batch_size: int = 500, dry_run: bool = False) -> int:
        """Delete (or count) documents with ``expireAt <= now_ms``, ``batch_size`` (at most 500) at a time.

        Firestore's TTL policy does this by itself within about a day; this is for prompt or
        manual clean-up and for stores without a TTL policy.
        """
        name = self.collection_name(collection)
        batch_size = _positive(batch_size)
        expired = self._collection(collection).where(
            filter=FieldFilter(_codec.EXPIRE_FIELD, "<=", _codec.ms_to_timestamp(int(now_ms)))
        )
        if dry_run:
            return self._count(expired, f"count expired in {name}")
        size = min(batch_size, _codec.MAX_BATCH_WRITES)
        page = expired.select([FieldPath.document_id()]).limit(size)
        total = 0
        while True:
            snapshots = self._stream(page, f"find expired in {name}")
            if not snapshots:
                return total
            batch = self.client.batch()
            for snapshot in snapshots:
                batch.delete(snapshot.reference)
            self._commit(batch, f"delete expired in {name}")
            total += len(snapshots)
            if len(snapshots) < size:
                return total

    # -- reads ----------------------------------------------------------------------------------

    def _query(
        self, collection: str, equal: Mapping[str, Any], start_ms: Optional[int], end_ms: Optional[int],
        limit: int, *, descending: bool = True,
    ) -> list[Document]:
        limit = _positive(limit)
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
        return [_codec.from_firestore(s.id, s.to_dict()) for s in self._stream(query, f"query {collection}")]

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
    ) -> list[Document]:
        """Alert events, newest first."""
        equal = {"severity": severity, "acknowledged": acknowledged}
        return self._query(ALERT_EVENTS, equal, start_ms, end_ms, limit)

    def get_alert_rule(self, rule_id: str) -> Optional[Document]:
        ref = self._collection(ALERT_RULES).document(_codec.document_key(str(rule_id)))
        snapshot = self._call("get alert rule", lambda: ref.get(retry=_NO_RETRY, timeout=self.timeout))
        return _codec.from_firestore(snapshot.id, snapshot.to_dict()) if snapshot.exists else None

    def list_alert_rules(self, *, enabled: Optional[bool] = None) -> list[Document]:
        """All rules (optionally only enabled or disabled ones), by id."""
        query: Any = self._collection(ALERT_RULES)
        if enabled is not None:
            query = query.where(filter=FieldFilter("enabled", "==", enabled))
        rules = [_codec.from_firestore(s.id, s.to_dict()) for s in self._stream(query, "list alert rules")]
        return sorted(rules, key=lambda rule: str(rule["id"]))

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the client this store created in this process (a client passed in stays open)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, self._client = self._client, None
        if client is not None and self._owned and self._pid == os.getpid():
            try:
                client.close()
            except Exception:  # closing is best effort; nothing to retry
                pass

    def __enter__(self) -> "FirestoreStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FirestoreStore(prefix={self.prefix!r}, timeout={self.timeout})"


def _too_large(exc: Optional[BaseException]) -> bool:
    # The emulator answers RESOURCE_EXHAUSTED "gRPC message exceeds maximum size", Firestore
    # INVALID_ARGUMENT "Request payload size exceeds the limit".
    return isinstance(exc, (gexc.ResourceExhausted, gexc.InvalidArgument)) and bool(
        re.search(r"exceeds|too large|payload size", str(exc), re.IGNORECASE)
    )


def _positive(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StoreError(f"limit and batch_size must be positive integers, not {value!r}")
    return value
