"""Sampling keeps a ratio of routine traces and events, and every error and wallet/safety operation."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import avalo_otel as ao
from avalo_otel.sampling import AvaloSampler, sampler_from_arg

N = 2000


def test_ratio_is_respected_for_routine_operations(captured):
    cap = captured(sampling_rate=0.1)
    for _ in range(N):
        with ao.time_operation("chat", "chat.send"):
            pass
    kept = len(cap.spans())
    assert 0.06 * N < kept < 0.14 * N
    # events follow their trace's decision: a kept trace has its event, a dropped one has none
    assert len(cap.logs()) == kept
    assert {r.trace_id for r in cap.logs()} == {s.context.trace_id for s in cap.spans()}
    # metrics count every operation, never sampled
    assert cap.count("avalo_operations_total", operation="chat.send") == N


def test_errors_and_critical_domains_always_kept(captured):
    cap = captured(sampling_rate=0.0)
    for _ in range(50):
        with ao.time_operation("wallet", "wallet.spend"):
            pass
        with ao.time_operation("safety", "safety.panic_press"):
            pass
        with pytest.raises(TimeoutError):
            with ao.time_operation("chat", "chat.send"):
                raise TimeoutError
        with ao.time_operation("chat", "chat.read"):
            pass
        ao.log_telemetry("chat", "chat.read")
        ao.log_error("chat", "chat.send", "UNAVAILABLE")
    names = [s.name for s in cap.spans()]
    assert names.count("wallet.spend") == 50 and names.count("safety.panic_press") == 50
    assert names.count("chat.send") == 50 and "chat.read" not in names
    failed = [s for s in cap.spans() if s.name == "chat.send"]
    assert all(s.status.status_code is StatusCode.ERROR for s in failed)
    assert all(s.end_time - s.start_time >= 0 for s in failed)
    bodies = [r.body for r in cap.logs()]
    assert bodies.count("chat.read") == 0 and bodies.count("chat.send") == 100
    assert bodies.count("wallet.spend") == 50
    # the failed operation's event is correlated with the re-emitted span
    send_spans = {s.context.span_id for s in failed}
    assert {r.span_id for r in cap.logs() if r.body == "chat.send" and r.span_id} <= send_spans


def test_third_party_error_spans_are_kept_routine_ones_dropped(captured):
    cap = captured(sampling_rate=0.0)
    tracer = trace.get_tracer("third.party")
    for _ in range(20):
        with tracer.start_as_current_span("GET /feed"):
            pass
        with tracer.start_as_current_span("GET /crash") as span:
            span.set_status(StatusCode.ERROR)
    names = [s.name for s in cap.spans()]
    assert names.count("GET /crash") == 20 and "GET /feed" not in names


def test_children_follow_a_sampled_parent(captured):
    cap = captured(sampling_rate=0.0)
    with ao.time_operation("wallet", "wallet.spend"):
        with trace.get_tracer("db").start_as_current_span("SELECT balance"):
            pass
    assert sorted(s.name for s in cap.spans()) == ["SELECT balance", "wallet.spend"]


def test_sampler_entry_point_factory_and_validation():
    assert sampler_from_arg("0.25").rate == 0.25
    assert sampler_from_arg("").rate == 1.0
    with pytest.raises(ValueError):
        AvaloSampler(2.0)
    assert "0.5" in AvaloSampler(0.5).get_description()


# -- kept spans form valid traces (no orphans) -----------------------------------------------------
def _assert_valid_trace(spans) -> dict:
    """Every exported span's parent is exported too (or it is a root); returns spans by name."""
    ids = {s.context.span_id for s in spans}
    for s in spans:
        assert s.parent is None or s.parent.span_id in ids, f"{s.name} points at a parent never exported"
    assert len({s.context.trace_id for s in spans}) == 1
    return {s.name: s for s in spans}


def test_failed_operation_and_its_kept_children_form_a_valid_trace(captured):
    cap = captured(sampling_rate=0.0)
    tracer = trace.get_tracer("db")
    with pytest.raises(ConnectionError):
        with ao.time_operation("chat", "chat.send"):
            with tracer.start_as_current_span("INSERT message") as db:
                db.set_status(StatusCode.ERROR)
            raise ConnectionError
    spans = _assert_valid_trace(cap.spans())
    assert set(spans) == {"chat.send", "INSERT message"}
    assert spans["chat.send"].parent is None  # a root, as it was: not a child of its own dropped span
    assert spans["INSERT message"].parent.span_id == spans["chat.send"].context.span_id
    event = next(r for r in cap.logs() if r.body == "chat.send")
    assert event.span_id == spans["chat.send"].context.span_id


def test_a_kept_child_brings_its_sampled_out_ancestors_even_when_they_succeed(captured):
    cap = captured(sampling_rate=0.0)
    server = trace.get_tracer("http.server")
    with server.start_as_current_span("POST /wallet"):  # third party, recorded only
        with ao.time_operation("chat", "chat.open"):  # ours, dropped at the start
            with ao.time_operation("wallet", "wallet.spend"):  # critical: always kept
                pass
    spans = _assert_valid_trace(cap.spans())
    assert set(spans) == {"POST /wallet", "chat.open", "wallet.spend"}
    assert spans["chat.open"].parent.span_id == spans["POST /wallet"].context.span_id
    assert spans["chat.open"].status.status_code is not StatusCode.ERROR
    assert spans["chat.open"].attributes["avalo.success"] is True
    # routine traces with nothing kept inside still export nothing
    with server.start_as_current_span("GET /feed"):
        with ao.time_operation("chat", "chat.read"):
            pass
    assert "GET /feed" not in {s.name for s in cap.spans()} and "chat.read" not in {s.name for s in cap.spans()}


def test_start_trace_failure_at_sampling_zero_is_kept_with_its_children(captured):
    cap = captured(sampling_rate=0.0)
    handle = ao.start_trace("support.ticket_create")
    with pytest.raises(TimeoutError):
        with ao.time_operation("support", "support.ticket_assign", parent=handle):
            raise TimeoutError
    ao.end_trace(handle, success=False, error_code="TIMEOUT")
    spans = _assert_valid_trace(cap.spans())
    assert set(spans) == {"support.ticket_create", "support.ticket_assign"}
    root = spans["support.ticket_create"]
    assert root.status.status_code is StatusCode.ERROR and root.attributes["error.type"] == "TIMEOUT"
    assert root.context.span_id == int(handle.span_id, 16)  # the id handed out is the one exported
