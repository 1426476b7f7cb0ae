"""One definition, two evaluators, one answer: the same synthetic traffic gives the same SLIs,
event counts and burn rates in the in-process evaluator and in a real Prometheus running the
generated recording rules.

Three days and a bit of minute-level traffic for every SLO (a steady part, then a 40-minute
incident of errors and slow requests) go (a) into a SQLite store as the per-minute delta points
our store exporters write, and (b) into a real Prometheus TSDB as the cumulative series our
/metrics endpoint serves, backfilled with ``promtool tsdb create-blocks-from openmetrics``.
Prometheus then answers each generated recording rule's expression at the traffic's last
minute; the in-process evaluator reports the same windows. Every series starts from 0 at the
same first sample and has a sample at both ends of every window, so Prometheus extrapolates
nothing: the two must agree to rounding, for every SLO, indicator and window from 5m to 30d.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from alert_points import promtool
from avalo_otel.conventions import LATENCY_BUCKETS_MS
from avalo_otel.slo import SLOEvaluator, load_slos
from avalo_otel.slo.policy import BURN_WINDOWS
from avalo_otel.slo.promrules import rules_yaml
from avalo_otel.store import SQLiteStore
from prometheus_server import free_port, prometheus_binary
from slo_traffic import MINUTE, bucket_counts, points

pytestmark = pytest.mark.timeout(240)

DAYS = 3
MINUTES = DAYS * 1440 + 60
INCIDENT = 40  # the last 40 minutes
# Per minute: operation -> (ok, client errors, server errors, latencies) for steady / incident.
STEADY = {
    "chat.send": (992, 5, 3, [120] * 950 + [400] * 40 + [900] * 10),
    "wallet.spend": (199, 1, 0, []),
    "wallet.refund": (20, 0, 0, []),
    "safety.panic_press": (4, 0, 0, [800] * 4),
    "ai.request": (98, 0, 2, [1500] * 96 + [2600] * 4),
    "support.ticket_create": (10, 0, 0, []),
    "api.request": (995, 3, 2, [60] * 1000),
}
INCIDENT_TRAFFIC = {
    **STEADY,
    "chat.send": (945, 5, 50, [120] * 700 + [400] * 200 + [900] * 100),
    "wallet.spend": (190, 2, 8, []),
    "safety.panic_press": (3, 0, 1, [800, 800, 800, 6000]),
    "api.request": (960, 10, 30, [60] * 1000),
}


def traffic(minute: int) -> dict[str, tuple[int, int, int, list[int]]]:
    return INCIDENT_TRAFFIC if minute >= MINUTES - INCIDENT else STEADY


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("consistency")
    end = int(time.time()) // 60 * 60 - 120          # the last sample, a whole minute, in the past
    start = end - MINUTES * 60                         # the first sample: every series at 0
    # (b) cumulative series, one sample per minute, as Prometheus would have scraped them.
    totals: dict[str, float] = {}
    lines: dict[str, list[str]] = {}
    bounds = [f"{b:g}" for b in LATENCY_BUCKETS_MS] + ["+Inf"]

    def sample(family: str, series: str, value: float, ts: int) -> None:
        totals[series] = totals.get(series, 0) + value
        lines.setdefault(family, []).append(f"{series} {totals[series]!r} {ts}")

    store = SQLiteStore(tmp / "store.db")
    for minute in range(MINUTES + 1):
        ts = start + minute * 60
        docs = []
        for op, (ok, client, server, latencies) in traffic(minute).items():
            domain = op.split(".")[0]
            base = f'domain="{domain}",operation="{op}"'
            scale = 0 if minute == 0 else 1  # the first sample: all series present, at 0
            for outcome, value, code in (("success", ok, ""), ("client_error", client, "VALIDATION_FAILED"),
                                         ("server_error", server, "INTERNAL")):
                sample("avalo_operations", f'avalo_operations_total{{{base},error_code="{code}",outcome="{outcome}"}}',
                       value * scale, ts)
            if latencies:
                cumulative = 0
                for le, count in zip(bounds, bucket_counts(latencies)):
                    cumulative += count
                    sample("avalo_operation_latency_ms", f'avalo_operation_latency_ms_bucket{{{base},le="{le}"}}',
                           cumulative * scale, ts)
                sample("avalo_operation_latency_ms", f"avalo_operation_latency_ms_count{{{base}}}",
                       len(latencies) * scale, ts)
                sample("avalo_operation_latency_ms", f"avalo_operation_latency_ms_sum{{{base}}}",
                       sum(latencies) * scale, ts)
            if minute:  # (a) the delta of the minute that ends with this sample, stamped inside it
                docs += points(ts * 1000 - 30_000, op, ok=ok, client_errors=client, server_errors=server,
                               latencies_ms=latencies)
        if docs:
            store.write("metrics", docs)
    text = [f"# TYPE avalo_operations counter", *lines["avalo_operations"],
            "# TYPE avalo_operation_latency_ms histogram", *lines["avalo_operation_latency_ms"], "# EOF"]
    (tmp / "series.om").write_text("\n".join(text) + "\n")
    data = tmp / "data"
    backfill = subprocess.run([promtool(), "tsdb", "create-blocks-from", "openmetrics", str(tmp / "series.om"),
                               str(data)], capture_output=True, text=True)
    assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
    rules = tmp / "rules.yml"
    rules.write_text(rules_yaml(rules=[]))
    (tmp / "prometheus.yml").write_text(f"global: {{evaluation_interval: 1h}}\nrule_files: [{rules}]\n")
    port = free_port()
    log = open(tmp / "prometheus.log", "wb")
    process = subprocess.Popen([prometheus_binary(), f"--config.file={tmp / 'prometheus.yml'}",
                                f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
                                "--storage.tsdb.retention.time=30d"], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("Prometheus did not start:\n" + (tmp / "prometheus.log").read_text()[-3000:])
                time.sleep(0.2)
        yield {"url": url, "end": end, "store": store, "rules": yaml.safe_load(rules.read_text())}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        store.close()


def _query(url: str, expr: str, at: int) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr, "time": str(at)})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _recorded(rules: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    """(record name, slo, indicator) -> expression."""
    out = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                labels = rule.get("labels", {})
                out[(rule["record"], labels.get("slo"), labels.get("indicator"))] = rule["expr"]
    return out


def test_prometheus_and_the_in_process_evaluator_agree(setup):
    end, url = setup["end"], setup["url"]
    slos = load_slos()
    reports = SLOEvaluator(setup["store"], slos).evaluate(end * 1000 - 1)  # the window ends with the last sample
    recorded = _recorded(setup["rules"])
    checked = 0
    for report in reports:
        for ind in report.indicators:
            windows = {**{name: ind.burn[name] for name in BURN_WINDOWS}, f"{report.slo.window_days}d": ind.window}
            for window, stats in windows.items():
                key = (report.slo.id, ind.indicator.id)
                events = _query(url, recorded[(f"avalo_slo:events:increase{window}", *key)], end)
                ratio = _query(url, recorded[(f"avalo_slo:sli_error:ratio_rate{window}", *key)], end)
                where = f"{report.slo.id}/{ind.indicator.id} over {window}"
                assert float(events[0]["value"][1]) == pytest.approx(stats.total, rel=1e-9), where
                assert float(ratio[0]["value"][1]) == pytest.approx(stats.bad / stats.total, rel=1e-9, abs=1e-12), where
                burn_key = (f"avalo_slo:burn_rate:ratio_rate{window}", *key)
                if ind.indicator.zero_tolerance:
                    assert burn_key not in recorded  # no division by a zero budget, in either
                else:
                    # The burn-rate rule reads the recorded ratio: evaluate it with that series' own
                    # expression in its place (the rules are not run at this past instant).
                    ratio_series = (f'avalo_slo:sli_error:ratio_rate{window}'
                                    f'{{slo="{report.slo.id}",indicator="{ind.indicator.id}"}}')
                    expr = recorded[burn_key]
                    assert ratio_series in expr, expr
                    expr = expr.replace(ratio_series, f"({recorded[(f'avalo_slo:sli_error:ratio_rate{window}', *key)]})")
                    burn = _query(url, expr, end)
                    assert float(burn[0]["value"][1]) == pytest.approx(stats.burn_rate, rel=1e-9), where
                checked += 1
    assert checked == sum(len(r.indicators) for r in reports) * (len(BURN_WINDOWS) + 1)
    # The incident shows: chat availability burns at 5% / 0.5% = 10x over 5m, far less over 30d.
    chat = next(r for r in reports if r.slo.id == "slo_chat_delivery").indicators[1]
    assert chat.burn_rates["5m"] == pytest.approx(10.0) and chat.burn_rates["3d"] < 1.5
