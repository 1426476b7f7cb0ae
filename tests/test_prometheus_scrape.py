"""A real Prometheus scrapes our /metrics: what it stores is what the API recorded, under Avalo's names.

One Prometheus per module (``prometheus_server``). Each test configures its own pipeline (the
configuration is process-global and must be shut down after every test); it listens on the port
the first test got from the OS whenever that port is free again, so Prometheus keeps its target
and sees the new process within a scrape or two instead of the ~5 s a config reload costs.
Every query is pinned to this app's ``job`` and ``instance``.
"""

from __future__ import annotations

import math
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

import avalo_otel
from prometheus_server import PrometheusServer, as_target, prometheus_server, sample_value  # noqa: F401

pytestmark = pytest.mark.timeout(120)


@dataclass
class App:
    handle: avalo_otel.Telemetry
    prom: PrometheusServer
    url: str
    instance: str

    def sel(self, name: str = "", **labels: str) -> str:
        """``name{job=…,instance=…,labels…}``: a selector pinned to this app."""
        matchers = {"job": self.prom.job, "instance": self.instance, **labels}
        body = ",".join(f'{k}="{v}"' for k, v in matchers.items())
        return f"{name}{{{body}}}"

    def fetch(self, accept: str | None = None) -> str:
        request = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.read().decode()


def _configure(port: int) -> avalo_otel.Telemetry:
    # environ={}: no OTEL_* variable of the machine may change what is exported here.
    return avalo_otel.configure(
        prometheus_port=port, prometheus_host="127.0.0.1", pseudonym_key="k", environ={}
    )


@pytest.fixture(scope="module")
def _app_port() -> dict[str, Any]:
    return {}


@pytest.fixture
def app(prometheus_server: PrometheusServer, _app_port: dict[str, Any]) -> Iterator[App]:
    """Our pipeline serving /metrics on loopback, scraped by the module's Prometheus; shut down after."""
    handle = None
    if "port" in _app_port:
        handle = _configure(_app_port["port"])
        if handle.prometheus_url is None:  # someone took the port meanwhile: start over on a new one
            handle.shutdown()
            handle = None
    try:
        if handle is None:
            handle = _configure(0)
            assert handle.prometheus_url, "configure(prometheus_port=0) did not serve /metrics"
            prometheus_server.reload([handle.prometheus_url])
            _app_port["port"] = urllib.parse.urlsplit(handle.prometheus_url).port
        instance, _path = as_target(handle.prometheus_url)
        yield App(handle, prometheus_server, handle.prometheus_url, instance)
    finally:
        if handle is not None:
            handle.shutdown()


def _one(results: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(results) == 1, results
    return results[0]


def _labels(result: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in result["metric"].items() if k not in ("__name__", "job", "instance")}


# -- counters -------------------------------------------------------------------------------------
def test_counters_arrive_under_avalo_names_with_recorded_values(app: App) -> None:
    for _ in range(7):
        avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "image"}, value=3)
    failed = {"domain": "wallet", "operation": "wallet.spend", "errorCode": "INSUFFICIENT_FUNDS"}
    avalo_otel.inc_counter("wallet_tx_failed_total", failed)
    avalo_otel.inc_counter("wallet_tx_failed_total", failed)

    prom = app.prom
    assert prom.wait_for_value(app.sel("chat_messages_sent_total", messageType="text"), 7) == 7
    assert prom.wait_for_value(app.sel("chat_messages_sent_total", messageType="image"), 3) == 3
    result = _one(prom.wait_for(app.sel("wallet_tx_failed_total"), lambda r: len(r) == 1 and sample_value(r[0]) == 2))
    assert _labels(result) == failed  # the original's label names (camelCase errorCode) as they are
    assert result["metric"]["__name__"] == "wallet_tx_failed_total"

    sent = prom.query(app.sel("chat_messages_sent_total"))
    assert sorted((_labels(r)["messageType"], sample_value(r)) for r in sent) == [("image", 3.0), ("text", 7.0)]
    assert all(_labels(r) == {"domain": "chat", "messageType": r["metric"]["messageType"]} for r in sent)
    assert prom.value(f"sum({app.sel('chat_messages_sent_total')})") == 10
    assert prom.value(app.sel("up")) == 1


# -- histograms -----------------------------------------------------------------------------------
def test_histogram_quantiles_count_and_sum(app: App) -> None:
    # 96 × 100 ms + 4 × 1000 ms: the true p95 (95th of 100 sorted values) is 100 ms and the true
    # p99 is 1000 ms. 96/4 rather than 95/5 keeps the p95 rank (95) off a bucket's exact count,
    # where float rounding of q × count could pick either neighbouring bucket.
    # Recorded in two equal halves with a scrape between them, so rate() has an increase to see.
    labels = {"domain": "chat", "operation": "chat.send"}
    prom = app.prom

    def record_half() -> None:
        for _ in range(48):
            avalo_otel.observe_latency("chat_delivery_latency_ms", 100, labels)
        for _ in range(2):
            avalo_otel.observe_latency("chat_delivery_latency_ms", 1000, labels)

    record_half()
    prom.wait_for_value(app.sel("chat_delivery_latency_ms_count"), 50)
    record_half()
    assert prom.wait_for_value(app.sel("chat_delivery_latency_ms_count"), 100) == 100
    assert prom.value(app.sel("chat_delivery_latency_ms_sum")) == 96 * 100 + 4 * 1000

    buckets = {r["metric"]["le"]: sample_value(r) for r in prom.query(app.sel("chat_delivery_latency_ms_bucket"))}
    assert (buckets["75"], buckets["100"], buckets["750"], buckets["1000"], buckets["+Inf"]) == (0, 96, 96, 100, 100)
    assert _labels(_one(prom.query(app.sel("chat_delivery_latency_ms_count")))) == labels

    raw = app.sel("chat_delivery_latency_ms_bucket")
    p95 = prom.value(f"histogram_quantile(0.95, sum by (le) ({raw}))")
    p99 = prom.value(f"histogram_quantile(0.99, sum by (le) ({raw}))")
    p50 = prom.value(f"histogram_quantile(0.50, sum by (le) ({raw}))")
    assert p95 is not None and 75 < p95 <= 100, p95  # inside the (75, 100] bucket holding the true p95
    assert p50 is not None and 75 < p50 <= 100, p50
    assert p99 is not None and 750 < p99 <= 1000, p99

    # The dashboard form: over the rate of the last minute (both halves have the same shape).
    rated = prom.value(f"histogram_quantile(0.95, sum by (le) (rate({raw}[1m])))")
    assert rated is not None and math.isfinite(rated) and 75 < rated <= 100, rated


# -- the telemetry event's metrics ----------------------------------------------------------------
def test_log_telemetry_outcomes_and_target_up(app: App) -> None:
    for _ in range(3):
        avalo_otel.log_telemetry("wallet", "wallet.spend", success=False, error_code="TIMEOUT", latency_ms=1200)
    for _ in range(2):
        avalo_otel.log_telemetry("wallet", "wallet.spend", success=False, error_code="INSUFFICIENT_FUNDS", latency_ms=40)
    for _ in range(4):
        avalo_otel.log_telemetry("wallet", "wallet.spend", success=True, latency_ms=80)

    prom = app.prom
    ops = "avalo_operations_total"
    server = _one(prom.wait_for(app.sel(ops, outcome="server_error"), lambda r: len(r) == 1 and sample_value(r[0]) == 3))
    assert _labels(server) == {"domain": "wallet", "operation": "wallet.spend", "outcome": "server_error", "error_code": "TIMEOUT"}
    client = _one(prom.wait_for(app.sel(ops, outcome="client_error"), lambda r: len(r) == 1 and sample_value(r[0]) == 2))
    assert _labels(client) == {
        "domain": "wallet", "operation": "wallet.spend", "outcome": "client_error", "error_code": "INSUFFICIENT_FUNDS",
    }
    success = _one(prom.wait_for(app.sel(ops, outcome="success"), lambda r: len(r) == 1 and sample_value(r[0]) == 4))
    # error_code="" on /metrics: Prometheus treats an empty label as absent.
    assert _labels(success) == {"domain": "wallet", "operation": "wallet.spend", "outcome": "success"}

    # The SLO's bad-event ratio counts server errors only.
    assert prom.value(f'sum({app.sel(ops, outcome="server_error")}) / sum({app.sel(ops)})') == pytest.approx(3 / 9)
    latency = app.sel("avalo_operation_latency_ms_count", domain="wallet", operation="wallet.spend")
    assert prom.wait_for_value(latency, 9) == 9
    assert prom.value(app.sel("avalo_operation_latency_ms_sum")) == 3 * 1200 + 2 * 40 + 4 * 80

    assert prom.value(app.sel("up")) == 1
    assert prom.value(f'up{{job="{prom.job}",instance="{app.instance}"}}') == 1


# -- gauges ---------------------------------------------------------------------------------------
def test_gauge_shows_latest_value(app: App) -> None:
    avalo_otel.set_gauge("active_users", 1250, {"region": "eu-central"})
    avalo_otel.set_gauge("active_chats", 17, {"region": "eu-central"})
    prom = app.prom
    assert prom.wait_for_value(app.sel("active_users", region="eu-central"), 1250) == 1250
    avalo_otel.set_gauge("active_users", 1300, {"region": "eu-central"})
    avalo_otel.set_gauge("active_users", 1180, {"region": "eu-central"})
    assert prom.wait_for_value(app.sel("active_users", region="eu-central"), 1180) == 1180
    assert _labels(_one(prom.query(app.sel("active_users")))) == {"region": "eu-central"}
    assert prom.value(app.sel("active_chats", region="eu-central")) == 17


# -- names: on the wire and as Prometheus stored them ---------------------------------------------
_BAD_NAME = re.compile(r"_total_total|_milliseconds")


def test_metric_names_on_metrics_text_and_in_prometheus(app: App) -> None:
    avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    avalo_otel.inc_counter("wallet_tx_failed_total", {"domain": "wallet", "operation": "wallet.spend", "errorCode": "TIMEOUT"})
    avalo_otel.observe_latency("chat_delivery_latency_ms", 120, {"domain": "chat", "operation": "chat.deliver"})
    avalo_otel.set_gauge("active_users", 3, {"region": "us-east"})
    avalo_otel.log_telemetry("chat", "chat.send", latency_ms=55)

    # Both formats Prometheus may negotiate: the classic text format and OpenMetrics.
    for accept in (None, "application/openmetrics-text;version=1.0.0"):
        text = app.fetch(accept)
        sample_names = {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
        assert not [n for n in sample_names if _BAD_NAME.search(n)], (accept, sorted(sample_names))
        assert "_total_total" not in text and "_milliseconds" not in text, accept
        for name in (
            "chat_messages_sent_total", "wallet_tx_failed_total", "active_users", "avalo_operations_total",
            "chat_delivery_latency_ms_bucket", "chat_delivery_latency_ms_sum", "chat_delivery_latency_ms_count",
            "avalo_operation_latency_ms_bucket", "avalo_operation_latency_ms_sum", "avalo_operation_latency_ms_count",
        ):
            assert name in sample_names, (accept, name, sorted(sample_names))
        assert not any(n.endswith("_created") for n in sample_names), sorted(sample_names)
        assert not re.search(r"otel_scope_|chat_delivery_latency_ms_ms", text), accept
        assert 'chat_delivery_latency_ms_bucket{domain="chat",le="100",operation="chat.deliver"} 0' in text
        assert 'chat_delivery_latency_ms_bucket{domain="chat",le="150",operation="chat.deliver"} 1' in text
    assert "# TYPE chat_messages_sent_total counter" in app.fetch()
    assert "# TYPE chat_delivery_latency_ms histogram" in app.fetch()

    # What Prometheus stored after scraping (it negotiates OpenMetrics first).
    prom = app.prom
    prom.wait_for_value(app.sel("chat_delivery_latency_ms_count", operation="chat.deliver"), 1)
    stored = {r["metric"]["__name__"] for r in prom.query(f"count by (__name__) ({app.sel()})")}
    assert not [n for n in stored if _BAD_NAME.search(n)], sorted(stored)
    assert {
        "chat_messages_sent_total", "wallet_tx_failed_total", "active_users", "avalo_operations_total",
        "chat_delivery_latency_ms_bucket", "chat_delivery_latency_ms_sum", "chat_delivery_latency_ms_count",
        "avalo_operation_latency_ms_bucket", "avalo_operation_latency_ms_sum", "avalo_operation_latency_ms_count",
        "up",
    } <= stored, sorted(stored)
