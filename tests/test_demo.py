"""The main job, ``avalo-otel demo``, as the README's first command runs it: a real process on
compressed time (a short run: 8 wall seconds at 300x, two days of history), its Prometheus
endpoint and dashboard fetched while it serves, stopped with SIGINT, and the store read back
afterwards: SLO reports with budget burned, alert events fired and resolved, pseudonymised ids."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import pytest

from avalo_otel.slo import SLOEvaluator, configured_slos
from avalo_otel.store import SQLiteStore

REPO = Path(__file__).resolve().parent.parent
RAW_ID = re.compile(r"user-\d{4}")
SLO_IDS = {"slo_chat_delivery", "slo_wallet_operations", "slo_panic_safety", "slo_ai_companions",
           "slo_support_system", "slo_api_overall"}


def _dashboard_available() -> bool:
    try:
        from avalo_otel.dashboard import _require, start_dashboard  # noqa: F401

        _require()
    except ImportError:
        return False
    return True


class DemoProcess:
    """``avalo-otel demo`` in a process of its own, its output collected line by line."""

    def __init__(self, cwd: Path, *args: str, env: Optional[dict[str, str]] = None) -> None:
        self.lines: list[str] = []
        self._new = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "avalo_otel.cli", "demo", *args], cwd=cwd, env=env or dict(os.environ),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()
        with self._new:
            self._new.notify_all()

    @property
    def output(self) -> str:
        with self._new:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                found = regex.search("\n".join(self.lines))
                if found:
                    return found
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"the demo ended (rc={self.proc.returncode}) before {pattern!r}:\n"
                                         + "\n".join(self.lines[-60:]))
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {pattern!r} within {timeout}s:\n" + "\n".join(self.lines[-60:]))
                self._new.wait(0.2)

    def interrupt_and_wait(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 120) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the demo did not stop:\n" + self.output[-4000:]) from None
        self._reader.join(5)
        return rc

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    started: list[DemoProcess] = []

    def start(*args: str, env: Optional[dict[str, str]] = None) -> DemoProcess:
        process = DemoProcess(tmp_path, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def _get(url: str, token: Optional[str] = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _everything_stored(store: SQLiteStore) -> str:
    """Every stored document as one text, to look for raw user ids in."""
    end = int(time.time() * 1000) + 86_400_000
    parts = [json.dumps(store.query_events(limit=10_000_000)), json.dumps(store.query_traces(limit=10_000_000)),
             json.dumps(store.query_alert_events(limit=10_000)), json.dumps(store.list_alert_rules())]
    names = {p["name"] for p in store.query_metrics(limit=5000)} | {"avalo_operations_total", "api_requests_total"}
    parts += [json.dumps(list(store.scan_metrics(names=sorted(names), start_ms=end - 4 * 86_400_000, end_ms=end)))]
    return "".join(parts)


def test_demo_runs_the_whole_system_on_compressed_time(demo: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    dashboard = _dashboard_available()
    args = ["--duration", "8", "--speed", "300", "--rate", "100", "--history-days", "2", "--seed", "7",
            "--port", "0", "--dashboard-port", "0", "--data-dir", str(data), "--linger", "120"]
    run = demo(*args, *([] if dashboard else ["--no-dashboard"]))
    run.wait_for(r"^traffic done; still serving", timeout=180)

    # Served while it lingers: Prometheus with the SLO gauges, and the dashboard behind its token.
    prometheus = run.wait_for(r"^  Prometheus: (http://\S+/metrics)").group(1)
    status, text = _get(prometheus)
    assert status == 200
    assert re.search(r'^avalo_slo_error_budget_remaining_ratio\{slo="slo_wallet_operations"\} -?[\d.e-]+$',
                     text, re.MULTILINE)
    assert re.search(r'^avalo_slo_burn_rate\{slo="slo_wallet_operations",window="1h"\} [\d.e+-]+$', text, re.MULTILINE)
    assert {m for m in re.findall(r'^avalo_slo_sli\{slo="(\w+)"\}', text, re.MULTILINE)} == SLO_IDS
    served = set(re.findall(r'^avalo_operations_total\{domain="(\w+)"', text, re.MULTILINE))
    assert served >= {"chat", "wallet", "safety", "ai", "support", "api"}
    assert re.search(r'^api_requests_total\{.*region="eu-central"', text, re.MULTILINE)
    if dashboard:
        found = run.wait_for(r"^  dashboard:  (http://\S+/)  admin token: (\S+)$")
        url, token = found.group(1), found.group(2)
        assert _get(url)[0] in (401, 303)  # no credential: no page
        assert _get(url, token + "x")[0] in (401, 303)
        status, page = _get(url, token)
        assert status == 200
        assert set(re.findall(r"slo_[a-z_]+", page)) >= SLO_IDS
        status, body = _get(url + "api/slos", token)
        assert status == 200 and {s["slo"] for s in json.loads(body)["slos"]} == SLO_IDS
    else:
        assert "pip install -e '.[dashboard]'" in run.output or "--no-dashboard" in run.output

    assert run.interrupt_and_wait() == 0, run.output[-3000:]
    out = run.output
    assert f"data:       {data}" in out and (data / "demo.db").is_file()
    assert "warm-up:" in out and "-- incident at sim" in out and "-- recovery at sim" in out
    operations = int(re.search(r"^traffic: ([\d,]+) operations", out, re.MULTILINE).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert operations >= 300
    assert not RAW_ID.search(out)
    assert out.count("\n") < 200, "a progress display, not a flood of lines"

    now = int(time.time() * 1000)
    with SQLiteStore(data / "demo.db") as store:
        events = store.query_events(limit=10_000_000)
        traffic = [e for e in events if e["domain"] != "system"]
        assert len(traffic) == operations  # every operation flushed before the exit
        assert {e["domain"] for e in traffic} >= {"chat", "wallet", "safety", "ai", "support", "api", "auth"}
        assert {e["errorCode"] for e in traffic} >= {"INSUFFICIENT_FUNDS", "DEPENDENCY_FAILED"}
        assert all(e["actorId"] is None or e["actorId"].startswith("p_") for e in events)
        assert store.query_traces(limit=10)
        assert not RAW_ID.search(_everything_stored(store))

        # The SLOs over what the demo left: budget burned, wallet the worst.
        reports = {r.slo.id: r for r in SLOEvaluator(store, configured_slos()).evaluate(now)}
        assert set(reports) == SLO_IDS
        wallet, chat = reports["slo_wallet_operations"].primary, reports["slo_chat_delivery"]
        assert wallet.window.total > 5000 and wallet.window.bad > 0
        assert wallet.budget_remaining is not None and wallet.budget_remaining < 0.8
        assert min(i.budget_remaining for i in chat.indicators if i.budget_remaining is not None) < 1.0
        assert all(r.primary.window.total > 0 for r in reports.values())

        # The alerts: the past incidents' from the replay, and the live incident's fired and resolved.
        alerts = store.query_alert_events(limit=1000)
        live = [a for a in alerts if a["timestamp"] > now - 3 * 3_600_000]
        past = [a for a in alerts if a["timestamp"] < now - 86_400_000]
        assert past and all(a["status"] == "resolved" for a in past)

        def events_of(rule: str) -> list[dict[str, Any]]:
            return [a for a in live if a["ruleId"] == rule]

        for rule in ("wallet_failures_critical", "chat_error_rate_high"):
            assert events_of(rule), f"{rule} did not fire:\n{out[-3000:]}"
            assert any(a["status"] == "resolved" and a["resolvedAt"] > a["timestamp"] for a in events_of(rule)), \
                f"{rule} did not resolve:\n{out[-3000:]}"
        page = events_of("slo_burn_slo_wallet_operations_availability_page")
        assert page and page[0]["severity"] == "CRITICAL" and page[0]["labels"]["tier"] == "page", out[-3000:]
        # Fired alerts are telemetry events too, and the log notifier printed them.
        assert any(e["operation"] == "system.alert_fired" for e in events)
        assert "alert FIRING wallet_failures_critical" in out and "alert RESOLVED wallet_failures_critical" in out


def test_demo_stops_cleanly_on_sigint_mid_run_into_the_per_user_data_directory(demo: Any, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    run = demo("--duration", "15", "--speed", "300", "--rate", "60", "--history-days", "1", "--port", "0",
               "--no-dashboard", "--console", env=env)
    incident = run.wait_for(r"^-- incident at sim (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", timeout=120).group(1)
    assert run.interrupt_and_wait() == 0, run.output[-3000:]
    out = run.output
    data = tmp_path / "xdg" / "avalo-otel" / "demo"
    assert f"data:       {data} (fresh SQLite store demo.db)" in out
    assert not list(tmp_path.glob("*.db")), "nothing in the current directory"
    assert "stopped by SIGINT: everything recorded was flushed to the store" in out
    operations = int(re.search(r"^traffic: ([\d,]+) operations", out, re.MULTILINE).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert operations >= 100
    # The console exporter (--console) sits behind the privacy stage like the others.
    console = re.findall(r"^event \w+ +(\S+) .* id=(\S+)", out, re.MULTILINE)
    assert len(console) >= 50 and all(actor.startswith("p_") for _, actor in console)
    assert not RAW_ID.search(out)
    with SQLiteStore(data / "demo.db") as store:
        traffic = [e for e in store.query_events(limit=10_000_000) if e["domain"] != "system"]
        assert len(traffic) == operations  # what was recorded before the signal is all in the store
        # The live metric points (on the simulated clock) up to the signal, flushed at the exit.
        since = int(datetime.strptime(incident, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp() * 1000)
        assert store.query_metrics(name="avalo_operations_total", start_ms=since, limit=10)
        assert not RAW_ID.search(_everything_stored(store))


def test_demo_firestore_backend_needs_the_emulator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FIRESTORE_EMULATOR_HOST"}
    result = subprocess.run([sys.executable, "-m", "avalo_otel.cli", "demo", "--backend", "firestore", "--port", "0",
                             "--no-dashboard", "--data-dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "FIRESTORE_EMULATOR_HOST" in result.stderr and "emulator" in result.stderr


def test_demo_on_the_firestore_emulator(demo: Any, firestore_emulator: Any, tmp_path: Path) -> None:
    from avalo_otel_exporter_firestore import FirestoreStore

    project = firestore_emulator.project_id()
    env = {**os.environ, "FIRESTORE_EMULATOR_HOST": firestore_emulator.host, "AVALO_OTEL_FIRESTORE_PROJECT": project}
    run = demo("--backend", "firestore", "--duration", "6", "--speed", "120", "--rate", "40", "--history-days", "0.1",
               "--port", "0", "--no-dashboard", "--data-dir", str(tmp_path / "unused"), env=env)
    assert run.wait(240) == 0, run.output[-3000:]
    out = run.output
    assert f"data:       Firestore emulator {firestore_emulator.host}, project {project}" in out
    assert not (tmp_path / "unused").exists()  # nothing of Firestore's goes to the data directory
    operations = int(re.search(r"^traffic: ([\d,]+) operations", out, re.MULTILINE).group(1).replace(",", ""))  # type: ignore[union-attr]
    store = FirestoreStore(firestore_emulator.client(project), timeout=10)
    try:
        traffic = [e for e in store.query_events(limit=100_000) if e["domain"] != "system"]
        assert len(traffic) == operations > 50
        assert all(e["actorId"] is None or e["actorId"].startswith("p_") for e in traffic)
        assert store.query_metrics(name="avalo_operations_total", limit=5)
        assert {r["id"] for r in store.list_alert_rules()} >= {"wallet_failures_critical", "chat_error_rate_high"}
        assert store.get_documents("slo_rollups", ["_state"])  # the evaluator ran over it
    finally:
        store.close()
    firestore_emulator.wipe(project)
