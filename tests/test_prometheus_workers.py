"""Pre-fork servers: one /metrics shows every worker's counts.

End to end, ``opentelemetry-instrument`` launches real ``gunicorn -w 2`` and ``uvicorn --workers 2``
(``apps/worker_app.py``); requests are spread over both workers (each answers with its pid) and a
real Prometheus scrapes the one endpoint the parent serves: what it stores is the total over the
workers, under Avalo's names and labels (no pid label). A worker that exits (SIGTERM to a pid read
from a response; gunicorn starts another) does not make a counter go down.

In process, the merge itself: counters and histograms summed (bucket by bucket) over live and
exited workers, gauges of exited workers dropped, and a forked child counting only what it added.
Every server is stopped by its saved PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import avalo_otel
from avalo_otel import _prometheus_merge as pm
from avalo_otel._prometheus import _Group
from avalo_otel.settings import PROMETHEUS_GROUP_ENV, Settings, latency_buckets
from prometheus_server import PrometheusServer, as_target, prometheus_server, sample_value  # noqa: F401
from server_process import free_port, stop_process, wait_http_ready

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent
APPS = Path(__file__).parent / "apps"
_INHERITED_PREFIXES = ("OTEL_", "AVALO_OTEL_", "NEW_RELIC_", "DD_")
LATENCY_MS = 40  # what worker_app records per request


# -- a real pre-fork server under opentelemetry-instrument ------------------------------------------
class PreforkServer:
    """``opentelemetry-instrument <server>`` on loopback: app port, /metrics port, log, saved Popen."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind, self.tmp = kind, tmp_path
        self.app_port, self.metrics_port = free_port(), free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.log_path = tmp_path / f"{kind}.log"
        self.process: Optional[subprocess.Popen[bytes]] = None

    def command(self) -> list[str]:
        if self.kind == "gunicorn":
            conf = self.tmp / "gunicorn_conf.py"
            conf.write_text("control_socket_disable = True\n")  # no socket in $HOME (ignored before 24)
            return [str(BIN / "gunicorn"), "-c", str(conf), "-w", "2", "-b", f"127.0.0.1:{self.app_port}",
                    "--graceful-timeout", "5", "--chdir", str(APPS), "worker_app:wsgi"]
        return [str(BIN / "uvicorn"), "--workers", "2", "--host", "127.0.0.1", "--port", str(self.app_port),
                "--app-dir", str(APPS), "--no-access-log", "worker_app:asgi"]

    def start(self) -> "PreforkServer":
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        env.update(
            OTEL_SERVICE_NAME="prefork-app", AVALO_OTEL_PSEUDONYM_KEY="k", OTEL_METRICS_EXPORTER="prometheus",
            OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(self.metrics_port),
            TMPDIR=str(self.tmp),  # the workers' directory is made here: the test can see it go
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "opentelemetry-instrument"), *self.command()], env=env, cwd=self.tmp,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        for url in (f"http://127.0.0.1:{self.app_port}/pid", self.metrics_url):
            problem = wait_http_ready(url, self.process, 30)
            if problem:
                self.stop()
                pytest.fail(f"{self.kind}: {url} not ready: {problem}\n{self.log()}", pytrace=False)
        return self

    def stop(self) -> None:
        stop_process(self.process, timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.app_port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def hit(self, count: int) -> list[dict[str, Any]]:
        """``count`` requests, four at a time (a busy worker accepts nothing, so both serve)."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda _: self.get("/hit"), range(count)))

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as resp:
            return resp.read().decode()

    def group_dirs(self) -> list[Path]:
        return list(self.tmp.glob("avalo-otel-prometheus-*"))


def _hits_on_both_workers(server: PreforkServer, at_least: int) -> tuple[int, set[int]]:
    """Requests until both workers served some: (how many were sent, the pids that answered)."""
    sent, pids = 0, set()
    while sent < at_least or len(pids) < 2:
        assert sent < 200, f"after {sent} requests only pids {pids} answered\n{server.log()}"
        answers = server.hit(8)
        sent += len(answers)
        pids |= {a["pid"] for a in answers}
        assert {a["prometheus_url"] for a in answers} == {server.metrics_url}  # every worker's handle says so
    return sent, pids


def _sample(text: str, name: str) -> float:
    """The one sample ``name{…}`` on a /metrics page."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")]
    assert len(values) == 1, (name, values)
    return values[0]


@pytest.fixture
def prefork(tmp_path: Path) -> Iterator[Any]:
    started: list[PreforkServer] = []

    def start(kind: str) -> PreforkServer:
        server = PreforkServer(kind, tmp_path)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def _sel(prom: PrometheusServer, server: PreforkServer, name: str, **labels: str) -> str:
    instance, _ = as_target(server.metrics_url)
    body = ",".join(f'{k}="{v}"' for k, v in {"job": prom.job, "instance": instance, **labels}.items())
    return f"{name}{{{body}}}"


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_one_endpoint_serves_the_total_over_workers(kind: str, prefork: Any, prometheus_server: PrometheusServer):
    server = prefork(kind)
    sent, pids = _hits_on_both_workers(server, 24)
    assert len(pids) == 2 and server.process is not None and server.process.pid not in pids
    prometheus_server.reload([server.metrics_url])

    prom = prometheus_server
    chat = _sel(prom, server, "chat_messages_sent_total")
    assert prom.wait_for_value(chat, sent) == sent
    (result,) = prom.query(chat)
    assert {k: v for k, v in result["metric"].items() if k not in ("__name__", "job", "instance")} == {
        "domain": "chat", "messageType": "text"}  # Avalo's labels, no pid
    assert prom.wait_for_value(_sel(prom, server, "avalo_operation_latency_ms_count"), sent) == sent
    assert prom.value(_sel(prom, server, "avalo_operation_latency_ms_sum")) == sent * LATENCY_MS
    buckets = {r["metric"]["le"]: sample_value(r) for r in prom.query(_sel(prom, server, "avalo_operation_latency_ms_bucket"))}
    assert (buckets["25"], buckets["50"], buckets["+Inf"]) == (0, sent, sent)
    assert prom.value(_sel(prom, server, "up")) == 1

    text = server.metrics_text()
    assert "pid=" not in text and "otel_scope_" not in text
    assert text.count("# TYPE chat_messages_sent_total counter") == 1

    server.stop()
    log = server.log()
    assert "Traceback" not in log and "cannot serve Prometheus" not in log, log
    assert server.group_dirs() == []  # the serving process removed the workers' directory


def test_worker_exit_never_makes_a_counter_go_down(prefork: Any, prometheus_server: PrometheusServer):
    server = prefork("gunicorn")
    sent, pids = _hits_on_both_workers(server, 16)
    prometheus_server.reload([server.metrics_url])
    chat = _sel(prometheus_server, server, "chat_messages_sent_total")
    prometheus_server.wait_for_value(chat, sent)

    victim = min(pids)
    os.kill(victim, signal.SIGTERM)  # a worker pid read from its own response; gunicorn starts a new one
    deadline = time.monotonic() + 15
    while victim in _live_children(server):
        assert time.monotonic() < deadline, f"worker {victim} did not exit\n{server.log()}"
        time.sleep(0.1)
    # At once and while the worker is being replaced: what it counted is still there.
    for _ in range(10):
        assert _sample(server.metrics_text(), "chat_messages_sent_total") == sent
        time.sleep(0.1)

    more, new_pids = _hits_on_both_workers(server, 16)
    assert victim not in new_pids and new_pids - pids, (pids, new_pids)  # the replacement served too
    total = sent + more
    assert prometheus_server.wait_for_value(chat, total) == total
    assert prometheus_server.value(f"resets({chat}[5m])") == 0
    assert _sample(server.metrics_text(), "avalo_operation_latency_ms_count") == total


def _live_children(server: PreforkServer) -> set[int]:
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return {int(pid) for pid in children}


# -- the merge, in process ---------------------------------------------------------------------------
def _recorded(counter: int, latencies: list[float], gauge: Optional[float]) -> pm.Snapshot:
    """What one process collected: real SDK data of a counter, a histogram (Avalo's buckets) and a gauge."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("t")
    meter.create_counter("chat_messages_sent_total").add(counter, {"domain": "chat", "messageType": "text"})
    histogram = meter.create_histogram("chat_delivery_latency_ms", explicit_bucket_boundaries_advisory=latency_buckets(Settings()))
    for value in latencies:
        histogram.record(value, {"domain": "chat", "operation": "chat.deliver"})
    if gauge is not None:
        meter.create_gauge("active_users").set(gauge, {"region": "eu-central"})
    data = reader.get_metrics_data()
    provider.shutdown()
    return pm.snapshot(data, now=time.time())


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_merge_sums_counters_and_buckets_and_drops_exited_gauges(configured):
    handle = configured(metrics_exporters="prometheus", prometheus_port=0, prometheus_host="127.0.0.1")
    endpoint = handle.prometheus
    assert endpoint.role == "serving" and os.environ[PROMETHEUS_GROUP_ENV] == str(endpoint.group.path)
    avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"}, value=1)
    avalo_otel.observe_latency("chat_delivery_latency_ms", 20, {"domain": "chat", "operation": "chat.deliver"})

    live = _sleeper()
    try:
        endpoint.group.write(live.pid, _recorded(10, [40, 90], gauge=5))
        time.sleep(0.01)  # the exited worker set its gauge later: it would win, were it alive
        dead = _dead_pid()
        endpoint.group.write(dead, _recorded(100, [400], gauge=9))

        text = _fetch(handle.prometheus_url)
        assert _sample(text, "chat_messages_sent_total") == 1 + 10 + 100
        # own 20 ms; live 40, 90; exited 400
        assert _bucket(text, "50") == 2 and _bucket(text, "100") == 3 and _bucket(text, "500") == 4
        assert _sample(text, "chat_delivery_latency_ms_count") == 4
        assert _sample(text, "chat_delivery_latency_ms_sum") == 20 + 40 + 90 + 400
        assert _sample(text, "active_users") == 5  # the exited worker's newer 9 is dropped
        assert not (endpoint.group.path / f"{dead}.json").exists()  # folded into the serving process

        again = _fetch(handle.prometheus_url)
        assert _sample(again, "chat_messages_sent_total") == 111  # still counted, once
    finally:
        stop_process(live)
    live.wait()
    text = _fetch(handle.prometheus_url)
    assert _sample(text, "chat_messages_sent_total") == 111  # the live one exited too: kept
    assert "active_users{" not in text  # no live process has the gauge any more
    group = endpoint.group.path
    handle.shutdown()
    assert not group.exists() and PROMETHEUS_GROUP_ENV not in os.environ


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def _bucket(text: str, le: str) -> float:
    pattern = re.compile(r'^chat_delivery_latency_ms_bucket\{domain="chat",le="%s(\.0)?",operation="chat.deliver"\} (\S+)$'
                         % re.escape(le), re.M)
    (match,) = pattern.findall(text)
    return float(match[1])


def test_gauge_takes_the_most_recent_change_and_up_down_counters_sum():
    stamps_a, stamps_b = pm.GaugeStamps(), pm.GaugeStamps()
    mid = ("active_users", "", "", "gauge")
    key = pm.point_key({"region": "eu"})

    def gauge(stamps: pm.GaugeStamps, value: float, now: float) -> pm.Snapshot:
        return {mid: {key: {"a": {"region": "eu"}, "v": value, "t": stamps.stamp(mid, key, value, now)}}}

    a1, b1 = gauge(stamps_a, 3, now=1.0), gauge(stamps_b, 7, now=1.5)
    assert pm.merge(a1, [b1], {})[mid][key]["v"] == 7
    a2, b2 = gauge(stamps_a, 4, now=2.0), gauge(stamps_b, 7, now=2.5)  # b unchanged: keeps its 1.5
    assert pm.merge(a2, [b2], {})[mid][key]["v"] == 4
    updown = ("http_server_active_requests", "", "", "updown")
    snap = lambda v: {updown: {(): {"a": {}, "v": v}}}  # noqa: E731
    assert pm.merge(snap(2), [snap(3)], snap(50))[updown][()]["v"] == 5  # exited ones never count


def _in_child(body: Any) -> None:
    """Run ``body()`` in a forked child that always exits (``os._exit``); fail if it failed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            body()
            code = 0
        finally:
            os.write(write, b"%d" % code)
            os._exit(code)
    os.close(write)
    status = os.read(read, 8)
    os.close(read)
    os.waitpid(pid, 0)
    assert status == b"0", "the forked child failed (its traceback is on stderr)"


def test_forked_children_report_only_what_they_added(configured):
    """The serving process forks a worker, which forks one of its own: each counts only its part."""
    handle = configured(metrics_exporters="prometheus", prometheus_port=0, prometheus_host="127.0.0.1")
    labels = {"domain": "chat", "messageType": "text"}
    avalo_otel.inc_counter("chat_messages_sent_total", labels, value=5)

    def grandchild() -> None:
        avalo_otel.inc_counter("chat_messages_sent_total", labels, value=4)
        handle.force_flush()

    def child() -> None:  # a worker now: it must not serve
        endpoint = handle.prometheus
        assert endpoint.role == "worker" and endpoint.server is None and handle.prometheus_url == endpoint.url
        avalo_otel.inc_counter("chat_messages_sent_total", labels, value=2)
        _in_child(grandchild)
        avalo_otel.inc_counter("chat_messages_sent_total", labels, value=1)  # after its own fork
        handle.force_flush()

    _in_child(child)
    avalo_otel.inc_counter("chat_messages_sent_total", labels, value=1)
    assert _sample(_fetch(handle.prometheus_url), "chat_messages_sent_total") == 5 + 2 + 4 + 1 + 1


@pytest.mark.parametrize("owner", ["exited", "other service"])
def test_a_group_is_joined_only_while_its_owner_serves_the_same_service(configured, tmp_path, owner):
    sleeper = _sleeper()
    try:
        pid, service = (_dead_pid(), "avalo") if owner == "exited" else (sleeper.pid, "another-service")
        (tmp_path / "owner.json").write_text(json.dumps(
            {"pid": pid, "url": "http://127.0.0.1:1/metrics", "port": 1, "service": service}))
        environ = {PROMETHEUS_GROUP_ENV: str(tmp_path)}
        joined = _Group.find(avalo_otel.Settings.load(environ, prometheus_port=1, service_name="avalo"))
        assert joined is None
        handle = configured(metrics_exporters="prometheus", prometheus_port=0, prometheus_host="127.0.0.1",
                            environ=environ)
        assert handle.prometheus.role == "serving" and handle.prometheus_url != "http://127.0.0.1:1/metrics"
    finally:
        stop_process(sleeper)


def test_a_live_owner_of_the_same_service_is_joined(tmp_path):
    sleeper = _sleeper()
    try:
        (tmp_path / "owner.json").write_text(json.dumps(
            {"pid": sleeper.pid, "url": "http://127.0.0.1:1/metrics", "port": 1, "service": "avalo"}))
        settings = avalo_otel.Settings.load({PROMETHEUS_GROUP_ENV: str(tmp_path)}, prometheus_port=1)
        group = _Group.find(settings)
        assert group is not None and (group.owner_pid, group.url) == (sleeper.pid, "http://127.0.0.1:1/metrics")
    finally:
        stop_process(sleeper)


def test_directories_of_killed_serving_processes_are_removed(configured, tmp_path, monkeypatch):
    """A serving process killed with SIGKILL cannot clean up: the next one to serve removes its directory."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    sleeper = _sleeper()
    try:
        dirs = {}
        for name, pid in (("stale", _dead_pid()), ("live", sleeper.pid)):
            dirs[name] = tmp_path / f"avalo-otel-prometheus-{name}"
            dirs[name].mkdir()
            (dirs[name] / "owner.json").write_text(json.dumps({"pid": pid, "url": "u", "port": 1, "service": "s"}))
        handle = configured(metrics_exporters="prometheus", prometheus_port=0, prometheus_host="127.0.0.1")
        assert not dirs["stale"].exists() and dirs["live"].exists()
        assert handle.prometheus.group.path.parent == tmp_path
    finally:
        stop_process(sleeper)
