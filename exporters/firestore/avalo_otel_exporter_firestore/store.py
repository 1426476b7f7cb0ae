"""``FirestoreStore``: the avalo-otel ``Store`` protocol on Cloud Firestore (or its emulator)."""

from __future__ import annotations

import os
import re
import threading
import weakref
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import firestore as _firestore_types

from avalo_otel.store import reads, schema
from avalo_otel.store.base import (
    ALERT_EVENTS, ALERT_RULES, COLLECTIONS, Document, StoreError, StoreSettingError, check_collection, expectation_holds, expected_fields,
)

from . import _codec, _fork, _transaction
from ._errors import NO_RETRY, store_error
from ._reads import Reads

_CommitRequest = _firestore_types.CommitRequest

__all__ = ["FirestoreStore"]

T = TypeVar("T")

_stores: "weakref.WeakSet[FirestoreStore]" = weakref.WeakSet()


_fork.register(_stores)


class FirestoreStore(Reads):
    """The six avalo-otel collections in Firestore, documents keyed by their ``id``.

    ``client`` is used as given (and not closed by :meth:`close`); otherwise one is created on
    first use from ``project``/``database`` (and ``FIRESTORE_EMULATOR_HOST``). A process forked
    after use gets its own client: gRPC channels must not cross ``os.fork``. Every call runs
    once with ``timeout`` seconds and raises ``StoreError`` (``transient`` if a retry may help).
    ``documents_read`` counts the documents its reads have returned.
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
        self.documents_read = 0
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
            raise StoreSettingError(f"AVALO_OTEL_FIRESTORE_TIMEOUT={raw_timeout!r} is not a number of seconds") from None
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

    def _path(self, collection: str) -> str:
        """The absolute name of a document of ``collection`` less its key (the client's own, as
        ``set()`` sends it; keys never contain "/")."""
        return str(self._collection(collection).document("-")._document_path[:-1])

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
        return self._call(what, lambda: list(query.stream(retry=NO_RETRY, timeout=self.timeout)))

    def _count(self, query: Any, what: str) -> int:
        result = self._call(what, lambda: query.count(alias="n").get(retry=NO_RETRY, timeout=self.timeout))
        return int(result[0][0].value) if result and result[0] else 0

    def _commit(self, batch: Any, what: str) -> None:
        self._call(what, lambda: batch.commit(retry=NO_RETRY, timeout=self.timeout))

    @staticmethod
    def _unless(refusal: type[Exception], fn: Callable[[], Any]) -> bool:
        """Runs ``fn`` (a call with a precondition, made through ``_call``): False if the backend
        refused it with ``refusal`` (the precondition failed), True if it ran. (``fn`` makes its
        own ``_call``: nested ones could hold up a fork waiting for the outer one.)"""
        try:
            fn()
        except StoreError as error:
            if isinstance(error.__cause__, refusal):
                return False
            raise
        return True

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
        what = f"write to {name}"
        for request in _codec.commit_requests(self.client._database_string, self._path(collection), docs, name):
            self._commit_request(request, what)

    def _commit_request(self, request: Any, what: str) -> None:
        # Committed through the client's own API stub (its channel, metadata, timeout and error
        # mapping): WriteBatch.commit would convert every write and every result through
        # proto-plus, a few µs each on the exporter's thread, and we need neither.
        api, metadata = self.client._firestore_api, self.client._rpc_metadata
        wrapped = _CommitRequest.wrap(request)
        try:
            self._call(what, lambda: api.commit(request=wrapped, metadata=metadata, retry=NO_RETRY,
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

    def create_alert_event(self, event: Document) -> bool:
        """One commit with an "exists: false" precondition: Firestore itself decides which of
        two creators of the same id wins (the other gets ALREADY_EXISTS: False here)."""
        doc = schema.alert_event_document(event)
        return self._write_if(ALERT_EVENTS, doc["id"], doc, "create alert event", exists=False)

    def update_alert_event(
        self, event_id: str, changes: Mapping[str, Any], *, expect: Optional[Mapping[str, Any]] = None,
    ) -> bool:
        """One commit of just these fields (an update mask) with an "exists" precondition: no
        read, and a concurrent change to other fields is kept.

        With ``expect``, a transaction instead (read, compare, commit: see ``_transaction``), so
        of two stores updating the same event expecting the same, exactly one changes it."""
        fields = schema.alert_event_changes(event_id, changes)
        if expect is None:
            return self._write_if(ALERT_EVENTS, event_id, fields, "update alert event", exists=True)
        expected = {_codec.firestore_key(key): value for key, value in expected_fields(expect).items()}
        return self._update_expecting(event_id, fields, expected)

    def _update_expecting(self, event_id: str, fields: Document, expected: Document) -> bool:
        """The write encoded as ``_write_if`` encodes it, committed by ``_transaction.update_if``
        within one ``_call``. Contention that outlasts the client's attempts means other writers
        changed the event meanwhile: if they made the expectation false, this update lost the
        race (False, as if it had run after them); if it still holds, the StoreError is
        transient (a retry may win)."""
        key, name, what = _codec.document_key(event_id), self.collection_name(ALERT_EVENTS), "update alert event"
        [request] = _codec.commit_requests(self.client._database_string, self._path(ALERT_EVENTS), {key: fields}, name)
        write = request.writes[0]
        _codec.precondition(write, exists=True)
        ref = self._collection(ALERT_EVENTS).document(key)
        try:
            return self._call(what, lambda: _transaction.update_if(self.client, ref, write, expected, self.timeout))
        except StoreError as error:
            if isinstance(error.__cause__, gexc.NotFound):
                return False  # (deleted between the read and the commit)
            if not _transaction.lost_race(error.__cause__):
                raise
            lost = error
        current = self.get_documents(ALERT_EVENTS, [event_id])
        if not current or not expectation_holds(current[0], expected):
            return False
        raise StoreError(f"firestore {what} failed: {_transaction.MAX_ATTEMPTS} attempts aborted by concurrent "
                         "changes", transient=True) from lost.__cause__

    def acknowledge_alert(self, event_id: str, by: str, at_ms: Optional[int] = None) -> bool:
        """Mark one alert event acknowledged; False if there is no such event."""
        return self.update_alert_event(event_id, schema.acknowledgement(by, at_ms))

    def _write_if(self, collection: str, doc_id: Any, fields: Document, what: str, *, exists: bool) -> bool:
        """``fields`` written to one document, encoded as ``write`` encodes documents (keys,
        ``expireAt`` timestamp, size), as a create (``exists=False``) or an update of only
        these top-level fields (``exists=True``). False if the precondition failed."""
        key, name = _codec.document_key(doc_id), self.collection_name(collection)
        [request] = _codec.commit_requests(self.client._database_string, self._path(collection), {key: fields}, name)
        _codec.precondition(request.writes[0], exists=exists)
        refusal = gexc.NotFound if exists else gexc.AlreadyExists
        return self._unless(refusal, lambda: self._commit_request(request, what))

    def delete_alert_rule(self, rule_id: str) -> bool:
        """Delete a rule; False if there was none (one round trip: a precondition, not a read)."""
        ref = self._collection(ALERT_RULES).document(_codec.document_key(str(rule_id)))
        exists = self.client.write_option(exists=True)
        return self._unless(gexc.NotFound, lambda: self._call(
            "delete alert rule", lambda: ref.delete(option=exists, retry=NO_RETRY, timeout=self.timeout)))

    def delete_expired(self, collection: str, now_ms: int, *, batch_size: int = 500, dry_run: bool = False) -> int:
        """Delete (or count) documents with ``expireAt <= now_ms``, ``batch_size`` (at most 500) at a time.

        Firestore's TTL policy does this by itself within about a day; this is for prompt or
        manual clean-up and for stores without a TTL policy.
        """
        name = self.collection_name(collection)
        batch_size = reads.positive(batch_size)
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
