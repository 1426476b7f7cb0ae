"""StoreWriter's record path (``put``): what the store processors use instead of an OTel batch
processor. Against a real SQLiteStore; timings are generous bounds, not measurements."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import avalo_otel
from avalo_otel.store import TELEMETRY_EVENTS, TRACES, SQLiteStore, StoreError
from avalo_otel.store.writer import StoreWriter
from store_contract import T0, event, span


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "w.db")
    yield s
    s.close()


def to_doc(seq: int) -> dict[str, Any]:
    return event(f"e{seq}", T0 + seq, metadata={"seq": seq})


def stored_seqs(store: SQLiteStore) -> list[int]:
    return sorted(d["metadata"]["seq"] for d in store.query_events(limit=10_000))


def test_put_records_are_converted_on_the_writer_thread_and_written_once(store: SQLiteStore) -> None:
    threads: set[str] = set()

    def convert(seq: int) -> dict[str, Any]:
        threads.add(threading.current_thread().name)
        return to_doc(seq)

    writer = StoreWriter(store, name="put", drop_counter=lambda n: None)
    for seq in range(2500):
        writer.put(TELEMETRY_EVENTS, seq, convert)
    assert writer.flush(20)
    assert stored_seqs(store) == list(range(2500))
    assert threads == {"avalo-otel-put-writer"}
    assert writer.shutdown(5) and writer.dropped == 0


def test_put_beyond_the_bound_is_dropped_and_counted(store: SQLiteStore) -> None:
    drops: list[int] = []
    writer = StoreWriter(store, name="bounded", max_buffer=100, linger_s=30, drop_counter=drops.append)
    writer.batch_size = 10_000  # nothing leaves before flush: the bound is what decides
    for seq in range(250):
        writer.put(TELEMETRY_EVENTS, seq, to_doc)
    assert writer.flush(20)
    assert stored_seqs(store) == list(range(100))
    assert writer.dropped == sum(drops) == 150


def test_a_record_that_cannot_be_converted_costs_only_itself(store: SQLiteStore) -> None:
    drops: list[int] = []

    def convert(seq: int) -> dict[str, Any]:
        if seq == 7:
            raise ValueError("odd record")
        return to_doc(seq)

    writer = StoreWriter(store, name="odd", drop_counter=drops.append)
    for seq in range(20):
        writer.put(TELEMETRY_EVENTS, seq, convert)
    assert writer.flush(20)
    assert stored_seqs(store) == [s for s in range(20) if s != 7]
    assert drops == [1] and writer.pending == 0


def test_a_partial_batch_waits_its_linger_but_a_full_one_or_a_flush_does_not(store: SQLiteStore) -> None:
    writer = StoreWriter(store, name="linger", batch_size=50, linger_s=1.5, drop_counter=lambda n: None)
    writer.put(TELEMETRY_EVENTS, 0, to_doc)
    time.sleep(0.5)
    assert stored_seqs(store) == []  # lingering for more
    deadline = time.monotonic() + 5
    while not stored_seqs(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_seqs(store) == [0]  # written once the linger ran out, without a flush

    started = time.monotonic()
    for seq in range(1, 51):  # a full batch: written at once
        writer.put(TELEMETRY_EVENTS, seq, to_doc)
    while len(stored_seqs(store)) < 51 and time.monotonic() - started < 5:
        time.sleep(0.02)
    assert len(stored_seqs(store)) == 51 and time.monotonic() - started < 1.2

    writer.put(TELEMETRY_EVENTS, 51, to_doc)
    started = time.monotonic()
    assert writer.flush(5) and time.monotonic() - started < 1.2
    assert stored_seqs(store) == list(range(52))


def test_configured_store_exporters_honour_the_otel_schedule_delays(
        configured: Any, tmp_path: Path) -> None:
    handle = configured(logs_exporters="sqlite", store_path=str(tmp_path / "t.db"),
                        logs_schedule_delay_ms=60_000, traces_schedule_delay_ms=120_000)
    avalo_otel.log_telemetry("chat", "chat.send", metadata={"seq": 1})
    time.sleep(1.0)
    assert handle.store.query_events(limit=10) == []  # a partial batch waits up to 60 s
    assert handle.force_flush(10)
    [doc] = handle.store.query_events(limit=10)
    assert doc["metadata"] == {"seq": 1}


def test_documents_without_an_id_are_skipped_counted_and_warned_about(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    drops: list[int] = []
    writer = StoreWriter(store, name="ids", drop_counter=drops.append)
    no_id = to_doc(1)
    del no_id["id"]
    skipped = writer.submit(TELEMETRY_EVENTS, [to_doc(0), no_id, {**to_doc(2), "id": ""}, "not a document", to_doc(3)])
    assert skipped == 3 and writer.dropped == sum(drops) == 3
    assert "ids exporter skipped a document without an id" in caplog.text
    assert writer.flush(10) and stored_seqs(store) == [0, 3]
    writer.shutdown(5)


class _BuggyStore:
    """A store whose write raises something that is not a StoreError, once."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner, self.calls = inner, 0

    def write(self, collection: str, documents: Any, *, prepared: bool = False) -> None:
        self.calls += 1
        if self.calls == 1:
            raise KeyError("a bug in a store")
        self.inner.write(collection, documents, prepared=prepared)


def test_a_store_bug_drops_its_batch_counted_and_the_writer_goes_on(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    drops: list[int] = []
    writer = StoreWriter(_BuggyStore(store), name="buggy", drop_counter=drops.append)
    writer.submit(TELEMETRY_EVENTS, [to_doc(seq) for seq in range(5)], prepared=True)
    assert writer.flush(10)
    writer.submit(TELEMETRY_EVENTS, [to_doc(seq) for seq in range(5, 8)], prepared=True)
    assert writer.flush(10)
    assert stored_seqs(store) == [5, 6, 7]
    assert writer.dropped == sum(drops) == 5 and writer.delivered == 3
    assert "unexpected error KeyError" in caplog.text
    writer.shutdown(5)


class _CountingStore(SQLiteStore):
    """A real SQLiteStore that records its store calls; ``fail_traces`` makes the first write
    to ``traces`` fail as a locked file would (transient)."""

    def __init__(self, path: Path, fail_traces: bool = False) -> None:
        super().__init__(path)
        self.calls: list[tuple[str, int]] = []
        self.fail_traces = fail_traces

    def write_packed(self, collection: str, rows: Any) -> None:
        self.calls.append((collection, len(rows)))
        if collection == TRACES and self.fail_traces:
            self.fail_traces = False
            raise StoreError("database is locked", transient=True)
        super().write_packed(collection, rows)


def _interleaved(writer: StoreWriter, count: int) -> None:
    """What one app thread's time_operation calls queue: a span, an event, a span, …"""
    for seq in range(count):
        if seq % 2:
            writer.put(TRACES, seq, lambda s: span(f"{s:032x}", f"{s:016x}", T0 + s))
        else:
            writer.put(TELEMETRY_EVENTS, seq, to_doc)


def test_interleaved_collections_are_written_in_one_store_call_each(tmp_path: Path) -> None:
    # Before: a batch ended where the collection changed, so every document was a store call
    # (and a SQLite transaction) of its own.
    store = _CountingStore(tmp_path / "mixed.db")
    writer = StoreWriter(store, name="mixed", linger_s=30, drop_counter=lambda n: None)
    _interleaved(writer, 1000)
    assert writer.flush(20)
    # The writer may take what has gathered when 512 are buffered, then the rest at the flush.
    assert len(store.calls) <= 4, store.calls
    assert sum(n for _, n in store.calls) == 1000
    assert stored_seqs(store) == list(range(0, 1000, 2))
    assert len(store.query_traces(limit=1000)) == 500
    assert writer.shutdown(5) and writer.dropped == 0 and writer.delivered == 1000
    store.close()


def test_a_transient_failure_of_one_collection_in_a_batch_delivers_everything_once(tmp_path: Path) -> None:
    store = _CountingStore(tmp_path / "retry.db", fail_traces=True)
    writer = StoreWriter(store, name="retry", linger_s=30, drop_counter=lambda n: None)
    _interleaved(writer, 400)
    assert writer.flush(20)
    assert stored_seqs(store) == list(range(0, 400, 2))
    assert sorted(d["startTime"] - T0 for d in store.query_traces(limit=1000)) == list(range(1, 400, 2))
    # The events were written once; the traces that failed were retried, once more.
    assert [c for c, _ in store.calls] == [TELEMETRY_EVENTS, TRACES, TRACES]
    assert writer.shutdown(5) and writer.dropped == 0 and writer.delivered == 400
    store.close()
