"""The privacy self-check: configure() proves each signal's privacy stage redacts, or drops the signal.

The faults are what a future OpenTelemetry release could do to the internals the privacy stage
relies on (a renamed span field, log records copied per processor, a renamed metric-reader hook),
simulated by patching the installed SDK for one test. What is asserted is what reached the real
OTLP receiver, the handle's report and the ERROR log line.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
import requests
from opentelemetry import trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk._logs import SynchronousMultiLogRecordProcessor
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import avalo_otel as ao
from avalo_otel.privacy import selfcheck
from avalo_otel.privacy.redactor import Redactor
from otlp_receiver import OtlpReceiver

NO_TIMER = 60_000
EMAIL = "jane.doe@example.com"


def _pipeline(receiver: OtlpReceiver, configured: Any, **settings: Any) -> Any:
    settings.setdefault("metrics_exporters", "otlp")
    return configured(otlp_endpoint=receiver.grpc_endpoint, otlp_protocol="grpc",
                      metric_export_interval_ms=NO_TIMER, **settings)


def _emit() -> None:
    """A span, an event and a metric, each carrying an e-mail address under a non-denied key."""
    with ao.time_operation("chat", "chat.send", metadata={"detail": EMAIL}):
        trace.get_current_span().set_attribute("detail", EMAIL)
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": EMAIL})


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "SELF-CHECK" in r.getMessage()]


def test_a_sound_pipeline_passes_quickly_and_the_canary_reaches_no_backend(otlp_receiver, configured):
    handle = _pipeline(otlp_receiver, configured, logs_exporters="otlp,console")
    assert handle.selfcheck.ok and all(handle.selfcheck.passed(s) for s in selfcheck.SIGNALS)
    assert handle.selfcheck.elapsed_ms < 1000  # sanity: a few milliseconds once imports are warm
    _emit()
    assert handle.force_flush(5.0)
    otlp_receiver.wait_for(lambda r: r.spans() and r.log_records() and r.metrics(), timeout=5)
    everything = repr([otlp_receiver.spans(), otlp_receiver.log_records(), otlp_receiver.metrics()])
    assert "selfcheck" not in everything  # the canary was checked in its own chain, never exported
    assert EMAIL not in everything


def test_the_canary_catches_a_redactor_that_does_nothing():
    class Inert(Redactor):
        def redact_attributes(self, attrs: Any) -> None:
            return None

        def redact_text(self, text: str) -> str:
            return text

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits

    why = selfcheck.check_traces(Inert(pseudonymize=str), Resource.create({}), SpanLimits())
    assert why is not None and "unredacted" in why and "name" in why and "attributes" in why


def test_a_renamed_span_field_drops_traces_only_and_says_so(otlp_receiver, configured, monkeypatch, caplog):
    # A release where exporters read span attributes from a renamed field: the pipeline's
    # rewrite of `_attributes` would no longer reach them, silently.
    original_init = ReadableSpan.__init__

    def init(self: ReadableSpan, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._attributes_v2 = self._attributes

    monkeypatch.setattr(ReadableSpan, "__init__", init)
    monkeypatch.setattr(ReadableSpan, "attributes", property(lambda self: self._attributes_v2))
    caplog.set_level(logging.ERROR)

    handle = _pipeline(otlp_receiver, configured)
    assert set(handle.selfcheck.failures) == {"traces"}
    assert "unredacted" in handle.selfcheck.failures["traces"]
    [message] = _failures(caplog)
    assert "traces" in message and "No traces are exported" in message
    late = InMemorySpanExporter()
    handle.add_span_exporter(late, batch=False)  # refused too, with an error
    assert any("not adding a traces exporter" in r.getMessage() for r in caplog.records)

    _emit()
    assert handle.force_flush(5.0)
    otlp_receiver.wait_for(lambda r: r.log_records() and r.metrics(), timeout=5)
    assert otlp_receiver.spans() == [] and late.get_finished_spans() == ()
    assert otlp_receiver.log_records()[-1]["attributes"]["avalo.metadata.detail"] == "[REDACTED:email]"


def test_log_records_copied_per_processor_drop_logs_only(otlp_receiver, configured, monkeypatch, caplog):
    # A release that hands each processor its own copy of the record: rewriting it in place
    # would no longer change what the exporters' processors see.
    def on_emit(self: Any, log_record: Any) -> None:
        for processor in self._log_record_processors:
            processor.on_emit(copy.deepcopy(log_record))

    monkeypatch.setattr(SynchronousMultiLogRecordProcessor, "on_emit", on_emit)
    caplog.set_level(logging.ERROR)

    handle = _pipeline(otlp_receiver, configured, capture_logging=True)
    assert set(handle.selfcheck.failures) == {"logs"}
    assert "unredacted" in handle.selfcheck.failures["logs"]
    assert "logs" in _failures(caplog)[0]
    _emit()
    logging.getLogger("app").warning("contact %s", EMAIL)
    assert handle.force_flush(5.0)
    otlp_receiver.wait_for(lambda r: r.spans() and r.metrics(), timeout=5)
    assert otlp_receiver.log_records() == []
    assert otlp_receiver.spans()[-1]["attributes"]["detail"] == "[REDACTED:email]"


def test_a_renamed_prometheus_hook_drops_metrics_only(otlp_receiver, configured, monkeypatch, caplog):
    # A release where MetricReader.collect hands the data to a renamed hook: readers that redact
    # by overriding `_receive_metrics` (ours) would serve it unredacted.
    def collect(self: MetricReader, timeout_millis: float = 10_000) -> None:
        data = self._collect(self, timeout_millis=timeout_millis)
        if data is not None:
            getattr(self, "_receive_metrics_v2", self._receive_metrics)(data, timeout_millis=timeout_millis)

    monkeypatch.setattr(PrometheusMetricReader, "_receive_metrics_v2", PrometheusMetricReader._receive_metrics,
                        raising=False)
    monkeypatch.setattr(MetricReader, "collect", collect)
    caplog.set_level(logging.ERROR)

    handle = _pipeline(otlp_receiver, configured, metrics_exporters="prometheus,otlp", prometheus_port=0)
    assert set(handle.selfcheck.failures) == {"metrics"}
    assert "Prometheus" in handle.selfcheck.failures["metrics"] and "unredacted" in handle.selfcheck.failures["metrics"]
    assert handle.prometheus_url is None  # /metrics is not served at all
    _emit()
    assert handle.force_flush(5.0)
    otlp_receiver.wait_for(lambda r: r.spans() and r.log_records(), timeout=5)
    assert otlp_receiver.metrics() == []  # nor pushed


def test_the_same_fault_without_the_check_would_have_leaked(otlp_receiver, configured, monkeypatch):
    """The faults above are real leaks: with the check forced to pass, the address arrives."""
    original_init = ReadableSpan.__init__

    def init(self: ReadableSpan, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._attributes_v2 = self._attributes

    monkeypatch.setattr(ReadableSpan, "__init__", init)
    monkeypatch.setattr(ReadableSpan, "attributes", property(lambda self: self._attributes_v2))
    monkeypatch.setattr("avalo_otel._configure.check_traces", lambda *args: None)
    handle = _pipeline(otlp_receiver, configured, metrics_exporters="none")
    _emit()
    assert handle.force_flush(5.0)
    otlp_receiver.wait_for(lambda r: r.spans(), timeout=5)
    assert otlp_receiver.spans()[-1]["attributes"]["detail"] == EMAIL


def test_a_check_that_cannot_run_fails_closed(configured, monkeypatch, caplog):
    def broken(*args: Any) -> None:
        raise AttributeError("'ReadableSpan' object has no attribute '_attributes'")

    monkeypatch.setattr("avalo_otel._configure.check_traces", broken)
    caplog.set_level(logging.ERROR)
    handle = configured(traces_exporters="console")
    assert "AttributeError" in handle.selfcheck.failures["traces"]
    assert _failures(caplog)


def test_prometheus_serves_redacted_series_after_a_passing_check(prometheus_port_free, configured):
    handle = configured(metrics_exporters="prometheus", prometheus_port=prometheus_port_free)
    assert handle.selfcheck.ok
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": EMAIL})
    text = requests.get(handle.prometheus_url, timeout=5).text
    assert "[REDACTED:email]" in text and EMAIL not in text and "selfcheck" not in text


@pytest.fixture
def prometheus_port_free() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    import json

    from avalo_otel.cli import main

    code = main(["doctor", "--json"])
    return code, {c["name"]: c for c in json.loads(capsys.readouterr().out)}


def test_doctor_reports_the_self_check(capsys, monkeypatch):
    monkeypatch.setenv("AVALO_OTEL_PSEUDONYM_KEY", "k")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    code, checks = _doctor(capsys)
    assert code == 0 and checks["privacy self-check"]["status"] == "ok"

    monkeypatch.setattr(SynchronousMultiLogRecordProcessor, "on_emit", lambda self, record: [
        p.on_emit(copy.deepcopy(record)) for p in self._log_record_processors])
    code, checks = _doctor(capsys)
    assert code == 1 and checks["privacy self-check"]["status"] == "FAIL"
    assert checks["privacy self-check"]["detail"].startswith("logs: ")


@pytest.mark.parametrize("controls", [
    {"redaction_hook": lambda key, value: None},  # drops every keyed value, labels included
    {"redaction_hook": lambda key, value: value},
    {"redact_keys": ["detail", "reason"], "safe_keys": ["avalo_otel.selfcheck.detail"]},
    {"redact_patterns": {"probe": r"selfcheck"}},
])
def test_the_users_redaction_controls_do_not_fail_the_check(configured, controls):
    handle = configured(metrics_exporters="prometheus", prometheus_port=0, **controls)
    assert handle.selfcheck.ok, handle.selfcheck.failures


def test_a_hook_that_drops_every_label_leaves_none_over_otlp(otlp_receiver, configured):
    """Found by the canary: redaction to an empty label set ({}) was taken for "no change"."""
    handle = _pipeline(otlp_receiver, configured, redaction_hook=lambda key, value: None)
    assert handle.selfcheck.ok
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": EMAIL})
    assert handle.force_flush(5.0)
    points = otlp_receiver.wait_for(lambda r: r.metric_points("chat_messages_sent_total"), timeout=5)
    assert points and all(p["attributes"] == {} for p in points)
    assert EMAIL not in repr(otlp_receiver.metrics())


def test_the_canary_is_not_counted_as_a_redaction_of_app_data(configured):
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    handle = configured(metric_readers=[reader], traces_exporters="none", logs_exporters="none")
    assert handle.selfcheck.ok

    def redactions() -> dict:
        data = reader.get_metrics_data()
        return {p.attributes["rule"]: p.value for rm in (data.resource_metrics if data else ()) for sm in rm.scope_metrics
                for m in sm.metrics if m.name == "avalo_otel_redactions_total" for p in m.data.data_points}

    assert redactions() == {}  # nothing the app sent was redacted yet
    ao.log_telemetry("chat", "chat.send", metadata={"stage": "retry for jane.doe@example.com"})
    assert redactions() == {"email": 1}
