"""``avalo-otel demo``: the whole system on one machine, on compressed time.

1. A fresh store in the data directory (SQLite; or the Firestore emulator), the predefined alert
   rules, the SLO definitions.
2. The telemetry pipeline (``configure()``): Prometheus endpoint, the store exporters on the
   simulated clock (``demo_clock``), the console exporter with ``--console``.
3. Warm-up: ``--history-days`` of history backfilled as metric points (``demo_backfill``), its
   past incidents judged by the alert evaluator, the SLO rollups folded.
4. Live: ``--duration`` wall seconds of traffic through the public API (``demo_live``) at
   ``--speed``; an incident in the middle third (payment provider failing, chat slow) that burns
   budget and fires the predefined chat and wallet alerts and the SLO burn-rate page, then
   recovery, in which they resolve. An ``SLOEvaluator`` and an ``AlertEvaluator`` (with the
   ``LogNotifier``) run in a background thread every few wall seconds; ``/metrics`` serves the
   ``avalo_slo_*`` gauges; the dashboard reads the same store.
5. The end (or Ctrl-C / SIGTERM): requests in flight finish, everything is flushed, a last
   evaluation, a summary; ``--linger`` keeps serving first.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, TextIO

from .demo_model import LIVE_INCIDENT_DESCRIPTION, live_incident
from .demo_progress import LoggingToProgress, Progress
from .demo_report import print_summary
from .demo_setup import DemoPipeline, EvaluationLoop, open_store, start_dashboard

SERVICE = "avalo-demo"


@dataclass
class DemoOptions:
    duration_s: float = 75.0
    speed: float = 60.0
    rate: float = 50.0
    history_days: Optional[float] = None  # None: 7 days (1 on Firestore, whose emulator is slow)
    backend: str = "sqlite"
    port: int = 9464
    dashboard: bool = True
    dashboard_port: int = 8050
    data_dir: Optional[str] = None
    seed: int = 7
    linger_s: Optional[float] = None  # None: until Ctrl-C if the dashboard runs on a terminal, else 0
    console: bool = False
    sampling: float = 1.0


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/avalo-otel/demo``, else ``~/.local/share/avalo-otel/demo``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "avalo-otel" / "demo"


def sim_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def scrape(url: Optional[str]) -> str:
    if not url:
        return ""
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


class Demo:
    def __init__(self, options: DemoOptions, out: Optional[TextIO] = None) -> None:
        if options.history_days is None:
            options.history_days = 1.0 if options.backend == "firestore" else 7.0
        self.o = options
        self.out = out or sys.stdout
        self.stop = threading.Event()
        self.interrupted: Optional[str] = None
        self.progress = Progress(self.out, tty=False if options.console else None)
        self.phase = "warm-up"
        self._ticking = threading.Event()
        self._ticking.set()
        self._ticker: Optional[threading.Thread] = None
        self.started = time.monotonic()
        self.live_started: Optional[float] = None

    def say(self, text: str = "") -> None:
        self.progress.line(text)

    # -- signals -------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():  # a second Ctrl-C: stop waiting for the flush
            raise KeyboardInterrupt
        self.interrupted = signal.Signals(signum).name
        self.stop.set()

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        previous = self._install_signals()
        try:
            with LoggingToProgress(self.progress):
                return self._run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self) -> int:
        from .alerts import ensure_predefined_rules
        from .demo_clock import SimClock
        from .slo import configured_slos

        o = self.o
        data_dir = Path(o.data_dir).expanduser() if o.data_dir else default_data_dir()
        clock = SimClock(o.speed, o.duration_s)
        store, where = open_store(o.backend, data_dir)
        pipeline = dashboard = loop = None
        try:
            slos = configured_slos()
            ensure_predefined_rules(store)
            pipeline = DemoPipeline(store, clock, o, firestore=o.backend == "firestore", service=SERVICE)
            loop = EvaluationLoop(store, slos, clock, pipeline)
            dashboard, dashboard_note = (start_dashboard(store, slos, o.dashboard_port, clock) if o.dashboard
                                         else (None, "off (--no-dashboard)"))
            if dashboard is not None:
                loop.alerts.generator_url = dashboard.url
            self._header(clock, where, pipeline, dashboard, dashboard_note)
            history = self._warm_up(store, clock, pipeline, loop)
            if not self.stop.is_set():
                self._live(clock, pipeline, loop)
            pipeline.flush()
            loop.stop_and_join()
            loop.evaluate()  # everything flushed: the last word on SLOs and alerts
            self._stop_ticker()
            print_summary(self, store, where, clock, pipeline, loop, history)
            self._linger(clock, pipeline, loop, dashboard)
            return 0
        finally:
            self._stop_ticker()
            if loop is not None:
                loop.stop_and_join()
            if pipeline is not None:
                pipeline.shutdown()
            if dashboard is not None:
                dashboard.stop()
            store.close()
            if self.interrupted:
                self.say(f"stopped by {self.interrupted}: everything recorded was flushed to the store")

    def _stop_ticker(self) -> None:
        self._ticking.clear()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
            self._ticker = None
        self.progress.done()

    def _header(self, clock: Any, where: str, pipeline: Any, dashboard: Any, dashboard_note: str) -> None:
        o = self.o
        third = o.duration_s / 3
        live_min = o.duration_s * o.speed / 60
        self.say(f"avalo-otel demo: simulated Avalo traffic through the public API ({o.backend} store)")
        self.say(f"  live:       {o.duration_s:g} s at {o.speed:g}x = {live_min:,.0f} simulated minutes, "
                 f"~{o.rate:g} requests/s, seed {o.seed}; history: {o.history_days:g} day{'' if o.history_days == 1 else 's'} "
                 "before it")
        self.say(f"  incident:   {third:.0f}-{2 * third:.0f} s (sim {sim_time(clock.sim_start_ms + int(third * 1000 * o.speed))}): "
                 f"{LIVE_INCIDENT_DESCRIPTION}; then recovery")
        self.say(f"  data:       {where}")
        self.say(f"  Prometheus: {pipeline.prometheus_url or 'off (the port is taken: --port 0 picks a free one)'}")
        if dashboard is not None:
            self.say(f"  dashboard:  {dashboard.url}  admin token: {dashboard.admin_token}")
        else:
            self.say(f"  dashboard:  {dashboard_note}")
        if o.console:
            self.say("  console:    every exported span and event below (user ids pseudonymised)")

    def _warm_up(self, store: Any, clock: Any, pipeline: Any, loop: Any) -> Any:
        from .demo_backfill import Backfill, replay_alerts

        o = self.o
        backfill = Backfill(store, end_ms=clock.sim_start_ms, days=o.history_days, seed=o.seed,
                            events_per_minute=o.rate * 60 / o.speed, buckets=pipeline.buckets, service=SERVICE)
        stats = None
        if o.history_days > 0:
            def shown(done: float) -> None:
                self.progress.status(f"[warm-up ] writing {o.history_days:g} day(s) of history … {done:4.0%}")

            stats = backfill.run(shown, self.stop)
            self.progress.done()
            self.say(f"warm-up: {stats.points:,} metric points ({stats.events:,} simulated requests) of history "
                     f"from {sim_time(stats.start_ms)} in {stats.seconds:.1f} s; past incidents: "
                     + (", ".join(h.incident.conditions.name for h in stats.incidents) or "none"))
            if not self.stop.is_set():
                t = time.monotonic()
                stats.replayed = replay_alerts(store, stats.incidents, stop=self.stop)
                loop.slo.update(clock.sim_start_ms)
                self.say(f"warm-up: past alerts judged ({stats.replayed[0]} fired and resolved), SLO rollups "
                         f"folded in {time.monotonic() - t:.1f} s")
        return stats

    def _live(self, clock: Any, pipeline: Any, loop: Any) -> None:
        from .demo_live import LiveTraffic, phase_conditions, phase_name

        o = self.o
        clock.start_live()
        self.live_started = time.monotonic()
        incident = live_incident(o.duration_s / 3 * o.speed / 60)
        self.traffic = LiveTraffic(rate=o.rate, seed=o.seed, clock_ms=clock.now_ms,
                                   conditions=phase_conditions(o.duration_s, incident))
        loop.start()
        self.phase = "normal"
        self._ticker = threading.Thread(target=self._tick, args=(clock, loop), daemon=True,
                                        name="avalo-demo-progress")
        self._ticker.start()

        def on_tick() -> None:  # every wall second, from the traffic loop
            phase = phase_name(o.duration_s, time.monotonic() - (self.live_started or 0))
            if phase != self.phase:
                self.phase = phase
                self.say(f"-- {phase} at sim {sim_time(clock.now_ms())}"
                         + (f": {incident.description}, {incident.wallet_failure:.0%} of wallet calls "
                            f"failing" if phase == "incident" else ""))

        try:
            self.traffic.run(o.duration_s, self.stop, on_tick)
        finally:
            self.phase = "done"
        self._status(clock, loop, force=True)

    def _tick(self, clock: Any, loop: Any) -> None:
        """Redraws the status line until the demo ends (``_ticking`` cleared)."""
        while self._ticking.is_set() and not self.stop.wait(0.25 if self.progress.tty else 0.5):
            if self._ticking.is_set():
                self._status(clock, loop)

    def _status(self, clock: Any, loop: Any, *, force: bool = False) -> None:
        s = self.traffic.stats
        firing = loop.firing
        elapsed = min(self.o.duration_s, time.monotonic() - (self.live_started or time.monotonic()))
        names = f" ({', '.join(firing)})" if firing else ""
        self.progress.status(
            f"[{self.phase:<8}] {elapsed:4.0f}/{self.o.duration_s:g}s  sim {sim_time(clock.now_ms())}  "
            f"ops {s.operations:,}  errors {s.errors:,} (server {s.server_errors:,})  "
            f"alerts firing {len(firing)}{names}", force=force)

    def _linger(self, clock: Any, pipeline: Any, loop: Any, dashboard: Any) -> None:
        linger = self.o.linger_s
        if linger is None:
            linger = float("inf") if dashboard is not None and sys.stdin.isatty() and self.out.isatty() else 0.0
        if linger <= 0 or self.stop.is_set():
            return
        until = "Ctrl-C" if linger == float("inf") else f"{linger:g} s or Ctrl-C"
        served = " and ".join(x for x in (dashboard.url if dashboard else "", pipeline.prometheus_url or "") if x)
        self.say(f"traffic done; still serving {served} with the evaluator running (simulated time now "
                 f"runs at 1x) until {until}")
        self.phase = "serving"
        self._ticking.set()
        self._ticker = threading.Thread(target=self._tick, args=(clock, loop), daemon=True, name="avalo-demo-progress")
        self._ticker.start()
        loop.start_again()
        began = time.monotonic()
        deadline = began + linger
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
        loop.stop_and_join()
        pipeline.flush()
        loop.evaluate()
        self._stop_ticker()
        firing = ", ".join(loop.firing) or "none"
        self.say(f"served for {time.monotonic() - began:.0f} s more; alerts firing now: {firing}")


def run_demo(options: DemoOptions, out: Optional[TextIO] = None) -> int:
    return Demo(options, out).run()


__all__ = ["Demo", "DemoOptions", "default_data_dir", "run_demo", "scrape", "sim_time"]
