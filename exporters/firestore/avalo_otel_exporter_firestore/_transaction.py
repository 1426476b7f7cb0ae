"""Compare-and-set on one document: a Firestore transaction that reads the document, checks an
expectation and writes only if it holds.

The retrying is the client's own (``firestore.transactional``): a commit refused with ABORTED,
because a concurrent transaction changed the document first, is run again from the read, up to
``MAX_ATTEMPTS`` times, each attempt keeping its place in line (``retry_transaction``), so the
loser of a race re-reads the winner's change and its expectation fails.

The client does not wait between attempts. On the emulator two transactions that both read the
document and then both commit each wait for the other's read lock until both time out (ABORTED
"Transaction lock timeout"), and retried at once they meet the same way again, attempt after
attempt. So a retried attempt begins after a short random pause (``RETRY_JITTER_S``), which puts
one's read after the other's commit.

And the client's ``Transaction`` begins, commits and rolls back with the API's default retry
(up to 60 s of retries) and timeouts, where every other call of the store runs once within the
store's ``timeout`` (a dead backend must fail fast; the exporters above own retrying). So
``Transaction`` here makes those three calls again with ``NO_RETRY`` and the timeout.
"""

from __future__ import annotations

import random
import time
from typing import Any, Mapping, Optional

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.types import firestore as _firestore_types
from google.cloud.firestore_v1.types import write as _write_types

from avalo_otel.store.base import expectation_holds

from . import _codec
from ._errors import NO_RETRY

#: Attempts of one compare-and-set before it gives up on a contended document (the client's
#: default): each lost attempt means another writer changed the document meanwhile.
MAX_ATTEMPTS = 5
#: Seconds: a retried attempt waits up to this much times the number of attempts so far.
RETRY_JITTER_S = 0.1

_CommitRequest = _firestore_types.CommitRequest
_WritePb = _write_types.Write.pb()


class Transaction(firestore.Transaction):
    """A read-write transaction whose RPCs run once each, within ``timeout`` seconds. Its writes
    are raw ``Write`` protobufs (``_codec``'s, as ``FirestoreStore.write`` encodes documents)."""

    def __init__(self, client: Any, timeout: float, max_attempts: int = MAX_ATTEMPTS) -> None:
        super().__init__(client, max_attempts=max_attempts)
        self._timeout = timeout
        self._attempts = 0

    def _rpc(self, method: Any, request: Any) -> Any:
        return method(request=request, metadata=self._client._rpc_metadata, retry=NO_RETRY, timeout=self._timeout)

    def _begin(self, retry_id: Optional[bytes] = None) -> None:
        if self.in_progress:
            raise ValueError(f"the transaction has already begun (id {self._id!r})")
        if retry_id is not None:  # (the client's retry of an aborted attempt)
            self._attempts += 1
            time.sleep(random.uniform(0, RETRY_JITTER_S * self._attempts))
        response = self._rpc(self._client._firestore_api.begin_transaction, {
            "database": self._client._database_string, "options": self._options_protobuf(retry_id)})
        self._id = response.transaction

    def _commit(self) -> list[Any]:
        if not self.in_progress:
            raise ValueError("the transaction has no id, so it cannot be committed")
        request = _CommitRequest.pb()(database=self._client._database_string, transaction=self._id)
        request.writes.extend(w if isinstance(w, _WritePb) else type(w).pb(w) for w in self._write_pbs)
        response = self._rpc(self._client._firestore_api.commit, _CommitRequest.wrap(request))
        self._clean_up()
        self.write_results = list(response.write_results)
        self.commit_time = response.commit_time
        return self.write_results

    def _rollback(self) -> None:
        """Best effort, and silent: the client calls it while an error (the one the caller must
        see, transient or not) propagates, and a transaction left open expires by itself. (Also
        a no-op when ``_begin`` itself failed: there is nothing to roll back.)"""
        if not self.in_progress:
            return
        try:
            self._rpc(self._client._firestore_api.rollback, {
                "database": self._client._database_string, "transaction": self._id})
        except Exception:  # noqa: BLE001 - see the docstring
            pass
        finally:
            self._clean_up()


def update_if(client: Any, ref: Any, write: Any, expected: Mapping[str, Any], timeout: float) -> bool:
    """Commit ``write`` (an update of ``ref``'s document) only if the document exists and its
    fields equal ``expected`` (keys as stored, see ``_codec.firestore_key``), all in one
    transaction: False if not. Raises what the client raises (``lost_race`` tells a race that
    outlasted the attempts)."""

    @firestore.transactional
    def attempt(transaction: Transaction) -> bool:
        [snapshot] = list(transaction.get(ref, retry=NO_RETRY, timeout=timeout))
        if not snapshot.exists:
            return False
        if not expectation_holds(_codec.from_firestore(snapshot.id, snapshot.to_dict()), expected):
            return False  # (the empty transaction still commits: that releases its read)
        transaction._add_write_pbs([write])
        return True

    return bool(attempt(Transaction(client, timeout, MAX_ATTEMPTS)))


def lost_race(exc: Optional[BaseException]) -> bool:
    """Whether ``exc`` means concurrent transactions kept winning: ABORTED on every attempt (the
    client then raises a ValueError from the last one), or on a read, which the client does not
    retry."""
    if isinstance(exc, ValueError) and isinstance(exc.__cause__, gexc.Aborted):
        return True
    return isinstance(exc, gexc.Aborted)
