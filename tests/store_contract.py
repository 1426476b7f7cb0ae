"""The contract every ``Store`` implementation passes, exercised only through the protocol.

Use it by subclassing with a ``store`` fixture that yields an EMPTY store (for a shared backend
such as the Firestore emulator: a unique collection prefix or project per test) and closes it::

    class TestSQLiteContract(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = SQLiteStore(tmp_path / "t.db")
            yield s
            s.close()

A subclass may also give ``twin``: a second store on the same backend, as another process would
open it (by default ``store`` itself). Beyond the protocol, the tests use the stores'
``scan_page_size`` (set small, to cross page boundaries) and ``documents_read``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from avalo_otel.store import (
    ALERT_EVENTS, ALERT_RULES, COLLECTIONS, DAY_MS, METRICS, SLO_ROLLUPS, TELEMETRY_EVENTS, TRACES, Store,
    StoreError,
)

T0 = 1_700_000_000_000  # a fixed epoch-ms origin: results never depend on the clock
FAR_FUTURE = T0 + 10_000 * DAY_MS


def event(id: str, ts: int, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": id, "ts": ts, "domain": "chat", "level": "INFO", "operation": "chat.send", "success": True,
           "errorCode": None, "latencyMs": 12.5, "actorType": "user", "actorId": "u-1", "sessionId": None,
           "metadata": {"messageLength": 150, "nested": {"ok": True}}, "traceId": None, "spanId": None,
           "service": "svc", "expireAt": ts + 90 * DAY_MS}
    doc.update(fields)
    return doc


def metric(id: str, timestamp: int, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": id, "name": "chat_messages_sent_total", "type": "counter", "value": 1, "labels": {"domain": "chat"},
           "timestamp": timestamp, "startTime": T0, "temporality": "cumulative", "service": "svc",
           "expireAt": timestamp + 30 * DAY_MS}
    doc.update(fields)
    return doc


def span(trace_id: str, span_id: str, start: int, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": f"{trace_id}-{span_id}", "traceId": trace_id, "spanId": span_id, "parentSpanId": None,
           "operation": "wallet.spend", "name": "wallet.spend", "domain": "wallet", "kind": "internal",
           "startTime": start, "endTime": start + 5, "durationMs": 5.0, "success": True, "errorCode": None,
           "status": "unset", "statusMessage": None, "attributes": {}, "events": [], "service": "svc",
           "expireAt": start + 30 * DAY_MS}
    doc.update(fields)
    return doc


def rule(id: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": id, "name": f"Rule {id}", "severity": "WARN", "metric": "chat_error_rate", "threshold": 0.02,
           "windowMinutes": 5, "condition": "greater_than", "enabled": True, "description": "test rule",
           "labels": {"domain": "chat"}, "cooldownMinutes": 15}
    doc.update(fields)
    return doc


def alert(id: str, timestamp: int, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": id, "ruleId": "r1", "severity": "CRITICAL", "timestamp": timestamp, "value": 0.05,
           "threshold": 0.02, "message": "error rate high", "acknowledged": False,
           "expireAt": timestamp + 90 * DAY_MS}
    doc.update(fields)
    return doc


def rollup(slo: str, day: int, **fields: Any) -> dict[str, Any]:
    """An SLO rollup as the evaluator writes it: ``data`` is JSON text (here ~100 KB)."""
    minutes = {str(m): [m % 7, 1000 + m] for m in range(1440)}
    doc: dict[str, Any] = {"id": f"{slo}:{day}", "slo": slo, "day": day, "updatedAt": day + 1,
                           "data": json.dumps({"minutes": minutes, "pad": "x" * 80_000})}
    doc.update(fields)
    return doc


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


def scan_ids(store: Store, names: list[str], start_ms: int, end_ms: int) -> list[str]:
    return ids(list(store.scan_metrics(names=names, start_ms=start_ms, end_ms=end_ms)))


class StoreContract:
    """Subclasses provide the ``store`` fixture (and may provide ``twin``)."""

    @pytest.fixture
    def twin(self, store: Store) -> Store:
        return store

    # -- writing -------------------------------------------------------------------------------
    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    def test_round_trip_keeps_every_field(self, store: Store) -> None:
        doc = event("e1", T0, metadata={"a": {"b": [1, 2.5, "x", None, True]}, "code.line.number": 3})
        store.write(TELEMETRY_EVENTS, [doc])
        assert store.query_events() == [doc]

    def test_upsert_same_id_twice_keeps_one_document(self, store: Store) -> None:
        store.write(TELEMETRY_EVENTS, [event("e1", T0)])
        store.write(TELEMETRY_EVENTS, [event("e1", T0)])
        store.write(TELEMETRY_EVENTS, [event("e1", T0, level="ERROR", success=False)])
        docs = store.query_events()
        assert ids(docs) == ["e1"]
        assert docs[0]["level"] == "ERROR" and docs[0]["success"] is False
        assert store.query_events(level="INFO") == []

    def test_duplicate_ids_in_one_write(self, store: Store) -> None:
        store.write(METRICS, [metric("m1", T0, value=1), metric("m1", T0, value=2)])
        assert [d["value"] for d in store.query_metrics()] == [2]

    def test_empty_write_is_a_no_op(self, store: Store) -> None:
        store.write(TELEMETRY_EVENTS, [])
        assert store.query_events() == []

    def test_more_than_500_documents_in_one_write(self, store: Store) -> None:
        docs = [event(f"e{i:04d}", T0 + i) for i in range(620)]
        store.write(TELEMETRY_EVENTS, docs)
        got = store.query_events(limit=1000)
        assert len(got) == 620
        assert got[0]["id"] == "e0619" and got[-1]["id"] == "e0000"

    def test_unknown_collection(self, store: Store) -> None:
        with pytest.raises(StoreError, match="unknown collection"):
            store.write("telemetry", [event("e1", T0)])
        with pytest.raises(StoreError, match="unknown collection"):
            store.delete_expired("nope", T0)

    def test_document_without_id(self, store: Store) -> None:
        doc = event("x", T0)
        del doc["id"]
        with pytest.raises(StoreError):
            store.write(TELEMETRY_EVENTS, [doc])

    def test_oversized_document_is_truncated_not_rejected(self, store: Store) -> None:
        store.write(TELEMETRY_EVENTS, [event("big", T0, metadata={"blob": "x" * 3_000_000})])
        [doc] = store.query_events()
        assert doc["truncated"] is True and len(doc["metadata"]["blob"]) < 10_000
        assert doc["domain"] == "chat" and doc["ts"] == T0

    def test_missing_expire_at_follows_retention(self, store: Store) -> None:
        doc = event("e1", T0)
        del doc["expireAt"]
        store.write(TELEMETRY_EVENTS, [doc])
        assert store.query_events()[0]["expireAt"] == T0 + 90 * DAY_MS
        assert store.delete_expired(TELEMETRY_EVENTS, T0 + 90 * DAY_MS - 1) == 0
        assert store.delete_expired(TELEMETRY_EVENTS, T0 + 90 * DAY_MS) == 1

    # -- telemetry events ----------------------------------------------------------------------
    @pytest.fixture
    def events(self, store: Store) -> Store:
        store.write(TELEMETRY_EVENTS, [
            event("e0", T0 + 0),
            event("e1", T0 + 1000, domain="wallet", operation="wallet.spend", level="ERROR", success=False,
                  errorCode="INSUFFICIENT_FUNDS"),
            event("e2", T0 + 2000, level="WARN"),
            event("e3", T0 + 3000, domain="wallet", operation="wallet.refund"),
            event("e4", T0 + 4000, domain="safety", operation="safety.panic_press", level="CRITICAL",
                  success=False, errorCode="TIMEOUT"),
            event("e5", T0 + 5000),
        ])
        return store

    def test_events_newest_first(self, events: Store) -> None:
        assert ids(events.query_events()) == ["e5", "e4", "e3", "e2", "e1", "e0"]

    @pytest.mark.parametrize("filters, expected", [
        ({"domain": "wallet"}, ["e3", "e1"]),
        ({"domain": "nope"}, []),
        ({"level": "ERROR"}, ["e1"]),
        ({"level": "INFO"}, ["e5", "e3", "e0"]),
        ({"operation": "chat.send"}, ["e5", "e2", "e0"]),
        ({"success": False}, ["e4", "e1"]),
        ({"success": True}, ["e5", "e3", "e2", "e0"]),
        ({"domain": "wallet", "success": True}, ["e3"]),
        ({"domain": "wallet", "level": "ERROR", "operation": "wallet.spend", "success": False}, ["e1"]),
    ])
    def test_event_filters(self, events: Store, filters: dict[str, Any], expected: list[str]) -> None:
        assert ids(events.query_events(**filters)) == expected

    def test_event_time_range_is_half_open(self, events: Store) -> None:
        assert ids(events.query_events(start_ms=T0 + 1000, end_ms=T0 + 4000)) == ["e3", "e2", "e1"]
        assert ids(events.query_events(start_ms=T0 + 4000)) == ["e5", "e4"]
        assert ids(events.query_events(end_ms=T0 + 1000)) == ["e0"]
        assert ids(events.query_events(domain="chat", start_ms=T0 + 1, end_ms=T0 + 5000)) == ["e2"]

    def test_event_limit_keeps_the_newest(self, events: Store) -> None:
        assert ids(events.query_events(limit=2)) == ["e5", "e4"]
        assert ids(events.query_events(success=True, limit=1)) == ["e5"]

    # -- metrics -------------------------------------------------------------------------------
    @pytest.fixture
    def metrics(self, store: Store) -> Store:
        store.write(METRICS, [
            metric("m0", T0),
            metric("m1", T0 + 10, name="api_latency_ms", type="histogram", value=None, count=3, sum=12.0,
                   buckets={"bounds": [5.0, 10.0], "counts": [1, 1, 1]}),
            metric("m2", T0 + 20, name="active_users", type="gauge", value=42),
            metric("m3", T0 + 30),
            metric("m4", T0 + 40, name="api_latency_ms", type="histogram", value=None),
        ])
        return store

    def test_metrics_queries(self, metrics: Store) -> None:
        assert ids(metrics.query_metrics()) == ["m4", "m3", "m2", "m1", "m0"]
        assert ids(metrics.query_metrics(name="chat_messages_sent_total")) == ["m3", "m0"]
        assert ids(metrics.query_metrics(type="histogram")) == ["m4", "m1"]
        assert ids(metrics.query_metrics(name="api_latency_ms", type="histogram", end_ms=T0 + 40)) == ["m1"]
        assert ids(metrics.query_metrics(start_ms=T0 + 10, end_ms=T0 + 30)) == ["m2", "m1"]
        assert ids(metrics.query_metrics(limit=3)) == ["m4", "m3", "m2"]
        [m1] = metrics.query_metrics(name="api_latency_ms", end_ms=T0 + 11)
        assert m1["buckets"] == {"bounds": [5.0, 10.0], "counts": [1, 1, 1]}

    # -- traces --------------------------------------------------------------------------------
    @pytest.fixture
    def traces(self, store: Store) -> Store:
        a, b = "a" * 32, "b" * 32
        store.write(TRACES, [
            span(a, "0000000000000003", T0 + 30, parentSpanId="0000000000000001", operation="db.query"),
            span(b, "0000000000000009", T0 + 15),
            span(a, "0000000000000001", T0 + 10),
            span(a, "0000000000000002", T0 + 20, parentSpanId="0000000000000001", operation="db.query"),
        ])
        return store

    def test_traces_by_trace_id_oldest_first(self, traces: Store) -> None:
        docs = traces.query_traces(trace_id="a" * 32)
        assert [d["spanId"][-1] for d in docs] == ["1", "2", "3"]
        assert ids(traces.query_traces(trace_id="a" * 32, limit=2)) == [f"{'a' * 32}-000000000000000{i}" for i in (1, 2)]
        assert traces.query_traces(trace_id="c" * 32) == []

    def test_traces_by_operation_and_time_newest_first(self, traces: Store) -> None:
        assert [d["spanId"][-1] for d in traces.query_traces()] == ["3", "2", "9", "1"]
        assert [d["spanId"][-1] for d in traces.query_traces(operation="db.query")] == ["3", "2"]
        assert [d["spanId"][-1] for d in traces.query_traces(operation="wallet.spend", start_ms=T0 + 11)] == ["9"]
        assert [d["spanId"][-1] for d in traces.query_traces(start_ms=T0 + 10, end_ms=T0 + 30, limit=2)] == ["2", "9"]

    # -- alert rules ---------------------------------------------------------------------------
    def test_alert_rule_crud(self, store: Store) -> None:
        assert store.get_alert_rule("r1") is None
        store.put_alert_rule(rule("r1"))
        store.put_alert_rule(rule("r2", enabled=False, severity="CRITICAL"))
        got = store.get_alert_rule("r1")
        assert got is not None
        assert {k: got[k] for k in rule("r1")} == rule("r1")
        assert ids(store.list_alert_rules()) == ["r1", "r2"]
        assert ids(store.list_alert_rules(enabled=True)) == ["r1"]
        assert ids(store.list_alert_rules(enabled=False)) == ["r2"]

        store.put_alert_rule(rule("r1", threshold=0.05, enabled=False))  # replace
        replaced = store.get_alert_rule("r1")
        assert replaced is not None and replaced["threshold"] == 0.05
        assert ids(store.list_alert_rules(enabled=False)) == ["r1", "r2"]

        assert store.delete_alert_rule("r1") is True
        assert store.delete_alert_rule("r1") is False
        assert store.get_alert_rule("r1") is None
        assert ids(store.list_alert_rules()) == ["r2"]

    def test_alert_rule_defaults(self, store: Store) -> None:
        doc = rule("r1")
        del doc["enabled"]
        store.put_alert_rule(doc)
        got = store.get_alert_rule("r1")
        assert got is not None and got["enabled"] is True and isinstance(got["updatedAt"], int)

    def test_alert_rules_never_expire(self, store: Store) -> None:
        store.put_alert_rule(rule("r1", updatedAt=T0))
        store.write(ALERT_RULES, [rule("r2", updatedAt=T0, expireAt=T0)])
        assert store.delete_expired(ALERT_RULES, FAR_FUTURE, dry_run=True) == 0
        assert store.delete_expired(ALERT_RULES, FAR_FUTURE) == 0
        assert ids(store.list_alert_rules()) == ["r1", "r2"]

    # -- alert events --------------------------------------------------------------------------
    @pytest.fixture
    def alerts(self, store: Store) -> Store:
        store.insert_alert_event(alert("a0", T0))
        store.insert_alert_event(alert("a1", T0 + 100, severity="WARN"))
        store.insert_alert_event(alert("a2", T0 + 200))
        store.insert_alert_event(alert("a3", T0 + 300, severity="WARN"))
        return store

    def test_alert_events_queries(self, alerts: Store) -> None:
        assert ids(alerts.query_alert_events()) == ["a3", "a2", "a1", "a0"]
        assert ids(alerts.query_alert_events(severity="CRITICAL")) == ["a2", "a0"]
        assert ids(alerts.query_alert_events(severity="CRITICAL", acknowledged=False, limit=1)) == ["a2"]
        assert ids(alerts.query_alert_events(acknowledged=True)) == []
        assert ids(alerts.query_alert_events(start_ms=T0 + 100, end_ms=T0 + 300)) == ["a2", "a1"]
        assert ids(alerts.query_alert_events(limit=2)) == ["a3", "a2"]

    def test_acknowledge(self, alerts: Store) -> None:
        assert alerts.acknowledge_alert("a2", "admin-7", at_ms=T0 + 999) is True
        [acked] = alerts.query_alert_events(acknowledged=True)
        assert acked["id"] == "a2"
        assert (acked["acknowledged"], acked["acknowledgedBy"], acked["acknowledgedAt"]) == (True, "admin-7", T0 + 999)
        assert acked["message"] == "error rate high"  # the rest of the event is kept
        assert ids(alerts.query_alert_events(severity="CRITICAL", acknowledged=False)) == ["a0"]

        before = time.time_ns() // 1_000_000
        assert alerts.acknowledge_alert("a0", "admin-8") is True
        [a0] = [d for d in alerts.query_alert_events() if d["id"] == "a0"]
        assert before - 1000 <= a0["acknowledgedAt"] <= time.time_ns() // 1_000_000 + 1000

        assert alerts.acknowledge_alert("no-such-alert", "admin-7") is False
        assert len(alerts.query_alert_events()) == 4

    def test_alert_event_defaults(self, store: Store) -> None:
        doc = alert("x", T0)
        for key in ("id", "acknowledged"):
            del doc[key]
        store.insert_alert_event(doc)
        store.insert_alert_event(doc)  # same event again: same derived id, one document
        [got] = store.query_alert_events(acknowledged=False)
        assert got["id"] and got["acknowledged"] is False and got["timestamp"] == T0

    def test_create_alert_event_only_if_new(self, store: Store) -> None:
        assert store.create_alert_event(alert("a1", T0, message="first")) is True
        assert store.create_alert_event(alert("a1", T0 + 5, message="second", severity="WARN")) is False
        [got] = store.query_alert_events()
        assert got == alert("a1", T0, message="first")  # the second create changed nothing
        assert ids(store.query_alert_events(severity="WARN")) == []
        doc = alert("x", T0 + 1, ruleId="r9")  # no id: derived from the event, so equal events are one
        del doc["id"], doc["acknowledged"]
        assert store.create_alert_event(doc) is True
        assert store.create_alert_event(dict(doc)) is False
        [derived] = store.query_alert_events(rule_id="r9", acknowledged=False)
        assert derived["id"] and derived["expireAt"] == T0 + 1 + 90 * DAY_MS

    def test_create_alert_event_race_has_one_winner(self, store: Store, twin: Store) -> None:
        # Four creators (two per store: the twin is another connection or client) try every id
        # at once; each id must be created exactly once, and keep the winner's document.
        event_ids = [f"race{i:02d}" for i in range(25)]
        start = threading.Barrier(4)
        won: dict[int, list[str]] = {n: [] for n in range(4)}
        errors: list[BaseException] = []

        def create(n: int) -> None:
            target = store if n % 2 else twin
            try:
                start.wait(10)
                for event_id in event_ids if n < 2 else reversed(event_ids):
                    if target.create_alert_event(alert(event_id, T0, creator=n)):
                        won[n].append(event_id)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert sorted(i for w in won.values() for i in w) == event_ids  # each once, none lost
        winner = {i: n for n, w in won.items() for i in w}
        stored = store.get_documents(ALERT_EVENTS, event_ids)
        assert {d["id"]: d["creator"] for d in stored} == winner

    def test_update_alert_event(self, alerts: Store) -> None:
        assert alerts.update_alert_event("a2", {"status": "resolved", "resolvedAt": T0 + 900, "severity": "WARN",
                                                "note.text": "dotted key", "details": {"a": [1, 2]}}) is True
        [a2] = alerts.get_documents(ALERT_EVENTS, ["a2"])
        assert a2 == {**alert("a2", T0 + 200), "status": "resolved", "resolvedAt": T0 + 900, "severity": "WARN",
                      "note.text": "dotted key", "details": {"a": [1, 2]}}
        # The queried fields follow the change.
        assert ids(alerts.query_alert_events(status="resolved")) == ["a2"]
        assert ids(alerts.query_alert_events(severity="CRITICAL")) == ["a0"]
        assert ids(alerts.query_alert_events(severity="WARN")) == ["a3", "a2", "a1"]
        assert alerts.update_alert_event("a2", {"acknowledged": True, "id": "a2"}) is True  # an unchanged id is fine
        assert ids(alerts.query_alert_events(acknowledged=True)) == ["a2"]
        assert alerts.update_alert_event("a2", {"status": "firing", "timestamp": T0 + 1000}) is True
        assert ids(alerts.query_alert_events(status="firing")) == ["a2"]
        assert ids(alerts.query_alert_events(start_ms=T0 + 1000)) == ["a2"]
        assert alerts.update_alert_event("a1", {}) is True  # nothing to change, but it exists
        assert alerts.get_documents(ALERT_EVENTS, ["a1"]) == [alert("a1", T0 + 100, severity="WARN")]

    def test_update_alert_event_missing_or_bad(self, alerts: Store) -> None:
        assert alerts.update_alert_event("nope", {"status": "resolved"}) is False
        assert alerts.update_alert_event("nope", {}) is False
        assert alerts.get_documents(ALERT_EVENTS, ["nope"]) == []  # and not created
        with pytest.raises(StoreError, match="id cannot change"):
            alerts.update_alert_event("a1", {"id": "a9"})
        assert len(alerts.query_alert_events()) == 4

    def test_update_alert_event_expecting(self, alerts: Store) -> None:
        # The expectation holds: updated. Several fields, all must hold; a missing one is None.
        assert alerts.update_alert_event("a2", {"status": "firing"}, expect={"status": None}) is True
        assert alerts.update_alert_event("a2", {"status": "resolved", "resolvedBy": "me"},
                                         expect={"status": "firing", "severity": "CRITICAL", "nope": None}) is True
        [a2] = alerts.get_documents(ALERT_EVENTS, ["a2"])
        assert a2 == {**alert("a2", T0 + 200), "status": "resolved", "resolvedBy": "me"}
        assert ids(alerts.query_alert_events(status="resolved")) == ["a2"]  # the columns follow
        # It does not hold (one field differs, or a missing field is expected to have a value,
        # or a bool is expected where a number is): nothing changes.
        for expect in ({"status": "firing"}, {"status": "resolved", "severity": "WARN"}, {"resolvedAt": T0},
                       {"acknowledged": 0}):
            assert alerts.update_alert_event("a2", {"status": "firing", "resolvedBy": "other"}, expect=expect) is False
        assert alerts.get_documents(ALERT_EVENTS, ["a2"]) == [a2]
        assert ids(alerts.query_alert_events(status="firing")) == []
        # Values compare as stored: numbers, a nested map, a tuple as the list it is stored as.
        assert alerts.update_alert_event("a1", {"details": {"a": [1, 2]}}) is True
        assert alerts.update_alert_event("a1", {"seen": 2}, expect={"timestamp": T0 + 100, "value": 0.05,
                                                                    "details": {"a": (1, 2)}, "acknowledged": False})
        assert alerts.get_documents(ALERT_EVENTS, ["a1"])[0]["seen"] == 2
        # A missing event: False whatever is expected, and not created.
        assert alerts.update_alert_event("nope", {"status": "resolved"}, expect={"status": None}) is False
        assert alerts.update_alert_event("nope", {"status": "resolved"}, expect={}) is False
        assert alerts.get_documents(ALERT_EVENTS, ["nope"]) == []
        with pytest.raises(StoreError, match="expect must be a mapping"):
            alerts.update_alert_event("a1", {"status": "resolved"}, expect=["status"])  # type: ignore[arg-type]

    def test_update_alert_event_expecting_race_has_one_winner(self, store: Store, twin: Store) -> None:
        # Two resolvers, one per store (the twin is another connection or client, as another
        # process has), both read "firing" and resolve at once: exactly one may win, and the
        # event keeps the winner's change.
        for round_ in range(3):  # several races, not one lucky ordering
            event_id = f"cas{round_}"
            store.insert_alert_event(alert(event_id, T0, status="firing"))
            start = threading.Barrier(2)
            won: list[str] = []
            errors: list[BaseException] = []

            def resolve(target: Store) -> None:
                name = threading.current_thread().name
                try:
                    start.wait(10)
                    if target.update_alert_event(event_id, {"status": "resolved", "resolvedBy": name},
                                                 expect={"status": "firing"}):
                        won.append(name)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=resolve, args=(target,), name=f"resolver-{n}")
                       for n, target in enumerate((store, twin))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            assert len(won) == 1, won
            [stored] = twin.get_documents(ALERT_EVENTS, [event_id])
            assert (stored["status"], stored["resolvedBy"]) == ("resolved", won[0])

    def test_alert_events_by_rule_and_status(self, store: Store) -> None:
        for i, (rule_id, status, severity) in enumerate([
            ("r1", "firing", "CRITICAL"), ("r2", "firing", "WARN"), ("r1", "resolved", "CRITICAL"),
            ("r2", "resolved", "CRITICAL"), ("r1", "firing", "WARN"),
        ]):
            store.insert_alert_event(alert(f"a{i}", T0 + i * 100, ruleId=rule_id, status=status, severity=severity))
        store.insert_alert_event(alert("old", T0 - 1, ruleId="r1"))  # no status field
        assert ids(store.query_alert_events(rule_id="r1")) == ["a4", "a2", "a0", "old"]
        assert ids(store.query_alert_events(status="firing")) == ["a4", "a1", "a0"]
        assert ids(store.query_alert_events(rule_id="r1", status="firing")) == ["a4", "a0"]
        assert ids(store.query_alert_events(rule_id="r1", status="firing", limit=1)) == ["a4"]
        assert ids(store.query_alert_events(rule_id="r2", status="resolved", severity="CRITICAL")) == ["a3"]
        assert ids(store.query_alert_events(rule_id="r1", status="firing", severity="WARN", acknowledged=False)) == ["a4"]
        assert ids(store.query_alert_events(rule_id="r1", start_ms=T0, end_ms=T0 + 400)) == ["a2", "a0"]
        assert ids(store.query_alert_events(rule_id="r3")) == []
        assert ids(store.query_alert_events(status="silenced")) == []

    # -- scans and reads by id -----------------------------------------------------------------
    def test_scan_metrics_pages_through_points_sharing_a_timestamp(self, store: Store) -> None:
        store.scan_page_size = 4  # type: ignore[attr-defined]
        same = T0 + 5
        docs = [metric(f"a{i:02d}", same, name="a") for i in (7, 3, 10, 0, 5, 9, 1, 8, 2, 6, 4)]  # 11 > 2 pages
        docs += [metric(f"b{i}", same, name="b") for i in (2, 0, 1)]
        docs += [metric("a-first", T0 + 1, name="a"), metric("b-last", T0 + 9, name="b"), metric("z-mid", T0 + 3, name="b")]
        docs += [metric("a-before", T0, name="a"), metric("a-at-end", T0 + 10, name="a"),  # outside [start, end)
                 metric("c0", same, name="c"), {**metric("a-none", same, name="a"), "timestamp": None}]
        store.write(METRICS, docs)
        expected = (["a-first", "z-mid"] + [f"a{i:02d}" for i in range(11)] + [f"b{i}" for i in range(3)]
                    + ["b-last"])
        assert scan_ids(store, ["a", "b"], T0 + 1, T0 + 10) == expected
        assert scan_ids(store, ["b", "a", "b"], T0 + 1, T0 + 10) == expected  # order and repeats of names do not matter
        assert scan_ids(store, ["a"], same, same + 1) == [f"a{i:02d}" for i in range(11)]
        store.scan_page_size = 11  # type: ignore[attr-defined]  # a page ending exactly at the last point
        assert scan_ids(store, ["a"], same, same + 1) == [f"a{i:02d}" for i in range(11)]
        [point] = [d for d in store.scan_metrics(names=["b"], start_ms=T0 + 9, end_ms=T0 + 10)]
        assert point == metric("b-last", T0 + 9, name="b")

    def test_scan_metrics_reads_page_by_page(self, store: Store) -> None:
        # Lazy: a point written after the first page was read is found when its page is; and
        # the scan holds nothing between pages that would block a write.
        store.scan_page_size = 3  # type: ignore[attr-defined]
        store.write(METRICS, [metric(f"m{i}", T0 + i, name="n") for i in range(8)])
        scan = store.scan_metrics(names=["n"], start_ms=T0, end_ms=T0 + 100)
        first = next(scan)
        store.write(METRICS, [metric("late", T0 + 50, name="n")])
        assert [first["id"]] + ids(list(scan)) == [f"m{i}" for i in range(8)] + ["late"]

    def test_scan_metrics_edges(self, store: Store) -> None:
        store.write(METRICS, [metric("m0", T0, name="n")])
        assert scan_ids(store, [], T0, T0 + 1) == []
        assert scan_ids(store, ["n"], T0 + 1, T0) == []
        assert scan_ids(store, ["n"], T0, T0) == []
        assert scan_ids(store, ["other"], T0, T0 + 1) == []
        with pytest.raises(StoreError, match="sequence of metric names"):
            store.scan_metrics(names="n", start_ms=T0, end_ms=T0 + 1)
        store.scan_page_size = 0  # type: ignore[attr-defined]
        with pytest.raises(StoreError, match="scan_page_size"):
            store.scan_metrics(names=["n"], start_ms=T0, end_ms=T0 + 1)

    def test_get_documents_in_the_order_asked(self, store: Store) -> None:
        store.write(METRICS, [metric("m1", T0), metric("m2", T0 + 1), metric("a/b", T0 + 2)])
        store.put_alert_rule(rule("r1"))
        assert ids(store.get_documents(METRICS, ["m2", "missing", "a/b", "m1", "m2"])) == ["m2", "a/b", "m1"]
        assert store.get_documents(METRICS, ["m1"]) == [metric("m1", T0)]
        assert store.get_documents(METRICS, []) == []
        assert store.get_documents(METRICS, ["r1"]) == []  # another collection's id
        assert ids(store.get_documents(ALERT_RULES, ["r1"])) == ["r1"]
        with pytest.raises(StoreError, match="unknown collection"):
            store.get_documents("nope", ["m1"])

    def test_get_documents_many_ids(self, store: Store) -> None:
        store.write(METRICS, [metric(f"m{i:04d}", T0 + i) for i in range(620)])
        wanted = [f"m{i:04d}" for i in range(699, -1, -1)]  # 80 missing, newest first
        assert ids(store.get_documents(METRICS, wanted)) == [f"m{i:04d}" for i in range(619, -1, -1)]

    def test_slo_rollups(self, store: Store) -> None:
        day = T0 - T0 % DAY_MS
        docs = [rollup("slo_chat_delivery", day), rollup("slo_chat_delivery", day + DAY_MS),
                rollup("slo_wallet", day)]
        store.write(SLO_ROLLUPS, docs)
        got = store.get_documents(SLO_ROLLUPS, [d["id"] for d in docs])
        assert got == [{**d, "expireAt": d["day"] + 93 * DAY_MS} for d in docs]
        assert len(got[0]["data"]) > 100_000 and "truncated" not in got[0]
        replaced = rollup("slo_wallet", day, data=json.dumps({"minutes": {}}), updatedAt=day + 2)
        store.write(SLO_ROLLUPS, [replaced])  # upsert by id
        assert store.get_documents(SLO_ROLLUPS, [replaced["id"]]) == [{**replaced, "expireAt": day + 93 * DAY_MS}]
        assert store.delete_expired(SLO_ROLLUPS, day + 93 * DAY_MS, dry_run=True) == 2
        assert store.delete_expired(SLO_ROLLUPS, day + 93 * DAY_MS) == 2
        assert ids(store.get_documents(SLO_ROLLUPS, [d["id"] for d in docs])) == ["slo_chat_delivery:" + str(day + DAY_MS)]

    def test_documents_read_counts_what_reads_return(self, store: Store) -> None:
        store.write(METRICS, [metric(f"m{i}", T0 + i, name="n") for i in range(5)])
        store.write(TELEMETRY_EVENTS, [event("e1", T0), event("e2", T0 + 1)])
        store.insert_alert_event(alert("a1", T0))
        store.put_alert_rule(rule("r1"))
        store.scan_page_size = 2  # type: ignore[attr-defined]
        before = store.documents_read  # type: ignore[attr-defined]
        reads = [
            (lambda: store.get_documents(METRICS, ["m0", "nope", "m3"]), 2),
            (lambda: list(store.scan_metrics(names=["n", "none"], start_ms=T0, end_ms=T0 + 100)), 5),
            (lambda: store.query_events(limit=1), 1),
            (lambda: store.query_metrics(), 5),
            (lambda: store.query_traces(), 0),
            (lambda: store.query_alert_events(), 1),
            (lambda: store.list_alert_rules(), 1),
            (lambda: store.get_alert_rule("r1"), 1),
            (lambda: store.get_alert_rule("nope"), 0),
        ]
        for read, count in reads:
            read()
            now = store.documents_read  # type: ignore[attr-defined]
            assert now - before == count, (read, now - before)
            before = now
        store.write(METRICS, [metric("m9", T0)])  # writes read nothing
        store.delete_expired(METRICS, T0, dry_run=True)
        assert store.documents_read == before  # type: ignore[attr-defined]

    # -- retention -----------------------------------------------------------------------------
    @pytest.mark.parametrize("collection", [TELEMETRY_EVENTS, METRICS, TRACES, ALERT_EVENTS, SLO_ROLLUPS])
    def test_delete_expired_dry_run_then_batches(self, store: Store, collection: str) -> None:
        make = {
            TELEMETRY_EVENTS: lambda i: event(f"d{i}", T0 + i, expireAt=T0 + i),
            METRICS: lambda i: metric(f"d{i}", T0 + i, expireAt=T0 + i),
            TRACES: lambda i: span("f" * 32, f"{i:016x}", T0 + i, expireAt=T0 + i),
            ALERT_EVENTS: lambda i: alert(f"d{i}", T0 + i, expireAt=T0 + i),
            SLO_ROLLUPS: lambda i: rollup("slo", T0 + i, expireAt=T0 + i, data="{}"),
        }[collection]
        store.write(collection, [make(i) for i in range(20)])
        now = T0 + 9  # expireAt <= now: the first 10 are due

        assert store.delete_expired(collection, now, dry_run=True) == 10
        assert store.delete_expired(collection, now, batch_size=3, dry_run=True) == 10
        assert store.delete_expired(collection, now, batch_size=3) == 10
        assert store.delete_expired(collection, now, batch_size=3) == 0
        assert store.delete_expired(collection, now, dry_run=True) == 0
        assert store.delete_expired(collection, FAR_FUTURE, batch_size=3, dry_run=True) == 10

        remaining = {
            TELEMETRY_EVENTS: lambda: store.query_events(limit=100),
            METRICS: lambda: store.query_metrics(limit=100),
            TRACES: lambda: store.query_traces(limit=100),
            ALERT_EVENTS: lambda: store.query_alert_events(limit=100),
            SLO_ROLLUPS: lambda: store.get_documents(SLO_ROLLUPS, [f"slo:{T0 + i}" for i in range(20)]),
        }[collection]()
        assert sorted(d["expireAt"] for d in remaining) == [T0 + i for i in range(10, 20)]

    def test_delete_expired_exact_multiple_of_batch(self, store: Store) -> None:
        store.write(TELEMETRY_EVENTS, [event(f"d{i}", T0 + i, expireAt=T0) for i in range(6)])
        assert store.delete_expired(TELEMETRY_EVENTS, T0, batch_size=3) == 6
        assert store.query_events() == []

    def test_delete_expired_only_touches_its_collection(self, store: Store) -> None:
        store.write(TELEMETRY_EVENTS, [event("e", T0, expireAt=T0)])
        store.write(METRICS, [metric("m", T0, expireAt=T0)])
        assert store.delete_expired(METRICS, T0) == 1
        assert ids(store.query_events()) == ["e"]

    def test_every_collection_is_known(self) -> None:
        assert set(COLLECTIONS) == {TELEMETRY_EVENTS, METRICS, TRACES, ALERT_RULES, ALERT_EVENTS, SLO_ROLLUPS}
