"""The demo's history: simulated days of metric points written straight into the store.

The store's exporters stamp points with the SDK's clock, so a compressed history cannot come
through the live pipeline: it is written here, in exactly the shape the store's metric exporter
writes (``avalo_otel.store.schema._points``: delta counters and explicit-bucket histograms per
export interval, gauges with their last value), from the same traffic model the live run uses
(``demo_model``), so the 30-day SLO views and the charts have history. Points are per minute for
the last ``fine_hours`` (the burn-rate windows up to 6 h) and around past incidents, and one per
``coarse_minutes`` before that, as an exporter with a longer interval would write them (the
dashboard's 24-hour charts bin by 15 minutes; the SLO and alert arithmetic only sums points).
The last two days are simulated request by request; quiet intervals older than that (only ever
summed, into 30-day budgets) are assembled from a pool of simulated five-minute ones per traffic
level, so a week of history takes seconds and a month not much more.

The history has the model's past incidents in it; ``replay_alerts`` then runs the real
``AlertEvaluator`` over them on a simulated clock, so the alert list has their fired and
resolved events too.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from .demo_model import DAY_MS, MINUTE_MS, NORMAL, PAST_INCIDENTS, REGIONS, Conditions, PastIncident, TrafficModel
from .demo_model import active_users, diurnal, records
from .store.base import METRICS, Store

SCOPE = "avalo_otel.demo.history"
METRICS_RETENTION_MS = 30 * DAY_MS
#: The older history's quiet intervals come from a pool per traffic level (see ``Backfill._pooled``).
POOL_MINUTES = 5
POOL_REUSE = 3
#: The last two days (the charts, the 1-day burn window) are simulated request by request; older quiet
#: intervals come from the pool.
POOL_AFTER_DAYS = 2
_Aggregate = tuple[dict[tuple[str, Any], float], dict[tuple[str, Any], list[float]], int]


@dataclass
class HistoryIncident:
    start_ms: int
    end_ms: int
    incident: PastIncident


@dataclass
class BackfillStats:
    start_ms: int = 0
    end_ms: int = 0
    events: int = 0
    points: int = 0
    seconds: float = 0.0
    complete: bool = False
    replayed: tuple[int, int] = (0, 0)  # past alerts (fired, resolved)
    incidents: list[HistoryIncident] = field(default_factory=list)


def _poisson(rng: random.Random, mu: float) -> int:
    if mu <= 0:
        return 0
    if mu > 40:
        return max(0, int(round(rng.gauss(mu, math.sqrt(mu)))))
    limit, k, p = math.exp(-mu), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Backfill:
    """History ending at ``end_ms`` (the live run's simulated start), ``days`` long."""

    def __init__(self, store: Store, *, end_ms: int, days: float, events_per_minute: float, seed: int,
                 buckets: Sequence[float], service: str, model: Optional[TrafficModel] = None,
                 fine_hours: float = 6, coarse_minutes: int = 15, batch: Optional[int] = None) -> None:
        self.store = store
        self.end_ms = end_ms - end_ms % MINUTE_MS
        self.start_ms = self.end_ms - int(days * DAY_MS)
        self.start_ms -= self.start_ms % (coarse_minutes * MINUTE_MS)
        self.events_per_minute = events_per_minute
        self.rng = random.Random(seed * 7919 + 1)
        self.bounds = list(buckets)
        self.service = service
        self.model = model or TrafficModel()
        self.fine_from = self.end_ms - int(fine_hours * 3_600_000)
        self.coarse_ms = coarse_minutes * MINUTE_MS
        self.batch = batch or min(2000, int(getattr(store, "max_batch", 500)) * 4)
        self._pool: dict[int, list[_Aggregate]] = {}
        self.incidents = [
            HistoryIncident(start, start + p.minutes * MINUTE_MS, p) for p in PAST_INCIDENTS
            if (start := self._minute(self.end_ms - int(p.days_ago * DAY_MS))) >= self.start_ms
        ]

    @staticmethod
    def _minute(ms: int) -> int:
        return ms - ms % MINUTE_MS

    def conditions_at(self, ms: int) -> Conditions:
        for h in self.incidents:
            if h.start_ms <= ms < h.end_ms:
                return h.incident.conditions
        return NORMAL

    def steps(self) -> list[tuple[int, int]]:
        """The export intervals: a minute recently and around incidents, ``coarse_minutes`` over
        the last two days (the dashboard's longest charts), an hour before that (only summed)."""
        out, t = [], self.start_ms
        recent = self.end_ms - 2 * DAY_MS
        while t < self.end_ms:
            fine = t >= self.fine_from or any(h.start_ms - 10 * MINUTE_MS <= t < h.end_ms + 20 * MINUTE_MS
                                              for h in self.incidents)
            size = self.coarse_ms if t >= recent else max(self.coarse_ms, 60 * MINUTE_MS)
            step = MINUTE_MS if fine else min(size - t % size, self.end_ms - t, self._next_fine(t) - t)
            out.append((t, t + step))
            t += step
        return out

    def _next_fine(self, t: int) -> int:
        """Where the next per-minute stretch after ``t`` begins (a coarse step must not run into it)."""
        starts = [h.start_ms - 10 * MINUTE_MS for h in self.incidents if h.start_ms - 10 * MINUTE_MS > t]
        return min([self.fine_from, *starts]) if self.fine_from > t else min(starts, default=self.end_ms)

    def run(self, progress: Callable[[float], None] = lambda done: None,
            stop: Optional[threading.Event] = None) -> BackfillStats:
        """Write the history; the store writes on a thread of its own while the next batch is
        made (SQLite releases the GIL while it inserts)."""
        started = time.monotonic()
        stats = BackfillStats(self.start_ms, self.end_ms, incidents=list(self.incidents))
        steps = self.steps()
        batches: "queue.Queue[Optional[list[dict[str, Any]]]]" = queue.Queue(maxsize=3)
        failure: list[BaseException] = []

        def write() -> None:
            while (batch := batches.get()) is not None:
                if not failure:
                    try:
                        self.store.write(METRICS, batch, prepared=True)
                        stats.points += len(batch)
                    except BaseException as exc:  # re-raised on the caller's thread
                        failure.append(exc)

        writer = threading.Thread(target=write, name="avalo-demo-history", daemon=True)
        writer.start()
        pending: list[dict[str, Any]] = []
        try:
            for i, (start, end) in enumerate(steps):
                if (stop is not None and stop.is_set()) or failure:
                    break
                docs, events = self._step(start, end)
                pending.extend(docs)
                stats.events += events
                if len(pending) >= self.batch:
                    batches.put(pending)
                    pending = []
                    progress((i + 1) / len(steps))
            else:
                stats.complete = True
            batches.put(pending)
        finally:
            batches.put(None)
            writer.join()
        if failure:
            raise failure[0]
        progress(1.0)
        stats.seconds = time.monotonic() - started
        return stats

    # -- one export interval -------------------------------------------------------------------
    def _simulate(self, minutes: float, level: float, cond: Conditions) -> _Aggregate:
        """Requests drawn one by one from the model, aggregated as an exporter would."""
        rng = self.rng
        n = _poisson(rng, self.events_per_minute * minutes * level)
        counters: dict[tuple[str, Any], float] = {}
        values: dict[tuple[str, Any], list[float]] = {}
        draw = self.model.draw
        for _ in range(n):
            for name, kind, labels, value in records(draw(rng, cond)):
                key = (name, labels)
                if kind == "counter":
                    counters[key] = counters.get(key, 0.0) + value
                elif key in values:
                    values[key].append(value)
                else:
                    values[key] = [value]
        return counters, values, n

    def _pooled(self, pieces: int, level: float) -> _Aggregate:
        """``pieces`` quiet five-minute intervals at this traffic level, each either simulated
        afresh (one time in ``POOL_REUSE``, and kept) or one simulated before at the same level:
        a bootstrap that costs a fraction of simulating every request of the older history,
        while a rare failure is repeated only a few times, never for days."""
        key = round(level / 0.05)
        pool = self._pool.setdefault(key, [])
        counters: dict[tuple[str, Any], float] = {}
        values: dict[tuple[str, Any], list[float]] = {}
        total = 0
        for _ in range(pieces):
            if not pool or self.rng.random() < 1 / POOL_REUSE:
                pool.append(self._simulate(POOL_MINUTES, key * 0.05, NORMAL))
                c, v, n = pool[-1]
            else:
                c, v, n = pool[self.rng.randrange(len(pool))]
            for k, value in c.items():
                counters[k] = counters.get(k, 0.0) + value
            for k, observed in v.items():
                values.setdefault(k, []).extend(observed)
            total += n
        return counters, values, total

    def _step(self, start: int, end: int) -> tuple[list[dict[str, Any]], int]:
        rng, bounds, cond = self.rng, self.bounds, self.conditions_at(start)
        minutes = (end - start) / MINUTE_MS
        level = diurnal(start) * rng.uniform(0.92, 1.08)
        pooled = start < self.end_ms - POOL_AFTER_DAYS * DAY_MS
        if pooled and cond is NORMAL and minutes >= POOL_MINUTES and minutes % POOL_MINUTES == 0:
            counters, values, n = self._pooled(int(minutes // POOL_MINUTES), level)
        else:
            counters, values, n = self._simulate(minutes, level, cond)
        docs = [self._doc(name, "counter", labels, start, end, value=int(v), temporality="delta")
                for (name, labels), v in counters.items()]
        bucket_of = bisect.bisect_left
        for (name, labels), observed in values.items():
            counts = [0] * (len(bounds) + 1)
            for value in observed:
                counts[bucket_of(bounds, value)] += 1
            docs.append(self._doc(name, "histogram", labels, start, end, value=None, temporality="delta",
                                  count=len(observed), sum=float(sum(observed)), min=min(observed),
                                  max=max(observed), buckets={"bounds": list(bounds), "counts": counts}))
        for region, share, _ in REGIONS:
            users = active_users(end, share, rng)
            labels = (("region", region),)
            docs.append(self._doc("active_users", "gauge", labels, start, end, value=users, temporality=None))
            docs.append(self._doc("active_chats", "gauge", labels, start, end, value=int(users * rng.uniform(0.16, 0.2)),
                                  temporality=None))
        return docs, n

    def _doc(self, name: str, kind: str, labels: tuple[tuple[str, str], ...], start: int, end: int,
             **fields: Any) -> dict[str, Any]:
        key = f"{self.service}|{SCOPE}|{name}|{labels}|{start}|{end}"
        doc = {
            "id": hashlib.blake2b(key.encode(), digest_size=16).hexdigest(),
            "name": name, "type": kind, "value": fields.pop("value"), "labels": dict(labels),
            "timestamp": end, "startTime": start if kind != "gauge" else None,
            "temporality": fields.pop("temporality"), "unit": None,
        }
        doc.update(fields)
        doc.update(service=self.service, expireAt=end + METRICS_RETENTION_MS)
        return doc


def replay_alerts(store: Store, incidents: Sequence[HistoryIncident], *, step_minutes: int = 2,
                  stop: Optional[threading.Event] = None) -> tuple[int, int]:
    """Run the alert evaluator (the predefined and stored rules; no SLOs: their burn rates need
    the rollups of the whole window) over each past incident on a simulated clock. Returns the
    (fired, resolved) counts; nothing is notified."""
    from .alerts import AlertEvaluator

    evaluator = AlertEvaluator(store, notifiers=(), emit_telemetry=False)
    fired = resolved = 0
    for h in incidents:
        t = h.start_ms - 6 * MINUTE_MS
        while t <= h.end_ms + 16 * MINUTE_MS:
            if stop is not None and stop.is_set():
                return fired, resolved
            result = evaluator.evaluate_once(t)
            fired += len(result.fired)
            resolved += len(result.resolved)
            t += step_minutes * MINUTE_MS
    return fired, resolved
