"""FirestoreStore on Google's Firestore emulator: the store contract plus what only Firestore has
(500-write commits, TTL timestamps, indexes, rules, outages, fork safety)."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import grpc
import pytest

from google.api_core.exceptions import ServiceUnavailable
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.services.firestore.client import FirestoreClient as FirestoreApi

from avalo_otel.store import (
    ALERT_EVENTS, ALERT_RULES, COLLECTIONS, DAY_MS, METRICS, SLO_ROLLUPS, TELEMETRY_EVENTS, TRACES, StoreError,
)
from avalo_otel_exporter_firestore import FirestoreStore, indexes
from avalo_otel_exporter_firestore._errors import is_transient, store_error
from store_contract import T0, StoreContract, alert, event, metric

if TYPE_CHECKING:
    from firestore_emulator import FirestoreEmulator

# The plugin is loaded by name, not imported here: importing it first would stop pytest from
# rewriting its asserts (and warn). Also works with ``-p firestore_emulator``.
ENV = "FIRESTORE_EMULATOR_HOST"

DIST = Path(__file__).resolve().parents[1] / "exporters" / "firestore"
INDEXES_FILE = DIST / "firestore.indexes.json"
RULES_FILE = DIST / "firestore.rules"


@pytest.fixture
def project(firestore_emulator: FirestoreEmulator) -> Iterator[str]:
    project = firestore_emulator.project_id()
    yield project
    if firestore_emulator.running:
        firestore_emulator.wipe(project)


@pytest.fixture
def raw(firestore_emulator: FirestoreEmulator, project: str) -> Iterator[Any]:
    """A plain client on the test's project, to look at what the store really wrote."""
    client = firestore_emulator.client(project)
    yield client
    client.close()


@pytest.fixture
def store(firestore_emulator: FirestoreEmulator, project: str) -> Iterator[FirestoreStore]:
    client = firestore_emulator.client(project)
    s = FirestoreStore(client, timeout=10)
    yield s
    s.close()
    client.close()  # the store leaves a client it was given open


class TestFirestoreContract(StoreContract):
    """The shared contract; ``store`` above gives each test an empty project."""

    @pytest.fixture
    def twin(self, firestore_emulator: FirestoreEmulator, project: str) -> Iterator[FirestoreStore]:
        """A second store with its own client (its own channel), as another process has."""
        client = firestore_emulator.client(project)
        s = FirestoreStore(client, timeout=10)
        yield s
        s.close()
        client.close()


# -- writes ------------------------------------------------------------------------------------
@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of writes in every Commit RPC made while the test runs (at the client's API
    stub, which every commit goes through)."""
    sizes: list[int] = []
    original = FirestoreApi.commit

    def spy(self: FirestoreApi, *args: Any, request: Any = None, **kwargs: Any) -> Any:
        sizes.append(len(request["writes"] if isinstance(request, dict) else request.writes))  # (the client's own: a dict)
        return original(self, *args, request=request, **kwargs)

    monkeypatch.setattr(FirestoreApi, "commit", spy)
    return sizes


def test_1200_documents_go_in_commits_of_at_most_500(store: FirestoreStore, raw: Any, commits: list[int]) -> None:
    store.write(TELEMETRY_EVENTS, [event(f"e{i:04d}", T0 + i) for i in range(1200)])
    assert commits == [500, 500, 200]
    collection = raw.collection(TELEMETRY_EVENTS)
    assert collection.count().get()[0][0].value == 1200
    got = store.query_events(limit=1200)
    assert len(got) == 1200 and got[0]["id"] == "e1199" and got[-1]["id"] == "e0000"


def test_large_documents_split_commits_by_bytes(store: FirestoreStore, commits: list[int]) -> None:
    # 12 × ~0.9 MiB is over the 10 MiB commit limit: the store must split well before 500 writes.
    docs = [event(f"big{i:02d}", T0 + i, metadata={"blob": chr(97 + i) * 900_000}) for i in range(12)]
    store.write(TELEMETRY_EVENTS, docs)
    assert sum(commits) == 12 and len(commits) >= 2
    assert store.query_events(limit=20) == list(reversed(docs))


def test_a_commit_the_backend_finds_too_large_is_split(
    store: FirestoreStore, commits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from avalo_otel_exporter_firestore import _codec

    monkeypatch.setattr(_codec, "MAX_BATCH_BYTES", 1 << 40)  # as if our estimate were far off
    docs = [event(f"big{i}", T0 + i, metadata={"blob": "x" * 900_000}) for i in range(6)]
    store.write(TELEMETRY_EVENTS, docs)
    assert commits[0] == 6 and sum(commits[1:]) >= 6  # refused whole, then delivered in halves
    assert len(store.query_events()) == 6


def test_documents_are_keyed_by_id(store: FirestoreStore, raw: Any) -> None:
    store.write(TELEMETRY_EVENTS, [event("e1", T0)])
    store.write(TELEMETRY_EVENTS, [event("e1", T0, level="WARN")])
    assert [(s.id, s.get("level")) for s in raw.collection(TELEMETRY_EVENTS).stream()] == [("e1", "WARN")]
    # Ids Firestore cannot use as keys get a deterministic hashed key and still round-trip.
    odd = ["a/b", ".", "..", "__x__", "x" * 2000]
    store.write(TELEMETRY_EVENTS, [event(doc_id, T0 + i) for i, doc_id in enumerate(odd)])
    store.write(TELEMETRY_EVENTS, [event(doc_id, T0 + i) for i, doc_id in enumerate(odd)])
    assert sorted(d["id"] for d in store.query_events()) == sorted(["e1", *odd])
    store.put_alert_rule({"id": "team/rule", "name": "slash"})
    assert store.get_alert_rule("team/rule") is not None
    assert store.delete_alert_rule("team/rule") is True


def test_values_firestore_refuses_are_stored_not_dropped(store: FirestoreStore) -> None:
    # A nested array, an empty and a reserved key: Firestore rejects each, and one bad document
    # must not fail the whole commit; they are rewritten instead.
    bad = event("odd", T0, metadata={"matrix": [[1, 2], [3]], "": 1, "__x__": 2})
    store.write(TELEMETRY_EVENTS, [bad, event("ok", T0 + 1)])
    got = {d["id"]: d for d in store.query_events()}
    assert got["odd"]["metadata"] == {"matrix": [{"values": [1, 2]}, {"values": [3]}], "~": 1, "~__x__": 2}
    assert got["ok"] == event("ok", T0 + 1)


def test_numbers_count_8_bytes_toward_the_1_mib_limit(store: FirestoreStore) -> None:
    # ~450 KB as JSON, ~1.8 MB as Firestore counts it: still stored, truncated.
    store.write(TELEMETRY_EVENTS, [event("ints", T0, metadata={"counts": [7] * 225_000, "keep": "me"})])
    [doc] = store.query_events()
    assert doc["truncated"] is True and "counts" not in doc["metadata"] and doc["ts"] == T0


def test_expire_at_is_a_firestore_timestamp_but_round_trips_as_epoch_ms(store: FirestoreStore, raw: Any) -> None:
    doc = event("e1", T0 + 123)
    store.write(TELEMETRY_EVENTS, [doc])
    store.insert_alert_event(alert("a1", T0))
    stored = raw.collection(TELEMETRY_EVENTS).document("e1").get().to_dict()
    assert isinstance(stored["expireAt"], datetime)
    assert stored["expireAt"] == datetime.fromtimestamp((T0 + 123 + 90 * DAY_MS) / 1000, tz=timezone.utc)
    assert isinstance(stored["ts"], int)  # only expireAt becomes a timestamp
    assert isinstance(raw.collection(ALERT_EVENTS).document("a1").get().get("expireAt"), datetime)
    assert store.query_events() == [doc]
    assert store.query_alert_events()[0]["expireAt"] == T0 + 90 * DAY_MS
    store.write(ALERT_RULES, [{"id": "r1", "name": "x", "updatedAt": T0, "expireAt": T0}])  # rules never expire
    assert "expireAt" not in raw.collection(ALERT_RULES).document("r1").get().to_dict()
    # Created and updated alert events are encoded as written ones are.
    assert store.create_alert_event(alert("a2", T0))
    assert isinstance(raw.collection(ALERT_EVENTS).document("a2").get().get("expireAt"), datetime)
    assert store.update_alert_event("a2", {"expireAt": T0 + 5, "matrix": [[1], [2]]})
    stored = raw.collection(ALERT_EVENTS).document("a2").get().to_dict()
    assert stored["expireAt"] == datetime.fromtimestamp((T0 + 5) / 1000, tz=timezone.utc)
    assert stored["matrix"] == [{"values": [1]}, {"values": [2]}]


def test_update_alert_event_writes_only_its_fields(store: FirestoreStore, raw: Any, commits: list[int]) -> None:
    # An update mask, no read-modify-write: a field another writer set meanwhile is kept.
    store.insert_alert_event(alert("a1", T0, ruleId="r1"))
    raw.collection(ALERT_EVENTS).document("a1").update({"notifiedAt": T0 + 1})
    commits.clear()
    assert store.update_alert_event("a1", {"status": "resolved"}) is True
    assert commits == [1]
    [doc] = store.get_documents(ALERT_EVENTS, ["a1"])
    assert (doc["notifiedAt"], doc["status"], doc["ruleId"]) == (T0 + 1, "resolved", "r1")
    # An odd id is found by its hashed key, like every other method.
    store.insert_alert_event(alert("team/a", T0))
    assert store.update_alert_event("team/a", {"status": "firing"}) is True
    assert store.create_alert_event(alert("team/a", T0)) is False
    assert store.query_alert_events(status="firing")[0]["id"] == "team/a"


def test_prefix_names_the_collections(firestore_emulator: FirestoreEmulator, project: str, raw: Any) -> None:
    staging = FirestoreStore(firestore_emulator.client(project), prefix="staging_")
    plain = FirestoreStore(firestore_emulator.client(project))
    staging.write(TELEMETRY_EVENTS, [event("e1", T0)])
    assert plain.query_events() == [] and len(staging.query_events()) == 1
    assert [s.id for s in raw.collection("staging_telemetry_events").stream()] == ["e1"]
    assert staging.collection_name(METRICS) == "staging_metrics"
    assert FirestoreStore(prefix="team-1_").collection_name(TRACES) == "team-1_traces"


@pytest.mark.parametrize("prefix", ["a/b", "a.b", "a b", "é_", "__x__", "x\n", 5])
def test_invalid_prefix(prefix: Any) -> None:
    with pytest.raises(StoreError, match="invalid collection prefix"):
        FirestoreStore(prefix=prefix)


def test_concurrent_writers_and_readers(store: FirestoreStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for b in range(5):
                store.write(METRICS, [metric(f"t{n}-{b}-{i}", T0 + i) for i in range(20)])
                store.query_metrics(limit=10)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(store.query_metrics(limit=1000)) == 8 * 5 * 20


def test_close(firestore_emulator: FirestoreEmulator, project: str) -> None:
    client = firestore_emulator.client(project)
    store = FirestoreStore(client)
    store.write(TELEMETRY_EVENTS, [event("e1", T0)])
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed") as info:
        store.query_events()
    assert not info.value.transient
    # A client passed in belongs to the caller and stays usable.
    assert client.collection(TELEMETRY_EVENTS).document("e1").get().exists


def test_from_env(monkeypatch: pytest.MonkeyPatch, firestore_emulator: FirestoreEmulator, project: str) -> None:
    env = {"GOOGLE_CLOUD_PROJECT": "ignored", "AVALO_OTEL_FIRESTORE_PROJECT": project,
           "AVALO_OTEL_FIRESTORE_PREFIX": "env_", "AVALO_OTEL_FIRESTORE_TIMEOUT": "3"}
    store = FirestoreStore.from_env(env)
    try:
        assert (store.prefix, store.timeout) == ("env_", 3.0)
        store.write(TELEMETRY_EVENTS, [event("e1", T0)])  # FIRESTORE_EMULATOR_HOST is set by the fixture
        assert store.client.project == project
        assert [s.id for s in firestore_emulator.client(project).collection("env_telemetry_events").stream()] == ["e1"]
    finally:
        store.close()
    with pytest.raises(StoreError, match="TIMEOUT"):
        FirestoreStore.from_env({"AVALO_OTEL_FIRESTORE_TIMEOUT": "soon"})


def test_otel_entry_points_export_to_firestore(
    monkeypatch: pytest.MonkeyPatch, firestore_emulator: FirestoreEmulator, project: str
) -> None:
    from importlib.metadata import entry_points

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from avalo_otel_exporter_firestore import otel

    kinds = ("traces", "logs", "metrics")
    loaded = {k: [ep.load() for ep in entry_points(group=f"opentelemetry_{k}_exporter") if ep.name == "firestore"]
              for k in kinds}
    assert loaded == {"traces": [otel.FirestoreSpanExporter], "logs": [otel.FirestoreLogExporter],
                      "metrics": [otel.FirestoreMetricExporter]}
    monkeypatch.setenv("AVALO_OTEL_FIRESTORE_PROJECT", project)
    monkeypatch.setattr(otel, "_shared", None)
    exporter = otel.FirestoreSpanExporter()  # as the SDK builds it: no arguments
    assert otel.FirestoreLogExporter().store is exporter.store  # one client for the three
    provider = TracerProvider(resource=Resource({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("wallet.spend"):
        pass
    assert exporter.force_flush(10_000)
    provider.shutdown()
    [doc] = otel.shared_store().query_traces()
    assert (doc["name"], doc["service"]) == ("wallet.spend", "svc")
    otel.shared_store().close()


# -- outages -----------------------------------------------------------------------------------
def _dead_store(monkeypatch: pytest.MonkeyPatch, host: str, timeout: float) -> FirestoreStore:
    monkeypatch.setenv(ENV, host)
    return FirestoreStore(firestore.Client(project="demo-dead", credentials=AnonymousCredentials()), timeout=timeout)


STORE_CALLS: list[tuple[str, Callable[[FirestoreStore], Any]]] = [
    ("write", lambda s: s.write(TELEMETRY_EVENTS, [event("e1", T0)])),
    ("query_events", lambda s: s.query_events(domain="chat")),
    ("query_traces", lambda s: s.query_traces(trace_id="a" * 32)),
    ("get_alert_rule", lambda s: s.get_alert_rule("r1")),
    ("list_alert_rules", lambda s: s.list_alert_rules()),
    ("delete_alert_rule", lambda s: s.delete_alert_rule("r1")),
    ("acknowledge_alert", lambda s: s.acknowledge_alert("a1", "me")),
    ("create_alert_event", lambda s: s.create_alert_event(alert("a1", T0))),
    ("update_alert_event", lambda s: s.update_alert_event("a1", {"status": "resolved"})),
    ("get_documents", lambda s: s.get_documents(SLO_ROLLUPS, ["x:1"])),
    ("scan_metrics", lambda s: list(s.scan_metrics(names=["a", "b"], start_ms=T0, end_ms=T0 + 1))),
    ("delete_expired dry run", lambda s: s.delete_expired(METRICS, T0, dry_run=True)),
    ("delete_expired", lambda s: s.delete_expired(METRICS, T0)),
]


@pytest.mark.parametrize("name, call", STORE_CALLS, ids=[n for n, _ in STORE_CALLS])
def test_dead_port_fails_fast_and_transient(monkeypatch: pytest.MonkeyPatch, name: str, call: Callable[..., Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = _dead_store(monkeypatch, f"127.0.0.1:{port}", timeout=5)
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        call(store)
    assert info.value.transient, info.value
    assert time.monotonic() - started < 15
    assert "firestore" in str(info.value)


def test_unresponsive_backend_times_out_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    # Accepts TCP connections (the kernel does) but never answers: only the timeout ends the call.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        store = _dead_store(monkeypatch, f"127.0.0.1:{silent.getsockname()[1]}", timeout=2)
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.write(TELEMETRY_EVENTS, [event("e1", T0)])
        assert info.value.transient and time.monotonic() - started < 15


def test_outage_and_recovery_on_the_same_port(firestore_emulator: FirestoreEmulator, project: str) -> None:
    store = FirestoreStore(firestore_emulator.client(project), timeout=3)
    store.write(TELEMETRY_EVENTS, [event("before", T0)])
    host = firestore_emulator.host
    firestore_emulator.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.write(TELEMETRY_EVENTS, [event("during", T0 + 1)])
        assert info.value.transient and time.monotonic() - started < 15
    finally:
        firestore_emulator.start()
    assert firestore_emulator.host == host
    # gRPC's reconnect backoff can lag the emulator's restart by seconds: retry like the writer does.
    deadline = time.monotonic() + 90
    while True:
        try:
            store.write(TELEMETRY_EVENTS, [event("after", T0 + 2)])
            break
        except StoreError as exc:
            assert exc.transient and time.monotonic() < deadline, exc
            time.sleep(0.5)
    assert [d["id"] for d in store.query_events()] == ["after"]  # the emulator keeps data in memory only


def test_error_classification() -> None:
    from google.api_core import exceptions as gexc

    transient: tuple[BaseException, ...] = (
        ServiceUnavailable("x"), gexc.DeadlineExceeded("x"), gexc.InternalServerError("x"), gexc.Aborted("x"),
        gexc.ResourceExhausted("x"), gexc.RetryError("x", None), ConnectionResetError())
    permanent: tuple[BaseException, ...] = (
        gexc.InvalidArgument("x"), gexc.PermissionDenied("x"), gexc.FailedPrecondition("index"),
        gexc.NotFound("x"), ValueError("x"), TypeError("x"))
    assert [is_transient(e) for e in transient] == [True] * len(transient)
    assert [is_transient(e) for e in permanent] == [False] * len(permanent)


class _Rpc(grpc.RpcError):
    def __init__(self, code: Any) -> None:
        self._code = code

    def code(self) -> Any:
        if self._code is None:
            raise RuntimeError("no status")
        return self._code


def test_error_classification_of_raw_grpc_and_auth_failures() -> None:
    from google.auth import exceptions as auth_exc

    transient: tuple[BaseException, ...] = (
        _Rpc(grpc.StatusCode.UNAVAILABLE), _Rpc(grpc.StatusCode.DEADLINE_EXCEEDED), _Rpc(None),
        auth_exc.RefreshError("token endpoint busy", retryable=True), auth_exc.TransportError("dns"), OSError())
    permanent: tuple[BaseException, ...] = (
        _Rpc(grpc.StatusCode.INVALID_ARGUMENT), _Rpc(grpc.StatusCode.PERMISSION_DENIED),
        auth_exc.RefreshError("invalid_grant"), auth_exc.DefaultCredentialsError("no credentials"))
    assert [is_transient(e) for e in transient] == [True] * len(transient)
    assert [is_transient(e) for e in permanent] == [False] * len(permanent)
    error = store_error(_Rpc(grpc.StatusCode.UNAVAILABLE), "write to telemetry_events")
    assert error.transient and str(error).startswith("firestore write to telemetry_events failed: _Rpc")


# -- fork --------------------------------------------------------------------------------------
def _write_in_child(store: FirestoreStore, parent_client_id: int, conn: Any) -> None:
    try:
        store.write(TELEMETRY_EVENTS, [event("child", T0 + 1)])
        conn.send(("ok", os.getpid(), id(store.client) != parent_client_id))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", os.getpid(), repr(exc)))


def test_a_fork_waits_for_the_calls_in_flight_and_no_new_one_starts_meanwhile() -> None:
    # A child forked mid-call can find gRPC locked for good (its first call hangs to its
    # deadline): the store holds forks until its calls have returned.
    store = FirestoreStore(project="demo-fork", timeout=5)
    ended: list[float] = []
    started = threading.Event()

    def slow_call() -> None:
        started.set()
        time.sleep(0.4)
        ended.append(time.monotonic())

    calling = threading.Thread(target=store._call, args=("slow", slow_call))
    calling.start()
    assert started.wait(5)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not store.calls._running else 1)  # the child starts with no calls running
    forked = time.monotonic()
    assert os.waitpid(pid, 0)[1] == 0
    calling.join()
    assert ended and ended[0] <= forked  # the fork went ahead only once the call had returned
    store._call("after", lambda: None)  # and calls run again after it
    store.close()


def test_fork_child_writes_through_its_own_client(store: FirestoreStore) -> None:
    store.write(TELEMETRY_EVENTS, [event("parent", T0)])  # the parent's channel is now in use
    parent_client = store.client
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_write_in_child, args=(store, id(parent_client), send))
    child.start()
    try:
        assert receive.poll(60), "the forked child did not answer within 60 s (gRPC shared across fork?)"
        status, pid, detail = receive.recv()
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert (status, detail) == ("ok", True), detail
    assert pid != os.getpid() and child.exitcode == 0
    assert store.client is parent_client  # the parent keeps its client, and it still works
    assert [d["id"] for d in store.query_events()] == ["child", "parent"]


# -- indexes -----------------------------------------------------------------------------------
def _issued_queries(store: FirestoreStore, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every query the store sends while each read method runs with every filter combination."""
    seen: list[Any] = []
    stream, count = FirestoreStore._stream, FirestoreStore._count

    def spy_stream(self: FirestoreStore, query: Any, what: str) -> list[Any]:
        # A whole collection (listing the rules) is a query without filters.
        seen.append((query if hasattr(query, "_to_protobuf") else query._query())._to_protobuf())
        return stream(self, query, what)

    def spy_count(self: FirestoreStore, query: Any, what: str) -> int:
        seen.append(query._to_protobuf())
        return count(self, query, what)

    monkeypatch.setattr(FirestoreStore, "_stream", spy_stream)
    monkeypatch.setattr(FirestoreStore, "_count", spy_count)

    def combos(options: dict[str, Any]) -> Iterator[dict[str, Any]]:
        keys = list(options)
        for mask in range(2 ** len(keys)):
            yield {k: options[k] for i, k in enumerate(keys) if mask >> i & 1}

    ranges: list[dict[str, Any]] = [{}, {"start_ms": T0}, {"end_ms": T0 + 1}, {"start_ms": T0, "end_ms": T0 + 1}]
    for r in ranges:
        for f in combos({"domain": "chat", "level": "INFO", "operation": "chat.send", "success": True}):
            store.query_events(**f, **r)
        for f in combos({"name": "x", "type": "counter"}):
            store.query_metrics(**f, **r)
        for f in combos({"trace_id": "a" * 32, "operation": "db.query"}):
            store.query_traces(**f, **r)
        for f in combos({"severity": "WARN", "acknowledged": False, "rule_id": "r1", "status": "firing"}):
            store.query_alert_events(**f, **r)
    store.write(METRICS, [metric(f"m{i}", T0, name="x") for i in range(3)])
    store.scan_page_size = 2  # a second page: its query has a cursor
    list(store.scan_metrics(names=["x", "y"], start_ms=T0, end_ms=T0 + 1))
    for enabled in (None, True, False):
        store.list_alert_rules(enabled=enabled)
    for collection in COLLECTIONS:
        store.write(collection, [{"id": "x", "updatedAt": T0, "expireAt": T0}])
        store.delete_expired(collection, T0, dry_run=True)
        store.delete_expired(collection, T0, batch_size=1)
    return seen


def test_indexes_file_covers_every_query_the_store_issues(store: FirestoreStore, monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.loads(INDEXES_FILE.read_text())
    shapes = {indexes.query_shape(q) for q in _issued_queries(store, monkeypatch)}
    assert len(shapes) >= 30  # sanity: the spy saw the whole query surface
    missing = sorted(str(s) for s in shapes if not indexes.is_covered(s, config))
    assert not missing, f"queries without an index in {INDEXES_FILE.name}: {missing}"
    # And nothing in the file that no query uses (each composite index costs storage per write).
    used = [ix for ix in config["indexes"] if any(indexes.is_covered(s, {"indexes": [ix]}) for s in shapes)]
    assert used == config["indexes"]
    # The checker itself: without the file's composite indexes, filtered queries are uncovered.
    assert not indexes.is_covered(("telemetry_events", frozenset({"domain"}), (("ts", "DESCENDING"),)), {"indexes": []})
    assert indexes.is_covered(("telemetry_events", frozenset(), (("ts", "DESCENDING"),)), {"indexes": []})


def test_indexes_file_is_generated_and_has_the_original_indexes() -> None:
    config = json.loads(INDEXES_FILE.read_text())
    assert config == indexes.render(), "regenerate: avalo-otel-firestore-indexes > exporters/firestore/firestore.indexes.json"
    pairs = {(ix["collectionGroup"], tuple(f["fieldPath"] for f in ix["fields"])) for ix in config["indexes"]}
    original = {
        (TELEMETRY_EVENTS, ("domain", "ts")), (TELEMETRY_EVENTS, ("level", "ts")),
        (TELEMETRY_EVENTS, ("operation", "ts")), (TELEMETRY_EVENTS, ("success", "ts")),
        (METRICS, ("name", "timestamp")), (METRICS, ("type", "timestamp")),
        (TRACES, ("traceId", "startTime")), (TRACES, ("operation", "startTime")),
        (ALERT_EVENTS, ("severity", "timestamp")), (ALERT_EVENTS, ("acknowledged", "timestamp")),
        (ALERT_EVENTS, ("severity", "acknowledged", "timestamp")),
    }
    assert original <= pairs
    ttl = {o["collectionGroup"] for o in config["fieldOverrides"] if o["fieldPath"] == "expireAt" and o.get("ttl") is True}
    assert ttl == {TELEMETRY_EVENTS, METRICS, TRACES, ALERT_EVENTS, SLO_ROLLUPS}
    prefixed = indexes.render("staging_")
    assert {ix["collectionGroup"] for ix in prefixed["indexes"]} <= {f"staging_{c}" for c in COLLECTIONS}


# -- security rules ----------------------------------------------------------------------------
def test_rules_file_only_denies() -> None:
    text = RULES_FILE.read_text()
    code = re.sub(r"//[^\n]*", "", text)
    assert "rules_version = '2'" in code and "service cloud.firestore" in code
    allows = re.findall(r"allow\s+([^;]*);", code)
    assert allows and all(re.fullmatch(r"[\w\s,]+:\s*if\s+false", a.strip()) for a in allows), allows
    for collection in COLLECTIONS:
        assert re.search(rf"match\s+/{collection}/\{{\w+\}}\s*\{{\s*allow read, write: if false;", code), collection


def test_rules_deny_client_sdk_access(firestore_emulator: FirestoreEmulator, project: str, store: FirestoreStore) -> None:
    firestore_emulator.load_rules(project, RULES_FILE.read_text())
    store.write(TELEMETRY_EVENTS, [event("e1", T0)])  # server clients are not subject to rules
    user = firestore_emulator.user_token(project)
    body = {"fields": {"x": {"integerValue": "1"}}}
    for collection in COLLECTIONS:
        for token in (None, user):
            for method, path, payload in (("GET", f"{collection}/e1", None), ("GET", collection, None),
                                          ("PATCH", f"{collection}/new", body), ("DELETE", f"{collection}/e1", None)):
                status, answer = firestore_emulator.rest(method, project, path, payload, token=token)
                assert status == 403, (collection, method, path, token is not None, answer)
    assert [d["id"] for d in store.query_events()] == ["e1"]
