"""End to end: the generated rules in a real Prometheus, scraping a live app, alerting through a
real Alertmanager to a webhook.

An app process (``apps/slo_burn_app.py``) sends ``chat.send`` traffic with 25% server errors and
one failed panic press through the public API; Prometheus (1 s scrape and evaluation) loads
``avalo-slo-rules.yml`` from ``promrules.write_rules``; Alertmanager carries the generated inhibit
rule and routes to a webhook receiver in this process. Rate windows of 5m/1h over ~10 s of traffic
still give the error ratio, so the chat page and the zero-tolerance panic page fire within seconds.
Every process is stopped by its PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from alertmanager_server import AlertmanagerServer, WebhookReceiver
from avalo_otel.alerts.rules import PREDEFINED_RULES
from avalo_otel.slo import load_slos
from avalo_otel.slo import promrules as pr
from prometheus_server import PrometheusServer, as_target

pytestmark = pytest.mark.timeout(120)
APP = Path(__file__).parent / "apps" / "slo_burn_app.py"
CHAT_PAGE = "slo_burn_slo_chat_delivery_availability_page"
CHAT_TICKET = "slo_burn_slo_chat_delivery_availability_ticket"
PANIC_PAGE = "slo_burn_slo_panic_safety_availability_page"


class InhibitingAlertmanager(AlertmanagerServer):
    """The shared Alertmanager helper, with our generated inhibit rules and per-indicator groups."""

    def _write_config(self) -> None:
        config = {
            "route": {"receiver": "test-webhook", "group_by": ["alertname", "slo", "indicator"],
                      "group_wait": self.group_wait, "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "test-webhook", "webhook_configs": [{"url": self.webhook_url, "send_resolved": False}]}],
            "inhibit_rules": pr.alertmanager_inhibit_rules(),
        }
        self.config_path.write_text(json.dumps(config, indent=2))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("alerting-e2e")
    rules_file = pr.write_rules(work / "rules", slos=load_slos(), rules=PREDEFINED_RULES)[0]
    for sub in ("alertmanager", "prometheus"):
        (work / sub).mkdir()
    receiver = WebhookReceiver()
    alertmanager = InhibitingAlertmanager(receiver.url, workdir=work / "alertmanager")
    app = subprocess.Popen([sys.executable, str(APP), "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prometheus = None
    try:
        alertmanager.start()
        line = app.stdout.readline() if app.stdout else ""
        if not line:
            pytest.fail(f"the app did not start: {app.stderr.read() if app.stderr else ''}", pytrace=False)
        metrics_url = json.loads(line)["metrics_url"]
        assert metrics_url, "configure(prometheus_port=0) did not serve /metrics"
        prometheus = PrometheusServer([metrics_url], workdir=work / "prometheus", rule_files=[rules_file],
                                      alertmanagers=[alertmanager.url.split("://", 1)[1]])
        prometheus.start()
        yield {"prometheus": prometheus, "alertmanager": alertmanager, "receiver": receiver,
               "instance": as_target(metrics_url)[0]}
    finally:
        if prometheus is not None:
            prometheus.cleanup()
        app.terminate()  # by PID; the app shuts its pipeline down on SIGTERM
        try:
            app.wait(10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait(10)
        alertmanager.cleanup()
        receiver.close()


def _alerts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in payload.get("alerts", []) if a.get("status") == "firing"]


def _has(name: str) -> Any:
    return lambda payload: any(a["labels"].get("alertname") == name for a in _alerts(payload))


def _delivered(receiver: WebhookReceiver, name: str) -> dict[str, Any]:
    payload = receiver.wait_for(_has(name), timeout=45)
    return next(a for a in _alerts(payload) if a["labels"]["alertname"] == name)


def test_burn_rate_page_reaches_the_webhook_and_inhibits_the_ticket(stack: dict[str, Any]) -> None:
    prom: PrometheusServer = stack["prometheus"]
    started = time.monotonic()
    alert = _delivered(stack["receiver"], CHAT_PAGE)
    labels = alert["labels"]
    assert {k: labels[k] for k in ("slo", "indicator", "tier", "severity", "rule_id")} == {
        "slo": "slo_chat_delivery", "indicator": "availability", "tier": "page", "severity": "critical",
        "rule_id": CHAT_PAGE}
    assert "Chat delivery: availability >= 99.5% burns its error budget" in alert["annotations"]["summary"]
    assert "over 1h " in alert["annotations"]["description"] and "n/a" not in alert["annotations"]["description"]

    # The recording rules as Prometheus computed them: 1 server error in 4 events (the client
    # error is a good event), and a burn rate of that over the 0.5% budget.
    sel = '{slo="slo_chat_delivery",indicator="availability"}'
    ratio = prom.value(f"{pr.SLI_ERROR}5m{sel}")
    assert ratio == pytest.approx(0.25, abs=0.05), ratio
    burn = prom.value(f"{pr.BURN_RATE}1h{sel}")
    assert burn == pytest.approx(prom.value(f"{pr.SLI_ERROR}1h{sel}") / 0.005, rel=0.05), burn
    assert (prom.value(f"{pr.EVENTS}1h{sel}") or 0) >= 20

    # The ticket fires too in Prometheus (50x > 3x) but Alertmanager holds it under the page.
    deadline = time.monotonic() + 15
    while True:
        ticket = [a for a in stack["alertmanager"].alerts() if a["labels"].get("alertname") == CHAT_TICKET]
        if ticket and ticket[0]["status"]["inhibitedBy"]:
            break
        assert time.monotonic() < deadline, f"the ticket is not inhibited: {ticket}"
        time.sleep(0.2)
    assert ticket[0]["status"]["state"] == "suppressed"
    assert not any(_has(CHAT_TICKET)(p) for p in stack["receiver"].payloads)
    assert time.monotonic() - started < 45


def test_one_failed_panic_press_pages(stack: dict[str, Any]) -> None:
    # The failure is the first sample of a new series: increase() alone would never see it.
    alert = _delivered(stack["receiver"], PANIC_PAGE)
    assert {k: alert["labels"][k] for k in ("slo", "indicator", "tier", "severity")} == {
        "slo": "slo_panic_safety", "indicator": "availability", "tier": "page", "severity": "critical"}
    assert alert["annotations"]["summary"].startswith("Panic / safety: 1 bad event(s) in the last 5m")
