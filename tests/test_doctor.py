"""``avalo-otel doctor`` finds what is wrong with the configuration and the backends, against real
sockets, a real HTTP server and the Firestore emulator; and ``query`` refuses filters that do
not apply instead of ignoring them."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from avalo_otel.cli import main
from avalo_otel.store import SQLiteStore
from prometheus_server import free_port


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "AVALO_OTEL_ALERTMANAGER_URL", "AVALO_OTEL_ALERT_WEBHOOK_URL", "AVALO_OTEL_SLO_FILES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("AVALO_OTEL_PSEUDONYM_KEY", "k")


def doctor(capsys, *argv):
    code = main(["doctor", "--json", *argv])
    return code, {c["name"]: c for c in json.loads(capsys.readouterr().out)}


def test_a_healthy_sqlite_setup_passes(capsys, tmp_path, monkeypatch):
    path = tmp_path / "t.db"
    SQLiteStore(path).close()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus,sqlite")
    code, checks = doctor(capsys, "--path", str(path))
    assert code == 0
    assert checks["SQLite store"]["status"] == "ok" and str(path) in checks["SQLite store"]["detail"]
    assert checks["SLO definitions"]["detail"].startswith("6 SLOs")
    assert checks["Prometheus port"]["status"] == "ok"


def test_bad_settings_and_definitions_fail(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AVALO_OTEL_SAMPLING_RATE", "2")
    code, checks = doctor(capsys)
    assert code == 1 and checks["settings"]["status"] == "FAIL" and "AVALO_OTEL_SAMPLING_RATE" in checks["settings"]["detail"]
    monkeypatch.delenv("AVALO_OTEL_SAMPLING_RATE")
    bad = tmp_path / "slos.yaml"
    bad.write_text("slos: [{id: x, select: {}, indicators: []}]")
    monkeypatch.setenv("AVALO_OTEL_SLO_FILES", str(bad))
    code, checks = doctor(capsys)
    assert code == 1 and checks["SLO definitions"]["status"] == "FAIL"
    assert str(bad) in checks["SLO definitions"]["detail"]


def test_unreachable_backends_fail_and_secrets_in_urls_are_not_printed(capsys, monkeypatch):
    dead = free_port()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("AVALO_OTEL_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{dead}/hooks/s3cr3t-token")
    code, checks = doctor(capsys)
    assert code == 1
    assert checks["OTLP endpoint"]["status"] == "FAIL" and "unreachable" in checks["OTLP endpoint"]["detail"]
    assert checks["alert webhook"]["status"] == "FAIL"
    assert "s3cr3t" not in json.dumps(checks)
    # Listening now: the same checks pass (a connection is enough; nothing is sent).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", dead))
        listener.listen()
        code, checks = doctor(capsys)
    assert checks["OTLP endpoint"]["status"] == "ok" and checks["alert webhook"]["status"] == "ok"


def test_alertmanager_readiness_is_asked(capsys, monkeypatch):
    answers = {"/-/ready": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(answers.get(self.path, 404))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AVALO_OTEL_ALERTMANAGER_URL", f"http://127.0.0.1:{server.server_port}")
        assert doctor(capsys)[1]["Alertmanager"]["status"] == "ok"
        answers["/-/ready"] = 503
        code, checks = doctor(capsys)
        assert code == 1 and checks["Alertmanager"]["detail"].endswith("answers 503")
    finally:
        server.shutdown()


def test_firestore_is_reached_or_reported(capsys, monkeypatch, firestore_emulator):
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    code, checks = doctor(capsys, "--backend", "firestore", "--project", "demo-doctor")
    assert checks["Firestore store"]["status"] == "ok", checks
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    code, checks = doctor(capsys, "--backend", "firestore", "--project", "demo-doctor")
    assert code == 1 and checks["Firestore store"]["status"] == "FAIL"


@pytest.mark.parametrize("argv, flag", [
    (["query", "events", "--trace-id", "t1"], "--trace-id"),
    (["query", "traces", "--domain", "chat"], "--domain"),
    (["query", "metrics", "--operation", "chat.send"], "--operation"),
    (["query", "alerts", "--name", "x"], "--name"),
])
def test_query_refuses_filters_that_do_not_apply(capsys, argv, flag):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert f"{flag} does not apply" in capsys.readouterr().err
