"""Store export throughput, as RATIOS against raw clients writing the same documents in the same run.

    python benchmarks/bench_store.py [--repeats 5] [--docs 3000] [--sqlite-docs 20000]
                                     [--warmup 40] [--verbose] [--only firestore|sqlite ...]

Starts its own Firestore emulator (``_emulator.py``: Google's jar, as the tests start it) on a
free loopback port and stops it at the end. Only ratios are meant to be compared across runs: arms run
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

(3), the app thread's cost of ``log_telemetry`` with the Firestore exporter attached, is
``bench_app_thread.py``.

Exit status 1 if any ratio misses its target or any document went missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _emulator import FirestoreEmulator, running_emulator

parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--docs", type=int, default=3000, help="documents per Firestore run")
parser.add_argument("--sqlite-docs", type=int, default=20000, help="documents per SQLite run")
parser.add_argument("--warmup", type=float, default=40, help="seconds of untimed writes to warm the emulator up")
parser.add_argument("--verbose", action="store_true", help="print every Firestore run")
parser.add_argument("--only", choices=("firestore", "sqlite"), action="append",
                    help="run only this part (repeatable); default: both")
ARGS = parser.parse_args()

import avalo_otel  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import firestore  # noqa: E402
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402

from avalo_otel.store import SQLiteStore, event_document  # noqa: E402
from avalo_otel.store.exporters import StoreLogExporter  # noqa: E402
from avalo_otel_exporter_firestore import FirestoreStore  # noqa: E402

logging.getLogger("avalo_otel").setLevel(logging.ERROR)
perf = time.perf_counter
SERVICE = "bench-store"
CHUNK = 512  # what BatchLogRecordProcessor hands an exporter at most
BATCH = 500  # Firestore's commit limit; the raw arms use it too
PROBLEMS: list[str] = []


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


# -- main ---------------------------------------------------------------------------------------
def median_ratio(num: list[float], den: list[float]) -> tuple[float, float]:
    return statistics.median(num) / statistics.median(den), statistics.median(a / b for a, b in zip(num, den))


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


def main() -> int:
    started = time.monotonic()
    parts = ARGS.only or ["firestore", "sqlite"]
    results: dict[str, list[float]] = {k: [] for k in ("fs_ours", "fs_raw", "sq_ours", "sq_raw")}
    if "sqlite" in parts:  # first, before the emulator (a JVM, busy after writes) takes a core
        run_sqlite(Path(tempfile.mkdtemp(prefix="bench-store-")), results)
    host = None
    if "firestore" in parts:
        with running_emulator() as emulator:
            host = emulator.host
            run_firestore(emulator, results)

    print(f"\n{ARGS.repeats} interleaved repeats, {time.monotonic() - started:.0f}s, Python {sys.version.split()[0]}"
          + (f"; Firestore emulator on {host}" if host else "") + "\n")
    rows = [
        ("fs_ours", f"Firestore: our exporter path ({ARGS.docs} docs)", "events/s"),
        ("fs_raw", "Firestore: raw client, batch() set x500 + commit", "events/s"),
        ("sq_ours", f"SQLite: our exporter path ({ARGS.sqlite_docs} docs)", "events/s"),
        ("sq_raw", "SQLite: raw sqlite3 executemany x500 per txn", "events/s"),
    ]
    print(f"{'arm':<74}{'median':>12}{'min':>12}{'max':>12}")
    for key, label, unit in rows:
        values = results[key]
        if values:
            print(f"{label:<74}{statistics.median(values):>12,.0f}{min(values):>12,.0f}{max(values):>12,.0f}  {unit}")

    checks = [  # label, num, den, target, higher is better
        ("(1) Firestore: ours / raw client (events/s)", "fs_ours", "fs_raw", 0.8, True),
        ("(2) SQLite: ours / raw sqlite3 (events/s)", "sq_ours", "sq_raw", 0.8, True),
    ]
    print(f"\n{'ratio':<54}{'of medians':>11}{'paired':>8}{'target':>10}")
    missed = 0
    for label, num, den, target, higher in checks:
        if not results[num]:
            continue
        value, paired = median_ratio(results[num], results[den])
        ok = paired >= target if higher else paired <= target
        missed += not ok
        print(f"{label:<54}{value:>11.2f}{paired:>8.2f}{('>= ' if higher else '<= ') + str(target):>10}  "
              f"{'OK' if ok else 'MISS'}")
    print("\nno documents missing, no drops" if not PROBLEMS else "\nPROBLEMS:\n  " + "\n  ".join(PROBLEMS))
    return 1 if missed or PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
