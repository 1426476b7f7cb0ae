"""Store export throughput and app-thread cost, as RATIOS against raw clients in the same run.

    python benchmarks/bench_store.py [--repeats 5] [--docs 3000] [--sqlite-docs 20000] [--calls 5000]
                                     [--warmup 40] [--verbose] [--only firestore|sqlite|app ...]

Starts its own Firestore emulator (Google's jar, as ``tests/firestore_emulator.py`` does) on a free
loopback port and stops it at the end. Only ratios are meant to be compared across runs: arms run
in the same process, repeats interleaved (the order of the arms alternates), each figure is the
median over the repeats; "paired", the median of the per-repeat ratios, is held to the target
(the arms of one repeat ran back to back, so drift between repeats cancels out of it), and "of
medians" is printed as a check.

(1) Firestore throughput: events/s through our exporter path, ``StoreLogExporter.export`` of SDK
    log records in chunks of 512 (as the batch processor hands them over) → ``StoreWriter`` (its
    thread converts them with ``event_document`` and writes) → ``FirestoreStore.write`` (500-write
    commits), until ``writer.flush()`` returns; divided by the raw ``google-cloud-firestore`` client
    writing the same documents (``client.batch()``, ``set`` × 500, ``commit``). The project is
    wiped before every run, so every run inserts into an empty database. The emulator's JIT keeps
    getting faster for its first tens of thousands of writes, so ``--warmup`` seconds of untimed
    writes come first.                                                      target >= 0.8
(2) SQLite throughput: the same path into ``SQLiteStore`` (a new file and store per run, so the
    first use of each statement shape is compiled inside the timing); divided by raw ``sqlite3``
    ``executemany`` (``INSERT OR REPLACE``, 500 rows per transaction) of the same documents as
    JSON (stdlib ``json.dumps``, timed) into an equivalent table (same columns and indexes, WAL,
    synchronous=NORMAL), also a new file per run.                           target >= 0.8
The emulator's JVM is pinned to the last CPU and this process to the others (``pin_apart``): in
production Firestore is remote, and on 2 cores the JVM would otherwise share the measured CPU.

(3) App-thread cost: CPU time of the app's thread per ``log_telemetry`` call, configured with
    ``logs_exporters="firestore"``, divided by the same configured with no log exporter. The two
    configurations alternate (configure … shutdown) once per repeat. Also printed, without a
    target: the wall time of the same tight loop, which includes whatever the exporter's threads
    and the emulator (a JVM on the same two cores) take from it, and the CPU the other threads
    spent per event until everything was exported.                          target <= 1.1

Exit status 1 if any ratio misses its target or any document went missing.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from firestore_emulator import FirestoreEmulator  # noqa: E402  (tests/ helper, reused)

parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--docs", type=int, default=3000, help="documents per Firestore run")
parser.add_argument("--sqlite-docs", type=int, default=20000, help="documents per SQLite run")
parser.add_argument("--calls", type=int, default=5000, help="log_telemetry calls per app-thread run")
parser.add_argument("--warmup", type=float, default=40, help="seconds of untimed writes to warm the emulator up")
parser.add_argument("--verbose", action="store_true", help="print every Firestore run")
parser.add_argument("--only", choices=("firestore", "sqlite", "app"), action="append",
                    help="run only these parts (repeatable); default: all three")
ARGS = parser.parse_args()
# Read when each BatchLogRecordProcessor is built: room for a whole phase, so nothing is dropped.
os.environ["OTEL_BLRP_MAX_QUEUE_SIZE"] = str(ARGS.calls * 2 + 4096)

import avalo_otel  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import firestore  # noqa: E402
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402

from avalo_otel.store import SQLiteStore, event_document  # noqa: E402
from avalo_otel.store.exporters import StoreLogExporter  # noqa: E402
from avalo_otel.store.writer import writers as store_writers  # noqa: E402
from avalo_otel_exporter_firestore import FirestoreStore  # noqa: E402
from avalo_otel_exporter_firestore import otel as firestore_otel  # noqa: E402

logging.getLogger("avalo_otel").setLevel(logging.ERROR)
perf = time.perf_counter
SERVICE = "bench-store"
CHUNK = 512  # what BatchLogRecordProcessor hands an exporter at most
BATCH = 500  # Firestore's commit limit; the raw arms use it too
PROBLEMS: list[str] = []


class QueueFull(logging.Handler):
    drops = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Queue full" in record.getMessage() or "dropped" in record.getMessage():
            QueueFull.drops += 1


logging.getLogger("opentelemetry").addHandler(QueueFull())


# -- inputs -------------------------------------------------------------------------------------
def capture_records(count: int) -> list[Any]:
    """``count`` real SDK log records as our pipeline makes them (redacted, pseudonymised)."""
    handle = avalo_otel.configure(environ={}, traces_exporters=(), logs_exporters=(), metrics_exporters=(),
                                  pseudonym_key="bench", metric_readers=[InMemoryMetricReader()])
    memory = InMemoryLogRecordExporter()
    handle.add_log_exporter(memory, batch=False)
    for i in range(count):
        avalo_otel.log_telemetry("chat", "chat.send", actor_type="user", actor_id=f"user-{i % 500}",
                                 latency_ms=float(i % 300), metadata={"messageType": "text", "length": i % 80,
                                                                      "seq": i, "client": "android"})
    records = list(memory.get_finished_logs())
    handle.shutdown()
    assert len(records) == count, (len(records), count)
    return records


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# -- arms ---------------------------------------------------------------------------------------
def ours(exporter: StoreLogExporter, records: list[Any]) -> float:
    """Seconds from the first export to the writer's flush: everything in the store."""
    delivered = exporter.writer.delivered
    t0 = perf()
    for chunk in chunks(records, CHUNK):
        exporter.export(chunk)
    if not exporter.writer.flush(300):
        PROBLEMS.append(f"{exporter.writer.name}: flush did not finish")
    elapsed = perf() - t0
    if exporter.writer.delivered - delivered != len(records):
        PROBLEMS.append(f"{exporter.writer.name}: delivered {exporter.writer.delivered - delivered} "
                        f"of {len(records)} (dropped {exporter.writer.dropped})")
    return elapsed


def raw_firestore(client: Any, docs: list[dict[str, Any]]) -> float:
    collection = client.collection("telemetry_events")
    t0 = perf()
    for chunk in chunks(docs, BATCH):
        batch = client.batch()
        for doc in chunk:
            batch.set(collection.document(doc["id"]), doc)
        batch.commit()
    return perf() - t0


RAW_SQLITE_SCHEMA = [
    'CREATE TABLE telemetry_events (id TEXT PRIMARY KEY, domain TEXT, level TEXT, operation TEXT, '
    'success INTEGER, ts INTEGER, expireAt INTEGER, doc TEXT NOT NULL)',
    *(f'CREATE INDEX te_{"_".join(cols)} ON telemetry_events ({", ".join(cols)})'
      for cols in (("domain", "ts"), ("level", "ts"), ("operation", "ts"), ("success", "ts"), ("ts",), ("expireAt",))),
]


def raw_sqlite(path: str, docs: list[dict[str, Any]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in RAW_SQLITE_SCHEMA:
        conn.execute(statement)
    sql = "INSERT OR REPLACE INTO telemetry_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    t0 = perf()
    for chunk in chunks(docs, BATCH):
        rows = [(d["id"], d["domain"], d["level"], d["operation"], int(d["success"]), d["ts"], d["expireAt"],
                 json.dumps(d, ensure_ascii=False, separators=(",", ":"))) for d in chunk]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = perf() - t0
    count = conn.execute("SELECT COUNT(*) FROM telemetry_events").fetchone()[0]
    conn.close()
    if count != len(docs):
        PROBLEMS.append(f"raw sqlite: {count} rows of {len(docs)}")
    return elapsed


def count_firestore(client: Any) -> int:
    result = client.collection("telemetry_events").count().get()
    return int(result[0][0].value)


# -- (3) app-thread cost ------------------------------------------------------------------------
def wait_idle(pid: int, timeout: float = 10.0) -> None:
    """Until the process (the emulator) has used under 20 ms of CPU in 0.25 s: what it still does
    for an earlier run (JIT, GC, compaction) must not land in the next one's timing."""
    def cpu() -> int:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    tick, deadline = os.sysconf("SC_CLK_TCK"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu()
        time.sleep(0.25)
        if (cpu() - before) / tick < 0.02:
            return


def app_thread(exporter: bool, calls: int, emulator_pid: int) -> tuple[float, float, float]:
    """Per log_telemetry call, configured with or without the exporter: ns of CPU time on the
    app's thread, ns of wall time on it, and ns of CPU time the rest of the process spent until
    everything was exported (the batch processor's and the writer's threads)."""
    handle = avalo_otel.configure(environ={}, traces_exporters=(), metrics_exporters=(),
                                  logs_exporters=("firestore",) if exporter else (),
                                  pseudonym_key="bench", metric_readers=[InMemoryMetricReader()])
    log = avalo_otel.log_telemetry
    for i in range(500):  # warm-up: caches, first export, the gRPC channel
        log("chat", "chat.send", actor_id="user-1", latency_ms=12.0, metadata={"messageType": "text", "seq": i})
    handle.force_flush()
    wait_idle(emulator_pid)
    gc.collect()
    gc.disable()
    try:
        process0, cpu0, t0 = time.process_time_ns(), time.thread_time_ns(), time.perf_counter_ns()
        for i in range(calls):
            log("chat", "chat.send", actor_id="user-1", latency_ms=12.0, metadata={"messageType": "text", "seq": i})
        wall, cpu = time.perf_counter_ns() - t0, time.thread_time_ns() - cpu0
        flush_cpu0 = time.thread_time_ns()
        handle.force_flush(60_000)  # the backlog is delivered here (untimed for the app thread)
        for writer in store_writers():
            writer.flush(60)
        process = time.process_time_ns() - process0 - (time.thread_time_ns() - flush_cpu0)
    finally:
        gc.enable()
    handle.shutdown()
    return cpu / calls, wall / calls, (process - cpu) / calls


# -- main ---------------------------------------------------------------------------------------
def median_ratio(num: list[float], den: list[float]) -> tuple[float, float]:
    return statistics.median(num) / statistics.median(den), statistics.median(a / b for a, b in zip(num, den))


def pin_apart(emulator: FirestoreEmulator) -> None:
    """The emulator stands in for a remote service: keep its JVM on the last CPU and this process
    on the others, so its work (hundreds of µs per document) does not land on the measured
    threads' CPU. Both arms of every ratio run under the same placement."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or emulator.process is None:
        return
    for tid in os.listdir(f"/proc/{emulator.process.pid}/task"):
        os.sched_setaffinity(int(tid), {cpus[-1]})
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), set(cpus[:-1]))


def run_firestore(emulator: FirestoreEmulator, results: dict[str, list[float]]) -> None:
    """(1): our exporter path and the raw client, into an emptied emulator project each run."""
    project = emulator.project_id()
    client = firestore.Client(project=project, credentials=AnonymousCredentials())
    store = FirestoreStore(client, timeout=60)
    fs_exporter = StoreLogExporter(store, name="bench-firestore", max_buffer=ARGS.docs + 1000, service=SERVICE)
    fs_records = capture_records(ARGS.docs)
    fs_docs = [event_document(r, SERVICE) for r in fs_records]
    arms: dict[str, Callable[[], float]] = {
        "fs_ours": lambda: ours(fs_exporter, fs_records),
        "fs_raw": lambda: raw_firestore(client, fs_docs),
    }
    # The emulator's JIT keeps speeding up over its first tens of thousands of writes: give it
    # those, untimed (both arms write the same way to it), before the measured rounds.
    warm_until = time.monotonic() + ARGS.warmup
    while time.monotonic() < warm_until:
        raw_firestore(client, fs_docs)
        ours(fs_exporter, fs_records)
        emulator.wipe(project)
    for rep in range(ARGS.repeats + 1):  # the first round is a warm-up too
        for name in (list(arms) if rep % 2 == 0 else list(arms)[::-1]):
            emulator.wipe(project)
            rate = len(fs_records) / arms[name]()
            if rep:
                results[name].append(rate)
            if ARGS.verbose:
                print(f"  repeat {rep} {name}: {rate:,.0f} events/s", flush=True)
            stored = count_firestore(client)
            if stored != len(fs_records):
                PROBLEMS.append(f"{name}: {stored} documents in Firestore of {len(fs_records)}")
    fs_exporter.shutdown()
    store.close()
    client.close()


def run_sqlite(tmp: Path, results: dict[str, list[float]]) -> None:
    """(2): our exporter path into a new SQLiteStore file, and raw sqlite3 into a new file."""
    sq_records = capture_records(ARGS.sqlite_docs)
    sq_docs = [event_document(r, SERVICE) for r in sq_records]
    for rep in range(ARGS.repeats + 1):  # the first round is a warm-up
        order = ["sq_ours", "sq_raw"] if rep % 2 == 0 else ["sq_raw", "sq_ours"]
        for name in order:
            path = str(tmp / f"{name}-{rep}.db")
            if name == "sq_ours":
                sq_store = SQLiteStore(path)
                exporter = StoreLogExporter(sq_store, name="bench-sqlite", max_buffer=len(sq_records) + 1000,
                                            service=SERVICE)
                elapsed = ours(exporter, sq_records)
                exporter.shutdown()
                sq_store.close()
            else:
                elapsed = raw_sqlite(path, sq_docs)
            if rep:
                results[name].append(len(sq_records) / elapsed)
            if ARGS.verbose:
                print(f"  repeat {rep} {name}: {len(sq_records) / elapsed:,.0f} events/s", flush=True)


def run_app(emulator: FirestoreEmulator, results: dict[str, list[float]]) -> None:
    """(3): log_telemetry with the Firestore exporter attached or not, alternating."""
    os.environ["AVALO_OTEL_FIRESTORE_PROJECT"] = emulator.project_id()
    firestore_otel._shared = None  # the entry-point exporters' store, built from the environment
    pid = emulator.process.pid if emulator.process is not None else os.getpid()
    app_thread(True, min(ARGS.calls, 2000), pid)  # warm-up round
    app_thread(False, min(ARGS.calls, 2000), pid)
    for rep in range(ARGS.repeats):
        for with_exporter in ((True, False) if rep % 2 == 0 else (False, True)):
            arm = "with" if with_exporter else "without"
            cpu, wall, background = app_thread(with_exporter, ARGS.calls, pid)
            results[f"app_{arm}"].append(cpu)
            results[f"wall_{arm}"].append(wall)
            results[f"bg_{arm}"].append(background)
    if QueueFull.drops:
        PROBLEMS.append(f"{QueueFull.drops} drop warnings from the batch processors")


def main() -> int:
    started = time.monotonic()
    parts = ARGS.only or ["firestore", "sqlite", "app"]
    results: dict[str, list[float]] = {k: [] for k in (
        "fs_ours", "fs_raw", "sq_ours", "sq_raw", "app_with", "app_without", "wall_with", "wall_without",
        "bg_with", "bg_without")}
    if "sqlite" in parts:  # first, before the emulator (a JVM, busy after writes) takes a core
        run_sqlite(Path(tempfile.mkdtemp(prefix="bench-store-")), results)
    emulator = FirestoreEmulator(Path(tempfile.mkdtemp(prefix="bench-firestore-")))
    needs_emulator = "firestore" in parts or "app" in parts
    if needs_emulator:
        emulator.start()
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        pin_apart(emulator)
    try:
        if "firestore" in parts:
            run_firestore(emulator, results)
        if "app" in parts:
            run_app(emulator, results)
    finally:
        if needs_emulator:
            emulator.stop()

    print(f"\n{ARGS.repeats} interleaved repeats, {time.monotonic() - started:.0f}s, Python {sys.version.split()[0]}"
          + (f"; Firestore emulator on {emulator.host}" if needs_emulator else "") + "\n")
    rows = [
        ("fs_ours", f"Firestore: our exporter path ({ARGS.docs} docs)", "events/s"),
        ("fs_raw", "Firestore: raw client, batch() set x500 + commit", "events/s"),
        ("sq_ours", f"SQLite: our exporter path ({ARGS.sqlite_docs} docs)", "events/s"),
        ("sq_raw", "SQLite: raw sqlite3 executemany x500 per txn", "events/s"),
        ("app_with", f"log_telemetry, Firestore exporter attached ({ARGS.calls} calls): app-thread CPU", "ns/call"),
        ("app_without", "log_telemetry, no exporter: app-thread CPU", "ns/call"),
        ("wall_with", "  (info) the same, wall time of the loop, Firestore exporter", "ns/call"),
        ("wall_without", "  (info) the same, wall time of the loop, no exporter", "ns/call"),
        ("bg_with", "  (info) CPU of the other threads until exported, exporter", "ns/call"),
        ("bg_without", "  (info) CPU of the other threads, no exporter", "ns/call"),
    ]
    print(f"{'arm':<74}{'median':>12}{'min':>12}{'max':>12}")
    for key, label, unit in rows:
        values = results[key]
        if values:
            print(f"{label:<74}{statistics.median(values):>12,.0f}{min(values):>12,.0f}{max(values):>12,.0f}  {unit}")

    checks = [  # label, num, den, target, higher is better
        ("(1) Firestore: ours / raw client (events/s)", "fs_ours", "fs_raw", 0.8, True),
        ("(2) SQLite: ours / raw sqlite3 (events/s)", "sq_ours", "sq_raw", 0.8, True),
        ("(3) app thread: with Firestore exporter / none", "app_with", "app_without", 1.1, False),
        ("  (info) tight-loop wall time, with / none", "wall_with", "wall_without", None, False),
    ]
    print(f"\n{'ratio':<54}{'of medians':>11}{'paired':>8}{'target':>10}")
    missed = 0
    for label, num, den, target, higher in checks:
        if not results[num]:
            continue
        value, paired = median_ratio(results[num], results[den])
        if target is None:
            print(f"{label:<54}{value:>11.2f}{paired:>8.2f}")
            continue
        ok = paired >= target if higher else paired <= target
        missed += not ok
        print(f"{label:<54}{value:>11.2f}{paired:>8.2f}{('>= ' if higher else '<= ') + str(target):>10}  "
              f"{'OK' if ok else 'MISS'}")
    print("\nno documents missing, no drops" if not PROBLEMS else "\nPROBLEMS:\n  " + "\n  ".join(PROBLEMS))
    return 1 if missed or PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
