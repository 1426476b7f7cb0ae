"""SQLiteStore: the store contract, plus what only SQLite has (WAL, threads, files, prefixes)."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from avalo_otel.store import ALERT_EVENTS, DEFAULT_PATH, METRICS, TELEMETRY_EVENTS, SQLiteStore, StoreError
from store_contract import T0, StoreContract, alert, event, ids, metric


class TestSQLiteContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        s = SQLiteStore(tmp_path / "contract.db")
        yield s
        s.close()

    @pytest.fixture
    def twin(self, store: SQLiteStore) -> Iterator[SQLiteStore]:
        s = SQLiteStore(store.path)  # its own connections: only SQLite's locking between the two
        yield s
        s.close()


class TestSQLiteMemoryContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[SQLiteStore]:
        s = SQLiteStore(":memory:", prefix="mem_")
        yield s
        s.close()


def test_wal_mode_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    with SQLiteStore(path) as store:
        store.write(TELEMETRY_EVENTS, [event("e1", T0)])
        raw = sqlite3.connect(path)
        try:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            assert {"telemetry_events__domain_ts", "telemetry_events__level_ts", "telemetry_events__operation_ts",
                    "telemetry_events__success_ts", "metrics__name_timestamp", "metrics__type_timestamp",
                    "traces__traceId_startTime", "traces__operation_startTime", "alert_events__severity_timestamp",
                    "alert_events__acknowledged_timestamp", "telemetry_events__expireAt",
                    "alert_events__ruleId_timestamp", "alert_events__status_timestamp", "slo_rollups__slo_day",
                    "slo_rollups__expireAt"} <= indexes
            plan = " ".join(str(r) for r in raw.execute(
                "EXPLAIN QUERY PLAN SELECT doc FROM telemetry_events WHERE domain = 'chat' ORDER BY ts DESC"))
            assert "telemetry_events__domain_ts" in plan
            plan = " ".join(str(r) for r in raw.execute(
                "EXPLAIN QUERY PLAN SELECT doc FROM alert_events WHERE ruleId = 'r1' ORDER BY timestamp DESC"))
            assert "alert_events__ruleId_timestamp" in plan
        finally:
            raw.close()


def test_concurrent_writer_and_readers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "threads.db")
    errors: list[BaseException] = []
    done = threading.Event()
    batches, per_batch = 60, 25

    def writer() -> None:
        try:
            for b in range(batches):
                store.write(TELEMETRY_EVENTS, [event(f"e{b}-{i}", T0 + b * per_batch + i) for i in range(per_batch)])
                store.write(METRICS, [metric(f"m{b}", T0 + b)])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            seen = 0
            while not done.is_set():
                docs = store.query_events(domain="chat", limit=500)
                assert len(docs) >= seen or len(docs) == 500  # never goes back in time
                seen = len(docs)
                store.query_metrics(limit=10)
                store.delete_expired(TELEMETRY_EVENTS, T0 - 1, dry_run=True)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        assert len(store.query_events(limit=10_000)) == batches * per_batch
        assert len(store.query_metrics(limit=10_000)) == batches
    finally:
        store.close()


def test_two_stores_on_one_file_write_at_once(tmp_path: Path) -> None:
    # As two processes would: separate connections, only SQLite's own locking between them.
    path = tmp_path / "shared.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for b in range(30):
                stores[n].write(TELEMETRY_EVENTS, [event(f"s{n}-{b}-{i}", T0 + i) for i in range(20)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        assert len(stores[0].query_events(limit=10_000)) == 2 * 30 * 20
    finally:
        for s in stores:
            s.close()


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "persist.db"  # parents are created
    with SQLiteStore(path) as store:
        store.write(TELEMETRY_EVENTS, [event("e1", T0)])
        store.put_alert_rule({"id": "r1", "name": "r", "enabled": True})
    with SQLiteStore(str(path)) as store:
        assert [d["id"] for d in store.query_events()] == ["e1"]
        assert store.get_alert_rule("r1") is not None


def test_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with SQLiteStore() as store:
        store.write(TELEMETRY_EVENTS, [event("e1", T0)])
    assert DEFAULT_PATH == "./avalo-telemetry.db"
    assert (tmp_path / "avalo-telemetry.db").is_file()


def test_path_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the directory") as info:
        SQLiteStore(blocker / "sub" / "t.db")
    assert str(blocker) in str(info.value)
    assert not info.value.transient


def test_path_in_proc(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="SQLite telemetry store"):
        SQLiteStore("/proc/avalo-otel-test/t.db")


def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        SQLiteStore(tmp_path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="garbage.db"):
        SQLiteStore(path)


@pytest.mark.parametrize("prefix", ["staging-", "a b", 'x";drop table t;--', "é", "."])
def test_invalid_prefix(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(StoreError, match="invalid collection prefix"):
        SQLiteStore(tmp_path / "t.db", prefix=prefix)


def test_prefixes_are_separate_collections(tmp_path: Path) -> None:
    path = tmp_path / "prefixed.db"
    with SQLiteStore(path, prefix="staging_") as staging, SQLiteStore(path) as prod:
        staging.write(TELEMETRY_EVENTS, [event("s1", T0)])
        prod.write(TELEMETRY_EVENTS, [event("p1", T0)])
        assert [d["id"] for d in staging.query_events()] == ["s1"]
        assert [d["id"] for d in prod.query_events()] == ["p1"]
    raw = sqlite3.connect(path)
    try:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        raw.close()
    assert {"staging_telemetry_events", "telemetry_events", "staging_alert_rules"} <= tables


def test_closed_store_raises(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "closed.db")
    store.query_events()  # leaves a pooled reader to close
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.write(TELEMETRY_EVENTS, [event("e1", T0)])
    with pytest.raises(StoreError, match="closed"):
        store.query_events()


def test_bad_limits(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "limits.db") as store:
        for bad in (0, -1, 1.5):
            with pytest.raises(StoreError, match="positive"):
                store.query_events(limit=bad)  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="positive"):
            store.delete_expired(TELEMETRY_EVENTS, T0, batch_size=0)


def test_non_json_values_are_stored_safely(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "values.db") as store:
        store.write(TELEMETRY_EVENTS, [event("e1", T0, metadata={"raw": b"\x00\xff", "tags": {"b", "a"},
                                                                  "ratio": float("nan"), "obj": object()})])
        [doc] = store.query_events()
        assert doc["metadata"] == {"raw": "AP8=", "tags": ["a", "b"], "ratio": "nan", "obj": "<object>"}


ODD_VALUES = [True, False, 0, 1, -7, 2.5, 2**62, "text", "", None, {"b": 1, "a": [1, "x"]}, [3, "y"], "ünï ✓"]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_columns_hold_what_query_parameters_hold(tmp_path: Path, value: object) -> None:
    # Columns are taken out of the documents' JSON by SQL (_extract); query parameters are
    # converted in Python (_column). A document must be found by the value it was written with.
    from avalo_otel.store.sqlite import _column
    with SQLiteStore(tmp_path / "odd.db") as store:
        store.write("alert_events", [{"id": "a1", "timestamp": T0, "severity": value, "acknowledged": value}])
        store.write("alert_events", [{"id": "a2", "timestamp": value, "severity": "s", "acknowledged": False}])
        conn = sqlite3.connect(store.path)
        row = conn.execute('SELECT severity, acknowledged FROM alert_events WHERE id = ?', ("a1",)).fetchone()
        [timestamp] = conn.execute('SELECT timestamp FROM alert_events WHERE id = ?', ("a2",)).fetchone()
        conn.close()
        assert row == (_column("text", value), _column("bool", value))
        assert timestamp == _column("int", value)


@pytest.mark.parametrize("count", [1, 2, 37, 500, 1234])
def test_batches_of_any_size_are_written_whole_in_one_transaction(tmp_path: Path, count: int) -> None:
    docs = [event(f"e{i}", T0 + i, metadata={"seq": i}) for i in range(count)]
    with SQLiteStore(tmp_path / "sizes.db") as store:
        store.write(TELEMETRY_EVENTS, docs)
        store.write(TELEMETRY_EVENTS, docs[:5])  # rewritten, not duplicated
        stored = store.query_events(limit=2000)
        # A row SQLite refuses, in the batch's last statement: the whole batch is rolled back.
        conn = sqlite3.connect(store.path)
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON telemetry_events WHEN NEW.id = 'bad' "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        conn.close()
        with pytest.raises(StoreError, match="refused"):
            store.write(TELEMETRY_EVENTS, [*(event(f"n{i}", T0) for i in range(count)), event("bad", T0)])
        assert len(store.query_events(limit=2000)) == count
    assert sorted(d["id"] for d in stored) == sorted(d["id"] for d in docs)
    assert sorted(d["metadata"]["seq"] for d in stored) == list(range(count))


def test_lone_surrogates_do_not_fail_the_batch(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "surrogate.db") as store:
        store.write(TELEMETRY_EVENTS, [event("ok", T0, metadata={"x": "ünï"}),
                                       event("bad", T0 + 1, metadata={"x": "half \ud800 pair"})])
        stored = {d["id"]: d["metadata"]["x"] for d in store.query_events()}
    assert stored == {"ok": "ünï", "bad": "half \ud800 pair"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork only")
def test_a_forked_child_gets_its_own_connection_and_writes(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "fork.db") as store:
        store.write(TELEMETRY_EVENTS, [event("parent", T0)])
        inherited = store._writer
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            ok = False
            try:
                ok = store._writer is not inherited and store.write(TELEMETRY_EVENTS, [event("child", T0 + 1)]) is None
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert sorted(d["id"] for d in store.query_events()) == ["child", "parent"]


# -- files made by the previous version ----------------------------------------------------------
# alert_events as the version before the ruleId/status columns made it (and no slo_rollups table).
OLD_ALERT_EVENTS = [
    'CREATE TABLE "alert_events" (id TEXT PRIMARY KEY, "severity" TEXT, "acknowledged" INTEGER, '
    '"timestamp" INTEGER, "expireAt" INTEGER, doc TEXT NOT NULL)',
    'CREATE INDEX "alert_events__severity_timestamp" ON "alert_events" ("severity", "timestamp")',
    'CREATE INDEX "alert_events__acknowledged_timestamp" ON "alert_events" ("acknowledged", "timestamp")',
    'CREATE INDEX "alert_events__timestamp" ON "alert_events" ("timestamp")',
    'CREATE INDEX "alert_events__expireAt" ON "alert_events" ("expireAt")',
]


def _old_file(path: Path, events: list[dict[str, Any]]) -> None:
    raw = sqlite3.connect(path)
    with raw:
        for statement in OLD_ALERT_EVENTS:
            raw.execute(statement)
        raw.executemany("INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?)",
                        [(e["id"], e["severity"], int(e["acknowledged"]), e["timestamp"], e["expireAt"], json.dumps(e))
                         for e in events])
    raw.close()


def _schema_of(path: Path, table: str) -> tuple[list[str], set[str]]:
    """The table's columns in order, and the names of every index in the file."""
    raw = sqlite3.connect(path)
    try:
        columns = [row[1] for row in raw.execute(f'PRAGMA table_info("{table}")')]
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        return columns, indexes
    finally:
        raw.close()


def test_an_old_file_gets_the_new_columns_filled_from_its_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from avalo_otel.store import sqlite_rows

    monkeypatch.setattr(sqlite_rows, "_MIGRATION_ROWS", 3)  # several pages of rows
    path = tmp_path / "old.db"
    old = [alert(f"a{i}", T0 + i, ruleId=f"r{i % 2}", status="resolved" if i % 3 else "firing") for i in range(8)]
    old.append(alert("odd", T0 + 8, ruleId=7, status=True))  # not text: found as _column has it ("7", "true")
    old.append(alert("bare", T0 + 9))  # neither field
    del old[-1]["ruleId"]
    _old_file(path, old)
    assert "ruleId" not in _schema_of(path, "alert_events")[0]
    with SQLiteStore(path) as store:
        assert ids(store.query_alert_events(rule_id="r1")) == ["a7", "a5", "a3", "a1"]
        assert ids(store.query_alert_events(status="firing", rule_id="r0")) == ["a6", "a0"]
        assert ids(store.query_alert_events(rule_id=7)) == ["odd"]  # type: ignore[arg-type]
        assert ids(store.query_alert_events(status=True)) == ["odd"]  # type: ignore[arg-type]
        assert len(store.query_alert_events(limit=100)) == 10
        assert store.get_documents(ALERT_EVENTS, ["a2"]) == [old[2]]
        # And the file works as a new one: writes fill the columns, the new collection exists.
        assert store.create_alert_event(alert("new", T0 + 20, ruleId="r1", status="firing")) is True
        assert store.update_alert_event("a1", {"status": "firing"}) is True
        assert ids(store.query_alert_events(rule_id="r1", status="firing")) == ["new", "a3", "a1"]
        store.write("slo_rollups", [{"id": "s:1", "slo": "s", "day": T0, "data": "{}"}])
    columns, indexes = _schema_of(path, "alert_events")
    assert columns[-2:] == ["ruleId", "status"]
    assert {"alert_events__ruleId_timestamp", "alert_events__status_timestamp", "slo_rollups__slo_day"} <= indexes
    with SQLiteStore(path) as store:  # opening it again changes nothing
        assert ids(store.query_alert_events(rule_id="r1", status="firing")) == ["new", "a3", "a1"]
    assert _schema_of(path, "alert_events")[0] == columns


def test_stores_opening_an_old_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_file(path, [alert("a1", T0, ruleId="r1", status="firing")])
    opened: list[SQLiteStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def open_it() -> None:
        try:
            start.wait(10)
            opened.append(SQLiteStore(path))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        assert [ids(s.query_alert_events(rule_id="r1", status="firing")) for s in opened] == [["a1"]] * 3
    finally:
        for s in opened:
            s.close()


def _create_in_child(path: str, event_ids: list[str], n: int, start: Any, results: Any) -> None:
    with SQLiteStore(path) as store:
        start.wait(60)
        results.put((n, [i for i in event_ids if store.create_alert_event(alert(i, T0, creator=n))]))


def test_processes_creating_the_same_alert_events_each_win_once(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    SQLiteStore(path).close()
    event_ids = [f"e{i:03d}" for i in range(60)]
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as separate processes are
    start, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_create_in_child, args=(path, event_ids, n, start, results)) for n in range(2)]
    for child in children:
        child.start()
    try:
        won = dict(results.get(timeout=120) for _ in children)
    finally:
        for child in children:
            child.join(30)
    assert [c.exitcode for c in children] == [0, 0]
    assert sorted(won[0] + won[1]) == event_ids
    with SQLiteStore(path) as store:
        stored = {d["id"]: d["creator"] for d in store.get_documents(ALERT_EVENTS, event_ids)}
    assert stored == {i: n for n, w in won.items() for i in w}
