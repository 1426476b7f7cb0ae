"""A store seeded for the dashboard tests: SLO traffic with known colours, alerts, rules, a trace.

Colours over the seeded traffic (48 hours, a point every 5 minutes per operation):
chat delivery yellow (10% of sends between 300 and 500 ms), wallet red (5% server errors),
panic/safety green, AI green, support no data, API green (with a ``region`` label).
"""

from __future__ import annotations

from typing import Any, Optional

from avalo_otel.alerts.api import disable_alert_rule, ensure_predefined_rules

from slo_traffic import MINUTE, points

EXPECTED_STATUS = {
    "slo_chat_delivery": "yellow", "slo_wallet_operations": "red", "slo_panic_safety": "green",
    "slo_ai_companions": "green", "slo_support_system": "no_data", "slo_api_overall": "green",
}
HOSTILE = "<script>alert(1)</script>"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT_SPAN, CHILD_SPAN, DB_SPAN = "00f067aa0ba902b7", "1a2b3c4d5e6f7081", "2b3c4d5e6f708192"


def traffic(now_ms: int, *, hours: int = 48, step_min: int = 5, scale: int = 1) -> list[dict[str, Any]]:
    """Metric points for the last ``hours``, newest ending just before ``now_ms``."""
    docs: list[dict[str, Any]] = []
    for k in range(hours * 60 // step_min):
        ts = now_ms - k * step_min * MINUTE - 20_000
        s = scale
        docs += points(ts, "chat.send", ok=17 * s, client_errors=1 * s, latencies_ms=[120] * 16 * s + [180] * 2 * s
                       + [400] * 2 * s, service="chat-api")
        docs += points(ts, "chat.deliver", ok=18 * s, latencies_ms=[60] * 15 * s + [140] * 3 * s, service="chat-api")
        docs += points(ts, "wallet.spend", ok=16 * s, client_errors=3 * s, server_errors=1 * s,
                       latencies_ms=[90] * 14 * s + [240] * 5 * s + [900] * s, service="wallet-api")
        docs += points(ts, "wallet.topup", ok=6 * s, latencies_ms=[150] * 6 * s, service="wallet-api")
        docs += points(ts, "safety.panic_press", ok=2 * s, latencies_ms=[350, 700] * s, service="safety-api")
        docs += points(ts, "safety.panic_process", ok=2 * s, latencies_ms=[900, 1400] * s, service="safety-api")
        docs += points(ts, "ai.request", ok=10 * s, server_errors=1 * s if k % 50 == 0 else 0,
                       latencies_ms=[700] * 6 * s + [1400] * 3 * s + [2200] * s, service="ai-api")
        for region, n, errors in (("eu-west", 20, 1 if k % 20 == 0 else 0), ("us-east", 12, 0)):
            for doc in points(ts, "api.request", ok=n * s, client_errors=1 * s, server_errors=errors * s,
                              latencies_ms=[40] * (n - 2) * s + [160] * 2 * s + [450] * s,
                              service="public-api", process=region):
                doc["labels"]["region"] = region
                docs.append(doc)
    return docs


def alert_event(now_ms: int, rule_id: str, seq: int, *, name: str, severity: str, status: str = "firing",
                description: str = "", minutes_ago: int = 30, acknowledged: bool = False,
                trace_id: Optional[str] = None, value: float = 4.2, threshold: float = 0.5,
                metric: str = "wallet_error_rate") -> dict[str, Any]:
    at = now_ms - minutes_ago * MINUTE
    event: dict[str, Any] = {
        "id": f"{rule_id}:{seq}", "seq": seq, "ruleId": rule_id, "name": name, "severity": severity,
        "metric": metric, "value": value, "threshold": threshold, "condition": "greater_than", "windowMinutes": 5,
        "description": description, "labels": {"team": "payments"}, "status": status, "timestamp": at,
        "lastSeenAt": at, "lastValue": value, "lastNotifiedAt": at, "notifications": 1,
        "acknowledged": acknowledged,
    }
    if status == "resolved":
        event["resolvedAt"] = at + 12 * MINUTE
    if acknowledged:
        event.update(acknowledgedBy="oncall-7", acknowledgedAt=at + 2 * MINUTE)
    if trace_id:
        event["traceId"] = trace_id
    return event


def alerts(now_ms: int) -> list[dict[str, Any]]:
    return [
        alert_event(now_ms, "wallet_failures_critical", 1, name="Wallet Failures Critical", severity="CRITICAL",
                    description="More than 0.5% of wallet operations failed over 5 minutes", minutes_ago=25,
                    trace_id=TRACE_ID),
        alert_event(now_ms, "chat_error_rate_high", 1, name="Chat Error Rate High", severity="WARN",
                    status="resolved", description="Chat error rate above 2% over 5 minutes", minutes_ago=180,
                    acknowledged=True, value=2.6, threshold=2, metric="chat_error_rate"),
        alert_event(now_ms, "hostile_rule", 1, name=HOSTILE, severity="ERROR", description=HOSTILE, minutes_ago=60,
                    value=9, threshold=1, metric="api_error_rate"),
    ]


def spans(now_ms: int) -> list[dict[str, Any]]:
    """One trace shaped like ``store.schema.span_document``: an API request, a wallet spend under it and
    a failed database call under that."""
    start = now_ms - 40 * MINUTE

    def span(span_id: str, parent: Optional[str], name: str, offset: float, duration: float, ok: bool = True,
             service: str = "public-api") -> dict[str, Any]:
        s = int(start + offset)
        return {"id": f"{TRACE_ID}-{span_id}", "traceId": TRACE_ID, "spanId": span_id, "parentSpanId": parent,
                "operation": name, "name": name, "domain": name.split(".")[0], "kind": "internal",
                "startTime": s, "endTime": int(s + duration), "durationMs": float(duration), "success": ok,
                "errorCode": None if ok else "DATABASE_ERROR", "status": "unset" if ok else "error",
                "statusMessage": None if ok else "connection reset", "attributes": {"avalo.operation": name},
                "events": [], "service": service}

    return [span(ROOT_SPAN, None, "api.request", 0, 480),
            span(CHILD_SPAN, ROOT_SPAN, "wallet.spend", 35, 410, ok=False, service="wallet-api"),
            span(DB_SPAN, CHILD_SPAN, "wallet.ledger_write", 60, 300, ok=False, service="wallet-api")]


def failed_event(now_ms: int) -> dict[str, Any]:
    return {"id": "evt-wallet-failed-1", "ts": now_ms - 40 * MINUTE + 445, "domain": "wallet", "level": "ERROR",
            "operation": "wallet.spend", "success": False, "errorCode": "DATABASE_ERROR", "latencyMs": 410.0,
            "actorType": "user", "actorId": "u-pseudo", "sessionId": None, "metadata": {}, "traceId": TRACE_ID,
            "spanId": CHILD_SPAN, "service": "wallet-api"}


def seed(store: Any, now_ms: int, *, hours: int = 48, with_alerts: bool = True, with_trace: bool = True) -> None:
    store.write("metrics", traffic(now_ms, hours=hours))
    if with_alerts:
        ensure_predefined_rules(store)
        disable_alert_rule("api_error_rate_critical", store=store)
        for event in alerts(now_ms):
            store.create_alert_event(event)
    if with_trace:
        store.write("traces", spans(now_ms))
        store.write("telemetry_events", [failed_event(now_ms)])
