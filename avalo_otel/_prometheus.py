"""The Prometheus endpoint, also for pre-fork servers (gunicorn, ``uvicorn --workers``).

The process that binds the port *serves*; it makes a private directory and names it in
``AVALO_OTEL_PROMETHEUS_GROUP`` for its children. A child — forked (gunicorn: found by the fork
hook) or spawned (uvicorn, multiprocessing: its own ``configure()`` finds the port taken by the
owner named there) — becomes a *worker*: it binds nothing and, every second and when it shuts
down, writes what it collected (through the same redacting reader) to ``<pid>.json`` there. Each
scrape merges the serving process's own metrics with every worker's (see ``_prometheus_merge``).
Exited workers' counters are folded into the serving process and their files removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Optional

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, start_http_server

from . import _prometheus_merge as pm
from .privacy import Redactor
from .privacy.processors import redact_metrics
from .settings import PROMETHEUS_GROUP_ENV, Settings

_log = logging.getLogger("avalo_otel")
#: How often a worker writes its metrics: what a scrape sees of a worker lags by at most this.
WRITE_INTERVAL_S = 1.0
_OWNER_FILE = "owner.json"
_PREFIX = "avalo-otel-prometheus-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale() -> None:
    """Remove the directories of serving processes that died without cleaning up (SIGKILL): one
    whose owner is gone is never joined again."""
    for path in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            if path.stat().st_uid != os.getuid():
                continue
            pid = int(json.loads((path / _OWNER_FILE).read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or still being made
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)


class _Group:
    """The directory shared by the serving process (its owner) and its workers."""

    def __init__(self, path: Path, owner_pid: int, url: str, port: int) -> None:
        self.path, self.owner_pid, self.url, self.port = path, owner_pid, url, port

    @classmethod
    def create(cls, url: str, port: int, service: str) -> "_Group":
        _remove_stale()
        path = Path(tempfile.mkdtemp(prefix=_PREFIX))  # 0700: only this user reads it
        group = cls(path, os.getpid(), url, port)
        owner = {"pid": group.owner_pid, "url": url, "port": port, "service": service}
        (path / _OWNER_FILE).write_text(json.dumps(owner))
        os.environ[PROMETHEUS_GROUP_ENV] = str(path)  # inherited by forked and spawned children
        return group

    @classmethod
    def find(cls, settings: Settings) -> Optional["_Group"]:
        """The group this process was started in, if its owner still serves the port asked for."""
        if not settings.prometheus_group:
            return None
        path = Path(settings.prometheus_group)
        try:
            owner = json.loads((path / _OWNER_FILE).read_text())
            pid, url, port, service = int(owner["pid"]), str(owner["url"]), int(owner["port"]), owner["service"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # Another service started from this one (a subprocess) is not one of its workers.
        if pid == os.getpid() or not _alive(pid) or settings.prometheus_port not in (0, port) \
                or service != settings.service_name:
            return None
        return cls(path, pid, url, port)

    def write(self, pid: int, snap: pm.Snapshot, unless: bytes = b"") -> bytes:
        """Atomically replace this worker's file (a scrape reads the old or the new one, never half);
        not at all when it would say ``unless`` again (an idle worker writes nothing)."""
        body = json.dumps({"pid": pid, "metrics": pm.to_json(snap)}).encode()
        if body != unless:
            tmp = self.path / f".{pid}.tmp"
            tmp.write_bytes(body)
            os.replace(tmp, self.path / f"{pid}.json")
        return body

    def members(self) -> tuple[list[pm.Snapshot], list[tuple[Path, pm.Snapshot]]]:
        """Live workers' snapshots, and exited workers' (with their files, to remove once folded)."""
        live: list[pm.Snapshot] = []
        dead: list[tuple[Path, pm.Snapshot]] = []
        for file in self.path.glob("*.json"):
            if not file.stem.isdigit():
                continue
            pid = int(file.stem)
            alive = _alive(pid)  # before reading: an exited worker's file is final
            try:
                snap = pm.from_json(json.loads(file.read_bytes())["metrics"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _log.warning("avalo-otel: skipping unreadable worker metrics %s (%s)", file, exc)
                continue
            if alive:
                live.append(snap)
            else:
                dead.append((file, snap))
        return live, dead

    def remove(self) -> None:
        for _ in range(2):  # once more if a worker's last write landed while it was being removed
            shutil.rmtree(self.path, ignore_errors=True)
        if os.environ.get(PROMETHEUS_GROUP_ENV) == str(self.path):
            del os.environ[PROMETHEUS_GROUP_ENV]


class _GroupReader(PrometheusMetricReader):
    """Collects through the redactor; the endpoint decides what becomes of each collection."""

    def __init__(self, endpoint: "PrometheusEndpoint", redactor: Redactor, registry: CollectorRegistry) -> None:
        # Scope labels (otel_scope_name …) would make every Avalo series differ from the original's.
        super().__init__(registry=registry, scope_info_enabled=False)
        self._endpoint = weakref.proxy(endpoint)
        self._redactor = redactor

    def collect(self, timeout_millis: float = 10_000) -> None:
        with self._endpoint.lock:  # a fork waits for a collection in progress (see _before_fork)
            self._received = False
            super().collect(timeout_millis=timeout_millis)
            if not self._received:  # this process recorded nothing (a gunicorn master): its workers did
                self._receive_metrics(None, timeout_millis)

    def _receive_metrics(self, metrics_data: Optional[MetricsData], timeout_millis: float = 10_000,
                         **kwargs: Any) -> None:
        self._received = True
        served = self._endpoint.received(redact_metrics(self._redactor, metrics_data))
        if served is not None:
            super()._receive_metrics(served, timeout_millis, **kwargs)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        # Also what runs at exit (the SDK's atexit hook shuts the meter provider down).
        self._endpoint.stop_writing()
        self._endpoint.remove_group()
        super().shutdown(timeout_millis, **kwargs)


class PrometheusEndpoint:
    """/metrics served here (``role == "serving"``) or by the group's owner (``"worker"``)."""

    def __init__(self, redactor: Redactor, registry: CollectorRegistry, server: Any, url: str,
                 group: Optional[_Group], role: str, resource: Optional[Resource] = None) -> None:
        self.lock = threading.RLock()
        self.server, self.url, self.group, self.role = server, url, group, role
        self.resource = resource or Resource.get_empty()  # target_info when only workers recorded
        self.reader = _GroupReader(self, redactor, registry)
        self._stamps = pm.GaugeStamps()
        self._retired: pm.Snapshot = {}  # exited workers' counters and histograms
        self._baseline: pm.Snapshot = {}  # what a forked worker inherited: its parent reports that
        self._fork_baseline: pm.Snapshot = {}
        self._capturing = False
        self._wrote = b""  # what this worker's file says now
        self._write_error: Optional[str] = None
        self.closed = False
        self._stop = threading.Event()
        self._writer: Optional[threading.Thread] = None
        _register_fork_hooks(self)

    # -- what a collection becomes -----------------------------------------------------------------
    def received(self, data: Optional[MetricsData]) -> Optional[MetricsData]:
        """The data to serve (serving), or ``None`` once written to this worker's file."""
        if self._capturing:  # kept apart: this process's own baseline must not change
            self._fork_baseline = pm.snapshot(data)
            return None
        if self.role == "worker":
            self._write(data)
            return None
        return self._merged(data)

    def _merged(self, data: Optional[MetricsData]) -> Optional[MetricsData]:
        if self.group is None:
            return data
        live, dead = self.group.members()
        for file, snap in dead:
            pm.add(self._retired, snap, kinds=pm.SUMMED_KINDS)
            file.unlink(missing_ok=True)
        if not live and not self._retired:
            return data  # nobody else: served exactly as collected
        own = pm.snapshot(data, self._stamps, time.time())
        resource = data.resource_metrics[0].resource if data and data.resource_metrics else self.resource
        return pm.to_metrics_data(pm.merge(own, live, self._retired), resource)

    def _write(self, data: Optional[MetricsData]) -> None:
        snap = pm.subtract(pm.snapshot(data, self._stamps, time.time()), self._baseline)
        if not snap and not self._wrote:
            return  # e.g. multiprocessing's resource tracker: nothing recorded, no file
        assert self.group is not None
        try:
            self._wrote = self.group.write(os.getpid(), snap, unless=self._wrote)
            self._write_error = None
        except FileNotFoundError:
            if not self._stop.is_set():
                _log.warning("avalo-otel: the process serving /metrics (pid %s) has exited: this worker's "
                             "metrics (pid %s) are no longer served", self.group.owner_pid, os.getpid())
                self._stop.set()
        except OSError as exc:  # e.g. a full disk: said once, tried again every interval
            if self._write_error is None:
                _log.warning("avalo-otel: cannot write this worker's metrics to %s (%s); /metrics lacks "
                             "what it recorded since", self.group.path, exc)
            self._write_error = str(exc)

    # -- a worker's writer -------------------------------------------------------------------------
    def start_writing(self) -> None:
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="avalo-otel-prometheus-worker", daemon=True)
        self._writer.start()

    def _write_loop(self) -> None:
        while not self._stop.wait(WRITE_INTERVAL_S):
            try:
                self.reader.collect()
            except Exception:  # noqa: BLE001 - the writer must outlive one bad collection
                _log.exception("avalo-otel: could not write this worker's metrics")

    def stop_writing(self) -> None:
        """A worker's last write (at shutdown), so what it recorded last is still counted."""
        if self.role != "worker" or self._stop.is_set():
            return
        self._stop.set()
        try:
            self.reader.collect()
        except Exception:  # noqa: BLE001 - shutting down: report, never raise
            _log.exception("avalo-otel: could not write this worker's last metrics")

    def flush(self, timeout_millis: float = 10_000) -> bool:
        """A worker writes now; a serving process has nothing to flush (Prometheus pulls)."""
        if self.role == "worker" and not self._stop.is_set():
            if timeout_millis <= 0:
                return False  # no time left: the next periodic write carries it
            try:
                self.reader.collect(timeout_millis)
            except Exception:  # noqa: BLE001 - a flush reports, it never raises into the app
                _log.debug("avalo-otel: writing this worker's metrics failed", exc_info=True)
                return False
        return True

    def close(self) -> None:
        self.closed = True
        if self.role == "worker":
            self.stop_writing()
            return
        self.server.shutdown()
        self.server.server_close()
        self.remove_group()

    def remove_group(self) -> None:
        """The serving process removes the workers' directory when it stops serving."""
        if self.role == "serving" and self.group is not None:
            self.group.remove()

    # -- fork ----------------------------------------------------------------------------------
    def _before_fork(self) -> None:
        self.lock.acquire()
        try:  # the child's starting point: its parent reports all of it
            self._capturing = True
            self.reader.collect()
        except Exception:  # noqa: BLE001 - a fork must never fail because of telemetry
            _log.exception("avalo-otel: could not snapshot metrics before fork")
        finally:
            self._capturing = False

    def _after_fork_parent(self) -> None:
        self._fork_baseline = {}
        self.lock.release()

    def _after_fork_child(self) -> None:
        self.lock = threading.RLock()
        if self.role == "serving":
            # The parent keeps serving; the child's copy of the listening socket must not keep the
            # port bound after the parent exits. shutdown() would wait for a thread the child lacks.
            self.server.socket.close()
            self.server = None
            self.role = "worker"
        self._baseline, self._fork_baseline = self._fork_baseline, {}
        self._retired = {}
        self._wrote = b""
        self.start_writing()


_endpoint_ref: Optional["weakref.ref[PrometheusEndpoint]"] = None
_hooks_registered = False


def _register_fork_hooks(endpoint: PrometheusEndpoint) -> None:
    """One set of process-wide hooks (they cannot be unregistered) acting on the newest endpoint."""
    global _endpoint_ref, _hooks_registered
    _endpoint_ref = weakref.ref(endpoint)
    if _hooks_registered or not hasattr(os, "register_at_fork"):
        return
    _hooks_registered = True

    def active() -> Optional[PrometheusEndpoint]:
        found = _endpoint_ref() if _endpoint_ref is not None else None
        return found if found is not None and found.group is not None and not found.closed else None

    state: dict[str, Optional[PrometheusEndpoint]] = {"forking": None}

    def before() -> None:
        state["forking"] = endpoint_now = active()
        if endpoint_now is not None:
            endpoint_now._before_fork()

    def after_in_parent() -> None:
        forking, state["forking"] = state["forking"], None
        if forking is not None:
            forking._after_fork_parent()

    def after_in_child() -> None:
        forking, state["forking"] = state["forking"], None
        if forking is not None:
            forking._after_fork_child()

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)


def start_prometheus(settings: Settings, redactor: Redactor,
                     resource: Optional[Resource] = None) -> Optional[PrometheusEndpoint]:
    """Serve /metrics with Avalo's names exactly, or join the serving process this one was started by;
    a port taken by anything else is a warning, not a crash."""
    registry = CollectorRegistry(auto_describe=False)
    group = _Group.find(settings)
    if group is not None:
        endpoint = PrometheusEndpoint(redactor, registry, None, group.url, group, "worker", resource)
        endpoint.start_writing()
        _log.info("avalo-otel: pid %s: metrics served by pid %s at %s", os.getpid(), group.owner_pid, group.url)
        return endpoint
    try:
        server, _thread = start_http_server(settings.prometheus_port, settings.prometheus_host, registry=registry)
    except OSError as exc:
        _log.warning(
            "avalo-otel: cannot serve Prometheus metrics on %s:%s (%s); the app keeps running without "
            "/metrics: set OTEL_EXPORTER_PROMETHEUS_PORT to a free port. Workers of one pre-fork server "
            "share one /metrics when telemetry is configured in the parent (opentelemetry-instrument "
            "does); several independent processes need a port each, or OTLP to a Collector",
            settings.prometheus_host, settings.prometheus_port, exc,
        )
        return None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    url = f"http://{shown}:{port}/metrics"
    return PrometheusEndpoint(redactor, registry, server, url, _Group.create(url, port, settings.service_name),
                              "serving", resource)
