"""A bounded, never-blocking buffer in front of a store, drained by one background thread.

The OTel batch processors already keep the app thread off the network; this writer keeps the
processors' threads off it too, so a store outage costs memory up to a bound and nothing else:

* ``submit()`` (documents) and ``put()`` (one SDK record, converted later on the writer's thread)
  only append to a bounded buffer; past the bound items are dropped, counted in
  ``avalo_otel_export_dropped_total{exporter, signal, reason}`` and warned about once per outage;
* the thread writes what has gathered (once ``WRITE_AT`` documents have, or after ``linger_s``)
  in one store call per collection of at most ``batch_size`` documents; a transient error keeps
  the batch at the head of the buffer and retries with capped exponential backoff, so after an
  outage everything buffered is delivered, in order, once (ids are deterministic, writes are
  upserts);
* ``flush()``/``shutdown()`` wait at most their deadline; a forked child starts empty and fresh.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Iterable, Mapping, Optional

from ..export_faults import EXPORT_FAILED, INVALID, QUEUE_FULL, SHUTDOWN, count_dropped
from .base import METRICS, TELEMETRY_EVENTS, TRACES, Document, Store, StoreError, check_collection

_log = logging.getLogger("avalo_otel")
#: Documents that make a store call worth making at once: below this the writer lingers for more
#: (see ``linger_s``); above it, it writes what has gathered, up to ``batch_size`` per call. So
#: under load batches grow with the backlog: each store call costs the writer's thread a fixed
#: toll (a wait for the GIL after every release, up to a switch interval, 5 ms, while the app
#: thread runs), paid per call, not per document.
WRITE_AT = 512
_writers: "weakref.WeakSet[StoreWriter]" = weakref.WeakSet()
_SIGNALS = {TRACES: "traces", TELEMETRY_EVENTS: "logs", METRICS: "metrics"}
# (collection, item, stage): stage is None for a plain document (the store prepares it),
# ``_packed`` for one the store has packed (see ``Store.pack``), else the function making a
# prepared document of the item (an SDK log record or span; ``_ready`` for a prepared document).
_Entry = tuple[str, Any, Optional[Callable[[Any], Any]]]


def _ready(document: Document) -> Document:
    return document


def _packed(row: Any) -> Any:
    return row


def _stage(entry: _Entry) -> Any:
    stage = entry[2]
    return stage if stage is None or stage is _packed else "record"  # (a prepared document too)


class StoreWriter:
    """Buffers ``(collection, document)`` pairs and writes them to ``store`` in the background."""

    def __init__(
        self,
        store: Store,
        *,
        name: str = "store",
        max_buffer: int = 10_000,
        batch_size: Optional[int] = None,
        max_backoff_s: float = 5.0,
        linger_s: Optional[float] = None,
        drop_counter: Optional[Callable[[int], None]] = None,
    ) -> None:
        # A store may take more per call than Firestore's 500 (SQLite: thousands per statement);
        # fewer, larger writes matter when the app keeps the GIL busy.
        batch_size = batch_size if batch_size is not None else getattr(store, "max_batch", 500)
        if max_buffer < 1 or batch_size < 1:
            raise ValueError("max_buffer and batch_size must be >= 1")
        self.store = store
        self._pack = getattr(store, "pack", None)
        self.name = name
        self.max_buffer = max_buffer
        self.batch_size = batch_size  # (also sets ``_write_at``)
        self.max_backoff_s = max_backoff_s
        # Below a full batch, wait this long for more before writing: one store call for many
        # events at low rates (the OTel batch processors' schedule delay). Unset: 0.2 s.
        self.linger_s = linger_s
        self.dropped = 0
        self.delivered = 0
        # A drop_counter given (tests) is called with the count alone.
        self._count_drop: Callable[[int, str, str], None] = (
            (lambda count, signal, reason: drop_counter(count)) if drop_counter else _default_drop_counter(name))
        self._reset()
        _writers.add(self)

    @property
    def batch_size(self) -> int:
        """The most documents in one store call."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = value
        self._write_at = min(value, WRITE_AT)

    def _reset(self) -> None:
        self._buffer: deque[_Entry] = deque()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._in_flight = 0
        self._flushing = 0
        self._outage_since: Optional[float] = None
        self._warned_drop = False

    # -- producer side (exporter threads) --------------------------------------------------------
    def submit(self, collection: str, documents: Iterable[Document], *, prepared: bool = False) -> int:
        """Queue documents; returns how many were dropped because the buffer was full.
        ``prepared``: they come from the schema's builders (see ``Store.write``)."""
        check_collection(collection)
        # The store prepares documents as it writes them (JSON-safe, sized); only what would
        # make a whole batch fail is caught here, per document.
        queued, invalid = [], 0
        for doc in documents:
            if isinstance(doc, Mapping) and doc.get("id") not in (None, ""):
                queued.append((collection, doc, _ready if prepared else None))
            else:
                invalid += 1
                _log.warning("avalo-otel: %s exporter skipped a document without an id", self.name)
        dropped = self._enqueue(queued)
        if invalid:
            self.dropped += invalid
            self._count_drop(invalid, _signal(collection), INVALID)
        return dropped + invalid

    def put_many(self, collection: str, items: Iterable[Any], convert: Callable[[Any], Document]) -> int:
        """``put`` for a batch (what an exporter is handed): one lock for all of them. Returns
        how many were dropped."""
        return self._enqueue([(collection, item, convert) for item in items])

    def _enqueue(self, entries: list[_Entry]) -> int:
        dropped, why, reason = 0, "the buffer is full", QUEUE_FULL
        with self._cond:
            if self._stopping:
                dropped, why, reason = len(entries), "the exporter is shut down", SHUTDOWN
            else:
                room = self.max_buffer - len(self._buffer)
                dropped = max(0, len(entries) - room)
                self._buffer.extend(entries[:room] if dropped else entries)
                self._ensure_thread()
                if self._outage_since is None:  # during an outage the retry backoff decides
                    self._cond.notify()
        if dropped:
            self._drop(dropped, why, reason, entries[0][0])
        return dropped

    def put(self, collection: str, item: Any, convert: Callable[[Any], Document]) -> None:
        """Queue one item (an SDK log record or span) that ``convert`` turns into a prepared
        document on the writer's thread. The app-thread path: no lock, no conversion here."""
        buffer = self._buffer
        if self._stopping or len(buffer) >= self.max_buffer:
            if self._stopping:
                self._drop(1, "the exporter is shut down", SHUTDOWN, collection)
            else:
                self._drop(1, "the buffer is full", QUEUE_FULL, collection)
            return
        buffer.append((collection, item, convert))
        size = len(buffer)
        # Wake the writer when a batch starts (its linger starts) or is worth writing; between
        # those it is either writing or lingering and will look again by itself.
        if size == 1 or size % self._write_at == 0 or self._thread is None:
            with self._cond:
                self._ensure_thread()
                if self._outage_since is None:
                    self._cond.notify()

    def linger_at_most(self, seconds: float) -> None:
        """Write a partial batch after at most ``seconds`` (the shortest asked for wins: one
        writer may serve several signals)."""
        self.linger_s = seconds if self.linger_s is None else min(self.linger_s, seconds)

    def _drop(self, count: int, why: str, reason: str, collection: str) -> None:
        """Count ``count`` lost documents of ``collection`` (``reason``: see ``export_faults``)."""
        self.dropped += count
        self._count_drop(count, _signal(collection), reason)
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
                    # Timed: put() wakes the writer without holding the lock, so a wake-up can
                    # be missed; then this finds the items a moment later.
                    self._cond.wait(1.0)
                if self._buffer and len(self._buffer) < self._write_at and not (self._stopping or self._flushing):
                    self._cond.wait(0.2 if self.linger_s is None else self.linger_s)
                if not self._buffer:
                    if self._stopping:
                        return
                    continue
                groups = self._take_batch()
            outage = self._write_groups([group for group in map(self._convert, groups) if group])
            self._release()
            if outage is None:
                backoff = 0.1
                continue
            self._outage(outage)
            with self._cond:
                if self._stopping:
                    return
                self._cond.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _take_batch(self) -> list[list[_Entry]]:
        """The head of the buffer as one group per collection and kind (one store call each), in
        order, each at most ``batch_size``: up to the first entry whose group is full.

        Grouped, not cut at the first change of collection: one app thread's calls interleave
        spans and events (span, event, span, …), and a batch per run of one collection would
        be one store call, one SQLite transaction or Firestore commit, per document."""
        buffer, limit = self._buffer, self.batch_size
        groups: dict[tuple[str, Any], list[_Entry]] = {}
        taken = 0
        while buffer:
            head = buffer[0]
            key = (head[0], _stage(head))
            group = groups.get(key)
            if group is None:
                group = groups[key] = []
            elif len(group) >= limit:
                break
            group.append(buffer.popleft())
            taken += 1
        self._in_flight = taken
        return list(groups.values())

    def _write_groups(self, groups: list[list[_Entry]]) -> Optional[StoreError]:
        """Writes each group; at a transient error puts it and the groups after it back at the
        head of the buffer (still converted) and returns the error. Refused groups are dropped."""
        for i, batch in enumerate(groups):
            try:
                self._write(batch)
            except StoreError as exc:
                if exc.transient and not self._stopping:
                    self._put_back([entry for rest in groups[i:] for entry in rest])
                    return exc
                if exc.transient:
                    self._drop(len(batch), "shut down while the store was unavailable", SHUTDOWN, batch[0][0])
                else:
                    self._drop(len(batch), f"the store refused them: {exc}", EXPORT_FAILED, batch[0][0])
                continue
            except Exception as exc:  # noqa: BLE001 - a bug in a store must not kill the thread
                self._drop(len(batch), f"unexpected error {type(exc).__name__}: {exc}", EXPORT_FAILED, batch[0][0])
                continue
            self.delivered += len(batch)
            if self._outage_since is not None:
                _log.warning("avalo-otel: %s store reachable again after %.1fs; buffered data delivered",
                             self.name, time.monotonic() - self._outage_since)
                self._outage_since = None
                self._warned_drop = False
        return None

    def _convert(self, batch: list[_Entry]) -> list[_Entry]:
        """Records (and prepared documents) made what the store writes, once: a batch put back
        after a failed write stays converted. A store that packs gets each document packed right
        after it is made, while it is still in the CPU's cache (measurably faster than packing a
        whole batch of documents afterwards)."""
        if _stage(batch[0]) != "record":
            return batch
        converted, failed = [], None
        pack = self._pack
        for collection, item, convert in batch:
            try:
                doc = convert(item)  # type: ignore[misc]
                converted.append((collection, pack(collection, doc), _packed) if pack else (collection, doc, _ready))
            except Exception as exc:  # noqa: BLE001 - one odd record must not cost the batch
                failed = exc
        if failed is not None:
            with self._cond:
                self._in_flight -= len(batch) - len(converted)
            self._drop(len(batch) - len(converted), f"could not convert: {type(failed).__name__}: {failed}",
                       INVALID, batch[0][0])
        return converted

    def _write(self, batch: list[_Entry]) -> None:
        collection, _, stage = batch[0]
        items = [item for _, item, _ in batch]
        if stage is _packed:
            self.store.write_packed(collection, items)  # type: ignore[attr-defined]
        elif stage is None:  # a store written before ``prepared`` existed still works for these
            self.store.write(collection, items)
        else:
            self.store.write(collection, items, prepared=True)

    def _put_back(self, batch: list[_Entry]) -> None:
        with self._cond:
            self._buffer.extendleft(reversed(batch))
            self._in_flight = 0
            overflow = [self._buffer.pop() for _ in range(max(0, len(self._buffer) - self.max_buffer))]
        self._drop_entries(overflow, "the buffer is full", QUEUE_FULL)

    def _release(self) -> None:
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
            self._flushing += 1  # no lingering while someone waits
            try:
                if self._buffer:
                    self._ensure_thread()
                    self._cond.notify_all()
                while self._buffer or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(min(remaining, 0.05))
            finally:
                self._flushing -= 1
        return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Flush within the deadline, then stop; what could not be written is counted as dropped."""
        done = self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            left = list(self._buffer)
            self._buffer.clear()
            self._cond.notify_all()
        self._drop_entries(left, "shutdown deadline passed before the store accepted them", SHUTDOWN)
        return done

    def _drop_entries(self, entries: list[_Entry], why: str, reason: str) -> None:
        """``_drop`` for entries of any collections (one signal label each)."""
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry[0]] = counts.get(entry[0], 0) + 1
        for collection, count in counts.items():
            self._drop(count, why, reason, collection)

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._in_flight

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its buffer and counts belong to the parent.
        self._reset()
        self.dropped = self.delivered = 0


def _default_drop_counter(name: str) -> Callable[[int, str, str], None]:
    """Counts into ``avalo_otel_export_dropped_total{exporter=name, signal, reason}`` of whatever
    meter provider is global when the drop happens (a writer may be built before configure()
    installs its provider)."""
    return lambda count, signal, reason: count_dropped(name, signal, reason, count)


def _signal(collection: str) -> str:
    """The ``signal`` label of a collection's documents (other collections: their name)."""
    return _SIGNALS.get(collection, collection)


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
