"""The public API end to end through the real SDK pipeline (in-memory exporters at the end)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import StatusCode

import avalo_otel as ao
from avalo_otel import Attr


def test_log_telemetry_becomes_log_record_and_metrics(captured):
    cap = captured()
    ao.log_telemetry(
        "wallet", "wallet.spend", level="ERROR", actor_type="user", actor_id="user-42",
        session_id="sess-9", success=False, error_code="INSUFFICIENT_FUNDS", latency_ms=180,
        metadata={"requestedAmount": 100, "availableBalance": 50, "nested": {"tier": "gold"}},
    )
    (record,) = cap.logs()
    assert record.body == "wallet.spend"
    assert record.severity_number == SeverityNumber.ERROR and record.severity_text == "ERROR"
    attrs = dict(record.attributes)
    assert attrs[Attr.DOMAIN] == "wallet" and attrs[Attr.OPERATION] == "wallet.spend"
    assert attrs[Attr.SUCCESS] is False and attrs[Attr.ERROR_TYPE] == "INSUFFICIENT_FUNDS"
    assert attrs[Attr.ERROR_CLASS] == "client"
    assert attrs[Attr.LATENCY_MS] == 180
    assert attrs["avalo.metadata.requestedAmount"] == 100
    assert attrs["avalo.metadata.nested.tier"] == "gold"
    # ids leave only pseudonymised, and stably so for one key
    assert attrs[Attr.ACTOR_ID].startswith("p_") and "user-42" not in attrs[Attr.ACTOR_ID]
    assert attrs[Attr.SESSION_ID].startswith("p_") and attrs[Attr.SESSION_ID] != attrs[Attr.ACTOR_ID]
    assert cap.count("avalo_operations_total", domain="wallet", operation="wallet.spend",
                     outcome="client_error", error_code="INSUFFICIENT_FUNDS") == 1
    (hist,) = cap.points("avalo_operation_latency_ms")
    assert hist.count == 1 and hist.sum == 180
    assert 300 in hist.explicit_bounds and 2500 in hist.explicit_bounds


def test_critical_maps_to_fatal_and_server_errors_are_unreliability(captured):
    cap = captured()
    ao.log_error("safety", "safety.panic_process", "TIMEOUT", level="CRITICAL")
    (record,) = cap.logs()
    assert record.severity_number == SeverityNumber.FATAL and record.severity_text == "CRITICAL"
    assert cap.count("avalo_operations_total", outcome="server_error", error_code="TIMEOUT") == 1


def test_log_success_and_pseudonyms_stable_for_one_key(captured):
    cap = captured(pseudonym_key="shared-secret")
    ao.log_success("chat", "chat.send", actor_id="u1", latency_ms=20)
    ao.log_success("chat", "chat.send", actor_id="u1", latency_ms=30)
    first, second = (dict(r.attributes) for r in cap.logs())
    assert first[Attr.ACTOR_ID] == second[Attr.ACTOR_ID]
    assert cap.count("avalo_operations_total", outcome="success") == 2


def test_time_operation_context_manager_makes_correlated_span_event_and_latency(captured):
    cap = captured()
    with ao.time_operation("chat", "chat.send", actor_id="u1") as op:
        trace_id = op.trace_id
    (span,) = cap.spans()
    (record,) = cap.logs()
    assert span.name == "chat.send"
    assert format(span.context.trace_id, "032x") == trace_id
    assert record.trace_id == span.context.trace_id and record.span_id == span.context.span_id
    assert dict(record.attributes)[Attr.SUCCESS] is True
    (hist,) = cap.points("avalo_operation_latency_ms")
    assert hist.count == 1 and hist.sum >= 0


def test_time_operation_exception_is_failure_with_code_and_reraised_unchanged(captured):
    cap = captured()
    boom = ao.AvaloError("INSUFFICIENT_FUNDS", "no money")
    with pytest.raises(ao.AvaloError) as raised:
        ao.time_operation("wallet", "wallet.spend", lambda: (_ for _ in ()).throw(boom))
    assert raised.value is boom
    (span,) = cap.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[Attr.ERROR_TYPE] == "INSUFFICIENT_FUNDS"
    assert any(e.name == "exception" for e in span.events)
    (record,) = cap.logs()
    assert record.severity_text == "ERROR" and dict(record.attributes)[Attr.ERROR_TYPE] == "INSUFFICIENT_FUNDS"
    assert cap.count("avalo_operations_total", outcome="client_error") == 1


@pytest.mark.parametrize("exc, code", [(TimeoutError(), "TIMEOUT"), (ConnectionError(), "UNAVAILABLE"),
                                       (KeyError("x"), "INTERNAL")])
def test_exception_types_map_to_error_codes(captured, exc, code):
    cap = captured()
    with pytest.raises(type(exc)):
        with ao.time_operation("ai", "ai.request"):
            raise exc
    assert cap.count("avalo_operations_total", error_code=code, outcome="server_error") == 1


def test_time_operation_decorator_sync_and_async_and_wrapper(captured):
    cap = captured()

    @ao.time_operation("support", "support.ticket_create")
    def create(x: int) -> int:
        return x * 2

    @ao.time_operation("ai", "ai.request")
    async def ask(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    async def answer() -> str:
        return "ok"

    assert create(21) == 42
    assert asyncio.run(ask(1)) == 2
    assert asyncio.run(ao.time_operation("ai", "ai.response", answer)) == "ok"
    assert ao.time_operation("chat", "chat.read", lambda: 5) == 5
    assert sorted(s.name for s in cap.spans()) == ["ai.request", "ai.response", "chat.read", "support.ticket_create"]
    assert cap.count("avalo_operations_total", outcome="success") == 4


def test_async_with_and_fail_without_exception(captured):
    cap = captured()

    async def main() -> None:
        async with ao.time_operation("wallet", "wallet.payout_request") as op:
            op.fail("PAYMENT_DECLINED")

    asyncio.run(main())
    (span,) = cap.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert cap.count("avalo_operations_total", error_code="PAYMENT_DECLINED", outcome="client_error") == 1


def test_nested_operations_share_the_trace(captured):
    cap = captured()
    with ao.time_operation("safety", "safety.panic_press"):
        with ao.time_operation("safety", "safety.panic_process"):
            pass
    inner, outer = cap.spans()
    assert inner.context.trace_id == outer.context.trace_id
    assert inner.parent.span_id == outer.context.span_id


def test_start_end_trace_and_trace_operation_with_parent(captured):
    cap = captured()
    root = ao.start_trace("wallet.spend")
    seen = []
    result = ao.trace_operation("wallet.refund", lambda ctx: seen.append(ctx) or "done", parent=root)
    ao.end_trace(root, success=False, error_code="TIMEOUT")
    ao.end_trace(root)  # ending twice is harmless
    assert result == "done"
    assert seen[0].trace_id == root.trace_id and len(seen[0].span_id) == 16
    child, parent = cap.spans()
    assert child.parent.span_id == parent.context.span_id
    assert parent.status.status_code is StatusCode.ERROR and parent.attributes[Attr.ERROR_TYPE] == "TIMEOUT"
    assert cap.logs() == []  # trace_operation makes spans, not events


def test_metrics_api_names_and_kinds(captured):
    cap = captured()
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"}, value=2)
    ao.observe_latency("wallet_tx_latency_ms", 180, {"domain": "wallet", "operation": "spend"})
    ao.set_gauge("active_users", 1250, {"region": "eu-central"})
    ao.set_gauge("active_users", 1300, {"region": "eu-central"})
    assert cap.count("chat_messages_sent_total", messageType="text") == 3
    (hist,) = cap.points("wallet_tx_latency_ms")
    assert hist.sum == 180 and tuple(hist.explicit_bounds) == ao.LATENCY_BUCKETS_MS
    assert [p.value for p in cap.points("active_users")] == [1300]
    with pytest.raises(TypeError, match="is a counter, not a gauge"):
        ao.set_gauge("chat_messages_sent_total", 1)
    with pytest.raises(ValueError, match="not a valid Prometheus name"):
        ao.inc_counter("chat messages")


def test_min_level_drops_events_but_metrics_count_everything(captured):
    cap = captured(min_level="WARN")
    ao.log_telemetry("chat", "chat.send", level="INFO")
    ao.log_telemetry("chat", "chat.send", level="DEBUG")
    ao.log_error("chat", "chat.send", "TIMEOUT")
    assert [r.severity_text for r in cap.logs()] == ["ERROR"]
    assert cap.count("avalo_operations_total", operation="chat.send") == 3


def test_unknown_names_accepted_with_one_warning_malformed_rejected(captured, caplog):
    cap = captured()
    with caplog.at_level(logging.WARNING, logger="avalo_otel"):
        ao.log_telemetry("dating", "dating.swipe")
        ao.log_telemetry("dating", "dating.swipe")
        ao.inc_counter("custom_things_total")
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("unknown operation 'dating.swipe'" in w for w in warnings) == 1
    assert sum("unknown metric 'custom_things_total'" in w for w in warnings) == 1
    assert cap.count("avalo_operations_total", operation="dating.swipe") == 2
    with pytest.raises(ValueError, match="malformed"):
        ao.log_telemetry("chat", "Send Message")
    with pytest.raises(ValueError, match="unknown level"):
        ao.log_telemetry("chat", "chat.send", level="LOUD")
    with pytest.raises(ValueError, match="error code"):
        ao.log_error("chat", "chat.send", "bad code")


def test_strict_mode_rejects_unknown_names(captured):
    captured(strict=True)
    with pytest.raises(ValueError, match="unknown operation"):
        ao.log_telemetry("chat", "chat.teleport")


def test_bad_values_are_dropped_counted_and_never_raise(captured, caplog):
    cap = captured()

    class Opaque:
        def __repr__(self) -> str:  # what must not leak into telemetry
            return "secret@example.com"

    ao.log_telemetry("chat", "chat.send", latency_ms=float("nan"), metadata={"obj": Opaque(), "ok": 1})
    ao.inc_counter("chat_messages_sent_total", value=-1)
    ao.observe_latency("chat_delivery_latency_ms", float("inf"))
    (record,) = cap.logs()
    attrs = dict(record.attributes)
    assert Attr.LATENCY_MS not in attrs and attrs["avalo.metadata.ok"] == 1
    assert "secret@example.com" not in str(attrs)
    assert cap.count("avalo_otel_invalid_input_total", reason="invalid_latency") == 1
    assert cap.count("avalo_otel_invalid_input_total", reason="invalid_metric_value") == 2
    assert cap.points("chat_messages_sent_total") == []


def test_not_configured_is_a_silent_no_op():
    assert ao.time_operation("chat", "chat.send", lambda: 3) == 3
    with ao.time_operation("chat", "chat.send") as op:
        assert op.trace_id is None
    ao.log_telemetry("chat", "chat.send")
    ao.inc_counter("chat_messages_sent_total")
    assert ao.flush_metrics() is True
    assert ao.inject_trace_into_headers() == {}


def test_configure_is_idempotent_and_reconfigurable_after_shutdown(configured, caplog):
    first = configured(service_name="a")
    assert configured(service_name="a") is first
    with caplog.at_level(logging.WARNING, logger="avalo_otel"):
        assert configured(service_name="b") is first
    assert "already configured" in caplog.text
    first.shutdown()
    second = configured(service_name="b")
    assert second is not first and second.settings.service_name == "b"
    assert first.force_flush() is False  # a shut-down handle exports nothing more
