"""The main job, ``avalo-otel demo``, as the README's first command runs it: a real process,
a real Prometheus endpoint scraped by the demo itself, the embedded store read back afterwards."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from avalo_otel.store import SQLiteStore


def test_demo_records_traffic_serves_it_and_stores_it_pseudonymised(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, "-m", "avalo_otel.cli", "demo", "--duration", "3", "--rate", "60", "--port", "0",
         "--store", str(db)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    recorded = int(re.search(r"^(\d+) operations recorded", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert recorded >= 60
    served = re.findall(r'^  avalo_operations_total\{domain="(\w+)".*\} (\d+)\.0$', out, re.MULTILINE)
    assert {domain for domain, _ in served} >= {"chat", "wallet", "ai", "api"}
    assert sum(int(n) for _, n in served) == recorded  # every operation counted once
    assert re.search(r"^  chat_messages_sent_total\{", out, re.MULTILINE)
    # The console exporter sits behind the privacy stage like the others.
    console = re.findall(r"^event \w+ +(\S+) .* id=(\S+)", out, re.MULTILINE)
    assert len(console) >= 30 and all(actor.startswith("p_") for _, actor in console)

    with SQLiteStore(db) as store:
        events = store.query_events(limit=100_000)
        assert len(events) == recorded
        assert {e["domain"] for e in events} >= {"chat", "wallet", "ai", "api"}
        assert store.query_metrics(name="avalo_operations_total", limit=100_000)
        assert store.query_traces(limit=10)
        stored = json.dumps(events) + json.dumps(store.query_traces(limit=100_000))
    # User ids leave only pseudonymised: the demo's users are user-0000 … user-0199.
    assert all(e["actorId"] is None or e["actorId"].startswith("p_") for e in events)
    assert not re.search(r"user-\d{4}", stored)
    assert not re.search(r"user-\d{4}", out)
