"""What evaluating all six SLOs over 30 days costs, and that the cost stays flat as traffic and the
number of processes grow.

For each store (SQLite; Firestore through its emulator):
1. ingest: per-process delta points, one per series per minute, shaped as the store exporters
   write them, from N processes, are stored and folded into the SLO rollups by the real
   ``RollupUpdater`` (timed: µs per point);
2. the rollup documents of that day are copied to the 29 days before it, so the 30-day window
   is full (a rollup document is 1440 numbers per series whatever the traffic, so a copied day
   costs a reader exactly what an ingested one does);
3. evaluate: ``SLOEvaluator.evaluate(update=False)`` for all six SLOs over the rolling 30 days,
   repeated; the median wall time and the documents read are printed.
Scenarios: 10 processes at 1x traffic, 10 processes at 10x traffic (10x the counts in each
point), 100 processes (10x the points). Targets: SQLite < 1 s, Firestore emulator < 5 s, and the
evaluation time of the 10x scenarios within noise of 1x (documents read identical).

    .venv/bin/python benchmarks/bench_slo.py                   # both stores, ~1-2 min
    .venv/bin/python benchmarks/bench_slo.py --only sqlite --minutes 1440
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from slo_traffic import DAY, MINUTE, points  # noqa: E402

from avalo_otel.slo import SLOEvaluator, load_slos  # noqa: E402
from avalo_otel.slo.rollup import RollupUpdater, rollup_id  # noqa: E402
from avalo_otel.store import SQLiteStore  # noqa: E402
from avalo_otel.store.base import SLO_ROLLUPS  # noqa: E402

NOW = 1_764_000_000_000 - 1_764_000_000_000 % DAY + DAY - 1  # the last ms of a UTC day
# Per process and minute: what a busy Avalo process reports (12 points).
TRAFFIC = [
    ("chat.send", dict(ok=580, server_errors=2, client_errors=3), 120),
    ("wallet.spend", dict(ok=90, client_errors=4), None),
    ("wallet.refund", dict(ok=9), None),
    ("safety.panic_press", dict(ok=1), 800),
    ("ai.request", dict(ok=40, server_errors=1), 1800),
    ("support.ticket_create", dict(ok=5), None),
    ("api.request", dict(ok=990, server_errors=3), 60),
]


def traffic(start: int, minutes: int, processes: int, scale: int) -> Iterator[list[dict[str, Any]]]:
    for minute in range(minutes):
        ts = start + minute * MINUTE + 30_000
        batch: list[dict[str, Any]] = []
        for process in range(processes):
            for operation, counts, latency in TRAFFIC:
                scaled = {k: v * scale for k, v in counts.items()}
                n = sum(scaled.values())
                batch += points(ts, operation, process=f"p{process}", latencies_ms=[latency] * n if latency else (),
                                **scaled)
        yield batch


def scenario(store: Any, name: str, processes: int, scale: int, minutes: int, repeats: int) -> dict[str, Any]:
    slos = load_slos()
    day = NOW - NOW % DAY
    written = 0
    for batch in traffic(NOW - minutes * MINUTE + 1, minutes, processes, scale):
        store.write("metrics", batch)
        written += len(batch)
    updater = RollupUpdater(store, slos, backfill_days=1)
    t0 = time.perf_counter()
    stats = updater.update(NOW)
    ingest_s = time.perf_counter() - t0
    assert stats.points == written, (stats.points, written)
    today = store.get_documents(SLO_ROLLUPS, [rollup_id(s.id, day) for s in slos])
    copies = [{**doc, "id": rollup_id(doc["slo"], day - d * DAY), "day": day - d * DAY, "expireAt": None}
              for d in range(1, 30) for doc in today]
    for i in range(0, len(copies), 400):
        store.write(SLO_ROLLUPS, [{k: v for k, v in c.items() if k != "expireAt"} for c in copies[i:i + 400]])
    evaluator = SLOEvaluator(store, slos)
    evaluator.evaluate(NOW, update=False)  # warm-up (imports, caches, the emulator's JIT): untimed
    times, reads = [], []
    for _ in range(repeats):
        before = store.documents_read
        t0 = time.perf_counter()
        reports = evaluator.evaluate(NOW, update=False)
        times.append(time.perf_counter() - t0)
        reads.append(store.documents_read - before)
    chat = reports[0].indicators[1].window.total
    return {"name": name, "points": written, "ingest_us": ingest_s / max(written, 1) * 1e6, "ingest_s": ingest_s,
            "eval_s": statistics.median(times), "eval_min": min(times), "eval_max": max(times),
            "reads": statistics.median(reads), "chat_events_30d": chat}


def run_store(kind: str, make_store: Any, args: argparse.Namespace, target_s: float, minutes: int) -> bool:
    results = []
    for name, processes, scale in (("10 processes, 1x traffic", 10, 1), ("10 processes, 10x traffic", 10, 10),
                                   ("100 processes, 1x traffic", 100, 1)):
        store = make_store()
        try:
            results.append(scenario(store, name, processes, scale, minutes, args.repeats))
        finally:
            store.close()
    print(f"\n{kind}: all six SLOs over 30 days ({minutes} minutes ingested as raw points, "
          f"the rest of the window copied rollups), median of {args.repeats}")
    print(f"{'scenario':<28} {'raw points':>10} {'ingest µs/pt':>12} {'evaluate s':>11} {'(min-max)':>15} "
          f"{'docs read':>9} {'chat events 30d':>16}")
    for r in results:
        print(f"{r['name']:<28} {r['points']:>10} {r['ingest_us']:>12.1f} {r['eval_s']:>11.3f} "
              f"{r['eval_min']:>7.3f}-{r['eval_max']:<7.3f} {r['reads']:>9.0f} {r['chat_events_30d']:>16.0f}")
    base = results[0]["eval_s"]
    flat = all(r["reads"] == results[0]["reads"] for r in results)
    ratios = ", ".join(f"{r['eval_s'] / base:.2f}" for r in results[1:])
    ok = all(r["eval_s"] < target_s for r in results) and flat
    print(f"target < {target_s:g} s: {'ok' if ok else 'MISS'}; 10x traffic and 10x processes / 1x: {ratios}; "
          f"documents read {'identical' if flat else 'DIFFER'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("sqlite", "firestore"))
    parser.add_argument("--minutes", type=int, default=60, help="minutes of raw points ingested into SQLite (default 60)")
    parser.add_argument("--firestore-minutes", type=int, default=10,
                        help="minutes of raw points ingested into the emulator (default 10: the emulator filters "
                             "every query by scanning the collection, so its ingest is not a production figure)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    ok = True
    if args.only in (None, "sqlite"):
        tmp = Path(tempfile.mkdtemp(prefix="bench-slo-"))
        counter = iter(range(100))
        ok &= run_store("SQLite", lambda: SQLiteStore(tmp / f"s{next(counter)}.db"), args, 1.0, args.minutes)
    if args.only in (None, "firestore"):
        from _emulator import running_emulator, wait_idle
        from avalo_otel_exporter_firestore import FirestoreStore

        with running_emulator() as emulator:
            counter = iter(range(100))

            def make() -> Any:
                wait_idle(emulator)
                return FirestoreStore(emulator.client(f"bench-slo-{next(counter)}"))

            ok &= run_store("Firestore emulator", make, args, 5.0, args.firestore_minutes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
