"""OTLP export end to end: configure() → the stock OTLP exporters → a real OTLP receiver.

No mocks: every assertion is on what a collector would have received over gRPC or
HTTP/protobuf (see ``otlp_receiver.py``), or on what the console exporters printed.
"""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any, Iterator

import grpc
import pytest

import avalo_otel as ao
from avalo_otel import Attr, ConfigurationError, Settings
from console_json import json_objects
from otlp_receiver import OtlpReceiver

RAW_ACTOR = "user-42"
CORE_LOG_ATTRS = (Attr.DOMAIN, Attr.OPERATION, Attr.SUCCESS)
#: Only flushes export metrics in these tests (so each flush is exactly one metrics request).
NO_TIMER = 60_000


# -- helpers -----------------------------------------------------------------------------------
def _emit_sample() -> None:
    """One of each: a timed operation (span + event + metrics), a failure, a critical event,
    a custom counter and a custom latency."""
    with ao.time_operation("chat", "chat.send", actor_id=RAW_ACTOR, metadata={"messageType": "text"}):
        ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
        ao.observe_latency("chat_delivery_latency_ms", 120, {"domain": "chat", "operation": "chat.deliver"})
    ao.log_error("wallet", "wallet.spend", "INSUFFICIENT_FUNDS", actor_id=RAW_ACTOR, latency_ms=42)
    ao.log_telemetry("safety", "safety.panic_process", level="CRITICAL", success=False, error_code="TIMEOUT")


def _one(items: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one item with {match}, got {len(found)}: {items}"
    return found[0]


def _wait_all_signals(receiver: OtlpReceiver, spans: int = 1, logs: int = 3) -> None:
    receiver.wait_for(
        lambda r: len(r.spans()) >= spans and len(r.log_records()) >= logs and r.metrics(), timeout=5
    )


def _check_sample(receiver: OtlpReceiver, service_name: str) -> None:
    """Everything `_emit_sample()` recorded arrived, in OpenTelemetry's shape and Avalo's vocabulary."""
    _wait_all_signals(receiver)
    span = _one(receiver.spans(), name="chat.send")
    assert span["status_code"] == "unset" and span["scope"] == "avalo_otel"
    assert span["attributes"][Attr.SUCCESS] is True
    resource = span["resource"]
    assert resource["service.name"] == service_name
    assert resource["telemetry.distro.name"] == "avalo-otel"
    assert resource["telemetry.distro.version"] == ao.__version__

    logs = receiver.log_records()
    event = _one(logs, body="chat.send")
    assert (event["severity_number"], event["severity_text"]) == (9, "INFO")
    # correlated with the operation's span
    assert (event["trace_id"], event["span_id"]) == (span["trace_id"], span["span_id"])
    assert event["attributes"][Attr.DOMAIN] == "chat" and event["attributes"][Attr.OPERATION] == "chat.send"
    assert event["attributes"]["avalo.metadata.messageType"] == "text"
    assert event["resource"]["service.name"] == service_name

    error = _one(logs, body="wallet.spend")
    assert (error["severity_number"], error["severity_text"]) == (17, "ERROR")
    assert error["attributes"][Attr.ERROR_TYPE] == "INSUFFICIENT_FUNDS"
    assert error["attributes"][Attr.SUCCESS] is False
    critical = _one(logs, body="safety.panic_process")
    assert (critical["severity_number"], critical["severity_text"]) == (21, "CRITICAL")  # FATAL

    # ids leave only pseudonymised, the same pseudonym for the same actor
    pseudonyms = {event["attributes"][Attr.ACTOR_ID], error["attributes"][Attr.ACTOR_ID]}
    assert len(pseudonyms) == 1
    (pseudonym,) = pseudonyms
    assert pseudonym and pseudonym != RAW_ACTOR and RAW_ACTOR not in pseudonym
    assert all(RAW_ACTOR not in str(v) for rec in logs for v in rec["attributes"].values())

    metrics = {m["name"]: m for m in receiver.metrics()}
    ops = metrics["avalo_operations_total"]
    assert (ops["type"], ops["is_monotonic"], ops["temporality"]) == ("sum", True, "cumulative")
    by_attrs = {tuple(sorted(p["attributes"].items())): p["value"] for p in ops["points"]}
    assert by_attrs == {
        (("domain", "chat"), ("error_code", ""), ("operation", "chat.send"), ("outcome", "success")): 1,
        (("domain", "wallet"), ("error_code", "INSUFFICIENT_FUNDS"), ("operation", "wallet.spend"),
         ("outcome", "client_error")): 1,
        (("domain", "safety"), ("error_code", "TIMEOUT"), ("operation", "safety.panic_process"),
         ("outcome", "server_error")): 1,
    }
    latency = metrics["avalo_operation_latency_ms"]
    assert latency["type"] == "histogram" and latency["temporality"] == "cumulative"
    for point in latency["points"]:
        assert 300 in point["explicit_bounds"] and 2500 in point["explicit_bounds"]
    wallet = _one(latency["points"], attributes={"domain": "wallet", "operation": "wallet.spend"})
    assert wallet["count"] == 1 and wallet["sum"] == 42
    assert _one(latency["points"], attributes={"domain": "chat", "operation": "chat.send"})["count"] == 1

    sent = metrics["chat_messages_sent_total"]
    assert sent["type"] == "sum" and sent["is_monotonic"]
    assert sent["points"] == [{"attributes": {"domain": "chat", "messageType": "text"}, "value": 1}]
    delivery = metrics["chat_delivery_latency_ms"]
    assert delivery["type"] == "histogram" and delivery["points"][0]["sum"] == 120
    assert 300 in delivery["points"][0]["explicit_bounds"]
    assert all(m["resource"]["service.name"] == service_name for m in receiver.metrics())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An endpoint that accepts TCP connections (kernel backlog) but never answers: exports hang."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(256)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


# -- 1. gRPC -----------------------------------------------------------------------------------
def test_grpc_export_of_spans_events_and_metrics(otlp_receiver, configured):
    handle = configured(
        otlp_endpoint=otlp_receiver.grpc_endpoint, otlp_protocol="grpc", metrics_exporters="otlp",
        service_name="chat-api", metric_export_interval_ms=NO_TIMER,
    )
    _emit_sample()
    assert handle.force_flush(5)
    _check_sample(otlp_receiver, "chat-api")
    assert {r.transport for r in otlp_receiver.requests()} == {"grpc"}
    assert {r.signal for r in otlp_receiver.requests()} == {"traces", "logs", "metrics"}


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_span_start_attributes_reach_the_receiver(otlp_receiver, configured, protocol):
    endpoint = otlp_receiver.grpc_endpoint if protocol == "grpc" else otlp_receiver.http_endpoint
    handle = configured(otlp_endpoint=endpoint, otlp_protocol=protocol)
    with ao.time_operation("chat", "chat.send"):
        pass
    tracer = handle.tracer_provider.get_tracer("third.party")
    with tracer.start_as_current_span("GET /health", attributes={"http.request.method": "GET"}):
        pass
    assert handle.force_flush(5)
    otlp_receiver.wait_for(lambda r: len(r.spans()) >= 2, timeout=5)
    ours = _one(otlp_receiver.spans(), name="chat.send")
    assert ours["attributes"][Attr.DOMAIN] == "chat"
    assert ours["attributes"][Attr.OPERATION] == "chat.send"
    theirs = _one(otlp_receiver.spans(), name="GET /health")
    assert theirs["attributes"]["http.request.method"] == "GET"


# -- 2. HTTP/protobuf --------------------------------------------------------------------------
def test_http_protobuf_export_with_signal_paths_and_headers(otlp_receiver, configured):
    handle = configured(
        otlp_endpoint=otlp_receiver.http_endpoint, otlp_protocol="http/protobuf", metrics_exporters="otlp",
        otlp_headers={"x-custom": "1"}, service_name="chat-http", metric_export_interval_ms=NO_TIMER,
    )
    _emit_sample()
    assert handle.force_flush(5)
    # The receiver answers 404 off /v1/{traces,metrics,logs}: arriving proves the paths were appended.
    _check_sample(otlp_receiver, "chat-http")
    assert {r.transport for r in otlp_receiver.requests()} == {"http"}
    for signal in ("traces", "logs", "metrics"):
        headers = otlp_receiver.last_headers(signal)
        assert headers.get("x-custom") == "1", (signal, headers)
        assert headers["content-type"] == "application/x-protobuf"


def test_grpc_headers_are_sent_as_metadata(otlp_receiver, configured):
    handle = configured(otlp_endpoint=otlp_receiver.grpc_endpoint, otlp_headers="x-custom=1,x-team=chat")
    ao.log_success("chat", "chat.send")
    assert handle.force_flush(5)
    otlp_receiver.wait_for(lambda r: r.log_records(), timeout=5)
    headers = otlp_receiver.last_headers("logs")
    assert headers["x-custom"] == "1" and headers["x-team"] == "chat"


# -- 3. Datadog preset -------------------------------------------------------------------------
def test_datadog_preset_exports_grpc_with_delta_temporality(otlp_receiver, configured):
    handle = configured(
        preset="datadog", otlp_endpoint=otlp_receiver.grpc_endpoint, metrics_exporters="otlp",
        metric_export_interval_ms=NO_TIMER,
    )
    assert handle.settings.metrics_temporality == "delta" and handle.settings.otlp_protocol == "grpc"
    labels = {"domain": "chat", "messageType": "text"}
    for _ in range(3):
        ao.inc_counter("chat_messages_sent_total", labels)
    ao.log_success("chat", "chat.send", latency_ms=100)
    ao.log_success("chat", "chat.send", latency_ms=200)
    with handle.tracer_provider.get_tracer("third.party").start_as_current_span("dd-span"):
        pass
    assert handle.force_flush(5)
    otlp_receiver.wait_for(lambda r: len(r.metrics_requests) >= 1, timeout=5)

    ao.inc_counter("chat_messages_sent_total", labels, value=2)
    ao.log_success("chat", "chat.send", latency_ms=300)
    assert handle.force_flush(5)
    otlp_receiver.wait_for(lambda r: len(r.metrics_requests) >= 2, timeout=5)

    assert {r.transport for r in otlp_receiver.requests()} == {"grpc"}
    assert {r.signal for r in otlp_receiver.requests()} == {"traces", "logs", "metrics"}
    assert [s["name"] for s in otlp_receiver.spans()] == ["dd-span"]
    for name in ("chat_messages_sent_total", "avalo_operations_total", "avalo_operation_latency_ms"):
        exports = [m for m in otlp_receiver.metrics() if m["name"] == name]
        assert len(exports) == 2, (name, exports)
        assert {m["temporality"] for m in exports} == {"delta"}, name
    # the second export carries only what was recorded since the first
    assert [p["value"] for p in otlp_receiver.metric_points("chat_messages_sent_total")] == [3, 2]
    assert [p["value"] for p in otlp_receiver.metric_points("avalo_operations_total")] == [2, 1]
    hist = otlp_receiver.metric_points("avalo_operation_latency_ms")
    assert [(p["count"], p["sum"]) for p in hist] == [(2, 300), (1, 300)]


def test_datadog_preset_settings():
    s = Settings.load(environ={"AVALO_OTEL_PRESET": "datadog"})
    assert s.otlp_endpoint == "http://localhost:4317" and s.otlp_protocol == "grpc"
    assert s.metrics_temporality == "delta"
    assert s.traces_exporters == ("otlp",) and s.logs_exporters == ("otlp",) and "otlp" in s.metrics_exporters
    s = Settings.load(environ={"AVALO_OTEL_PRESET": "datadog", "DD_AGENT_HOST": "dd-agent.internal"})
    assert s.otlp_endpoint == "http://dd-agent.internal:4317"
    s = Settings.load(environ={"AVALO_OTEL_PRESET": "datadog", "DD_AGENT_HOST": "dd-agent",
                               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert s.otlp_endpoint == "http://dd-agent:4318"
    # an explicit endpoint wins over the agent address
    s = Settings.load(environ={"AVALO_OTEL_PRESET": "datadog", "DD_AGENT_HOST": "dd-agent",
                               "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert s.otlp_endpoint == "http://collector:4317"


# -- 4. New Relic preset -----------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Log record attributes were dropped")
def test_newrelic_preset_exports_http_with_api_key_delta_and_limits(otlp_receiver, configured):
    handle = configured(
        preset="newrelic", newrelic_license_key="NRAK-TESTKEY", otlp_endpoint=otlp_receiver.http_endpoint,
        metrics_exporters="otlp", metric_export_interval_ms=NO_TIMER,
    )
    assert handle.settings.otlp_protocol == "http/protobuf"
    with ao.time_operation("chat", "chat.send", metadata={"big": "x" * 10_000}):
        ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    ao.log_success("support", "support.ticket_create", metadata={f"k{i:03d}": i for i in range(100)})
    assert handle.force_flush(5)
    _wait_all_signals(otlp_receiver, spans=1, logs=2)

    assert {r.transport for r in otlp_receiver.requests()} == {"http"}
    for signal in ("traces", "logs", "metrics"):
        assert otlp_receiver.last_headers(signal).get("api-key") == "NRAK-TESTKEY", signal
    assert {m["temporality"] for m in otlp_receiver.metrics()} == {"delta"}

    big = _one(otlp_receiver.log_records(), body="chat.send")["attributes"]["avalo.metadata.big"]
    assert big == "x" * 4095
    many = _one(otlp_receiver.log_records(), body="support.ticket_create")["attributes"]
    assert 0 < len(many) <= 64


@pytest.mark.filterwarnings("ignore:Log record attributes were dropped")
def test_newrelic_count_limit_keeps_the_core_event_attributes(otlp_receiver, configured):
    handle = configured(preset="newrelic", newrelic_license_key="NRAK-TESTKEY",
                        otlp_endpoint=otlp_receiver.http_endpoint)
    ao.log_error("wallet", "wallet.spend", "INSUFFICIENT_FUNDS", metadata={f"k{i:03d}": i for i in range(100)})
    assert handle.force_flush(5)
    otlp_receiver.wait_for(lambda r: r.log_records(), timeout=5)
    (record,) = otlp_receiver.log_records()
    assert len(record["attributes"]) <= 64
    for key in (*CORE_LOG_ATTRS, Attr.ERROR_TYPE):
        assert key in record["attributes"], key


def test_newrelic_preset_settings_and_secrecy():
    env = {"AVALO_OTEL_PRESET": "newrelic", "NEW_RELIC_LICENSE_KEY": "NRAK-SECRET123"}
    s = Settings.load(environ=env)
    assert s.otlp_endpoint == "https://otlp.nr-data.net:4318"
    assert s.otlp_protocol == "http/protobuf" and s.metrics_temporality == "delta"
    assert s.otlp_headers["api-key"] == "NRAK-SECRET123"
    assert (s.attribute_value_length_limit, s.attribute_count_limit) == (4095, 64)
    assert Settings.load(environ={**env, "AVALO_OTEL_NEWRELIC_REGION": "eu"}).otlp_endpoint == (
        "https://otlp.eu01.nr-data.net:4318")
    eu_key = Settings.load(environ={**env, "NEW_RELIC_LICENSE_KEY": "eu01xxSECRET456NRAL"})
    assert eu_key.otlp_endpoint == "https://otlp.eu01.nr-data.net:4318" and eu_key.newrelic_region == "eu"
    assert Settings.load(environ={}, preset="newrelic", newrelic_license_key="NRAK-SECRET123") == s

    with pytest.raises(ConfigurationError, match="NEW_RELIC_LICENSE_KEY"):
        Settings.load(environ={"AVALO_OTEL_PRESET": "newrelic"})
    for settings, key in ((s, "NRAK-SECRET123"), (eu_key, "eu01xxSECRET456NRAL")):
        assert key not in repr(settings) and key not in str(settings)
        described = settings.describe()
        assert key not in repr(described) and key not in json.dumps(described, default=str)
        assert described["newrelic_license_key"] == "***" and described["otlp_headers"]["api-key"] == "***"


# -- 5. A backend that is down or refuses ------------------------------------------------------
def _hammer(n: int) -> tuple[float, float]:
    """n operations through the whole API; (total seconds, slowest single call in seconds)."""
    slowest = 0.0
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        with ao.time_operation("chat", "chat.send", actor_id=f"u{i % 7}"):
            ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
        ao.observe_latency("chat_delivery_latency_ms", i % 500, {"domain": "chat", "operation": "chat.deliver"})
        slowest = max(slowest, time.perf_counter() - t0)
    return time.perf_counter() - start, slowest


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_endpoint_down_never_blocks_the_app(configured, protocol):
    handle = configured(
        otlp_endpoint=f"http://127.0.0.1:{_free_port()}", otlp_protocol=protocol, metrics_exporters="otlp",
        export_timeout_ms=500, metric_export_interval_ms=200,
    )
    total, slowest = _hammer(2000)
    # Exports run on the SDK's worker threads: no call waits for a (failing) export. The bounds
    # are loose on purpose (a loaded 2-core CI machine); a call that waited would take seconds.
    assert total < 15.0 and slowest < 1.0, (total, slowest)
    ao.log_success("chat", "chat.send")  # still usable
    start = time.perf_counter()
    handle.shutdown()
    assert time.perf_counter() - start < 5.0
    assert handle.is_shut_down


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_endpoint_that_hangs_never_blocks_the_app_and_shutdown_is_bounded(configured, black_hole, protocol):
    # Every export here waits its full timeout: a call that waited on one would take >= 1.5 s.
    handle = configured(
        otlp_endpoint=black_hole, otlp_protocol=protocol, metrics_exporters="otlp",
        export_timeout_ms=1500, metric_export_interval_ms=100,
    )
    total, slowest = _hammer(2000)
    assert total < 15.0 and slowest < 1.0, (total, slowest)
    start = time.perf_counter()
    handle.shutdown()
    # Within the default deadline (10 s), though every export in flight waits its full timeout.
    assert time.perf_counter() - start < 11.0


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_rejecting_receiver_leaves_the_app_unaffected_and_data_flows_again(otlp_receiver, configured, transport):
    if transport == "grpc":
        handle = configured(otlp_endpoint=otlp_receiver.grpc_endpoint, metrics_exporters="otlp",
                            metric_export_interval_ms=NO_TIMER)
        otlp_receiver.fail_with = grpc.StatusCode.PERMISSION_DENIED
    else:
        handle = configured(otlp_endpoint=otlp_receiver.http_endpoint, otlp_protocol="http/protobuf",
                            metrics_exporters="otlp", metric_export_interval_ms=NO_TIMER)
        otlp_receiver.http_status = 400

    start = time.perf_counter()
    assert ao.time_operation("chat", "chat.send", lambda: "sent") == "sent"
    ao.log_error("wallet", "wallet.spend", "PAYMENT_DECLINED")
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    handle.force_flush(5)
    assert time.perf_counter() - start < 3.0
    assert {r.signal for r in otlp_receiver.rejected} == {"traces", "logs", "metrics"}
    assert otlp_receiver.received == []

    otlp_receiver.fail_with, otlp_receiver.http_status = None, None
    assert ao.time_operation("chat", "chat.read", lambda: "read") == "read"
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    assert handle.force_flush(5)
    otlp_receiver.wait_for(lambda r: r.spans() and r.log_records() and r.metrics(), timeout=5)
    assert [s["name"] for s in otlp_receiver.spans()] == ["chat.read"]
    assert [r["body"] for r in otlp_receiver.log_records()] == ["chat.read"]
    # Metrics are cumulative: what was counted during the outage is not lost.
    assert [p["value"] for p in otlp_receiver.metric_points("chat_messages_sent_total")] == [2]


# -- 6. Console --------------------------------------------------------------------------------
def test_console_compact_lines(capsys, configured):
    handle = configured(traces_exporters="console", logs_exporters="console", metrics_exporters="console",
                        metric_export_interval_ms=NO_TIMER)
    with ao.time_operation("chat", "chat.send", actor_id=RAW_ACTOR):
        pass
    ao.log_error("wallet", "wallet.spend", "INSUFFICIENT_FUNDS")
    assert handle.force_flush(5)
    out = capsys.readouterr().out
    lines = out.splitlines()
    span_line = next(line for line in lines if line.startswith("span  chat.send"))
    assert re.match(r"^span  chat\.send\s+\d+\.\d\dms unset trace=[0-9a-f]{8}$", span_line), span_line
    event = next(line for line in lines if re.match(r"^event INFO\s+chat\.send\b", line))
    assert "domain=chat" in event and "success=True" in event and RAW_ACTOR not in event
    assert span_line.rsplit("trace=", 1)[1] == event.rsplit("trace=", 1)[1]  # correlated
    assert any(re.match(r"^event ERROR\s+wallet\.spend\b.*type=INSUFFICIENT_FUNDS", line) for line in lines), out
    assert any(line.startswith("metric avalo_operations_total{") for line in lines), out
    assert RAW_ACTOR not in out


def test_console_json(capsys, configured):
    handle = configured(traces_exporters="console", logs_exporters="console", console_format="json")
    with ao.time_operation("chat", "chat.send", actor_id=RAW_ACTOR):
        pass
    assert handle.force_flush(5)
    out = capsys.readouterr().out
    objects = json_objects(out)  # raises if anything printed is not JSON
    span = next(o for o in objects if o.get("name") == "chat.send")
    record = next(o for o in objects if o.get("body") == "chat.send")
    assert span["resource"]["attributes"]["telemetry.distro.name"] == "avalo-otel"
    assert record["severity_text"] == "INFO" and record["attributes"][Attr.DOMAIN] == "chat"
    assert record["trace_id"] == span["context"]["trace_id"]
    assert RAW_ACTOR not in out
