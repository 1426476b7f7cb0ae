"""The demo's plumbing: its store, its telemetry pipeline, the evaluator thread, the dashboard."""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from .demo_clock import Restamper, SimClock, restamping_exporters
from .demo_progress import LoggingToProgress
from .settings import ConfigurationError, Settings, latency_buckets

_log = logging.getLogger("avalo_otel.demo")
STORE_FILE = "demo.db"
PSEUDONYM_KEY = "avalo-demo-key"
FAR_FUTURE_MS = 1000 * 86_400_000


# -- the store ---------------------------------------------------------------------------------
def open_store(backend: str, data_dir: Path) -> tuple[Any, str]:
    """A fresh store for this run, and where it is (for the user)."""
    if backend == "firestore":
        return _open_firestore()
    from .store import SQLiteStore

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the demo's data directory {data_dir}: {exc.strerror or exc}") from None
    path = data_dir / STORE_FILE
    for suffix in ("", "-wal", "-shm"):  # each run starts from an empty store
        try:
            os.remove(f"{path}{suffix}")
        except FileNotFoundError:
            pass
    return SQLiteStore(path), f"{data_dir} (fresh SQLite store {STORE_FILE})"


def _open_firestore() -> tuple[Any, str]:
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if not host:
        raise ConfigurationError(
            "--backend firestore runs against the Firestore emulator (it clears the demo's collections): "
            "start one (gcloud emulators firestore start --host-port=127.0.0.1:8080) and set "
            "FIRESTORE_EMULATOR_HOST=127.0.0.1:8080")
    try:
        from avalo_otel_exporter_firestore import FirestoreStore
    except ImportError as exc:
        raise ConfigurationError(f"--backend firestore needs the Firestore store ({exc}): "
                                 "pip install -e exporters/firestore") from None
    from .store import COLLECTIONS, RETENTION_DAYS
    from .store.base import StoreError

    env = dict(os.environ)
    project = env.get("AVALO_OTEL_FIRESTORE_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or "avalo-demo"
    env["AVALO_OTEL_FIRESTORE_PROJECT"] = project
    env.setdefault("AVALO_OTEL_FIRESTORE_TIMEOUT", "10")
    os.environ["AVALO_OTEL_FIRESTORE_PROJECT"] = project  # the firestore exporters read it too
    store = FirestoreStore.from_env(env)
    try:
        now = int(time.time() * 1000)
        for collection in COLLECTIONS:  # a fresh start: what an earlier demo run left is deleted
            if RETENTION_DAYS[collection] is not None:
                store.delete_expired(collection, now + FAR_FUTURE_MS)
    except StoreError as exc:
        store.close()
        raise ConfigurationError(f"cannot use the Firestore emulator at {host}: {exc}") from None
    prefix = env.get("AVALO_OTEL_FIRESTORE_PREFIX", "")
    return store, f"Firestore emulator {host}, project {project}" + (f", prefix {prefix!r}" if prefix else "")


# -- the pipeline ------------------------------------------------------------------------------
class DemoPipeline:
    """``configure()`` with Prometheus (and the console with ``--console``), plus the store
    exporters on the simulated clock, sharing one writer."""

    def __init__(self, store: Any, clock: SimClock, options: Any, *, firestore: bool, service: str) -> None:
        import avalo_otel
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        from .privacy import Pseudonymizer, build_redactor
        from .privacy.processors import RedactingMetricExporter
        from .store.writer import StoreWriter

        console = ("console",) if options.console else ("none",)
        overrides: dict[str, Any] = {
            "service_name": service, "traces_exporters": console, "logs_exporters": console,
            "metrics_exporters": ("prometheus",), "prometheus_port": options.port,
            "sampling_rate": options.sampling, "pseudonym_key": PSEUDONYM_KEY,
            # region is a label of the API metrics here (latency by region on the dashboard)
            "metric_labels": ("region",), "flush_on_sigterm": False,
            "logs_schedule_delay_ms": 500, "traces_schedule_delay_ms": 1000,
        }
        settings = Settings.load(**overrides)
        self.buckets = latency_buckets(settings)
        self.restamp = Restamper(clock)
        self.writer = StoreWriter(store, name="demo-store", max_buffer=50_000)
        self.metrics_writer = StoreWriter(store, name="demo-metrics", max_buffer=50_000, linger_s=0.05)
        spans, logs, metrics = restamping_exporters(store, self.writer, self.metrics_writer, self.restamp,
                                                    firestore=firestore)
        # A simulated minute per point at most: the rollups and alert windows work in minutes.
        interval_ms = int(min(60_000, max(250, 60_000 / options.speed)))
        redactor = build_redactor(settings, Pseudonymizer(PSEUDONYM_KEY))
        self.reader = PeriodicExportingMetricReader(RedactingMetricExporter(redactor, metrics),
                                                    export_interval_millis=interval_ms)
        self.handle = avalo_otel.configure(metric_readers=[self.reader], **overrides)
        self.handle.add_span_exporter(spans)
        self.handle.add_log_exporter(logs)
        self._closed = False

    @property
    def prometheus_url(self) -> Optional[str]:
        return self.handle.prometheus_url

    def flush(self) -> bool:
        """Everything recorded so far into the store (the metric reader is ours: flushed here)."""
        done = self.reader.force_flush(15_000)
        return self.handle.force_flush(15) and done

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.handle.shutdown()
        self.writer.shutdown(timeout_s=15)
        self.metrics_writer.shutdown(timeout_s=15)


# -- SLO and alert evaluation ------------------------------------------------------------------
class EvaluationLoop:
    """An ``SLOEvaluator`` and an ``AlertEvaluator`` (log notifier) on the simulated clock, every
    ``interval_s`` wall seconds in a thread; ``register_gauges`` serves the SLO gauges."""

    def __init__(self, store: Any, slos: Sequence[Any], clock: SimClock, pipeline: DemoPipeline) -> None:
        from .alerts import AlertEvaluator, LogNotifier
        from .slo import SLOEvaluator
        from .slo.gauges import register_gauges
        from .slo.rollup import DEFAULT_LATENESS_MS

        speed = clock.speed
        #: A couple of simulated minutes between evaluations, within 0.5-5 wall seconds.
        self.interval_s = min(5.0, max(0.5, 120.0 / speed))
        # Points reach the store a few wall seconds late at most: that many simulated minutes.
        lateness = max(DEFAULT_LATENESS_MS, int(speed * 10_000))
        self.store = store
        self.slo = SLOEvaluator(store, slos, lateness_ms=lateness)
        self.alerts = AlertEvaluator(store, slos=slos, notifiers=[LogNotifier(logging.getLogger(LoggingToProgress.ALERTS))],
                                     clock=clock.now_s, slo_evaluator=self.slo, interval_s=self.interval_s,
                                     emit_telemetry=True)
        register_gauges(self.slo, pipeline.handle.meter_provider)
        self.firing: list[str] = []
        self.fired: list[str] = []
        self.resolved: list[str] = []
        self.failures = 0
        self.cycles = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def evaluate(self) -> None:
        with self._lock:
            started = time.monotonic()
            try:
                result = self.alerts.evaluate_once()
            except Exception as exc:  # a store hiccup: the next cycle tries again
                self.failures += 1
                if self.failures == 1:
                    _log.warning("SLO/alert evaluation failed (trying again): %s", exc)
                return
            self.fired += result.fired
            self.resolved += result.resolved
            events = self.store.query_alert_events(status="firing", limit=200)
            self.firing = sorted({str(e.get("ruleId")) for e in events})
            self.cycles += 1
            self.seconds += time.monotonic() - started
            _log.debug("evaluation at sim %s took %.2fs: fired %s, resolved %s", result.now_ms,
                       time.monotonic() - started, result.fired, result.resolved)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.evaluate()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="avalo-demo-evaluator", daemon=True)
        self._thread.start()

    start_again = start

    def stop_and_join(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


# -- the dashboard -----------------------------------------------------------------------------
def start_dashboard(store: Any, slos: Sequence[Any], port: int, clock: SimClock) -> tuple[Optional[Any], str]:
    """The admin dashboard on 127.0.0.1, or None and why not (its optional web dependencies)."""
    try:
        from .dashboard import start_dashboard as start
    except ImportError as exc:
        return None, f"off ({exc}); install it with: pip install -e '.[dashboard]'"
    kwargs: dict[str, Any] = {"slos": slos, "host": "127.0.0.1", "port": port, "admin_token": None}
    if "clock" in inspect.signature(start).parameters:
        kwargs["clock"] = clock.now_s  # the dashboard's "now" is the simulated one
    try:
        return start(store, **kwargs), ""
    except ImportError as exc:
        return None, f"off ({exc}); install it with: pip install -e '.[dashboard]'"
    except (OSError, RuntimeError) as exc:
        return None, f"off: cannot serve it on 127.0.0.1:{port} ({exc}); --dashboard-port 0 picks a free port"
