"""Document schema: real SDK log records, spans and metrics → the original documents."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from enum import Enum
from typing import Any, Iterator

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from avalo_otel.conventions import Attr, Domain
from avalo_otel.store import (
    DAY_MS, MAX_DOCUMENT_BYTES, TRUNCATION_MARKER, StoreError, document_size, event_document, json_safe,
    metric_documents, span_document, truncate_document,
)

SERVICE = "avalo-api"


@pytest.fixture
def tracing() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def logs() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def avalo_attributes(**extra: Any) -> dict[str, Any]:
    # What the runtime emits for one log_telemetry call.
    attrs: dict[str, Any] = {
        "avalo.metadata.requestedAmount": 100, "avalo.metadata.wallet.currency": "EUR",
        "avalo.metadata.wallet.limits.daily": 500, Attr.DOMAIN: "wallet", Attr.OPERATION: "wallet.spend",
        Attr.SUCCESS: False, Attr.ERROR_TYPE: "INSUFFICIENT_FUNDS", Attr.ERROR_CLASS: "client",
        Attr.LATENCY_MS: 180.5, Attr.ACTOR_TYPE: "user", Attr.ACTOR_ID: "p-abc", Attr.SESSION_ID: "s-1",
    }
    attrs.update(extra)
    return attrs


# -- events ------------------------------------------------------------------------------------
def test_avalo_event(logs: Any, tracing: Any) -> None:
    provider, exporter = logs
    tracer = tracing[0].get_tracer("t")
    with tracer.start_as_current_span("wallet.spend") as span:
        provider.get_logger("avalo_otel").emit(
            timestamp=1_700_000_000_123_456_789, severity_number=SeverityNumber.ERROR, severity_text="ERROR",
            body="wallet.spend", attributes=avalo_attributes())
    [record] = exporter.get_finished_logs()
    doc = event_document(record, SERVICE)
    ctx = span.get_span_context()
    assert doc == {
        "id": doc["id"], "ts": 1_700_000_000_123, "domain": "wallet", "level": "ERROR", "operation": "wallet.spend",
        "success": False, "actorType": "user", "actorId": "p-abc", "sessionId": "s-1",
        "errorCode": "INSUFFICIENT_FUNDS", "latencyMs": 180.5,
        "metadata": {"requestedAmount": 100, "wallet": {"currency": "EUR", "limits": {"daily": 500}},
                     "avalo.error.class": "client"},
        "traceId": f"{ctx.trace_id:032x}", "spanId": f"{ctx.span_id:016x}", "service": SERVICE,
        "expireAt": 1_700_000_000_123 + 90 * DAY_MS,
    }
    assert len(doc["id"]) == 32 and int(doc["id"], 16) >= 0
    json.dumps(doc, allow_nan=False)


def test_event_ids_are_deterministic(logs: Any) -> None:
    provider, exporter = logs
    logger = provider.get_logger("avalo_otel")
    for amount in (1, 1, 2):
        logger.emit(timestamp=1_700_000_000_000_000_000, severity_number=SeverityNumber.INFO, body="chat.send",
                    attributes=avalo_attributes(**{"avalo.metadata.requestedAmount": amount}))
    first, same, other = exporter.get_finished_logs()
    assert event_document(first, SERVICE) == event_document(first, SERVICE)  # a retried export
    assert event_document(first, SERVICE)["id"] == event_document(same, SERVICE)["id"]
    assert event_document(first, SERVICE)["id"] != event_document(other, SERVICE)["id"]
    assert event_document(first, SERVICE)["id"] != event_document(first, "another-service")["id"]


def test_attribute_order_does_not_change_the_document(logs: Any) -> None:
    provider, exporter = logs
    attrs = avalo_attributes()
    for items in (list(attrs.items()), list(reversed(attrs.items()))):
        provider.get_logger("x").emit(timestamp=1, body="wallet.spend", attributes=dict(items))
    a, b = exporter.get_finished_logs()
    assert event_document(a, SERVICE) == event_document(b, SERVICE)


def test_stdlib_log_record(logs: Any) -> None:
    provider, exporter = logs
    std = logging.getLogger("avalo.test.payments")
    std.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    std.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            std.exception("payment worker failed for %s", "order-1")
        std.warning("slow")
    finally:
        std.removeHandler(handler)
    failed, slow = (event_document(r, SERVICE) for r in exporter.get_finished_logs())
    assert failed["domain"] == Domain.SYSTEM.value
    assert failed["operation"] == "avalo.test.payments"
    assert failed["level"] == "ERROR" and failed["success"] is False
    assert failed["message"] == "payment worker failed for order-1"
    assert failed["metadata"]["exception.type"] == "ValueError"
    assert "code.function.name" in failed["metadata"] or "code.function" in failed["metadata"]
    assert failed["errorCode"] is None and failed["actorId"] is None
    assert (slow["level"], slow["success"], slow["message"]) == ("WARN", True, "slow")
    assert failed["id"] != slow["id"]


@pytest.mark.parametrize("number, text, level", [
    (SeverityNumber.FATAL, None, "CRITICAL"),
    (SeverityNumber.FATAL4, None, "CRITICAL"),
    (SeverityNumber.ERROR2, None, "ERROR"),
    (SeverityNumber.WARN, None, "WARN"),
    (SeverityNumber.INFO3, None, "INFO"),
    (SeverityNumber.DEBUG, None, "DEBUG"),
    (SeverityNumber.TRACE, None, "DEBUG"),
    (None, None, "INFO"),
    (SeverityNumber.INFO, "WARNING", "WARN"),
    (None, "CRITICAL", "CRITICAL"),
    (SeverityNumber.ERROR, "nonsense", "ERROR"),
])
def test_levels(logs: Any, number: Any, text: Any, level: str) -> None:
    provider, exporter = logs
    provider.get_logger("x").emit(timestamp=1, severity_number=number, severity_text=text, body="hello")
    [record] = exporter.get_finished_logs()
    doc = event_document(record, SERVICE)
    assert doc["level"] == level
    assert doc["success"] is (level not in ("ERROR", "CRITICAL"))


def test_observed_timestamp_when_no_timestamp(logs: Any) -> None:
    provider, exporter = logs
    provider.get_logger("x").emit(observed_timestamp=5_000_000_000, body={"structured": b"\x01"})
    [record] = exporter.get_finished_logs()
    doc = event_document(record, SERVICE)
    assert doc["ts"] == 5000 and doc["traceId"] is None and doc["spanId"] is None
    assert doc["message"] == {"structured": "AQ=="}


def test_huge_metadata_is_truncated(logs: Any) -> None:
    provider, exporter = logs
    attrs = avalo_attributes(**{"avalo.metadata.dump": "x" * 3_000_000, "avalo.metadata.small": "kept"})
    provider.get_logger("x").emit(timestamp=1_000_000, body="wallet.spend", attributes=attrs)
    [record] = exporter.get_finished_logs()
    doc = event_document(record, SERVICE)
    assert document_size(doc) <= MAX_DOCUMENT_BYTES
    assert doc["truncated"] is True
    assert doc["metadata"]["dump"].endswith(TRUNCATION_MARKER) and len(doc["metadata"]["dump"]) < 10_000
    assert doc["metadata"]["small"] == "kept"
    assert (doc["domain"], doc["operation"], doc["errorCode"], doc["ts"]) == ("wallet", "wallet.spend",
                                                                            "INSUFFICIENT_FUNDS", 1)


# -- truncation --------------------------------------------------------------------------------
def test_small_documents_are_returned_as_they_are() -> None:
    doc = {"id": "a", "metadata": {"k": "v" * 100}}
    assert truncate_document(doc) is doc


def test_truncation_drops_the_largest_keys_when_clipping_is_not_enough() -> None:
    metadata = {f"k{i}": "v" * 200 for i in range(5000)}  # many short strings: clipping alone won't do
    doc: dict[str, Any] = {"id": "a", "ts": 1, "domain": "chat", "metadata": metadata, "events": [{"n": "e" * 100}] * 2000}
    out = truncate_document(doc, max_bytes=50_000)
    assert document_size(out) <= 50_000 and out["truncated"] is True
    assert (out["id"], out["ts"], out["domain"]) == ("a", 1, "chat")
    assert "truncated" not in doc and len(doc["metadata"]) == 5000  # the input is untouched


def test_truncation_never_touches_indexed_fields() -> None:
    with pytest.raises(StoreError, match="over 1000 bytes"):
        truncate_document({"id": "a", "operation": "o" * 5000, "metadata": {"x": "y"}}, max_bytes=1000)


# -- json_safe ---------------------------------------------------------------------------------
class Colour(Enum):
    RED = "red"


class Secret:
    def __str__(self) -> str:
        return "alice@example.com"


def test_json_safe() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    value = {
        "bytes": b"\x00\xff", "set": {3, 1, 2}, "frozen": frozenset({"b", "a"}), "nan": math.nan, "inf": math.inf,
        "ninf": -math.inf, "obj": Secret(), "tuple": (1, (2, 3)), "enum": Colour.RED, "domain": Domain.CHAT,
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "huge": 2**70, 7: "int key",
        "nested": {"deep": [{"x": bytearray(b"hi")}]}, "none": None, "bool": True, "float": 1.5,
    }
    safe = json_safe(value)
    assert safe == {
        "bytes": "AP8=", "set": [1, 2, 3], "frozen": ["a", "b"], "nan": "nan", "inf": "inf", "ninf": "-inf",
        "obj": "<Secret>", "tuple": [1, [2, 3]], "enum": "red", "domain": "chat",
        "when": "2024-01-02T03:04:05+00:00", "huge": str(2**70), "7": "int key",
        "nested": {"deep": [{"x": "aGk="}]}, "none": None, "bool": True, "float": 1.5,
    }
    assert type(safe["domain"]) is str
    json.dumps(safe, allow_nan=False)
    json.dumps(json_safe(cyclic), allow_nan=False)  # a cycle ends in a placeholder, not a RecursionError


# -- spans -------------------------------------------------------------------------------------
def test_span_documents(tracing: Any) -> None:
    provider, exporter = tracing
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("POST /wallet", kind=SpanKind.SERVER) as root:
        child = tracer.start_span("wallet.spend", attributes={Attr.OPERATION: "wallet.spend", "amount": 10,
                                                              "tags": ["a", "b"]})
        child.add_event("balance.checked", {"ok": False})
        child.set_attribute(Attr.SUCCESS, False)
        child.set_attribute(Attr.ERROR_TYPE, "INSUFFICIENT_FUNDS")
        child.set_status(Status(StatusCode.ERROR, "INSUFFICIENT_FUNDS"))
        child.end()
    spans = {s.name: span_document(s, SERVICE) for s in exporter.get_finished_spans()}
    parent, doc = spans["POST /wallet"], spans["wallet.spend"]
    ctx = root.get_span_context()

    assert doc["id"] == f"{doc['traceId']}-{doc['spanId']}"
    assert doc["traceId"] == f"{ctx.trace_id:032x}" and doc["parentSpanId"] == f"{ctx.span_id:016x}"
    assert (doc["operation"], doc["name"], doc["domain"], doc["kind"]) == ("wallet.spend", "wallet.spend",
                                                                         "wallet", "internal")
    assert (doc["success"], doc["errorCode"], doc["status"], doc["statusMessage"]) == (
        False, "INSUFFICIENT_FUNDS", "error", "INSUFFICIENT_FUNDS")
    assert doc["attributes"]["amount"] == 10 and doc["attributes"]["tags"] == ["a", "b"]
    assert doc["events"] == [{"name": "balance.checked", "timestamp": doc["events"][0]["timestamp"],
                              "attributes": {"ok": False}}]
    assert doc["startTime"] <= doc["events"][0]["timestamp"] <= doc["endTime"]
    assert doc["durationMs"] >= 0 and doc["expireAt"] == doc["startTime"] + 30 * DAY_MS
    assert doc["service"] == SERVICE

    assert parent["parentSpanId"] is None and parent["kind"] == "server"
    assert (parent["operation"], parent["domain"], parent["success"], parent["status"]) == (
        "POST /wallet", "system", True, "unset")
    assert span_document(exporter.get_finished_spans()[0], SERVICE) == spans["wallet.spend"]
    json.dumps(list(spans.values()), allow_nan=False)


def test_huge_span_is_truncated(tracing: Any) -> None:
    provider, exporter = tracing
    s = provider.get_tracer("t").start_span("ai.request", attributes={"prompt.size": "p" * 2_000_000})
    s.set_status(Status(StatusCode.ERROR, "e" * 2_000_000))  # e.g. str() of a huge exception
    s.end()
    [doc] = [span_document(x, SERVICE) for x in exporter.get_finished_spans()]
    assert document_size(doc) <= MAX_DOCUMENT_BYTES and doc["truncated"] is True
    assert doc["statusMessage"].endswith(TRUNCATION_MARKER) and doc["operation"] == "ai.request"


def test_span_with_explicit_domain(tracing: Any) -> None:
    provider, exporter = tracing
    parent = provider.get_tracer("t").start_span("p")
    provider.get_tracer("t").start_span("work", context=set_span_in_context(parent),
                                        attributes={Attr.DOMAIN: "safety", "blob": b"\x00"}).end()
    [doc] = [span_document(s, SERVICE) for s in exporter.get_finished_spans()]
    assert doc["domain"] == "safety" and doc["operation"] == "work" and doc["attributes"]["blob"] == "AA=="


# -- metrics -----------------------------------------------------------------------------------
def collect(reader: InMemoryMetricReader) -> MetricsData:
    data = reader.get_metrics_data()
    assert data is not None
    return data


def test_metric_documents() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("avalo_otel")
    meter.create_counter("avalo_operations_total").add(3, {"domain": "chat", "outcome": "success"})
    meter.create_counter("avalo_operations_total").add(1, {"domain": "wallet", "outcome": "server_error"})
    meter.create_up_down_counter("active_chats").add(-2, {"region": "eu"})
    meter.create_gauge("active_users").set(42, {"region": "eu"})
    latency = meter.create_histogram("api_latency_ms", unit="ms",
                                     explicit_bucket_boundaries_advisory=[10.0, 100.0])
    for value in (5, 50, 500):
        latency.record(value, {"route": "/x"})
    docs = metric_documents(collect(reader), SERVICE)
    provider.shutdown()

    by = {(d["name"], json.dumps(d["labels"], sort_keys=True)): d for d in docs}
    assert len(by) == len(docs) == 5
    ops = by[("avalo_operations_total", '{"domain": "chat", "outcome": "success"}')]
    assert (ops["type"], ops["value"], ops["temporality"], ops["service"]) == ("counter", 3, "cumulative", SERVICE)
    assert ops["startTime"] <= ops["timestamp"] and ops["expireAt"] == ops["timestamp"] + 30 * DAY_MS
    assert by[("active_chats", '{"region": "eu"}')]["type"] == "updowncounter"
    assert by[("active_chats", '{"region": "eu"}')]["value"] == -2
    gauge = by[("active_users", '{"region": "eu"}')]
    assert (gauge["type"], gauge["value"], gauge["temporality"]) == ("gauge", 42, None)
    hist = by[("api_latency_ms", '{"route": "/x"}')]
    assert (hist["type"], hist["count"], hist["sum"], hist["min"], hist["max"], hist["value"], hist["unit"]) == (
        "histogram", 3, 555, 5, 500, None, "ms")
    assert hist["buckets"] == {"bounds": [10.0, 100.0], "counts": [1, 1, 1]}
    assert len({d["id"] for d in docs}) == 5 and all(len(d["id"]) == 32 for d in docs)
    json.dumps(docs, allow_nan=False)


def test_metric_ids_are_deterministic_and_delta_is_named() -> None:
    reader = InMemoryMetricReader(preferred_temporality={Counter: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("m").create_counter("c")
    counter.add(1, {"b": 1, "a": 2})
    data = collect(reader)
    first, again = metric_documents(data, SERVICE), metric_documents(data, SERVICE)
    counter.add(1, {"a": 2, "b": 1})
    later = metric_documents(collect(reader), SERVICE)
    provider.shutdown()
    assert first == again and first[0]["temporality"] == "delta"
    assert later[0]["id"] != first[0]["id"]  # a new interval is a new point


def test_exponential_histogram() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=[
        View(instrument_name="exp", aggregation=ExponentialBucketHistogramAggregation())])
    meter = provider.get_meter("m")
    for value in (1, 2, 4, 1000):
        meter.create_histogram("exp").record(value)
    [doc] = metric_documents(collect(reader), SERVICE)
    provider.shutdown()
    assert (doc["type"], doc["count"], doc["min"], doc["max"]) == ("histogram", 4, 1, 1000)
    assert set(doc["buckets"]) == {"scale", "zeroCount", "positive", "negative"}
    assert sum(doc["buckets"]["positive"]["counts"]) == 4
    json.dumps(doc, allow_nan=False)


def test_events_with_one_key_set_and_odd_values_take_the_general_way(logs: Any) -> None:
    # Documents are built from a plan cached per attribute key set; a value that is not a JSON
    # scalar (here NaN, then a 70-bit int) in a key set seen before must still be converted.
    provider, exporter = logs
    logger = provider.get_logger("x")
    base = {Attr.DOMAIN: "chat", Attr.OPERATION: "chat.send", "avalo.metadata.n": 1.5, "avalo.metadata.s": "a"}
    for n in (1.5, float("nan"), 2**70, 2.5):
        logger.emit(timestamp=1, body="chat.send", attributes={**base, "avalo.metadata.n": n})
    docs = [event_document(r, SERVICE) for r in exporter.get_finished_logs()]
    assert [d["metadata"] for d in docs] == [
        {"n": 1.5, "s": "a"}, {"n": "nan", "s": "a"}, {"n": str(2**70), "s": "a"}, {"n": 2.5, "s": "a"}]
    for doc in docs:
        json.dumps(doc, allow_nan=False)
