"""W3C trace-context propagation, the original x-trace-id header, and malformed input."""

from __future__ import annotations

import pytest

import avalo_otel as ao

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_extract_traceparent_case_insensitive_and_continue_the_trace(captured):
    cap = captured()
    parent = ao.extract_trace_from_headers({"TraceParent": f"00-{TRACE}-{SPAN}-01", "tracestate": "dd=s:1"})
    assert parent.trace_id == TRACE and parent.span_id == SPAN and parent.sampled
    with ao.time_operation("api", "api.request", parent=parent):
        pass
    (span,) = cap.spans()
    assert format(span.context.trace_id, "032x") == TRACE
    assert format(span.parent.span_id, "016x") == SPAN and span.parent.is_remote
    assert span.context.trace_state.get("dd") == "s:1"


def test_extract_asgi_style_byte_pairs_and_list_values():
    pairs = [(b"traceparent", f"00-{TRACE}-{SPAN}-00".encode())]
    assert ao.extract_trace_from_headers(pairs).trace_id == TRACE
    assert not ao.extract_trace_from_headers(pairs).sampled
    assert ao.extract_trace_from_headers({"traceparent": [f"00-{TRACE}-{SPAN}-01"]}).span_id == SPAN


def test_legacy_x_trace_id_uuid_form_is_accepted(captured):
    cap = captured()
    uuid = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    parent = ao.extract_trace_from_headers({"X-Trace-Id": uuid})
    assert parent.trace_id == TRACE
    with ao.time_operation("api", "api.request", parent=parent):
        pass
    assert format(cap.spans()[0].context.trace_id, "032x") == TRACE
    with_span = ao.extract_trace_from_headers({"x-trace-id": TRACE, "x-span-id": SPAN})
    assert with_span.span_id == SPAN


@pytest.mark.parametrize("headers", [
    {"traceparent": "garbage"},
    {"traceparent": f"00-{'0' * 32}-{SPAN}-01"},
    {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},
    {"traceparent": f"ff-{TRACE}-{SPAN}-01"},
    {"x-trace-id": "not-hex"},
    {"x-trace-id": "0" * 32},
    {},
    None,
    [("only-one-element",)],
    42,
])
def test_malformed_headers_start_a_new_trace_and_never_raise(captured, headers):
    cap = captured()
    parent = ao.extract_trace_from_headers(headers)
    assert parent is None
    with ao.time_operation("api", "api.request", parent=parent):
        pass
    (span,) = cap.spans()
    assert span.parent is None  # a fresh root


def test_malformed_headers_are_counted(captured):
    cap = captured()
    ao.extract_trace_from_headers({"traceparent": "garbage"})
    assert cap.count("avalo_otel_invalid_input_total", reason="malformed_trace_header") == 1


def test_inject_round_trip_and_legacy_header(captured):
    captured()
    with ao.time_operation("chat", "chat.send") as op:
        headers = ao.inject_trace_into_headers()
        explicit = ao.inject_trace_into_headers(op.trace, {"accept": "json"})
    assert headers["traceparent"].split("-")[1] == op.trace_id
    assert headers["x-trace-id"] == op.trace_id
    assert explicit["accept"] == "json" and explicit["traceparent"] == headers["traceparent"]
    back = ao.extract_trace_from_headers(headers)
    assert (back.trace_id, back.span_id) == (op.trace_id, op.span_id)
