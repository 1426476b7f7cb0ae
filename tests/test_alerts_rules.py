"""Alert rules and signals: validation (nothing stored on error), the rule API on a real SQLiteStore,
in-process signal values on hand-made points, and the PromQL checked and evaluated by real promtool."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import pytest

import avalo_otel
from avalo_otel.alerts import (
    PREDEFINED_RULES, AlertRule, AlertRuleError, acknowledge_alert, delete_alert_rule, disable_alert_rule,
    enable_alert_rule, ensure_predefined_rules, get_alert_events, get_alert_rule, histogram_quantile,
    list_alert_rules, prometheus_alerting_rule, rule_promql, set_alert_rule, validate_rule,
)
from avalo_otel.alerts.signals import CATALOG, evaluate_signal, signal_for
from avalo_otel.store import SQLiteStore
from alert_points import MINUTE, T0, gauge, latency, ops, run_promtool

GOOD: dict[str, Any] = {
    "id": "custom_alert_id", "name": "Custom Alert", "severity": "WARN", "metric": "chat_messages_failed_total",
    "threshold": 100, "windowMinutes": 5, "condition": "greater_than", "enabled": True,
    "description": "Description of what this alert monitors", "labels": {"domain": "custom"}, "cooldownMinutes": 15,
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "alerts.db")
    yield s
    s.close()


# -- validation --------------------------------------------------------------------------------
def test_the_originals_camel_case_rule_is_accepted_and_round_trips(store: SQLiteStore) -> None:
    rule = set_alert_rule(GOOD, store=store)
    assert rule.window_minutes == 5 and rule.cooldown_minutes == 15 and rule.threshold == 100.0
    assert dict(rule.labels) == {"domain": "custom"}
    assert get_alert_rule("custom_alert_id", store=store) == rule
    snake = {k: v for k, v in GOOD.items() if k not in ("windowMinutes", "cooldownMinutes")}
    assert validate_rule({**snake, "window_minutes": 5, "cooldown_minutes": 15}) == rule
    assert AlertRule.from_document(store.get_alert_rule("custom_alert_id") or {}) == rule


BAD = [
    ({"id": ""}, "id"),
    ({"id": "Bad-Id"}, "id"),
    ({"id": "x" * 64}, "id"),
    ({"condition": "above"}, "condition: unknown condition 'above'; expected one of greater_than, greater_than_or_equal"),
    ({"severity": "LOUD"}, "severity: unknown severity 'LOUD'; expected one of INFO, WARN, ERROR, CRITICAL"),
    ({"threshold": "100"}, "threshold"),
    ({"threshold": math.nan}, "threshold"),
    ({"threshold": math.inf}, "threshold"),
    ({"threshold": -1}, "threshold: must not be negative"),
    ({"threshold": True}, "threshold"),
    ({"windowMinutes": 0}, "windowMinutes"),
    ({"windowMinutes": 2.5}, "windowMinutes"),
    ({"windowMinutes": 1441}, "windowMinutes"),
    ({"cooldownMinutes": -1}, "cooldownMinutes"),
    ({"metric": "custom_metric_name"}, "metric: unknown metric 'custom_metric_name'; known metrics include chat_error_rate"),
    ({"labels": {"bad-name": "x"}}, "labels: 'bad-name' is not a valid label name"),
    ({"labels": {"__name__": "x"}}, "labels: '__name__' is not a valid label name"),
    ({"labels": {"severity": "x"}}, "labels: 'severity' is set from the rule itself"),
    ({"labels": {"team": 3}}, "labels: the value of 'team'"),
    ({"selector": {"nope": "x"}}, "selector: chat_messages_failed_total has no label 'nope'"),
    ({"enabled": "yes"}, "enabled"),
    ({"severity_level": "WARN"}, "unknown key(s) ['severity_level']"),
    ({"cooldown_minutes": 5}, "'cooldown_minutes' is given twice"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m.split(":")[0][:30] + str(i) for i, (_, m) in enumerate(BAD)])
def test_each_bad_rule_is_rejected_naming_the_field_and_nothing_is_stored(
        store: SQLiteStore, change: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertRuleError, match=None) as info:
        set_alert_rule({**GOOD, **change}, store=store)
    assert message in str(info.value)
    assert store.list_alert_rules() == []


def test_missing_required_fields_and_selectors(store: SQLiteStore) -> None:
    for field in ("severity", "metric", "threshold", "windowMinutes"):
        with pytest.raises(AlertRuleError, match=f"missing required field '{field}'"):
            validate_rule({k: v for k, v in GOOD.items() if k != field})
    with pytest.raises(AlertRuleError, match="'domain' is fixed by the metric chat_error_rate"):
        validate_rule({**GOOD, "metric": "chat_error_rate", "selector": {"domain": "wallet"}})
    with pytest.raises(AlertRuleError, match="'outcome' is fixed"):
        validate_rule({**GOOD, "metric": "chat_error_rate", "selector": {"outcome": "success"}})
    with pytest.raises(AlertRuleError, match="non-empty list"):
        validate_rule({**GOOD, "metric": "chat_error_rate", "selector": {"operation": []}})
    rule = validate_rule({**GOOD, "metric": "chat_error_rate", "selector": {"operation": ["chat.send", "chat.deliver"]}})
    assert rule.selector == {"operation": ("chat.send", "chat.deliver")}
    assert store.list_alert_rules() == []


def test_enable_disable_delete_list_round_trip(store: SQLiteStore) -> None:
    set_alert_rule(GOOD, store=store)
    set_alert_rule({**GOOD, "id": "second", "enabled": False}, store=store)
    assert [r.id for r in list_alert_rules(store=store)] == ["custom_alert_id", "second"]
    assert [r.id for r in list_alert_rules(enabled=False, store=store)] == ["second"]
    assert disable_alert_rule("custom_alert_id", store=store) is True
    assert enable_alert_rule("second", store=store) is True
    assert [r.id for r in list_alert_rules(enabled=True, store=store)] == ["second"]
    assert get_alert_rule("custom_alert_id", store=store).enabled is False  # type: ignore[union-attr]
    assert enable_alert_rule("missing", store=store) is False
    assert delete_alert_rule("second", store=store) is True
    assert delete_alert_rule("second", store=store) is False
    assert [r.id for r in list_alert_rules(store=store)] == ["custom_alert_id"]


def test_predefined_rules_are_the_originals_and_never_overwrite_an_edit(store: SQLiteStore) -> None:
    by_id = {r.id: r for r in PREDEFINED_RULES}
    assert {k: (r.severity, r.metric, r.condition, r.threshold, r.window_minutes) for k, r in by_id.items()} == {
        "chat_error_rate_high": ("WARN", "chat_error_rate", "greater_than", 2.0, 5),
        "wallet_failures_critical": ("CRITICAL", "wallet_error_rate", "greater_than", 0.5, 5),
        "panic_latency_critical": ("CRITICAL", "panic_latency_p95_ms", "greater_than", 5000.0, 1),
        "api_error_rate_critical": ("CRITICAL", "api_error_rate", "greater_than", 3.0, 10),
    }
    for rule in PREDEFINED_RULES:
        assert validate_rule(rule) == rule
    assert sorted(ensure_predefined_rules(store)) == sorted(by_id)
    edited = get_alert_rule("chat_error_rate_high", store=store).replace(threshold=5.0)  # type: ignore[union-attr]
    set_alert_rule(edited, store=store)
    disable_alert_rule("wallet_failures_critical", store=store)
    assert ensure_predefined_rules(store) == []
    assert get_alert_rule("chat_error_rate_high", store=store).threshold == 5.0  # type: ignore[union-attr]
    assert get_alert_rule("wallet_failures_critical", store=store).enabled is False  # type: ignore[union-attr]


def test_store_none_without_a_configured_store_says_what_to_do(configured: Any) -> None:
    with pytest.raises(RuntimeError, match="pass store="):
        list_alert_rules()
    configured(logs_exporters="none", traces_exporters="none")
    with pytest.raises(RuntimeError, match="configure avalo_otel with a store exporter"):
        set_alert_rule(GOOD)


def test_store_none_uses_the_configured_handles_store(configured: Any, tmp_path: Path) -> None:
    handle = configured(logs_exporters="sqlite", traces_exporters="none", store_path=str(tmp_path / "h.db"))
    set_alert_rule(GOOD)
    assert handle.store.get_alert_rule("custom_alert_id")["threshold"] == 100


def test_acknowledge_records_who_when_and_expiry(store: SQLiteStore) -> None:
    store.create_alert_event({"id": "r:1", "ruleId": "r", "severity": "WARN", "status": "firing", "timestamp": T0})
    assert acknowledge_alert("nope", "admin-1", store=store) is False
    assert acknowledge_alert("r:1", "admin-1", store=store, now_ms=T0 + 5, expires_minutes=30) is True
    event = get_alert_events(acknowledged=True, store=store)[0]
    assert (event["acknowledgedBy"], event["acknowledgedAt"], event["ackExpiresAt"]) == ("admin-1", T0 + 5,
                                                                                         T0 + 5 + 30 * MINUTE)
    assert get_alert_events(acknowledged=False, store=store) == []
    assert [e["id"] for e in get_alert_events(status="firing", store=store)] == ["r:1"]
    with pytest.raises(ValueError, match="admin_user_id"):
        acknowledge_alert("r:1", "", store=store)


# -- signals in process ------------------------------------------------------------------------
def _rule(metric: str, window: int = 5, **extra: Any) -> AlertRule:
    return validate_rule({"id": "t", "severity": "WARN", "metric": metric, "threshold": 1, "windowMinutes": window,
                          **extra})


def test_error_rate_is_server_errors_over_all_operations_in_percent(store: SQLiteStore) -> None:
    now = T0 + 10 * MINUTE
    store.write("metrics", [
        ops(now - 4 * MINUTE, "chat", "chat.send", "success", 90),
        ops(now - 1 * MINUTE, "chat", "chat.send", "success", 100),
        ops(now - 2 * MINUTE, "chat", "chat.send", "server_error", 6, error_code="TIMEOUT"),
        ops(now - 2 * MINUTE, "chat", "chat.deliver", "client_error", 4, error_code="RATE_LIMITED"),
        ops(now - 6 * MINUTE, "chat", "chat.send", "server_error", 1000, error_code="TIMEOUT"),  # outside the window
        ops(now - 3 * MINUTE, "wallet", "wallet.spend", "server_error", 50, error_code="INTERNAL"),  # other domain
    ])
    assert evaluate_signal(store, _rule("chat_error_rate"), now) == pytest.approx(100 * 6 / 200)
    assert evaluate_signal(store, _rule("chat_error_rate", selector={"operation": "chat.deliver"}), now) == 0.0
    assert evaluate_signal(store, _rule("wallet_error_rate"), now) == 100.0
    assert evaluate_signal(store, _rule("api_error_rate"), now) is None  # no events: no data
    assert evaluate_signal(store, _rule("avalo_operations_total", selector={"outcome": "server_error"}), now) == 56
    assert evaluate_signal(store, _rule("avalo_operations_total", selector={"domain": "ai"}), now) is None


def test_cumulative_counters_count_the_increase_inside_the_window(store: SQLiteStore) -> None:
    now = T0 + 30 * MINUTE
    points = [ops(now - m * MINUTE, "chat", "chat.send", "success", v, temporality="cumulative", start=T0)
              for m, v in ((8, 500), (4, 580), (2, 600), (1, 20))]  # 8 is before the window; 1 is a reset
    points += [ops(now - m * MINUTE, "chat", "chat.send", "server_error", v, temporality="cumulative",
                   start=now - 3 * MINUTE) for m, v in ((2, 5), (1, 10))]  # starts inside the window
    store.write("metrics", points)
    # success: 580→600 (+20) then reset to 20 (+20) = 40 (580 is the baseline); server_error: 5 + 5 = 10
    assert evaluate_signal(store, _rule("chat_error_rate"), now) == pytest.approx(100 * 10 / 50)


@pytest.mark.parametrize("per_bucket,expected", [
    ([10, 80, 10, 0], 750.0),      # rank 95 in (500, 1000]: 500 + 500 * (95 - 90) / 10
    ([100, 0, 0, 0], 95.0),        # first bucket: lower bound 0
    ([0, 0, 0, 10], 1000.0),       # in the +Inf bucket: the highest finite bound
    ([0, 0, 20, 0], 975.0),        # 500 + 500 * 19 / 20
    ([0, 0, 0, 0], None),          # no observations
])
def test_histogram_quantile_matches_prometheus_by_hand(per_bucket: list[float], expected: Any) -> None:
    bounds = [100.0, 500.0, 1000.0]
    cumulative, running = [], 0.0
    for bound, count in zip([*bounds, math.inf], per_bucket):
        running += count
        cumulative.append((bound, running))
    assert histogram_quantile(0.95, cumulative) == (pytest.approx(expected) if expected is not None else None)


def test_p95_signals_from_stored_histograms(store: SQLiteStore) -> None:
    now, bounds = T0 + 10 * MINUTE, [100, 500, 1000]
    store.write("metrics", [
        latency(now - MINUTE, "chat", "chat.send", [6, 40, 4, 0], bounds=bounds),
        latency(now - 2 * MINUTE, "chat", "chat.deliver", [4, 40, 6, 0], bounds=bounds),  # sums to 10/80/10
        latency(now - 30 * 1000, "safety", "safety.panic_press", [0, 0, 0, 3], bounds=bounds),
        latency(now - 20 * 1000, "safety", "safety.report", [50, 0, 0, 0], bounds=bounds),  # not a panic op
        latency(now - 2 * MINUTE, "safety", "safety.panic_process", [0, 0, 0, 7], bounds=bounds),  # outside 1 min
    ])
    assert evaluate_signal(store, _rule("chat_latency_p95_ms"), now) == pytest.approx(750.0)
    assert evaluate_signal(store, _rule("chat_latency_p95_ms", selector={"operation": "chat.send"}), now) \
        == pytest.approx(500 + 500 * (47.5 - 46) / 4)
    assert evaluate_signal(store, _rule("panic_latency_p95_ms", window=1), now) == 1000.0
    assert evaluate_signal(store, _rule("ai_latency_p95_ms"), now) is None
    # 50 fast reports and 3 panics in the +Inf bucket: rank 50.35 is past every finite bucket
    assert evaluate_signal(store, _rule("avalo_operation_latency_ms", window=1, selector={"domain": "safety"}), now) \
        == 1000.0


def test_gauges_are_the_latest_value_per_series_summed(store: SQLiteStore) -> None:
    now = T0 + 10 * MINUTE
    store.write("metrics", [
        gauge(now - 3 * MINUTE, "active_users", 100, {"region": "eu"}),
        gauge(now - 1 * MINUTE, "active_users", 120, {"region": "eu"}),
        gauge(now - 2 * MINUTE, "active_users", 30, {"region": "us"}),
        gauge(now - 9 * MINUTE, "active_users", 999, {"region": "apac"}),  # outside the window
    ])
    assert evaluate_signal(store, _rule("active_users"), now) == 150
    assert evaluate_signal(store, _rule("active_users", selector={"region": ["us", "apac"]}), now) == 30
    assert evaluate_signal(store, _rule("active_chats"), now) is None


def test_the_catalog_covers_domains_and_conventions_metrics() -> None:
    for domain in avalo_otel.Domain:
        assert f"{domain.value}_error_rate" in CATALOG and f"{domain.value}_latency_p95_ms" in CATALOG
    for name in avalo_otel.METRIC_NAMES.values():
        assert name in CATALOG
    assert signal_for("active_users").kind == "latest"


# -- PromQL, judged by the real promtool -------------------------------------------------------
def _custom_rules() -> list[AlertRule]:
    return [
        *PREDEFINED_RULES,
        _rule("chat_error_rate", selector={"operation": ["chat.send", "chat.deliver"]}).replace(id="chat_ops"),
        _rule("api_requests_total", selector={"route": 'we"ird\\route', "method": ["GET", "PO|ST"]},
              condition="less_than_or_equal", labels={"team": "a \"b\" c"}).replace(id="weird_labels"),
        _rule("active_users", condition="not_equals", threshold=0).replace(id="gauge_rule"),
        _rule("wallet_tx_latency_ms", condition="greater_than_or_equal", threshold=0.25).replace(id="wallet_p95"),
    ]


def test_generated_rules_pass_promtool_check_rules(tmp_path: Path) -> None:
    rules = _custom_rules()
    path = tmp_path / "alerts.rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "avalo", "rules": [prometheus_alerting_rule(r) for r in rules]}]}))
    done = run_promtool("check", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout + done.stderr
    assert rule_promql(PREDEFINED_RULES[0]).endswith(") > 2")
    assert 'operation=~"chat\\\\.send|chat\\\\.deliver"' in rule_promql(rules[4])
    assert 'method=~"GET|PO\\\\|ST"' in rule_promql(rules[5]) and 'route="we\\"ird\\\\route"' in rule_promql(rules[5])


def test_promtool_evaluates_the_same_values_as_the_in_process_signals(store: SQLiteStore, tmp_path: Path) -> None:
    """The same traffic as Prometheus series and as stored delta points: Prometheus' values of our
    PromQL equal the in-process values, and the generated alerting rules fire as the evaluator would."""
    bounds = [100, 500, 1000]
    per_minute = {"success": 97, "server_error": 3, "client_error": 5}
    # Multiples of 60 a minute: Prometheus' per-second rates are whole numbers, so its float
    # arithmetic is exact and the comparison can be exact too.
    latency_per_minute = {"chat.send": [240, 600, 120, 0], "chat.deliver": [0, 120, 120, 0]}
    series, docs = [], []
    for outcome, n in per_minute.items():
        series.append({"series": f'avalo_operations_total{{domain="chat",operation="chat.send",outcome="{outcome}"}}',
                       "values": f"0+{n}x10"})
        docs += [ops(T0 + m * MINUTE, "chat", "chat.send", outcome, n) for m in range(1, 11)]
    for op, counts in latency_per_minute.items():
        running = 0
        for le, count in zip(["100", "500", "1000", "+Inf"], counts):
            running += count
            series.append({"series": f'avalo_operation_latency_ms_bucket{{domain="chat",operation="{op}",le="{le}"}}',
                           "values": f"0+{running}x10"})
        series.append({"series": f'avalo_operation_latency_ms_count{{domain="chat",operation="{op}"}}',
                       "values": f"0+{sum(counts)}x10"})
        docs += [latency(T0 + m * MINUTE, "chat", op, counts, bounds=bounds) for m in range(1, 11)]
    # Wallet: traffic without a single failure (0%, not "no data"); safety: a histogram with no
    # observations in the window (no data, where histogram_quantile alone would give NaN).
    series.append({"series": 'avalo_operations_total{domain="wallet",operation="wallet.spend",outcome="success"}',
                   "values": "0+60x10"})
    docs += [ops(T0 + m * MINUTE, "wallet", "wallet.spend", "success", 60) for m in range(1, 11)]
    for le in ("100", "500", "1000", "+Inf"):
        series.append({"series": f'avalo_operation_latency_ms_bucket{{domain="safety",operation="safety.report",le="{le}"}}',
                       "values": "7x10"})
    series.append({"series": 'avalo_operation_latency_ms_count{domain="safety",operation="safety.report"}',
                   "values": "7x10"})
    docs += [latency(T0 + m * MINUTE, "safety", "safety.report", [0, 0, 0, 0], bounds=bounds) for m in range(1, 11)]
    store.write("metrics", docs)
    now = T0 + 10 * MINUTE
    edge_cases = [_rule("wallet_error_rate"), _rule("api_error_rate"), _rule("safety_latency_p95_ms")]
    assert [evaluate_signal(store, r, now) for r in edge_cases] == [0.0, None, None]

    rate = _rule("chat_error_rate", threshold=2).replace(id="chat_rate")
    p95 = _rule("chat_latency_p95_ms", threshold=600).replace(id="chat_p95")
    quiet = _rule("chat_latency_p95_ms", threshold=1000, selector={"operation": "chat.deliver"}).replace(id="deliver")
    expected = {r.id: evaluate_signal(store, r, now) for r in (rate, p95, quiet)}
    assert expected["chat_rate"] == pytest.approx(100 * 3 / 105)
    assert expected["chat_p95"] == 875.0  # cumulative 4, 16, 20, 20 per second: 500 + 500 * (19 - 16) / 4

    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(json.dumps({"groups": [{"name": "avalo", "interval": "1m",
                                                  "rules": [prometheus_alerting_rule(r) for r in (rate, p95, quiet)]}]}))

    def alert(rule: AlertRule) -> dict[str, Any]:
        labels = prometheus_alerting_rule(rule)["labels"]
        return {"exp_labels": labels, "exp_annotations": {
            "summary": rule.name, "description": rule.description or rule.name, "value": _go_float(expected[rule.id])}}

    test = {"rule_files": [str(rules_path)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [
            {"expr": f"({CATALOG[r.metric].promql(r.selector, r.window_minutes)})", "eval_time": "10m",
             "exp_samples": [{"labels": "{}", "value": expected[r.id]}]} for r in (rate, p95)] + [
            {"expr": CATALOG[r.metric].promql(r.selector, r.window_minutes), "eval_time": "10m",
             "exp_samples": [{"labels": "{}", "value": 0}] if r.metric == "wallet_error_rate" else []}
            for r in edge_cases],
        "alert_rule_test": [
            {"alertname": "chat_rate", "eval_time": "10m", "exp_alerts": [alert(rate)]},
            {"alertname": "chat_p95", "eval_time": "10m", "exp_alerts": [alert(p95)]},
            {"alertname": "deliver", "eval_time": "10m", "exp_alerts": []},
        ],
    }]}
    test_path = tmp_path / "test.yml"
    test_path.write_text(json.dumps(test))
    done = run_promtool("test", "rules", test_path)
    assert done.returncode == 0, done.stdout + done.stderr


def _go_float(value: Any) -> str:
    """How Go's text/template prints a float64 ``$value`` (strconv 'g' shortest, no exponent here)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text
