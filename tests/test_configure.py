"""configure() at process level: ports, imports, OTEL_SDK_DISABLED."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import urllib.request

import avalo_otel as ao


def test_prometheus_port_in_use_is_a_warning_and_the_app_runs_on(configured, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="avalo_otel"):
            handle = configured(metrics_exporters="prometheus", prometheus_port=port)
        assert handle.prometheus_url is None
        assert f"cannot serve Prometheus metrics on 127.0.0.1:{port}" in caplog.text
        assert ao.time_operation("chat", "chat.send", lambda: "sent") == "sent"  # the app runs on


def test_prometheus_endpoint_serves_on_a_chosen_port(configured):
    handle = configured(metrics_exporters="prometheus", prometheus_port=0)
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat"})
    text = urllib.request.urlopen(handle.prometheus_url, timeout=5).read().decode()
    assert 'chat_messages_sent_total{domain="chat"} 1.0' in text


def test_importing_avalo_otel_loads_no_firestore_grpc_or_web_stack():
    code = ("import sys, avalo_otel, avalo_otel.store; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'grpc', 'google', 'starlette', 'fastapi', 'flask', 'uvicorn', 'aiohttp'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sdk_disabled_gives_a_no_op_handle(configured):
    handle = configured(disabled=True)
    assert handle.prometheus_url is None and handle.force_flush() is True
    assert ao.time_operation("chat", "chat.send", lambda: 1) == 1
    with ao.time_operation("chat", "chat.send") as op:
        assert op.trace_id is None


def test_sdk_disabled_handle_answers_every_public_member_as_a_no_op(configured, tmp_path):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

    live = configured(traces_exporters="none", logs_exporters="none")
    members = {name for name in dir(live) if not name.startswith("_")}
    live.shutdown()
    handle = configured(disabled=True)
    # every member a running handle has, the disabled one has too (none raises AttributeError)
    missing = {name for name in members if not hasattr(handle, name)}
    assert not missing, f"the disabled handle lacks {sorted(missing)}"
    assert handle.store is None and handle.prometheus_url is None
    handle.add_span_exporter(InMemorySpanExporter())
    handle.add_log_exporter(InMemoryLogRecordExporter())
    handle.tracer_provider.get_tracer("t").start_span("x").end()
    handle.meter_provider.get_meter("m").create_counter("c").add(1)
    assert handle.force_flush() is True
    with handle:
        pass
    assert handle.is_shut_down
    handle.shutdown()  # twice is fine


def test_the_distro_keeps_the_logging_instrumentor_off_the_root_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    # opentelemetry-instrumentation-logging is installed (for capture_logging's handler); under
    # opentelemetry-instrument its instrumentor would add its own root handler, bypassing
    # capture_logging's choice. The distro defaults it off, and an explicit setting still wins.
    from avalo_otel.distro import AvaloDistro
    monkeypatch.delenv("OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION", raising=False)
    AvaloDistro()._configure()
    assert os.environ["OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION"] == "false"
    monkeypatch.setenv("OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION", "true")
    AvaloDistro()._configure()
    assert os.environ["OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION"] == "true"
