"""The vocabulary of the original design, mapped onto OTel."""

from __future__ import annotations

from opentelemetry._logs import SeverityNumber

from avalo_otel import METRIC_NAMES, TELEMETRY_ERROR_CODES, TELEMETRY_OPERATIONS, Level
from avalo_otel import conventions as c


def test_original_operations_present():
    for op in ("chat.send", "wallet.spend", "wallet.refund", "wallet.payout_request", "safety.panic_press",
               "safety.panic_process", "ai.request", "ai.response", "support.ticket_create", "support.ticket_reply"):
        assert op in c.KNOWN_OPERATIONS
    assert TELEMETRY_OPERATIONS["CHAT_SEND"] == "chat.send"
    assert all(c.OPERATION_PATTERN.match(op) for op in c.KNOWN_OPERATIONS)


def test_original_metric_names_exact():
    for name in ("chat_messages_sent_total", "chat_delivery_latency_ms", "wallet_tx_success_total",
                 "wallet_tx_failed_total", "wallet_tx_latency_ms", "panic_events_total", "ai_requests_total",
                 "api_http_errors_total", "active_users"):
        assert name in METRIC_NAMES.values()
    assert c.METRICS["chat_delivery_latency_ms"].kind is c.MetricKind.HISTOGRAM
    assert c.METRICS["active_users"].kind is c.MetricKind.GAUGE


def test_levels_map_to_otel_severity_with_critical_as_fatal():
    assert [Level(x).severity for x in ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")] == [
        SeverityNumber.DEBUG, SeverityNumber.INFO, SeverityNumber.WARN, SeverityNumber.ERROR, SeverityNumber.FATAL]


def test_error_classes_decide_what_burns_budget():
    for code in ("INSUFFICIENT_FUNDS", "VALIDATION_FAILED", "UNAUTHORIZED", "RATE_LIMITED"):
        assert c.error_class(code) is c.ErrorClass.CLIENT
        assert c.outcome_of(False, code) == "client_error"
    for code in ("TIMEOUT", "INTERNAL", "UNAVAILABLE", None, "SOMETHING_NEW"):
        assert c.error_class(code) is c.ErrorClass.SERVER
        assert c.outcome_of(False, code) == "server_error"
    assert c.outcome_of(True, None) == "success"
    assert set(TELEMETRY_ERROR_CODES) == set(c.ERROR_CODES)


def test_latency_buckets_cover_slo_thresholds():
    for threshold in (300, 500, 2000, 2500, 5000):
        assert threshold in c.LATENCY_BUCKETS_MS
    assert list(c.LATENCY_BUCKETS_MS) == sorted(c.LATENCY_BUCKETS_MS)


def test_critical_domains():
    assert c.CRITICAL_DOMAINS == {"wallet", "safety"}
