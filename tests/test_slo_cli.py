"""``avalo-otel slo report`` and ``avalo-otel slo gate`` on a real store file: the table, the
JSON, and the gate's exit codes a deploy pipeline relies on (0 pass, 1 fail, 2 inconclusive)."""

from __future__ import annotations

import json

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
    code = main(list(argv))
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
