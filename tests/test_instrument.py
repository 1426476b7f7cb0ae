"""Zero-code setup: the real ``opentelemetry-instrument`` runs an app that never calls ``configure()``.

The app (``apps/plain_app.py``) records through avalo-otel's API and the plain OpenTelemetry API and
exits normally. Everything the OTLP receiver gets was therefore set up by our ``opentelemetry_distro``
and ``opentelemetry_configurator`` entry points from the environment alone, and flushed at exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from avalo_otel import Attr
from avalo_otel.sampling import AvaloSampler
from otlp_receiver import OtlpReceiver

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
APP = Path(__file__).parent / "apps" / "plain_app.py"
_INHERITED_PREFIXES = ("OTEL_", "AVALO_OTEL_", "NEW_RELIC_", "DD_")


def run_app(tmp_path: Path, receiver: OtlpReceiver | None, **env: str) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument python apps/plain_app.py`` with only the given telemetry settings."""
    assert INSTRUMENT.exists(), f"{INSTRUMENT} missing: is opentelemetry-instrumentation installed in the venv?"
    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    if receiver is not None:
        base["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.grpc_endpoint
    base.update(OTEL_SERVICE_NAME="instrumented-app", AVALO_OTEL_PSEUDONYM_KEY="k", **env)
    return subprocess.run(
        [str(INSTRUMENT), sys.executable, str(APP)],
        env=base, cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )


def _assert_ran(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "plain_app: done" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr


def _by_name(items: list[dict[str, Any]], key: str = "name") -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


@pytest.mark.parametrize("metrics_env", [
    {"OTEL_EXPORTER_PROMETHEUS_PORT": "0"},  # default exporters: Prometheus (any free port) + OTLP
    {"OTEL_METRICS_EXPORTER": "otlp"},
], ids=["prometheus+otlp", "otlp"])
def test_instrumented_app_exports_everything_through_our_configurator(tmp_path, otlp_receiver, metrics_env):
    proc = run_app(tmp_path, otlp_receiver, OTEL_METRIC_EXPORT_INTERVAL="500", **metrics_env)
    _assert_ran(proc)
    assert proc.stderr.strip() == "", proc.stderr
    otlp_receiver.wait_for(
        lambda r: len(r.spans()) >= 3 and len(r.log_records()) >= 3
        and r.metric_points("chat_messages_sent_total"), timeout=5,
    )

    spans = _by_name(otlp_receiver.spans())
    assert set(spans) == {"third-party", "chat.send", "wallet.spend"}
    for span in spans.values():
        assert span["resource"]["service.name"] == "instrumented-app"
        assert span["resource"]["telemetry.distro.name"] == "avalo-otel"  # our configure() built it
    assert spans["third-party"]["scope"] == "__main__"
    assert spans["chat.send"]["scope"] == "avalo_otel"

    logs = _by_name(otlp_receiver.log_records(), key="body")
    assert set(logs) == {"chat.send", "wallet.spend", "support.ticket_create"}
    chat = logs["chat.send"]
    assert (chat["trace_id"], chat["span_id"]) == (spans["chat.send"]["trace_id"], spans["chat.send"]["span_id"])
    assert chat["resource"]["service.name"] == "instrumented-app"
    actor = chat["attributes"][Attr.ACTOR_ID]
    assert actor and "user-42" not in actor  # AVALO_OTEL_PSEUDONYM_KEY read from the environment

    names = {m["name"] for m in otlp_receiver.metrics()}
    assert {"avalo_operations_total", "avalo_operation_latency_ms", "chat_messages_sent_total"} <= names
    assert otlp_receiver.metric_points("chat_messages_sent_total")[-1]["value"] == 1
    ops = {p["attributes"]["operation"]: p["value"] for p in otlp_receiver.metric_points("avalo_operations_total")}
    assert ops == {"chat.send": 1, "wallet.spend": 1, "support.ticket_create": 1}
    assert {m["resource"]["service.name"] for m in otlp_receiver.metrics()} == {"instrumented-app"}


def test_providers_flush_at_exit(tmp_path, otlp_receiver):
    # No timer or batch delay can fire during the app's short life: only the exit flush delivers.
    proc = run_app(tmp_path, otlp_receiver, OTEL_METRICS_EXPORTER="otlp", OTEL_METRIC_EXPORT_INTERVAL="60000",
                   OTEL_BSP_SCHEDULE_DELAY="60000", OTEL_BLRP_SCHEDULE_DELAY="60000")
    _assert_ran(proc)
    otlp_receiver.wait_for(lambda r: r.spans() and r.log_records() and r.metrics(), timeout=5)
    assert {s["name"] for s in otlp_receiver.spans()} == {"third-party", "chat.send", "wallet.spend"}
    assert len(otlp_receiver.log_records()) == 3
    assert otlp_receiver.metric_points("chat_messages_sent_total")[-1]["value"] == 1


def test_avalo_sampler_from_otel_sampler_variables(tmp_path, otlp_receiver):
    proc = run_app(tmp_path, otlp_receiver, OTEL_METRICS_EXPORTER="otlp",
                   OTEL_TRACES_SAMPLER="avalo", OTEL_TRACES_SAMPLER_ARG="0.0")
    _assert_ran(proc)
    otlp_receiver.wait_for(lambda r: r.spans() and r.metrics(), timeout=5)
    # rate 0: routine spans (third-party and chat) dropped, the wallet operation kept
    assert [s["name"] for s in otlp_receiver.spans()] == ["wallet.spend"]
    assert [r["body"] for r in otlp_receiver.log_records()] == ["wallet.spend"]
    # metrics are never sampled
    ops = {p["attributes"]["operation"]: p["value"] for p in otlp_receiver.metric_points("avalo_operations_total")}
    assert ops == {"chat.send": 1, "wallet.spend": 1, "support.ticket_create": 1}


def test_sampler_entry_point_is_registered():
    (ep,) = [ep for ep in entry_points(group="opentelemetry_traces_sampler") if ep.name == "avalo"]
    factory = ep.load()
    sampler = factory("0.0")
    assert isinstance(sampler, AvaloSampler) and sampler.rate == 0.0
    assert factory(None).rate == 1.0  # the SDK passes None when OTEL_TRACES_SAMPLER_ARG is unset
    names = {ep.name: ep.value for ep in entry_points(group="opentelemetry_distro")}
    assert names.get("avalo") == "avalo_otel.distro:AvaloDistro"
    names = {ep.name: ep.value for ep in entry_points(group="opentelemetry_configurator")}
    assert names.get("avalo") == "avalo_otel.distro:AvaloConfigurator"


def test_bad_setting_reports_clearly_and_app_still_runs(tmp_path, otlp_receiver):
    proc = run_app(tmp_path, otlp_receiver, OTEL_METRICS_EXPORTER="otlp", AVALO_OTEL_SAMPLING_RATE="abc")
    _assert_ran(proc)  # exit code 0, no traceback
    assert "AVALO_OTEL_SAMPLING_RATE" in proc.stderr and "abc" in proc.stderr, proc.stderr
    assert "between 0 and 1" in proc.stderr
    # untraced, as the message says: nothing half-configured was sent
    assert otlp_receiver.requests() == []
