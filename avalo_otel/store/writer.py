"""A bounded, never-blocking buffer in front of a store, drained by one background thread.

The OTel batch processors already keep the app thread off the network; this writer keeps the
processors' threads off it too, so a store outage costs memory up to a bound and nothing else:

* ``submit()`` only appends to a bounded buffer; past the bound documents are dropped, counted
  in ``avalo_otel_export_dropped_total{exporter=…}`` and warned about once per outage;
* the thread writes batches of at most ``batch_size`` documents; a transient error keeps the
  batch at the head of the buffer and retries with capped exponential backoff, so after an outage
  everything buffered is delivered, in order, once (ids are deterministic, writes are upserts);
* ``flush()``/``shutdown()`` wait at most their deadline; a forked child starts empty and fresh.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Callable, Iterable, Mapping, Optional

from opentelemetry import metrics

from .base import Document, Store, StoreError, check_collection

_log = logging.getLogger("avalo_otel")
_writers: "weakref.WeakSet[StoreWriter]" = weakref.WeakSet()


class StoreWriter:
    """Buffers ``(collection, document)`` pairs and writes them to ``store`` in the background."""

    def __init__(
        self,
        store: Store,
        *,
        name: str = "store",
        max_buffer: int = 10_000,
        batch_size: int = 500,
        max_backoff_s: float = 5.0,
        drop_counter: Optional[Callable[[int], None]] = None,
    ) -> None:
        if max_buffer < 1 or not 1 <= batch_size <= 500:
            raise ValueError("max_buffer must be >= 1 and batch_size between 1 and 500")
        self.store = store
        self.name = name
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.max_backoff_s = max_backoff_s
        self.dropped = 0
        self.delivered = 0
        self._count_drop = drop_counter or _default_drop_counter(name)
        self._reset()
        _writers.add(self)

    def _reset(self) -> None:
        self._buffer: deque[tuple[str, Document]] = deque()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._in_flight = 0
        self._outage_since: Optional[float] = None
        self._warned_drop = False

    # -- producer side (exporter threads) --------------------------------------------------------
    def submit(self, collection: str, documents: Iterable[Document]) -> int:
        """Queue documents; returns how many were dropped because the buffer was full."""
        check_collection(collection)
        # The store prepares documents as it writes them (JSON-safe, sized); only what would
        # make a whole batch fail is caught here, per document.
        prepared, invalid = [], 0
        for doc in documents:
            if isinstance(doc, Mapping) and doc.get("id") not in (None, ""):
                prepared.append((collection, doc))
            else:
                invalid += 1
                _log.warning("avalo-otel: %s exporter skipped a document without an id", self.name)
        dropped, why = 0, "the buffer is full"
        with self._cond:
            if self._stopping:
                dropped, why = len(prepared), "the exporter is shut down"
            else:
                room = self.max_buffer - len(self._buffer)
                dropped = max(0, len(prepared) - room)
                self._buffer.extend(prepared[:room] if dropped else prepared)
                self._ensure_thread()
                if self._outage_since is None:  # during an outage the retry backoff decides
                    self._cond.notify()
        if dropped:
            self._drop(dropped, why)
        if invalid:
            self.dropped += invalid
            self._count_drop(invalid)
        return dropped + invalid

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        self._count_drop(count)
        if not self._warned_drop:  # once per outage, not once per batch
            self._warned_drop = True
            _log.warning("avalo-otel: %s exporter dropped %d document(s): %s (bound %d)",
                         self.name, count, why, self.max_buffer)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=f"avalo-otel-{self.name}-writer", daemon=True)
            self._thread.start()

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.1
        while True:
            with self._cond:
                while not self._buffer and not self._stopping:
                    self._cond.wait()
                if not self._buffer:
                    return
                batch = self._take_batch()
            try:
                self._write(batch)
            except StoreError as exc:
                if exc.transient and not self._stopping:
                    self._put_back(batch)
                    self._outage(exc)
                    with self._cond:
                        if self._stopping:
                            return
                        self._cond.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                self._release(batch)
                why = "shut down while the store was unavailable" if exc.transient else f"the store refused them: {exc}"
                self._drop(len(batch), why)
                continue
            except Exception as exc:  # noqa: BLE001 - a bug in a store must not kill the thread
                self._release(batch)
                self._drop(len(batch), f"unexpected error {type(exc).__name__}: {exc}")
                continue
            self._release(batch)
            self.delivered += len(batch)
            backoff = 0.1
            if self._outage_since is not None:
                _log.warning("avalo-otel: %s store reachable again after %.1fs; buffered data delivered",
                             self.name, time.monotonic() - self._outage_since)
                self._outage_since = None
                self._warned_drop = False

    def _take_batch(self) -> list[tuple[str, Document]]:
        # One collection per batch: a store writes one collection per call.
        first = self._buffer[0][0]
        batch = []
        while self._buffer and len(batch) < self.batch_size and self._buffer[0][0] == first:
            batch.append(self._buffer.popleft())
        self._in_flight = len(batch)
        return batch

    def _write(self, batch: list[tuple[str, Document]]) -> None:
        self.store.write(batch[0][0], [doc for _, doc in batch])

    def _put_back(self, batch: list[tuple[str, Document]]) -> None:
        with self._cond:
            self._buffer.extendleft(reversed(batch))
            self._in_flight = 0
            overflow = len(self._buffer) - self.max_buffer
            for _ in range(max(0, overflow)):
                self._buffer.pop()
        if overflow > 0:
            self._drop(overflow, "the buffer is full")

    def _release(self, batch: list[tuple[str, Document]]) -> None:
        with self._cond:
            self._in_flight = 0
            self._cond.notify_all()

    def _outage(self, exc: StoreError) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            _log.warning("avalo-otel: %s store unavailable (%s); buffering up to %d documents and retrying",
                         self.name, exc, self.max_buffer)

    # -- flush and shutdown ---------------------------------------------------------------------
    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False if the deadline passed first."""
        deadline = time.monotonic() + timeout_s
        if _shutdown_deadline is not None:
            deadline = min(deadline, _shutdown_deadline)
        with self._cond:
            if self._buffer:
                self._ensure_thread()
                self._cond.notify()
            while self._buffer or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Flush within the deadline, then stop; what could not be written is counted as dropped."""
        done = self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            left = len(self._buffer)
            self._buffer.clear()
            self._cond.notify_all()
        if left:
            self._drop(left, "shutdown deadline passed before the store accepted them")
        return done

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._in_flight

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its buffer and counts belong to the parent.
        self._reset()
        self.dropped = self.delivered = 0


def _default_drop_counter(name: str) -> Callable[[int], None]:
    """Counts into whatever meter provider is global when the drop happens (a writer may be
    built before configure() installs its provider)."""
    attrs = {"exporter": name}

    def count(n: int) -> None:
        metrics.get_meter("avalo_otel").create_counter(
            "avalo_otel_export_dropped_total", description="Documents an exporter could not deliver"
        ).add(n, attrs)

    return count


_shutdown_deadline: Optional[float] = None


def shutdown_deadline(deadline: Optional[float]) -> None:
    """Cap every flush until ``deadline`` (monotonic seconds): a whole pipeline shuts down within
    one deadline instead of one per writer in turn. ``None`` lifts the cap."""
    global _shutdown_deadline
    _shutdown_deadline = deadline


def _reinit_after_fork() -> None:
    for writer in list(_writers):
        writer._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def writers() -> list[StoreWriter]:
    """Every live writer (for shutdown on SIGTERM and for tests)."""
    return list(_writers)


__all__ = ["StoreWriter", "writers"]
