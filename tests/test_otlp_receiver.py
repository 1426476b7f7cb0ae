"""Prove the OTLP test receiver against the plain OTel SDK and stock exporters."""

from __future__ import annotations

from typing import Any, Iterator

import grpc
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

# Imported so pytest registers the fixture for this module.
from otlp_receiver import OtlpReceiver, any_value, otlp_receiver  # noqa: F401

RESOURCE = Resource.create({"service.name": "receiver-test"})
HEADERS = {"api-key": "s3cret"}


def _tracer_provider(exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    return provider


def _emit_span(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("test-scope")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("child", attributes={"a.str": "x", "a.int": 7, "a.list": [1, 2]}) as span:
            span.add_event("evt", {"k": True})
            span.set_status(Status(StatusCode.ERROR, "boom"))
    assert provider.force_flush(5_000)


def _emit_log(exporter: LogRecordExporter) -> None:
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=50))
    tracers = TracerProvider()
    try:
        with tracers.get_tracer("t").start_as_current_span("ctx"):
            provider.get_logger("test-scope").emit(
                body="hello", severity_number=SeverityNumber.WARN, severity_text="WARN", attributes={"user": "u1"}
            )
        assert provider.force_flush(5_000)
    finally:
        provider.shutdown()


def _emit_metrics(exporter: MetricExporter) -> None:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    try:
        meter = provider.get_meter("test-scope")
        meter.create_counter("requests", unit="1", description="reqs").add(3, {"route": "/a"})
        meter.create_histogram("latency", unit="ms").record(12.5, {"route": "/a"})
        meter.create_up_down_counter("inflight").add(-2)
        gauge = meter.create_gauge("temp")
        gauge.set(21.5)
        assert provider.force_flush(5_000)
    finally:
        provider.shutdown()


def _check_spans(receiver: OtlpReceiver) -> None:
    receiver.wait_for(lambda r: len(r.spans()) >= 2)
    spans = {s["name"]: s for s in receiver.spans()}
    parent, child = spans["parent"], spans["child"]
    assert child["parent_span_id"] == parent["span_id"] and len(child["span_id"]) == 16
    assert child["trace_id"] == parent["trace_id"] and len(child["trace_id"]) == 32
    assert parent["parent_span_id"] == "" and parent["kind"] == "server" and child["kind"] == "internal"
    assert child["attributes"] == {"a.str": "x", "a.int": 7, "a.list": [1, 2]}
    assert child["events"] == [{"name": "evt", "attributes": {"k": True}}]
    assert (child["status_code"], child["status_message"]) == ("error", "boom")
    assert child["resource"]["service.name"] == "receiver-test" and child["scope"] == "test-scope"


def _check_logs(receiver: OtlpReceiver) -> None:
    (record,) = receiver.wait_for(lambda r: r.log_records())
    assert record["body"] == "hello" and record["attributes"] == {"user": "u1"}
    assert (record["severity_number"], record["severity_text"]) == (SeverityNumber.WARN.value, "WARN")
    assert len(record["trace_id"]) == 32 and len(record["span_id"]) == 16 and set(record["trace_id"]) != {"0"}
    assert record["resource"]["service.name"] == "receiver-test"


def _check_metrics(receiver: OtlpReceiver, counter_temporality: str = "cumulative") -> None:
    receiver.wait_for(lambda r: {"requests", "latency", "inflight", "temp"} <= {m["name"] for m in r.metrics()})
    by_name = {m["name"]: m for m in receiver.metrics()}
    req = by_name["requests"]
    assert (req["type"], req["temporality"], req["is_monotonic"]) == ("sum", counter_temporality, True)
    assert (req["unit"], req["description"]) == ("1", "reqs")
    assert req["points"] == [{"attributes": {"route": "/a"}, "value": 3}]
    assert by_name["inflight"]["is_monotonic"] is False and by_name["inflight"]["points"][0]["value"] == -2
    assert by_name["temp"]["type"] == "gauge" and by_name["temp"]["temporality"] is None
    assert by_name["temp"]["points"][0]["value"] == 21.5
    hp = receiver.metric_points("latency")[-1]  # shutdown() exports once more after force_flush()
    assert by_name["latency"]["type"] == "histogram"
    assert (hp["count"], hp["sum"], hp["min"], hp["max"]) == (1, 12.5, 12.5, 12.5)
    assert len(hp["bucket_counts"]) == len(hp["explicit_bounds"]) + 1 and sum(hp["bucket_counts"]) == 1


# -- gRPC ----------------------------------------------------------------------


def test_grpc_traces(otlp_receiver: OtlpReceiver) -> None:
    provider = _tracer_provider(GrpcSpanExporter(endpoint=otlp_receiver.grpc_endpoint, headers=HEADERS))
    try:
        _emit_span(provider)
        _check_spans(otlp_receiver)
    finally:
        provider.shutdown()
    assert otlp_receiver.last_headers("traces")["api-key"] == "s3cret"
    assert {r.transport for r in otlp_receiver.requests()} == {"grpc"}


def test_grpc_logs(otlp_receiver: OtlpReceiver) -> None:
    _emit_log(GrpcLogExporter(endpoint=otlp_receiver.grpc_endpoint, headers=HEADERS))
    _check_logs(otlp_receiver)
    assert otlp_receiver.last_headers("logs")["api-key"] == "s3cret"


def test_grpc_metrics(otlp_receiver: OtlpReceiver) -> None:
    exporter = GrpcMetricExporter(
        endpoint=otlp_receiver.grpc_endpoint, preferred_temporality={Counter: AggregationTemporality.DELTA}
    )
    _emit_metrics(exporter)
    _check_metrics(otlp_receiver, counter_temporality="delta")
    assert otlp_receiver.metrics_requests and not otlp_receiver.trace_requests


# -- HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate])
def test_http_traces(otlp_receiver: OtlpReceiver, compression: Compression) -> None:
    exporter = HttpSpanExporter(
        endpoint=f"{otlp_receiver.http_endpoint}/v1/traces", headers=HEADERS, compression=compression
    )
    provider = _tracer_provider(exporter)
    try:
        _emit_span(provider)
        _check_spans(otlp_receiver)
    finally:
        provider.shutdown()
    headers = otlp_receiver.last_headers("traces")
    assert headers["api-key"] == "s3cret" and headers["content-type"] == "application/x-protobuf"
    assert headers.get("content-encoding", "none") == compression.value


def test_http_logs(otlp_receiver: OtlpReceiver) -> None:
    _emit_log(HttpLogExporter(endpoint=f"{otlp_receiver.http_endpoint}/v1/logs", headers=HEADERS))
    _check_logs(otlp_receiver)
    assert otlp_receiver.headers("logs")[0]["api-key"] == "s3cret"


def test_http_metrics(otlp_receiver: OtlpReceiver) -> None:
    _emit_metrics(HttpMetricExporter(endpoint=f"{otlp_receiver.http_endpoint}/v1/metrics", headers=HEADERS))
    _check_metrics(otlp_receiver)
    assert otlp_receiver.last_headers()["api-key"] == "s3cret"


# -- faults, helpers -----------------------------------------------------------


@pytest.fixture
def finished_spans() -> Iterator[list[ReadableSpan]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("s"):
        pass
    yield list(memory.get_finished_spans())
    provider.shutdown()


def test_grpc_fail_with(otlp_receiver: OtlpReceiver, finished_spans: list[ReadableSpan]) -> None:
    # PERMISSION_DENIED is not retryable, so the exporter gives up at once.
    otlp_receiver.fail_with = grpc.StatusCode.PERMISSION_DENIED
    exporter = GrpcSpanExporter(endpoint=otlp_receiver.grpc_endpoint)
    assert exporter.export(finished_spans) is SpanExportResult.FAILURE
    assert len(otlp_receiver.rejected) == 1 and otlp_receiver.spans() == []
    otlp_receiver.fail_with = None
    assert exporter.export(finished_spans) is SpanExportResult.SUCCESS
    assert [s["name"] for s in otlp_receiver.spans()] == ["s"]
    exporter.shutdown()


def test_http_status_override(otlp_receiver: OtlpReceiver, finished_spans: list[ReadableSpan]) -> None:
    otlp_receiver.http_status = 400  # non-retryable
    exporter = HttpSpanExporter(endpoint=f"{otlp_receiver.http_endpoint}/v1/traces")
    assert exporter.export(finished_spans) is SpanExportResult.FAILURE
    assert [r.transport for r in otlp_receiver.rejected] == ["http"] and otlp_receiver.received == []
    otlp_receiver.clear()
    otlp_receiver.http_status = None
    assert exporter.export(finished_spans) is SpanExportResult.SUCCESS
    assert len(otlp_receiver.spans()) == 1 and otlp_receiver.rejected == []
    exporter.shutdown()


def test_wait_for_timeout_reports_summary(otlp_receiver: OtlpReceiver) -> None:
    with pytest.raises(AssertionError, match=r"received=0 rejected=0 spans=\[\]"):
        otlp_receiver.wait_for(lambda r: r.spans(), timeout=0.05)


def test_any_value_conversion() -> None:
    value = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="s", value=AnyValue(string_value="x")),
                KeyValue(key="b", value=AnyValue(bytes_value=b"\x00\x01")),
                KeyValue(key="arr", value=AnyValue(array_value=ArrayValue(values=[
                    AnyValue(int_value=1), AnyValue(double_value=1.5), AnyValue(bool_value=False), AnyValue(),
                ]))),
            ]
        )
    )
    expected: dict[str, Any] = {"s": "x", "b": b"\x00\x01", "arr": [1, 1.5, False, None]}
    assert any_value(value) == expected


def test_context_manager_and_unknown_path() -> None:
    import urllib.error
    import urllib.request

    with OtlpReceiver() as receiver:
        req = urllib.request.Request(f"{receiver.http_endpoint}/v1/nope", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 404
        err.value.close()  # HTTPError owns the response socket
    receiver.stop()  # idempotent
