"""Notifiers against a real Alertmanager (Debian's prometheus-alertmanager) routing to a webhook
receiver in the test; the webhook notifier's payload against what that Alertmanager sent; outages."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from avalo_otel.alerts import AlertEvaluator, AlertmanagerNotifier, AlertNotice, LogNotifier, WebhookNotifier
from avalo_otel.alerts import set_alert_rule
from avalo_otel.alerts.notifiers import fingerprint
from avalo_otel.store import SQLiteStore
from alert_points import MINUTE, ops
from alertmanager_server import AlertmanagerServer, WebhookReceiver, alertmanager, webhook_receiver  # noqa: F401
from prometheus_server import free_port

OPTIONAL_KEYS = {"notification_reason", "truncatedAlerts"}  # 0.25 has no notification_reason; newer ones do


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def notice(alertname: str, status: str = "firing", **labels: str) -> AlertNotice:
    start = now_ms() - 1000
    return AlertNotice(
        status, {"alertname": alertname, "severity": "critical", "rule_id": alertname, **labels},
        {"summary": f"{alertname} summary", "value": "6.25"}, start,
        now_ms() if status == "resolved" else now_ms() + 5 * MINUTE, "http://127.0.0.1/avalo", "e:1")


def payload_for(alertname: str, status: str) -> Any:
    return lambda p: p.get("status") == status and p.get("groupLabels", {}).get("alertname") == alertname


def test_alertmanager_routes_a_posted_alert_and_its_resolution_to_the_webhook(
        alertmanager: AlertmanagerServer, webhook_receiver: WebhookReceiver) -> None:
    name = f"test_fire_{uuid.uuid4().hex[:8]}"
    am = AlertmanagerNotifier(alertmanager.url)
    firing = notice(name, domain="chat", tier="page")
    assert am.send([firing]) is True and am.failures == 0
    got = webhook_receiver.wait_for(payload_for(name, "firing"))
    [alert] = got["alerts"]
    assert alert["labels"] == dict(firing.labels)
    assert alert["annotations"] == dict(firing.annotations)
    assert alert["fingerprint"] == fingerprint(firing.labels) == firing.fingerprint  # our FNV matches theirs
    assert alert["generatorURL"] == "http://127.0.0.1/avalo" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert got["version"] == "4" and got["receiver"] == "test-webhook"

    resolved = AlertNotice("resolved", firing.labels, firing.annotations, firing.starts_at_ms, now_ms(),
                           firing.generator_url)
    assert am.send([resolved]) is True
    done = webhook_receiver.wait_for(payload_for(name, "resolved"))
    assert done["alerts"][0]["status"] == "resolved" and done["alerts"][0]["fingerprint"] == alert["fingerprint"]


def test_webhook_notifier_speaks_alertmanagers_webhook_format(
        alertmanager: AlertmanagerServer, webhook_receiver: WebhookReceiver) -> None:
    name = f"test_shape_{uuid.uuid4().hex[:8]}"
    AlertmanagerNotifier(alertmanager.url).send([notice(name, domain="wallet")])
    real = webhook_receiver.wait_for(payload_for(name, "firing"))

    ours_name = f"test_ours_{uuid.uuid4().hex[:8]}"
    hook = WebhookNotifier(webhook_receiver.url, receiver="test-webhook", external_url=real["externalURL"])
    assert hook.send([notice(ours_name, domain="wallet"), notice(ours_name, "firing", domain="wallet", x="2")])
    ours = webhook_receiver.wait_for(payload_for(ours_name, "firing"), timeout=5)
    assert set(ours) - OPTIONAL_KEYS == set(real) - OPTIONAL_KEYS
    assert set(ours["alerts"][0]) == set(real["alerts"][0])
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in real.items() if k in ours}
    assert ours["groupKey"] == real["groupKey"].replace(name, ours_name)
    assert ours["groupLabels"] == {"alertname": ours_name} and ours["status"] == "firing"
    assert ours["commonLabels"] == {"alertname": ours_name, "severity": "critical", "rule_id": ours_name,
                                    "domain": "wallet"}
    assert [a["fingerprint"] for a in ours["alerts"]] == [fingerprint(a["labels"]) for a in ours["alerts"]]
    # the resolved form, as Alertmanager sends it: status resolved and a real endsAt
    hook.send([notice(ours_name, "resolved", domain="wallet")])
    gone = webhook_receiver.wait_for(payload_for(ours_name, "resolved"), timeout=5)
    assert gone["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


def test_the_evaluator_fires_and_resolves_through_alertmanager(
        alertmanager: AlertmanagerServer, webhook_receiver: WebhookReceiver, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "am.db")
    try:
        rule_id = f"chat_e2e_{uuid.uuid4().hex[:6]}"
        set_alert_rule({"id": rule_id, "severity": "ERROR", "metric": "chat_error_rate", "threshold": 2,
                        "windowMinutes": 5, "labels": {"team": "chat"}}, store=store)
        # Alertmanager runs on the real clock: fire 7 minutes ago (valid for 4 intervals of 10
        # minutes), resolve now, when those points have left the 5-minute window.
        fired_at = now_ms() - 7 * MINUTE
        store.write("metrics", [ops(fired_at - 1000, "chat", "chat.send", "success", 90),
                                ops(fired_at - 1000, "chat", "chat.send", "server_error", 10, error_code="TIMEOUT")])
        ev = AlertEvaluator(store, notifiers=[AlertmanagerNotifier(alertmanager.url)], emit_telemetry=False,
                            interval_s=600)
        assert ev.evaluate_once(fired_at).fired == [f"{rule_id}:1"]
        got = webhook_receiver.wait_for(payload_for(rule_id, "firing"))
        assert got["alerts"][0]["labels"] == {"alertname": rule_id, "severity": "error", "rule_id": rule_id,
                                              "team": "chat"}
        assert got["alerts"][0]["annotations"]["value"] == "10"
        held = [a for a in alertmanager.alerts() if a["labels"]["alertname"] == rule_id]
        assert held and held[0]["status"]["state"] == "active"
        ev.evaluate_once(fired_at + MINUTE)  # still firing: re-sent to Alertmanager (it keeps it active)
        assert ev.evaluate_once().resolved == [f"{rule_id}:1"]  # no data any more
        webhook_receiver.wait_for(payload_for(rule_id, "resolved"))
    finally:
        store.close()


def test_an_unreachable_receiver_is_counted_and_warned_about_once(caplog: pytest.LogCaptureFixture,
                                                                   captured: Any) -> None:
    cap = captured()
    dead = AlertmanagerNotifier(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with caplog.at_level(logging.WARNING, logger="avalo_otel.alerts"):
        assert [dead.send([notice("x")]) for _ in range(3)] == [False, False, False]
    assert dead.failures == 3
    assert len([r for r in caplog.records if "cannot deliver" in r.getMessage()]) == 1
    assert cap.count("avalo_alert_notifications_failed_total", notifier="alertmanager") == 3


def test_a_hanging_receiver_times_out_and_a_rejected_alert_fails(
        alertmanager: AlertmanagerServer, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as hang:  # accepts connections (backlog) and never answers
        hang.bind(("127.0.0.1", 0))
        hang.listen(4)
        slow = WebhookNotifier(f"http://127.0.0.1:{hang.getsockname()[1]}/hook", timeout_s=0.5)
        started = time.monotonic()
        assert slow.send([notice("x")]) is False
        assert time.monotonic() - started < 3 and slow.failures == 1
    am = AlertmanagerNotifier(alertmanager.url)
    bad = AlertNotice("firing", {"alertname": "x", "bad-label": "y"}, {}, now_ms())  # Alertmanager refuses it
    with caplog.at_level(logging.WARNING, logger="avalo_otel.alerts"):
        assert am.send([bad]) is False
    assert am.failures == 1 and "HTTP 400" in caplog.text
    with caplog.at_level(logging.INFO, logger="avalo_otel.alerts"):
        assert am.send([notice(f"ok_{uuid.uuid4().hex[:6]}")]) is True
    assert "delivers to" in caplog.text  # recovery is logged once too


def test_a_failing_notifier_never_breaks_evaluation(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "dead.db")
    try:
        set_alert_rule({"id": "r", "severity": "WARN", "metric": "chat_error_rate", "threshold": 1,
                        "windowMinutes": 5}, store=store)
        now = now_ms()
        store.write("metrics", [ops(now - 1000, "chat", "chat.send", "server_error", 5, error_code="TIMEOUT")])

        class Exploding:
            name, resend_active, failures = "boom", False, 0

            def send(self, notices: Any) -> bool:
                raise RuntimeError("third-party notifier bug")

        dead = WebhookNotifier(f"http://127.0.0.1:{free_port()}/", timeout_s=0.5)
        ev = AlertEvaluator(store, notifiers=[Exploding(), dead], emit_telemetry=False)
        assert ev.evaluate_once(now).fired == ["r:1"]
        assert dead.failures == 1
    finally:
        store.close()


def test_log_notifier_writes_one_line_per_alert(caplog: pytest.LogCaptureFixture) -> None:
    log = LogNotifier()
    with caplog.at_level(logging.INFO, logger="avalo_otel.alerts"):
        log.send([notice("panic_latency_critical"), notice("panic_latency_critical", "resolved")])
    lines = [r for r in caplog.records if r.getMessage().startswith("alert ")]
    assert [r.levelno for r in lines] == [logging.ERROR, logging.INFO]
    assert "FIRING panic_latency_critical severity=critical value=6.25" in lines[0].getMessage()
    assert "RESOLVED panic_latency_critical" in lines[1].getMessage()
