"""OTLP with the collector down or restarting, against the real receiver (``otlp_receiver.py``).

(a) ``shutdown(timeout_s)`` and ``force_flush(timeout_s)`` keep their deadline with the endpoint
    on a closed port (gRPC and HTTP; traces, logs, metrics), and so do SIGTERM and a normal exit
    of a real process: the stock SDK takes 30-40 s, stuck in the exporters' retry loops behind a
    30 s processor wait;
(b) under a steady load with the receiver stopped for seconds and started again on the same
    port, everything produced is either delivered or counted in
    ``avalo_otel_export_dropped_total{exporter="otlp", signal, reason}`` (the SDK loses it
    silently: a full queue, a failed batch);
(c) after a restart, export resumes within a second or so rather than after the SDK's retry
    backoff (1, 2, 4 s) or gRPC's reconnect backoff (1 s growing to 120 s).
The store writers count into the same metric with the same labels.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import avalo_otel as ao
from otlp_receiver import OtlpReceiver

APPS = Path(__file__).parent / "apps"
PROTOCOLS = ["grpc", "http/protobuf"]
SLACK_S = 0.75  # thread hand-offs and the last export's cancellation, on a loaded 2-core machine


class FinalReader(InMemoryMetricReader):
    """An in-memory reader that also keeps what it saw at shutdown, after every exporter stopped."""

    final: Any = None

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.final = self.get_metrics_data()
        super().shutdown(timeout_millis=timeout_millis, **kwargs)


def dropped(data: Any, signal: str) -> dict[str, float]:
    """``avalo_otel_export_dropped_total{exporter="otlp", signal=…}`` by reason."""
    by_reason: dict[str, float] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != "avalo_otel_export_dropped_total":
                    continue
                for point in metric.data.data_points:
                    attrs = point.attributes
                    if attrs.get("exporter") == "otlp" and attrs.get("signal") == signal:
                        by_reason[attrs["reason"]] = by_reason.get(attrs["reason"], 0) + point.value
    return by_reason


def endpoint(receiver: OtlpReceiver, protocol: str) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


@pytest.fixture
def closed_port() -> str:
    """An endpoint nobody listens on: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


def _operations(count: int, first: int = 0) -> None:
    for seq in range(first, first + count):
        with ao.time_operation("chat", "chat.send", metadata={"seq": seq}):
            pass


# -- (a) shutdown keeps its deadline ---------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shutdown_keeps_its_deadline_with_the_endpoint_down_and_counts_what_was_lost(
        configured: Callable[..., ao.Telemetry], closed_port: str, protocol: str) -> None:
    reader = FinalReader()
    handle = configured(otlp_endpoint=closed_port, otlp_protocol=protocol, metrics_exporters="otlp",
                        metric_export_interval_ms=300, traces_schedule_delay_ms=100, logs_schedule_delay_ms=100,
                        metric_readers=[reader])
    _operations(1500)  # three batches of each signal: the default export timeout (10 s) per batch
    time.sleep(1.2)  # the exporters are inside their retry backoff now
    started = time.monotonic()
    handle.shutdown(timeout_s=2)
    took = time.monotonic() - started
    assert took < 2 + SLACK_S, f"shutdown(timeout_s=2) took {took:.1f} s with the endpoint down ({protocol})"
    # Nothing was delivered, and all of it was counted: failed batches and what was still queued.
    traces, logs = dropped(reader.final, "traces"), dropped(reader.final, "logs")
    assert sum(traces.values()) == 1500, traces
    assert sum(logs.values()) == 1500, logs
    assert traces.get("shutdown", 0) > 0 and logs.get("shutdown", 0) > 0, (traces, logs)
    assert dropped(reader.final, "metrics").get("export_failed", 0) > 0  # points of the failed metric exports


def test_force_flush_keeps_its_deadline_with_the_endpoint_down(
        configured: Callable[..., ao.Telemetry], closed_port: str) -> None:
    handle = configured(otlp_endpoint=closed_port, otlp_protocol="http/protobuf", metrics_exporters="otlp",
                        metric_export_interval_ms=600_000)
    _operations(10)
    started = time.monotonic()
    assert handle.force_flush(timeout_s=1) is False  # not delivered: the backend is down
    assert time.monotonic() - started < 1 + SLACK_S
    started = time.monotonic()
    assert ao.flush_metrics(timeout_s=0.5) is False  # the module-level flush: the same unit
    assert time.monotonic() - started < 0.5 + SLACK_S
    handle.shutdown(timeout_s=1)


def _wait_ready(proc: subprocess.Popen[str], timeout: float = 30) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.stdout.readline().strip() == "ready":
            return
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the app never said ready (exit {proc.returncode}):\n{proc.communicate(timeout=10)[1]}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sigterm_exits_within_the_default_shutdown_deadline_with_the_endpoint_down(
        closed_port: str, protocol: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AVALO_OTEL_"))}
    env.update(AVALO_OTEL_PSEUDONYM_KEY="k", OTEL_SERVICE_NAME="sigterm-otlp")
    proc = subprocess.Popen([sys.executable, str(APPS / "otlp_sigterm.py"), protocol, closed_port, "1500"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=25)  # Kubernetes' grace period is 30 s
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGTERM, f"exit {proc.returncode}\n{err}"
    assert took < 10 + 2 * SLACK_S, f"SIGTERM to exit took {took:.1f} s (default shutdown deadline 10 s)"
    assert "Traceback" not in err, err


def test_a_normal_exit_keeps_the_default_shutdown_deadline_with_the_endpoint_down(
        closed_port: str, tmp_path: Path) -> None:
    # As when the app's server (uvicorn, gunicorn) handled SIGTERM and the interpreter exits:
    # the SDK's own at-exit shutdowns would take up to 10 + 10 + 30 s one after the other.
    protocol = "grpc"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AVALO_OTEL_"))}
    env.update(AVALO_OTEL_PSEUDONYM_KEY="k", OTEL_SERVICE_NAME="exit-otlp")
    proc = subprocess.Popen([sys.executable, str(APPS / "otlp_sigterm.py"), protocol, closed_port, "1500", "exit"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(proc)
        started = time.monotonic()
        _, err = proc.communicate(timeout=25)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err}"
    assert took < 10 + 2 * SLACK_S, f"exit took {took:.1f} s (default shutdown deadline 10 s)"
    assert "Traceback" not in err, err


# -- (b) what an outage loses is counted -----------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_outage_under_load_loses_nothing_uncounted(
        configured: Callable[..., ao.Telemetry], receiver: OtlpReceiver, protocol: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Small queues, so the outage overflows them (the SDK drops silently), and a short export
    # timeout, so batches also fail outright; both must show up in the counter.
    for name, value in (("OTEL_BSP_MAX_QUEUE_SIZE", "64"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "32"),
                        ("OTEL_BLRP_MAX_QUEUE_SIZE", "64"), ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "32")):
        monkeypatch.setenv(name, value)
    reader = InMemoryMetricReader()
    handle = configured(otlp_endpoint=endpoint(receiver, protocol), otlp_protocol=protocol,
                        export_timeout_ms=1000, traces_schedule_delay_ms=100, logs_schedule_delay_ms=100,
                        metric_readers=[reader])
    rate, produced, started = 200, 0, time.monotonic()
    stopped = restarted = False
    while (elapsed := time.monotonic() - started) < 5.0:  # 200 ops/s for 5 s; down from 1 s to 4 s
        if not stopped and elapsed >= 1.0:
            receiver.stop(grace=1.0)  # calls in flight finish: each item is delivered or not, once
            stopped = True
        if stopped and not restarted and elapsed >= 4.0:
            receiver.start()
            restarted = True
        _operations(1, first=produced)
        produced += 1
        time.sleep(max(0.0, started + produced / rate - time.monotonic()))
    assert handle.force_flush(timeout_s=10)

    spans = {s["span_id"] for s in receiver.spans()}
    events = {r["attributes"]["avalo.metadata.seq"] for r in receiver.log_records() if r["body"] == "chat.send"}
    data = reader.get_metrics_data()
    traces, logs = dropped(data, "traces"), dropped(data, "logs")
    assert len(spans) + sum(traces.values()) == produced, (produced, len(spans), traces)
    assert len(events) + sum(logs.values()) == produced, (produced, len(events), logs)
    for lost in (traces, logs):
        assert lost.get("queue_full", 0) > 0 and lost.get("export_failed", 0) > 0, (traces, logs)
    assert min(events) < 100 and max(events) >= produced - 100  # from before the outage and after it


# -- (c) export resumes promptly after a restart ---------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_export_resumes_promptly_after_the_collector_restarts(
        configured: Callable[..., ao.Telemetry], receiver: OtlpReceiver, protocol: str) -> None:
    configured(otlp_endpoint=endpoint(receiver, protocol), otlp_protocol=protocol,
               traces_schedule_delay_ms=100, logs_schedule_delay_ms=100)
    receiver.stop()
    emitted = time.monotonic()
    _operations(1)  # exported within 0.1 s: attempts at ~0, ~1, ~3 s fail; the SDK's next is at 5.6-8.4 s
    time.sleep(max(0.0, emitted + 3.75 - time.monotonic()))
    receiver.start()
    restarted = time.monotonic()
    receiver.wait_for(lambda r: r.spans() and r.log_records(), timeout=8)
    took = time.monotonic() - restarted
    assert took < 1.5, f"{protocol}: delivered {took:.1f} s after the collector came back"


# -- every exporter: the same labels ---------------------------------------------------------------
def test_store_writer_drops_carry_signal_and_reason(configured: Callable[..., ao.Telemetry], tmp_path: Path) -> None:
    from avalo_otel.store.writer import writers

    reader = InMemoryMetricReader()
    handle = configured(logs_exporters="sqlite", store_path=str(tmp_path / "t.db"), store_buffer=5,
                        metric_readers=[reader])
    for seq in range(100):
        ao.log_telemetry("chat", "chat.send", metadata={"seq": seq})
    assert handle.force_flush(timeout_s=20)
    [writer] = [w for w in writers() if w.store is handle.store]
    assert writer.dropped > 0
    points = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics if m.name == "avalo_otel_export_dropped_total" for p in m.data.data_points]
    assert {tuple(sorted(p.attributes.items())) for p in points} == {
        (("exporter", "sqlite"), ("reason", "queue_full"), ("signal", "logs"))}
    assert sum(p.value for p in points) == writer.dropped


def test_any_exporter_that_fails_has_its_losses_counted(configured: Callable[..., ao.Telemetry],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    # Real exporters with a real fault: console exporters writing to a closed stream raise on
    # every export. Their losses are counted like OTLP's, batched or not, spans, logs and metrics.
    import io

    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    from avalo_otel import _exporters

    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(_exporters, "console_metric_exporter", lambda settings: ConsoleMetricExporter(out=closed))
    reader = InMemoryMetricReader()
    handle = configured(metric_readers=[reader], traces_exporters="none", logs_exporters="none",
                        metrics_exporters="console", metric_export_interval_ms=600_000)
    handle.add_span_exporter(ConsoleSpanExporter(out=closed))
    handle.add_span_exporter(ConsoleSpanExporter(out=closed), batch=False)
    handle.add_log_exporter(ConsoleLogRecordExporter(out=closed))
    _operations(5)
    handle.force_flush(timeout_s=5)

    def lost(signal: str) -> float:
        data = reader.get_metrics_data()
        return sum(p.value for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
                   if m.name == "avalo_otel_export_dropped_total" for p in m.data.data_points
                   if p.attributes == {"exporter": "console", "signal": signal, "reason": "export_failed"})

    assert lost("traces") == 10  # 5 spans, lost by each of the two span exporters
    assert lost("logs") == 5
    assert lost("metrics") > 0  # the points of the failed metrics export
    # one error per failing exporter, not one per batch
    failed = [r.getMessage() for r in caplog.records if "exporter failed" in r.getMessage()]
    assert len(failed) == 4, failed
