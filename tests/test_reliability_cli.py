"""The reliability commands on a real store file, as an on-call engineer or a deploy pipeline
types them: ``slo report`` (table and JSON), ``slo gate`` (exit 0 pass, 1 fail, 2 inconclusive),
``alerts``, ``evaluate --once`` and ``rules``."""

from __future__ import annotations

import json
import subprocess

import pytest

from avalo_otel.cli import main
from avalo_otel.store import SQLiteStore

from slo_traffic import MINUTE, points

NOW_S = 1_764_000_000.0
NOW = int(NOW_S * 1000)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "t.db"
    SQLiteStore(path).close()
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def fill(path, wallet_bad=0, chat=True):
    with SQLiteStore(path) as store:
        store.write("metrics", points(NOW - MINUTE, "wallet.spend", ok=1000 - wallet_bad, server_errors=wallet_bad))
        if chat:
            store.write("metrics", points(NOW - MINUTE, "chat.send", ok=1000, latencies_ms=[100] * 1000))


def test_report_prints_a_table_and_json(db, capsys):
    fill(db, wallet_bad=1)
    code, out, _ = run(capsys, "slo", "report", "--path", str(db), "--now", str(NOW_S))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["SLO", "/", "indicator", "status"]
    wallet = next(line for line in lines if line.startswith("slo_wallet_operations"))
    assert wallet.split()[1:3] == ["yellow", "99.900%"] and "50.0%" in wallet and "warning" in wallet
    assert next(line for line in lines if line.startswith("slo_api_overall")).split()[1] == "no_data"
    code, out, _ = run(capsys, "slo", "report", "--path", str(db), "--now", str(NOW_S), "--json",
                       "--slo", "slo_wallet_operations")
    doc = json.loads(out)
    (wallet,) = doc["reports"]
    assert (wallet["slo"], wallet["status"], wallet["budget_status"]) == ("slo_wallet_operations", "yellow", "warning")
    assert wallet["indicators"][0]["error_budget"] == {"total": 0.002, "allowed_bad_events": 2.0, "consumed": 0.5,
                                                       "remaining": 0.5, "bad_events_remaining": 1}


def test_gate_exit_codes(db, capsys):
    code, out, _ = run(capsys, "slo", "gate", "--path", str(db), "--now", str(NOW_S), "--slo", "slo_wallet_operations")
    assert code == 2 and "inconclusive" in out and "no events in the window" in out
    fill(db)
    code, out, _ = run(capsys, "slo", "gate", "--path", str(db), "--now", str(NOW_S), "--slo", "slo_wallet_operations")
    assert code == 0 and out.startswith("SLO gate: pass")
    fill(db, wallet_bad=3)  # upserts the same points: 3 bad of 1000 against a budget of 2
    code, out, _ = run(capsys, "slo", "gate", "--path", str(db), "--now", str(NOW_S), "--slo", "slo_wallet_operations",
                       "--json")
    decision = json.loads(out)
    assert code == 1 and decision["decision"] == "fail"
    assert decision["reasons"] == ["slo_wallet_operations/availability: error budget exhausted (-50.0% left; "
                                   "3 bad of 1000 events)"]
    code, out, _ = run(capsys, "slo", "gate", "--path", str(db), "--now", str(NOW_S), "--dry-run")
    assert code == 0 and "fail" in out and "dry run" in out


def test_gate_errors_are_not_read_as_inconclusive(db, capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos: [{id: x, select: {operations: [chat.send]}, indicators: "
                   "[{id: l, kind: latency, threshold_ms: 333, objective: 95}]}]")
    code, _, err = run(capsys, "slo", "gate", "--path", str(db), "--slo-file", str(bad))
    assert code == 4 and "333 ms is not a bucket boundary" in err
    code, _, err = run(capsys, "slo", "gate", "--path", str(tmp_path / "missing.db"))
    assert code == 4 and "no telemetry store" in err
    code, _, err = run(capsys, "slo", "report", "--path", str(db), "--slo", "slo_nope")
    assert code == 2 and "unknown SLO slo_nope" in err


def test_rules_list_set_enable_disable_delete(db, capsys, tmp_path):
    code, out, _ = run(capsys, "alerts", "rules", "--path", db)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        "api_error_rate_critical", "chat_error_rate_high", "panic_latency_critical", "wallet_failures_critical"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "ok_rule", "severity": "WARN", "metric": "chat_error_rate", "threshold": 1,
                                "windowMinutes": 5},
                               {"id": "bad_rule", "severity": "LOUD", "metric": "chat_error_rate", "threshold": 1,
                                "windowMinutes": 5}]))
    code, _, err = run(capsys, "alerts", "rules", "--path", db, "set", bad)
    assert code == 2 and "severity" in err and "LOUD" in err
    code, out, _ = run(capsys, "alerts", "rules", "--path", db, "--json")
    assert "ok_rule" not in out  # nothing of an invalid file is stored, not even its valid rules
    good = tmp_path / "good.yaml"
    good.write_text("id: ok_rule\nseverity: WARN\nmetric: chat_error_rate\nthreshold: 1\nwindowMinutes: 5\n")
    assert run(capsys, "alerts", "rules", "--path", db, "set", good)[0] == 0
    assert run(capsys, "alerts", "rules", "--path", db, "disable", "ok_rule")[1] == "disabled ok_rule\n"
    code, out, _ = run(capsys, "alerts", "rules", "--path", db)
    assert next(l for l in out.splitlines() if l.startswith("ok_rule")).split()[1] == "disabled"
    assert run(capsys, "alerts", "rules", "--path", db, "delete", "ok_rule")[0] == 0
    code, _, err = run(capsys, "alerts", "rules", "--path", db, "enable", "ok_rule")
    assert code == 1 and "no alert rule 'ok_rule'" in err


def test_evaluate_once_fires_lists_acknowledges_and_stays_quiet(db, capsys):
    with SQLiteStore(db) as store:
        for minute in range(10):  # chat.send at 10% server errors: far over 2% and over the 14.4x burn
            store.write("metrics", points(NOW - minute * MINUTE, "chat.send", ok=90, server_errors=10,
                                          latencies_ms=[100] * 100))
    code, out, _ = run(capsys, "evaluate", "--path", db, "--once", "--now", NOW_S)
    assert code == 0, out
    assert "fired: chat_error_rate_high:1" in out
    assert "fired: slo_burn_slo_chat_delivery_availability_page:1" in out
    with SQLiteStore(db) as store:  # the worker's telemetry events, through its own pipeline
        fired = store.query_events(operation="system.alert_fired", limit=10)
    assert {e["metadata"]["rule_id"] for e in fired} >= {"chat_error_rate_high",
                                                         "slo_burn_slo_chat_delivery_availability_page"}
    code, out, _ = run(capsys, "alerts", "list", "--path", db, "--status", "firing", "--json")
    events = {e["ruleId"]: e for e in map(json.loads, out.splitlines())}
    assert events["chat_error_rate_high"]["value"] == pytest.approx(10.0)
    assert events["slo_burn_slo_chat_delivery_availability_page"]["severity"] == "CRITICAL"
    code, out, _ = run(capsys, "alerts", "ack", "--path", db, "chat_error_rate_high:1", "--by", "admin-7")
    assert (code, out) == (0, "acknowledged chat_error_rate_high:1 by admin-7\n")
    code, out, _ = run(capsys, "alerts", "list", "--path", db, "--acknowledged", "yes")
    assert out.split()[0] == "chat_error_rate_high:1" and "acked by admin-7" in out
    code, out, _ = run(capsys, "evaluate", "--path", db, "--once", "--now", NOW_S + 60)
    assert "0 fired" in out and "1 acknowledged" in out
    code, _, err = run(capsys, "alerts", "ack", "--path", db, "nope:1", "--by", "admin-7")
    assert code == 1 and "no alert event 'nope:1'" in err


def test_rules_writes_files_promtool_accepts(tmp_path, capsys):
    code, out, _ = run(capsys, "rules", "--out", tmp_path / "r")
    assert code == 0 and out.count("wrote ") == 3
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "r" / "avalo-slo-rules.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    inhibit = (tmp_path / "r" / "alertmanager-inhibit.yml").read_text()
    assert 'tier="page"' in inhibit and 'tier="ticket"' in inhibit
