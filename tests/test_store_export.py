"""End to end into both stores: the public API → privacy stage → store exporters → writer → store,
read back with the store's own queries. Real SQLite files and Google's Firestore emulator, no mocks.

Each test runs once per backend:

* ``sqlite``: ``configure(traces_exporters="sqlite", logs_exporters="sqlite", metrics_exporters="sqlite",
  store_path=…)``, read back through ``handle.store``;
* ``firestore``: the ``firestore`` entry-point exporters configured from the environment
  (``FIRESTORE_EMULATOR_HOST``, ``AVALO_OTEL_FIRESTORE_PROJECT`` = a fresh project), read back with
  a separate ``FirestoreStore`` on the same project.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import pytest

import avalo_otel
from avalo_otel import ConfigurationError
from avalo_otel.store import DAY_MS, MAX_DOCUMENT_BYTES, TRUNCATION_MARKER, SQLiteStore, Store, StoreError
from avalo_otel_exporter_firestore import FirestoreStore
from avalo_otel_exporter_firestore import otel as firestore_otel

if TYPE_CHECKING:
    from firestore_emulator import FirestoreEmulator
    from otlp_receiver import OtlpReceiver

EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0018"
PHONE_PIECES = ("7946 0018", "79460018", "+442079460018")
ACTOR = "user-42"
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
APP = Path(__file__).parent / "apps" / "store_instrumented.py"
_INHERITED_PREFIXES = ("OTEL_", "AVALO_OTEL_", "NEW_RELIC_", "DD_")


class Backend:
    """One store backend: how to configure the exporters onto it and how to read it back."""

    def __init__(self, name: str, configure: Callable[..., avalo_otel.Telemetry],
                 reader: Callable[[avalo_otel.Telemetry], Store]) -> None:
        self.name = name
        self._configure = configure
        self._reader = reader
        self.handle: Optional[avalo_otel.Telemetry] = None

    def configure(self, **settings: Any) -> avalo_otel.Telemetry:
        self.handle = self._configure(**settings)
        return self.handle

    @property
    def store(self) -> Store:
        assert self.handle is not None, "configure() first"
        return self._reader(self.handle)


@pytest.fixture
def firestore_project(monkeypatch: pytest.MonkeyPatch, firestore_emulator: FirestoreEmulator) -> Iterator[str]:
    """A fresh emulator project that the ``firestore`` entry-point exporters write to.

    The exporters share one ``FirestoreStore`` built from the environment on first use and kept for
    the process (``otel.shared_store()``); it is reset here so this test's project is the one used.
    """
    project = firestore_emulator.project_id()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    monkeypatch.setenv("AVALO_OTEL_FIRESTORE_PROJECT", project)
    monkeypatch.delenv("AVALO_OTEL_FIRESTORE_PREFIX", raising=False)
    monkeypatch.setattr(firestore_otel, "_shared", None)
    yield project
    shared = firestore_otel._shared
    if shared is not None:
        shared.close()


@pytest.fixture(params=["sqlite", "firestore"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        configured = request.getfixturevalue("configured")

        def configure_sqlite(**settings: Any) -> avalo_otel.Telemetry:
            settings.setdefault("store_path", str(tmp_path / "t.db"))
            for signal in ("traces", "logs", "metrics"):
                settings.setdefault(f"{signal}_exporters", "sqlite")
            return configured(**settings)

        yield Backend("sqlite", configure_sqlite, lambda handle: handle.store)
        return

    emulator = request.getfixturevalue("firestore_emulator")
    project = request.getfixturevalue("firestore_project")
    # Set up after the project, so torn down (handles shut down) before its shared store closes.
    configured = request.getfixturevalue("configured")
    client = emulator.client(project)
    reader = FirestoreStore(client, timeout=10)

    def configure_firestore(**settings: Any) -> avalo_otel.Telemetry:
        for signal in ("traces", "logs", "metrics"):
            settings.setdefault(f"{signal}_exporters", "firestore")
        return configured(**settings)

    yield Backend("firestore", configure_firestore, lambda handle: reader)
    reader.close()
    client.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def everything(store: Store) -> list[dict[str, Any]]:
    return [*store.query_events(limit=1000), *store.query_traces(limit=1000), *store.query_metrics(limit=1000)]


def assert_no_pii(docs: list[dict[str, Any]]) -> None:
    dumped = json.dumps(docs, ensure_ascii=False)
    assert EMAIL not in dumped
    for piece in PHONE_PIECES:
        assert piece not in dumped, piece
    assert ACTOR not in dumped


# -- the public API, end to end ----------------------------------------------------------------
def test_api_to_store_keeps_the_original_fields_and_redacts(backend: Backend) -> None:
    handle = backend.configure(metric_export_interval_ms=60_000)
    t_start = time.time_ns() // 1_000_000
    avalo_otel.log_telemetry(
        "chat", "chat.send", actor_type="user", actor_id=ACTOR, session_id="sess-1", latency_ms=42.5,
        metadata={"email": EMAIL, "details": f"call me on {PHONE}", "messageType": "text", "length": 12,
                  "nested": {"retries": 2, "ok": True}},
    )
    with avalo_otel.time_operation("wallet", "wallet.spend", actor_id=ACTOR, metadata={"amount": 10}) as ok_op:
        pass
    with pytest.raises(avalo_otel.AvaloError):
        with avalo_otel.time_operation("wallet", "wallet.spend", actor_id=ACTOR) as failed_op:
            raise avalo_otel.AvaloError("INSUFFICIENT_FUNDS")
    for _ in range(3):
        avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    for value in (3.0, 40.0, 40.0, 7000.0):
        avalo_otel.observe_latency("chat_delivery_latency_ms", value, {"domain": "chat"})
    assert handle.force_flush(20)
    t_end = time.time_ns() // 1_000_000 + 1
    store = backend.store

    # telemetry_events
    [chat] = wait_for(lambda: store.query_events(domain="chat"), what="the chat event")
    assert isinstance(chat["ts"], int) and t_start <= chat["ts"] <= t_end
    assert chat["expireAt"] == chat["ts"] + 90 * DAY_MS
    assert (chat["domain"], chat["level"], chat["operation"], chat["success"]) == ("chat", "INFO", "chat.send", True)
    assert chat["errorCode"] is None and chat["latencyMs"] == 42.5 and chat["actorType"] == "user"
    assert chat["actorId"] == handle.pseudonymize(ACTOR) != ACTOR
    assert chat["sessionId"] == handle.pseudonymize("sess-1")
    assert chat["traceId"] is None and chat["spanId"] is None  # recorded outside any span
    meta = chat["metadata"]
    assert meta["email"] == "[REDACTED:email]"
    assert meta["details"] == "call me on [REDACTED:phone]"
    assert (meta["messageType"], meta["length"], meta["nested"]) == ("text", 12, {"retries": 2, "ok": True})

    wallet = wait_for(lambda: len(store.query_events(domain="wallet")) == 2 and store.query_events(domain="wallet"),
                      what="both wallet events")
    by_success = {doc["success"]: doc for doc in wallet}
    good, bad = by_success[True], by_success[False]
    assert (good["level"], good["errorCode"], good["metadata"]["amount"]) == ("INFO", None, 10)
    assert (bad["level"], bad["errorCode"]) == ("ERROR", "INSUFFICIENT_FUNDS")
    for doc, op in ((good, ok_op), (bad, failed_op)):
        assert doc["operation"] == "wallet.spend"
        assert isinstance(doc["latencyMs"], float) and doc["latencyMs"] >= 0
        assert (doc["traceId"], doc["spanId"]) == (op.trace_id, op.span_id)
        assert doc["actorId"] == handle.pseudonymize(ACTOR)
        assert doc["expireAt"] == doc["ts"] + 90 * DAY_MS
    assert [d["operation"] for d in store.query_events(success=False)] == ["wallet.spend"]
    assert store.query_events(domain="chat", level="ERROR") == []

    # traces: one document per span, by trace id
    for op, success in ((ok_op, True), (failed_op, False)):
        [span] = wait_for(lambda: store.query_traces(trace_id=op.trace_id), what=f"span of {op.trace_id}")
        assert (span["traceId"], span["spanId"], span["parentSpanId"]) == (op.trace_id, op.span_id, None)
        assert (span["operation"], span["domain"], span["success"]) == ("wallet.spend", "wallet", success)
        assert span["errorCode"] == (None if success else "INSUFFICIENT_FUNDS")
        assert span["status"] == ("unset" if success else "error")
        assert t_start <= span["startTime"] <= span["endTime"] <= t_end
        assert span["expireAt"] == span["startTime"] + 30 * DAY_MS
        assert span["service"] == handle.settings.service_name

    # metrics: delta points, so the stored values add up to what was recorded
    sent = wait_for(lambda: store.query_metrics(name="chat_messages_sent_total"), what="the counter")
    assert {(d["type"], d["temporality"]) for d in sent} == {("counter", "delta")}
    assert sum(d["value"] for d in sent) == 3
    assert all(d["labels"]["domain"] == "chat" and d["expireAt"] == d["timestamp"] + 30 * DAY_MS for d in sent)
    latency = store.query_metrics(name="chat_delivery_latency_ms")
    assert latency and {(d["type"], d["temporality"], d["value"]) for d in latency} == {("histogram", "delta", None)}
    assert sum(d["count"] for d in latency) == 4 and sum(d["sum"] for d in latency) == 7083.0
    bounds = [float(b) for b in avalo_otel.LATENCY_BUCKETS_MS]
    counts = [0] * (len(bounds) + 1)
    for doc in latency:
        assert [float(b) for b in doc["buckets"]["bounds"]] == bounds
        counts = [a + b for a, b in zip(counts, doc["buckets"]["counts"])]
    assert counts[0] == 1 and counts[bounds.index(50.0)] == 2 and counts[bounds.index(7500.0)] == 1 and sum(counts) == 4
    ops = store.query_metrics(name="avalo_operations_total")
    assert {d["temporality"] for d in ops} == {"delta"}
    totals: dict[tuple[str, str], float] = {}
    for d in ops:
        key = (d["labels"]["operation"], d["labels"]["outcome"])
        totals[key] = totals.get(key, 0) + d["value"]
    assert totals[("chat.send", "success")] == 1 and totals[("wallet.spend", "success")] == 1
    assert sum(v for (op_name, outcome), v in totals.items() if op_name == "wallet.spend" and outcome != "success") == 1
    assert store.query_metrics(name="avalo_operation_latency_ms")[0]["buckets"]["counts"]

    assert_no_pii(everything(store))


def test_unserialisable_metadata_is_stored_as_type_names(backend: Backend) -> None:
    class Leaky:
        def __str__(self) -> str:
            return EMAIL

        __repr__ = __str__

    loop: list[Any] = [1]
    loop.append(loop)
    handle = backend.configure()
    avalo_otel.log_telemetry("chat", "chat.send", metadata={
        "obj": object(), "leaky": Leaky(), "tags": {"b", "a"}, "raw": b"\x00\xff", "loop": loop,
        "ratio": float("nan"), "mixed": [1, "a", None], "ok": "fine",
    })
    assert handle.force_flush(20)
    [doc] = wait_for(lambda: backend.store.query_events(domain="chat"), what="the event")
    meta = doc["metadata"]
    assert meta["ok"] == "fine" and doc["operation"] == "chat.send"
    assert "object" in meta["obj"] and "Leaky" in meta["leaky"] and "list" in meta["loop"]
    assert isinstance(meta["tags"], str) and isinstance(meta["raw"], str) and isinstance(meta["ratio"], str)
    assert_no_pii([doc])


def test_a_3_mb_metadata_string_is_stored_truncated_under_1_mib(backend: Backend) -> None:
    handle = backend.configure()
    big = "abc " * (3 * 1024 * 1024 // 4)
    started = time.perf_counter()
    avalo_otel.log_telemetry("chat", "chat.send", metadata={"blob": big, "kept": "yes"})
    call_s = time.perf_counter() - started
    assert handle.force_flush(20)
    [doc] = wait_for(lambda: backend.store.query_events(domain="chat"), what="the event")
    assert doc["truncated"] is True
    assert doc["metadata"]["blob"].endswith(TRUNCATION_MARKER) and len(doc["metadata"]["blob"]) < len(big)
    assert doc["metadata"]["blob"].startswith("abc abc")
    assert doc["metadata"]["kept"] == "yes"
    assert (doc["domain"], doc["operation"], doc["success"]) == ("chat", "chat.send", True)
    assert len(json.dumps(doc, ensure_ascii=False).encode()) < min(MAX_DOCUMENT_BYTES, 1_048_576)
    assert call_s < 2.0, f"log_telemetry with a 3 MB string held the app thread {call_s:.2f} s"


def test_force_flush_returns_once_the_store_has_everything(backend: Backend) -> None:
    # "Export everything recorded so far": for the store exporters that means written to the
    # store, not just handed to their writer (a serverless app flushes, then gets frozen).
    handle = backend.configure()
    for seq in range(400):
        with avalo_otel.time_operation("chat", "chat.send", metadata={"seq": seq}):
            pass
    assert handle.force_flush(30)
    store = backend.store
    assert len(store.query_events(domain="chat", limit=1000)) == 400
    assert len(store.query_traces(operation="chat.send", limit=1000)) == 400


# -- bad configuration -------------------------------------------------------------------------
def test_invalid_sqlite_prefix_is_a_configuration_error(configured: Callable[..., avalo_otel.Telemetry],
                                                        tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="store_prefix"):
        configured(logs_exporters="sqlite", store_path=str(tmp_path / "t.db"), store_prefix="bad/prefix!")
    assert avalo_otel._configure._current is None
    assert not (tmp_path / "t.db").exists()


def test_invalid_firestore_prefix_is_a_configuration_error(firestore_project: str,
                                                           configured: Callable[..., avalo_otel.Telemetry],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVALO_OTEL_FIRESTORE_PREFIX", "bad/prefix!")
    with pytest.raises(ConfigurationError, match="prefix"):
        configured(logs_exporters="firestore")
    assert avalo_otel._configure._current is None


def test_an_unusable_store_path_turns_off_that_exporter_only(
        configured: Callable[..., avalo_otel.Telemetry], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A path that cannot be used (under a regular file, a directory, a read-only filesystem) is a
    # backend failure, not a malformed setting: the sqlite exporter is off with one clear error
    # naming the path, and every other exporter keeps running.
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    blocker = tmp_path / "regular-file"
    blocker.write_text("not a directory")
    path = blocker / "sub" / "t.db"
    caplog.set_level(logging.ERROR, logger="avalo_otel")
    handle = configured(traces_exporters="sqlite,console", logs_exporters="sqlite", metrics_exporters="sqlite",
                        store_path=str(path))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(blocker) in errors[0] and "sqlite exporter is off" in errors[0]
    assert set(handle.disabled_exporters) == {"sqlite"} and handle.store is None
    spans = InMemorySpanExporter()
    handle.add_span_exporter(spans, batch=False)
    with avalo_otel.time_operation("chat", "chat.send"):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["chat.send"]


def test_an_unusable_store_path_raises_in_strict_mode(configured: Callable[..., avalo_otel.Telemetry],
                                                      tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(ConfigurationError) as info:
        configured(traces_exporters="sqlite", store_path=str(directory), strict=True)
    assert str(directory) in str(info.value)
    assert avalo_otel._configure._current is None
    avalo_otel.log_telemetry("chat", "chat.send")  # the API stays a harmless no-op


def test_store_path_that_cannot_be_created_raises_store_error_from_the_store_itself(tmp_path: Path) -> None:
    blocker = tmp_path / "regular-file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        SQLiteStore(blocker / "t.db")
    assert str(blocker) in str(info.value)


# -- opentelemetry-instrument ------------------------------------------------------------------
def run_instrumented(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    assert INSTRUMENT.exists(), f"{INSTRUMENT} missing: is opentelemetry-instrumentation installed in the venv?"
    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    base.update(OTEL_SERVICE_NAME="instrumented-store-app", AVALO_OTEL_PSEUDONYM_KEY="k", **env)
    return subprocess.run([str(INSTRUMENT), sys.executable, str(APP)], env=base, cwd=tmp_path,
                          capture_output=True, text=True, timeout=90)


def _assert_ran(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "store_instrumented: done" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr


def _check_instrumented_docs(store: Store) -> None:
    events = {d["operation"]: d for d in store.query_events()}
    assert set(events) == {"chat.send", "wallet.spend", "support.ticket_create"}
    assert events["wallet.spend"]["errorCode"] == "INSUFFICIENT_FUNDS" and events["wallet.spend"]["success"] is False
    assert events["chat.send"]["metadata"]["recipientEmail"] == "[REDACTED:email]"
    assert events["support.ticket_create"]["metadata"]["details"] == "call me on [REDACTED:phone]"
    spans = {d["name"]: d for d in store.query_traces()}
    assert set(spans) == {"third-party", "chat.send", "wallet.spend"}
    assert {d["service"] for d in spans.values()} == {"instrumented-store-app"}
    chat = events["chat.send"]
    assert (chat["traceId"], chat["spanId"]) == (spans["chat.send"]["traceId"], spans["chat.send"]["spanId"])
    assert_no_pii([*events.values(), *spans.values()])


def test_opentelemetry_instrument_exports_to_firestore_and_otlp(
        tmp_path: Path, firestore_emulator: FirestoreEmulator, otlp_receiver: OtlpReceiver) -> None:
    project = firestore_emulator.project_id()
    proc = run_instrumented(
        tmp_path, FIRESTORE_EMULATOR_HOST=firestore_emulator.host, AVALO_OTEL_FIRESTORE_PROJECT=project,
        OTEL_TRACES_EXPORTER="otlp,firestore", OTEL_LOGS_EXPORTER="firestore", OTEL_METRICS_EXPORTER="firestore",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint,
    )
    _assert_ran(proc)
    client = firestore_emulator.client(project)
    store = FirestoreStore(client)
    try:
        _check_instrumented_docs(store)  # flushed at exit: nothing left to wait for
        sent = store.query_metrics(name="chat_messages_sent_total")
        assert sum(d["value"] for d in sent) == 1 and {d["temporality"] for d in sent} == {"delta"}
    finally:
        store.close()
        client.close()
    # the same spans went to OTLP too, each exporter behind the one privacy stage
    otlp_receiver.wait_for(lambda r: len(r.spans()) >= 3, timeout=10)
    assert {s["name"] for s in otlp_receiver.spans()} == {"third-party", "chat.send", "wallet.spend"}
    assert otlp_receiver.log_records() == []  # logs went to Firestore only


def test_opentelemetry_instrument_exports_to_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "data" / "telemetry.db"
    proc = run_instrumented(tmp_path, OTEL_TRACES_EXPORTER="sqlite", OTEL_LOGS_EXPORTER="sqlite",
                            OTEL_METRICS_EXPORTER="sqlite", AVALO_OTEL_STORE_PATH=str(path))
    _assert_ran(proc)
    with SQLiteStore(path) as store:
        _check_instrumented_docs(store)


def test_opentelemetry_instrument_with_an_unusable_store_path_keeps_the_other_exporters(
        tmp_path: Path, otlp_receiver: OtlpReceiver) -> None:
    directory = tmp_path / "telemetry.db"
    directory.mkdir()  # a directory where the database file should be
    proc = run_instrumented(tmp_path, OTEL_TRACES_EXPORTER="sqlite,otlp", OTEL_LOGS_EXPORTER="sqlite,otlp",
                            OTEL_METRICS_EXPORTER="none", AVALO_OTEL_STORE_PATH=str(directory),
                            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint)
    # The app runs; the reason is one clear line naming the path; OTLP still gets everything.
    _assert_ran(proc)
    assert str(directory) in proc.stderr and "sqlite exporter is off" in proc.stderr, proc.stderr
    otlp_receiver.wait_for(lambda r: len(r.spans()) >= 3 and len(r.log_records()) >= 3, timeout=10)
    assert {s["name"] for s in otlp_receiver.spans()} == {"third-party", "chat.send", "wallet.spend"}
