"""The SLOs from end to end: events through the public API, stored by the real SQLite metric
exporter, evaluated in-process, and served as gauges on the Prometheus endpoint."""

from __future__ import annotations

import re
import urllib.request

import pytest

import avalo_otel as ao
from avalo_otel.slo import SLOEvaluator, load_slos
from avalo_otel.slo.gauges import register_gauges

SLOS = {s.id: s for s in load_slos()}


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in:\n" + "\n".join(l for l in text.splitlines() if name in l))


def test_events_through_the_api_become_slo_reports_and_gauges(configured, tmp_path):
    handle = configured(metrics_exporters="prometheus,sqlite", prometheus_port=0,
                        store_path=str(tmp_path / "t.db"), metric_export_interval_ms=60_000)
    for i in range(400):
        ao.log_telemetry("chat", "chat.send", success=i % 200 != 0, error_code=None if i % 200 else "INTERNAL",
                         latency_ms=120 if i % 10 else 420)
    for i in range(100):
        ao.log_error("wallet", "wallet.spend", "INSUFFICIENT_FUNDS")  # client class: good events
    ao.log_telemetry("safety", "safety.panic_press", success=False, error_code="TIMEOUT", latency_ms=6000)
    assert handle.force_flush()

    evaluator = SLOEvaluator(handle.store, list(SLOS.values()))
    reports = {r.slo.id: r for r in evaluator.evaluate()}
    chat = reports["slo_chat_delivery"]
    latency, availability = chat.indicators
    assert (availability.window.total, availability.window.bad) == (400, 2)  # 99.5%
    assert (latency.window.total, latency.window.bad) == (400, 40)  # 420 ms > 300 ms
    assert latency.warn_bad == 0                                     # but <= 500 ms: yellow
    assert (latency.status, availability.status, chat.status) == ("yellow", "green", "yellow")
    wallet = reports["slo_wallet_operations"].primary
    assert (wallet.window.total, wallet.window.bad, wallet.sli) == (100, 0, 1.0)
    panic = {i.indicator.id: i for i in reports["slo_panic_safety"].indicators}
    assert panic["availability"].budget_status == "exhausted"
    assert panic["latency_5s"].window.bad == 1
    assert reports["slo_api_overall"].status == "no_data"

    register_gauges(evaluator, handle.meter_provider)
    text = _scrape(handle.prometheus_url)
    assert _sample(text, "avalo_slo_sli", slo="slo_chat_delivery") == pytest.approx(chat.primary.sli)
    assert _sample(text, "avalo_slo_error_budget_remaining_ratio", slo="slo_wallet_operations") == 1.0
    # A zero-tolerance SLO that was hit: OTel has no infinite gauge value, so a count and -1 say it.
    assert not re.search(r'avalo_slo_burn_rate\{slo="slo_panic_safety",window="5m"\}', text)
    assert _sample(text, "avalo_slo_bad_events", slo="slo_panic_safety", window="5m") == 1
    assert _sample(text, "avalo_slo_error_budget_remaining_ratio", slo="slo_panic_safety") == -1
    assert _sample(text, "avalo_slo_burn_rate", slo="slo_chat_delivery", window="1h") == pytest.approx(
        chat.primary.burn_rates["1h"])
    # No data is no sample, never a made-up 0 or 1.
    assert not re.search(r'avalo_slo_sli\{[^}]*slo="slo_api_overall"', text)


def test_a_user_slo_threshold_becomes_a_bucket_boundary_through_the_setting(configured, tmp_path):
    from avalo_otel.slo import parse_slos
    from avalo_otel.settings import Settings, latency_buckets

    definition = """
slos:
  - id: slo_chat_350
    min_events: 10
    select: {operations: [chat.send]}
    indicators:
      - {id: latency, kind: latency, threshold_ms: 350, objective: 90}
"""
    settings = Settings.load({"AVALO_OTEL_LATENCY_BUCKETS_MS": "350"})
    (slo,) = parse_slos(definition, buckets=latency_buckets(settings))
    handle = configured(metrics_exporters="sqlite", store_path=str(tmp_path / "t.db"),
                        environ={"AVALO_OTEL_LATENCY_BUCKETS_MS": "350"})
    for latency in [340] * 18 + [360] * 2:  # 340 and 360 share a bucket (300, 400] without the setting
        ao.log_success("chat", "chat.send", latency_ms=latency)
    assert handle.force_flush()
    (point,) = handle.store.query_metrics(name="avalo_operation_latency_ms")
    assert 350.0 in point["buckets"]["bounds"]
    (report,) = SLOEvaluator(handle.store, [slo]).evaluate()
    assert (report.primary.window.total, report.primary.window.bad, report.primary.sli) == (20, 2, 0.9)
