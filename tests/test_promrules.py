"""The generated Prometheus rules: valid for promtool, proven by their generated unit tests, and
those tests fail when the rules are wrong (a wrong factor, a lost guard, a wrong bucket)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest
import yaml

import avalo_otel
from avalo_otel.alerts.rules import PREDEFINED_RULES
from avalo_otel.conventions import LATENCY_BUCKETS_MS
from avalo_otel.slo import SLO, load_slos
from avalo_otel.slo import promrules as pr
from avalo_otel.slo.policy import BURN_WINDOWS, MULTIWINDOW_ALERTS

pytestmark = pytest.mark.timeout(180)
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z_]+:[a-z_]+[0-9]+[mhd]$")


def _tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(path).exists():
        pytest.fail(f"{name} not found: apt-get install -y --no-install-recommends prometheus prometheus-alertmanager",
                    pytrace=False)
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=150)


def _write(out: Path, slos: Sequence[SLO], *, rules_slos: Sequence[SLO] | None = None,
           policy: Any = MULTIWINDOW_ALERTS, buckets: Sequence[float] = LATENCY_BUCKETS_MS, rules: Any = ()) -> None:
    """The rules from ``rules_slos``/``policy`` (a mutant), the tests from ``slos`` and the real policy."""
    out.mkdir(parents=True, exist_ok=True)
    (out / pr.RULES_FILE).write_text(pr.rules_yaml(rules_slos or slos, rules, buckets=buckets, policy=policy))
    (out / pr.TESTS_FILE).write_text(pr.unit_tests_yaml(slos, buckets=buckets))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rules")
    paths = pr.write_rules(out, slos=load_slos(), rules=PREDEFINED_RULES, buckets=LATENCY_BUCKETS_MS)
    assert [p.name for p in paths] == [pr.RULES_FILE, pr.TESTS_FILE, pr.INHIBIT_FILE]
    return out


def test_promtool_check_rules(generated: Path) -> None:
    result = promtool("check", "rules", pr.RULES_FILE, cwd=generated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_generated_unit_tests_pass(generated: Path) -> None:
    result = promtool("test", "rules", pr.TESTS_FILE, cwd=generated)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_rule_file_shape(generated: Path) -> None:
    doc = yaml.safe_load((generated / pr.RULES_FILE).read_text())
    slos = {s.id: s for s in load_slos()}
    groups = {g["name"]: g["rules"] for g in doc["groups"]}
    assert set(groups) == {f"avalo-slo-{i}" for i in slos} | {pr.THRESHOLD_GROUP}
    records = [r for g in doc["groups"] for r in g["rules"] if "record" in r]
    for rule in records:
        assert RECORD_NAME.match(rule["record"]), rule["record"]
        assert set(rule["labels"]) == {"slo", "indicator"}
        assert "histogram_quantile" not in rule["expr"]
    names = {(r["labels"]["slo"], r["labels"]["indicator"], r["record"]) for r in records}
    assert len(names) == len(records)  # no series recorded twice
    for slo in slos.values():
        for ind in slo.indicators:
            for window in [*BURN_WINDOWS, f"{slo.window_days}d"]:
                assert (slo.id, ind.id, pr.SLI_ERROR + window) in names
                assert (slo.id, ind.id, pr.EVENTS + window) in names
                assert ((slo.id, ind.id, pr.BURN_RATE + window) in names) != ind.zero_tolerance
    chat = {r["record"]: r["expr"] for r in groups["avalo-slo-slo_chat_delivery"]
            if "record" in r and r["labels"]["indicator"] == "latency"}
    assert 'le="300"' in chat[pr.SLI_ERROR + "5m"] and "_count" in chat[pr.SLI_ERROR + "5m"]
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    burn = [a for a in alerts if a["alert"].startswith("slo_burn_")]
    assert len(burn) == 2 * sum(len(s.indicators) for s in slos.values())
    assert all("for" not in a for a in alerts)
    panic = next(a for a in burn if a["alert"] == "slo_burn_slo_panic_safety_availability_page")
    assert "burn_rate" not in panic["expr"] and panic["keep_firing_for"] == "25m"
    assert "no error budget" in panic["annotations"]["description"]
    assert {a["alert"] for a in alerts} >= {r.id for r in PREDEFINED_RULES}


def test_recording_rule_names_and_labels() -> None:
    """The names the consistency test in-process vs Prometheus relies on."""
    slo = next(s for s in load_slos() if s.id == "slo_chat_delivery")
    ind = slo.indicator("availability")
    assert pr.windows(slo) == ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    assert pr.recorded(pr.BURN_RATE, "1h", slo, ind) == \
        'avalo_slo:burn_rate:ratio_rate1h{slo="slo_chat_delivery",indicator="availability"}'
    assert pr.alert_identity(slo, ind, "ticket") == ("slo_burn_slo_chat_delivery_availability_ticket", {
        "severity": "warn", "rule_id": "slo_burn_slo_chat_delivery_availability_ticket",
        "slo": "slo_chat_delivery", "indicator": "availability", "tier": "ticket"})


# -- the tests can fail -------------------------------------------------------------------------
def _chat() -> list[SLO]:
    return [s for s in load_slos() if s.id in ("slo_chat_delivery", "slo_panic_safety")]


def _mutate_indicator(slos: list[SLO], slo_id: str, ind_id: str, **changes: Any) -> list[SLO]:
    out = []
    for slo in slos:
        if slo.id == slo_id:
            slo = dataclasses.replace(slo, indicators=tuple(
                dataclasses.replace(i, **changes) if i.id == ind_id else i for i in slo.indicators))
        out.append(slo)
    return out


# mutant → (rules changed how, the alert and eval time the generated tests must then fail on)
MUTANTS: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "page factor 14.4 -> 40": (lambda: {"policy": tuple(
        dataclasses.replace(a, factor=40.0) if a.factor == 14.4 else a for a in MULTIWINDOW_ALERTS)},
        "slo_burn_slo_chat_delivery_availability_page, time: 10m"),       # the fast burn no longer pages
    "no min-events guard": (lambda: {"rules_slos": [dataclasses.replace(s, alert_min_events=1) for s in _chat()]},
                            "slo_burn_slo_chat_delivery_availability_page, time: 20m"),  # 19 events page
    "latency bucket 300 -> 400": (lambda: {"rules_slos": _mutate_indicator(
        _chat(), "slo_chat_delivery", "latency", threshold_ms=400.0)},
        "slo_burn_slo_chat_delivery_latency_page, time: 10m"),
    "zero tolerance treated as 99.9%": (lambda: {"rules_slos": _mutate_indicator(
        _chat(), "slo_panic_safety", "availability", objective=99.9)},
        "slo_burn_slo_panic_safety_availability_page, time: 30m"),       # no keep_firing_for
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_generated_tests_fail_on_wrong_rules(mutant: str, tmp_path: Path) -> None:
    mutate, failing = MUTANTS[mutant]
    _write(tmp_path, _chat(), **mutate())
    assert promtool("check", "rules", pr.RULES_FILE, cwd=tmp_path).returncode == 0
    result = promtool("test", "rules", pr.TESTS_FILE, cwd=tmp_path)
    assert result.returncode == 1, f"{mutant}: the generated tests still pass"
    assert f"alertname: {failing}," in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]


def test_unmutated_subset_passes(tmp_path: Path) -> None:  # the control of the mutants above
    _write(tmp_path, _chat())
    result = promtool("test", "rules", pr.TESTS_FILE, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


# -- user SLOs ----------------------------------------------------------------------------------
USER_SLOS = """
version: 1
slos:
  - id: slo_media_upload
    name: Media upload
    select: {operations: [media.upload], domains: [notifications]}
    window_days: 7
    alert_min_events: 50
    indicators:
      - {id: fast, kind: latency, threshold_ms: 1000, objective: 99}
      - {id: custom_bucket, kind: latency, threshold_ms: 350, objective: 90}
      - {id: never_slow, kind: latency, threshold_ms: 60000, objective: 100}
      - {id: availability, kind: availability, objective: 99.9}
"""


def test_user_slo_file_generates_valid_tested_rules(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(USER_SLOS)
    buckets = tuple(sorted({*LATENCY_BUCKETS_MS, 350.0}))  # AVALO_OTEL_LATENCY_BUCKETS_MS=350 serves le="350.0"
    slos = load_slos([path], builtin=False, buckets=buckets)
    out = tmp_path / "out"
    paths = pr.write_rules(out, slos=slos, rules=(), buckets=buckets)
    text = paths[0].read_text()
    assert 'le="1000"' in text and 'le="350.0"' in text and "ratio_rate7d" in text and ">= 50" in text
    assert 'operation=~"media\\\\.upload|notifications\\\\..+"' in text
    assert pr.THRESHOLD_GROUP not in text
    check = promtool("check", "rules", pr.RULES_FILE, cwd=out)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = yaml.safe_load(paths[1].read_text())["tests"]
    assert any("never_slow: zero tolerance" in t["name"] for t in tests)
    result = promtool("test", "rules", pr.TESTS_FILE, cwd=out)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


# -- the pieces that meet other systems ---------------------------------------------------------
def test_le_label_is_what_the_endpoint_serves(configured: Callable[..., avalo_otel.Telemetry]) -> None:
    handle = configured(metrics_exporters="prometheus", prometheus_port=0, prometheus_host="127.0.0.1")
    avalo_otel.log_telemetry("chat", "chat.send", latency_ms=120)
    assert handle.prometheus_url
    with urllib.request.urlopen(handle.prometheus_url, timeout=5) as resp:
        text = resp.read().decode()
    for threshold in (300, 2000, 2500, 5000):
        le = pr.le_value(threshold, LATENCY_BUCKETS_MS)
        assert f'avalo_operation_latency_ms_bucket{{domain="chat",le="{le}",operation="chat.send"}} 1' in text, le
    with pytest.raises(ValueError):
        pr.le_value(301, LATENCY_BUCKETS_MS)


def test_inhibit_fragment_is_a_valid_alertmanager_config(generated: Path) -> None:
    fragment = yaml.safe_load((generated / pr.INHIBIT_FILE).read_text())
    assert fragment == {"inhibit_rules": [{"source_matchers": ['tier="page"'], "target_matchers": ['tier="ticket"'],
                                           "equal": ["slo", "indicator"]}]}
    config = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}], **fragment}
    path = generated / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([_tool("amtool"), "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
