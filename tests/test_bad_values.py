"""Bad values never break export: lone surrogates, absurdly deep metadata, metadata with 10,000 keys.

Every test runs through the real pipeline into the real OTLP receiver (``otlp_receiver.py``):
what is asserted is what a collector received, what was logged and what was counted in
``avalo_otel_invalid_input_total``.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from opentelemetry import _logs, trace

import avalo_otel as ao
from avalo_otel import Attr, _metadata
from avalo_otel.privacy import Pseudonymizer, Redactor
from avalo_otel.privacy.values import MAX_DEPTH, repair_surrogates
from console_json import json_objects
from otlp_receiver import OtlpReceiver
from test_store_export import Backend, backend, firestore_project, wait_for  # noqa: F401 - fixtures

NO_TIMER = 60_000  # metrics are exported by force_flush only
PREFIX = Attr.METADATA_PREFIX


@pytest.fixture
def otlp(otlp_receiver: OtlpReceiver, configured: Any) -> Iterator[tuple[Any, OtlpReceiver]]:
    handle = configured(otlp_endpoint=otlp_receiver.grpc_endpoint, otlp_protocol="grpc", metrics_exporters="otlp",
                        metric_export_interval_ms=NO_TIMER)
    yield handle, otlp_receiver


def _flush(handle: Any, receiver: OtlpReceiver, spans: int = 0, logs: int = 0) -> None:
    assert handle.force_flush(5.0)
    receiver.wait_for(lambda r: len(r.spans()) >= spans and len(r.log_records()) >= logs, timeout=5)


def _invalid(receiver: OtlpReceiver, reason: str) -> float:
    """The latest cumulative value of avalo_otel_invalid_input_total{reason}."""
    points = [p for p in receiver.metric_points("avalo_otel_invalid_input_total") if p["attributes"].get("reason") == reason]
    return points[-1]["value"] if points else 0


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    node["leaf"] = "bottom"
    return root


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# -- lone surrogates --------------------------------------------------------------------------------
def test_lone_surrogates_are_repaired_in_every_signal_and_counted(otlp, caplog):
    handle, receiver = otlp
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        ao.log_telemetry("chat", "chat.send", metadata={"tag\udfff": "bad \ud800 text", "emoji": "\ud83d\ude00"})
    with ao.time_operation("chat", "chat.send"):
        trace.get_current_span().set_attribute("chat.kind", "half \udc00 pair")
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "te\udcffxt"})
    _flush(handle, receiver, spans=1, logs=4)

    # The OTLP encoder logged nothing (before: one full traceback per attribute, and the attribute lost).
    assert _errors(caplog) == [], [r.getMessage() for r in _errors(caplog)]
    events = [r["attributes"] for r in receiver.log_records() if f"{PREFIX}emoji" in r["attributes"]]
    assert len(events) == 3
    for attrs in events:
        assert attrs[f"{PREFIX}tag\ufffd"] == "bad \ufffd text"
        assert attrs[f"{PREFIX}emoji"] == "\U0001F600"  # a surrogate *pair* is joined, not replaced
    span = next(s for s in receiver.spans() if s["name"] == "chat.send")
    assert span["attributes"]["chat.kind"] == "half \ufffd pair"
    labels = [p["attributes"] for p in receiver.metric_points("chat_messages_sent_total")]
    assert {"domain": "chat", "messageType": "te\ufffdxt"} in labels
    # Each repaired occurrence is counted (3 keys + 3 values in the events, the span, the label)
    # and said once.
    assert _invalid(receiver, "invalid_unicode") >= 8
    said = [r for r in caplog.records if "surrogates" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING


# -- deep nesting -----------------------------------------------------------------------------------
def test_metadata_1000_levels_deep_is_cut_and_never_raises(otlp, caplog):
    handle, receiver = otlp
    caplog.set_level(logging.WARNING)
    ao.log_telemetry("chat", "chat.send", metadata={"tree": _deep(1000), "list": [_deep(1000)]})
    _flush(handle, receiver, logs=1)

    attrs = receiver.log_records()[-1]["attributes"]
    # Four levels become dotted keys, the rest one JSON string cut at the depth limit.
    flat = [k for k in attrs if k.startswith(f"{PREFIX}tree.")]
    assert flat == [f"{PREFIX}tree.a.a.a.a"]
    assert attrs[flat[0]].count("{") == _metadata.JSON_DEPTH and _metadata.TOO_DEEP in attrs[flat[0]]
    assert _metadata.TOO_DEEP in attrs[f"{PREFIX}list"]
    assert attrs[Attr.OPERATION] == "chat.send"
    assert _invalid(receiver, "metadata_too_deep") == 2
    assert _errors(caplog) == []


def test_time_operation_with_deep_metadata_keeps_the_result_ends_and_detaches_the_span(otlp):
    handle, receiver = otlp
    assert ao.time_operation("chat", "chat.send", lambda: 42, metadata={"tree": _deep(1000)}) == 42

    @ao.time_operation("wallet", "wallet.spend", metadata={"list": [_deep(1000)]})
    def spend() -> str:
        return "spent"

    assert spend() == "spent"
    with pytest.raises(KeyError):  # the caller's exception, unchanged
        with ao.time_operation("chat", "chat.send", metadata={"tree": _deep(1000)}):
            raise KeyError("boom")
    assert not trace.get_current_span().get_span_context().is_valid  # nothing left attached
    with ao.time_operation("chat", "chat.read"):
        pass
    _flush(handle, receiver, spans=4, logs=4)

    spans = receiver.spans()
    assert sorted(s["name"] for s in spans) == ["chat.read", "chat.send", "chat.send", "wallet.spend"]
    # Every span ended (it arrived), and none became the parent of the next one on the thread.
    assert all(s["parent_span_id"] == "" for s in spans)
    assert len({s["trace_id"] for s in spans}) == 4


def test_a_metadata_object_that_cannot_be_read_is_counted_not_raised(otlp):
    handle, receiver = otlp

    class Broken(dict):
        def items(self) -> Any:
            raise RuntimeError("cannot iterate")

    assert ao.time_operation("chat", "chat.send", lambda: "kept", metadata={"inner": Broken(a=1)}) == "kept"
    ao.log_telemetry("chat", "chat.send", metadata=Broken(a=1))
    assert not trace.get_current_span().get_span_context().is_valid
    _flush(handle, receiver, spans=1, logs=2)
    assert _invalid(receiver, "unreadable_metadata") == 2
    assert all(r["attributes"][Attr.OPERATION] == "chat.send" for r in receiver.log_records())


def test_log_bodies_nested_past_the_redactor_depth_are_replaced_not_raised(otlp, caplog):
    """Third-party log records go through the redacting log processor: a body nested ~1000 levels
    is looked into ``MAX_DEPTH`` levels, the rest replaced (fail closed) and counted."""
    handle, receiver = otlp
    caplog.set_level(logging.WARNING)
    _logs.get_logger("app.module").emit(body=_deep(1000), severity_text="INFO")
    _flush(handle, receiver, logs=1)

    body = next(r["body"] for r in receiver.log_records() if r["scope"] == "app.module")
    depth = 0
    while isinstance(body, dict) and "a" in body:
        body, depth = body["a"], depth + 1
    assert body == "[REDACTED:unscannable]" and depth == MAX_DEPTH
    assert _invalid(receiver, "nesting_too_deep") == 1
    assert _errors(caplog) == []


# -- many keys --------------------------------------------------------------------------------------
def test_metadata_with_10k_keys_is_capped_with_one_warning_and_a_count(otlp, caplog):
    handle, receiver = otlp
    caplog.set_level(logging.WARNING)
    metadata = {f"key{i}": i for i in range(10_000)}
    calls = 20
    with warnings.catch_warnings(record=True) as sdk_warnings:
        warnings.simplefilter("always")
        started = time.perf_counter()
        for _ in range(calls):
            ao.log_telemetry("chat", "chat.send", metadata=metadata, actor_id="user-1", latency_ms=5)
        per_call_s = (time.perf_counter() - started) / calls
    _flush(handle, receiver, logs=calls)

    cap = _metadata.key_cap(None)
    for record in receiver.log_records():
        attrs = record["attributes"]
        kept = [k for k in attrs if k.startswith(PREFIX)]
        assert kept == [f"{PREFIX}key{i}" for i in range(cap)]  # the first ones, in order
        assert attrs[Attr.OPERATION] == "chat.send" and attrs[Attr.LATENCY_MS] == 5  # the event's own fields survive
        assert attrs[Attr.ACTOR_ID].startswith("p_")
    assert _invalid(receiver, "too_many_metadata_keys") == calls
    lines = [r for r in caplog.records if r.name.startswith(("avalo_otel", "opentelemetry"))]
    assert [r.getMessage() for r in lines] == [lines[0].getMessage()] and "more than 119 keys" in lines[0].getMessage()
    assert not [w for w in sdk_warnings if "dropped" in str(w.message)]  # no SDK eviction warnings
    assert per_call_s < 0.05  # sanity only (was ~330 ms); the cost is measured in benchmarks/bench_api.py


def test_the_key_cap_follows_the_attribute_count_limit(otlp_receiver, configured, caplog):
    caplog.set_level(logging.WARNING)
    handle = configured(otlp_endpoint=otlp_receiver.grpc_endpoint, otlp_protocol="grpc", attribute_count_limit=20)
    ao.log_telemetry("chat", "chat.send", metadata={f"k{i}": i for i in range(50)}, actor_id="u", session_id="s",
                     latency_ms=1, error_code="TIMEOUT", success=False, actor_type="user")
    _flush(handle, otlp_receiver, logs=1)
    attrs = otlp_receiver.log_records()[-1]["attributes"]
    # The first keys, as given (the SDK's eviction would keep the last ones, warning for each).
    assert [k for k in attrs if k.startswith(PREFIX)] == [f"{PREFIX}k{i}" for i in range(20 - _metadata.EVENT_FIELDS)]
    assert not [r for r in caplog.records if r.name == "opentelemetry.attributes"]
    for field in (Attr.DOMAIN, Attr.OPERATION, Attr.SUCCESS, Attr.ERROR_TYPE, Attr.ERROR_CLASS, Attr.LATENCY_MS,
                  Attr.ACTOR_TYPE, Attr.ACTOR_ID, Attr.SESSION_ID):
        assert field in attrs, field


# -- the other exporters: console, both stores ------------------------------------------------------


def test_surrogates_reach_both_stores_repaired(backend: Backend, caplog):
    """SQLite and Firestore cannot store a lone surrogate either (UTF-8 / protobuf)."""
    caplog.set_level(logging.WARNING)
    handle = backend.configure()
    ao.log_telemetry("chat", "chat.send", metadata={"tag\udfff": "bad \ud800 text"})
    with ao.time_operation("wallet", "wallet.spend"):
        trace.get_current_span().set_attribute("wallet.kind", "half \udc00 pair")
    assert handle.force_flush(20.0)
    [event] = wait_for(lambda: backend.store.query_events(domain="chat"), what="the event")
    assert event["metadata"] == {"tag\ufffd": "bad \ufffd text"}
    [span] = wait_for(lambda: backend.store.query_traces(operation="wallet.spend"), what="the span")
    assert "half \ufffd pair" in repr(span)
    assert _errors(caplog) == []


def test_surrogates_reach_the_console_repaired(configured, capsys, caplog):
    caplog.set_level(logging.WARNING)
    handle = configured(traces_exporters="console", logs_exporters="console", console_format="json")
    ao.log_telemetry("chat", "chat.send", metadata={"tag\udfff": "bad \ud800 text"})
    assert handle.force_flush(5.0)
    printed = json_objects(capsys.readouterr().out)
    [event] = [o for o in printed if "attributes" in o and f"{PREFIX}tag\ufffd" in (o["attributes"] or {})]
    assert event["attributes"][f"{PREFIX}tag\ufffd"] == "bad \ufffd text"
    assert _errors(caplog) == []


# -- property: any text, surrogates included, arrives over OTLP encodable and as redacted locally ---


_SURROGATES = st.sampled_from([chr(c) for c in range(0xD800, 0xE000, 61)])
# Not st.text(): it leaves surrogates out even of an alphabet made of them.
_ANY_TEXT = st.lists(st.one_of(st.characters(), _SURROGATES), max_size=40).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=_ANY_TEXT.filter(lambda k: k.strip() and k != "probe"), value=_ANY_TEXT)
def test_any_text_arrives_encodable_and_redacted(otlp, key, value):
    handle, receiver = otlp
    receiver.clear()
    probe = f"p{abs(hash((key, value)))}"
    ao.log_telemetry("chat", "chat.send", metadata={"probe": probe, key: value})
    _flush(handle, receiver, logs=1)
    [attrs] = [r["attributes"] for r in receiver.log_records() if r["attributes"].get(f"{PREFIX}probe") == probe]
    runtime = handle.runtime
    expected = runtime.redactor.redact_attributes({f"{PREFIX}{repair_surrogates(key)}": repair_surrogates(value)})
    (want_key, want_value), = (expected or {f"{PREFIX}{repair_surrogates(key)}": repair_surrogates(value)}).items()
    assert attrs[want_key] == want_value
    for text in attrs:
        text.encode("utf-8")  # every key and value is valid UTF-8 (else the encoder had dropped it)


def test_a_log_record_the_redactor_cannot_read_is_replaced_not_raised_nor_leaked(otlp, caplog):
    handle, receiver = otlp
    caplog.set_level(logging.WARNING)

    class Hostile(dict):
        def __iter__(self) -> Any:
            raise RuntimeError("no")

    _logs.get_logger("app.module").emit(body=Hostile(email="jane@example.com"), attributes={"k": "v"})
    _flush(handle, receiver, logs=1)
    [record] = [r for r in receiver.log_records() if r["scope"] == "app.module"]
    assert record["body"] == "[REDACTED:unscannable]" and record["attributes"] == {}
    assert _invalid(receiver, "unreadable_log_record") == 1


_KEYS = st.one_of(_ANY_TEXT, st.sampled_from(["user_id", "url.query", "http.route", "db.statement", "service.version",
                                               "email", "note", "message"]))


def _encodable(value: Any) -> bool:
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, (list, tuple)):
        all(_encodable(v) for v in value)
    elif isinstance(value, dict):
        all(_encodable(k) and _encodable(v) for k, v in value.items())
    return True


_REDACTOR = Redactor(pseudonymize=Pseudonymizer("k"))


@settings(max_examples=200, deadline=None)
@given(attrs=st.dictionaries(_KEYS, st.one_of(_ANY_TEXT, st.lists(_ANY_TEXT, max_size=3)), max_size=6))
def test_whatever_the_key_rule_nothing_unencodable_leaves_the_redactor(attrs):
    """Every key rule (pseudonymised, query, route, SQL, version, denied, scanned) repairs first."""
    out = _REDACTOR.redact_attributes(attrs)
    assert _encodable(out if out is not None else attrs)
    for key, value in attrs.items():
        assert _encodable(_REDACTOR.redact_value(value, key))
        assert _encodable(_REDACTOR.redact_text(key))


def test_start_trace_with_too_many_attributes_keeps_the_first_and_the_operation(otlp, caplog):
    handle, receiver = otlp
    caplog.set_level(logging.WARNING)
    ao.end_trace(ao.start_trace("chat.send", attributes={f"k{i}": i for i in range(300)}), success=False,
                 error_code="TIMEOUT")
    _flush(handle, receiver, spans=1)
    [span] = receiver.spans()
    cap = _metadata.key_cap(None)
    assert [k for k in span["attributes"] if k.startswith("k")] == [f"k{i}" for i in range(cap)]
    assert span["attributes"][Attr.OPERATION] == "chat.send" and span["attributes"][Attr.ERROR_TYPE] == "TIMEOUT"
    assert not [r for r in caplog.records if r.name == "opentelemetry.attributes"]
    assert _invalid(receiver, "too_many_attributes") == 1
