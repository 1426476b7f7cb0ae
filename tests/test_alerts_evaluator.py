"""The alert evaluator over a real SQLiteStore with an injected clock: firing, cooldown, acknowledgement,
resolution, two evaluators at once, telemetry, and SLO burn-rate alerts (pure policy and wired)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import pytest

from avalo_otel.alerts import (
    AlertEvaluator, AlertNotice, acknowledge_alert, burn_rate_alerts, disable_alert_rule, ensure_predefined_rules,
    get_alert_events, set_alert_rule,
)
from avalo_otel.slo.definitions import load_slos, parse_slos
from avalo_otel.slo.report import WindowStats
from avalo_otel.store import SQLiteStore
from alert_points import MINUTE, T0, ops

RULE = "chat_error_rate_high"


class Recorder:
    """A notifier that keeps what it was sent (transitions only, like the webhook notifier)."""

    name = "recorder"
    resend_active = False

    def __init__(self) -> None:
        self.failures = 0
        self.notices: list[AlertNotice] = []
        self._lock = threading.Lock()

    def send(self, notices: Sequence[AlertNotice]) -> bool:
        with self._lock:
            self.notices.extend(notices)
        return True

    def statuses(self) -> list[tuple[str, str]]:
        return [(n.status, n.event_id) for n in self.notices]


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, minutes: float) -> int:
        self.ms += int(minutes * MINUTE)
        return self.ms


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "alerts.db")
    ensure_predefined_rules(s)
    yield s
    s.close()


def chat_traffic(store: SQLiteStore, at_ms: int, *, failed: int, ok: int = 100) -> None:
    """One minute of chat traffic ending at ``at_ms``: ``failed`` server errors, ``ok`` successes
    and client errors (which never count as failures)."""
    store.write("metrics", [
        ops(at_ms, "chat", "chat.send", "success", ok),
        ops(at_ms, "chat", "chat.send", "client_error", 50, error_code="INSUFFICIENT_FUNDS"),
        ops(at_ms, "chat", "chat.send", "server_error", failed, error_code="TIMEOUT"),
    ])


def evaluator(store: SQLiteStore, clock: Clock, *notifiers: Any, **kwargs: Any) -> AlertEvaluator:
    kwargs.setdefault("emit_telemetry", False)
    return AlertEvaluator(store, notifiers=notifiers, clock=clock, **kwargs)


def test_fires_once_with_the_documented_event_then_resolves_without_data(store: SQLiteStore) -> None:
    clock, rec = Clock(T0 + 10 * MINUTE), Recorder()
    ev = evaluator(store, clock, rec)
    chat_traffic(store, clock.ms - MINUTE, failed=10)  # 10 / 160 = 6.25% > 2%
    result = ev.evaluate_once()
    assert result.fired == [f"{RULE}:1"] and result.values[RULE] == pytest.approx(6.25)
    assert result.values["wallet_failures_critical"] is None  # no wallet traffic: no data, nothing fires
    event = get_alert_events(status="firing", store=store)[0]
    assert {k: event[k] for k in ("id", "ruleId", "name", "severity", "metric", "threshold", "condition",
                                  "windowMinutes", "labels", "status", "timestamp", "lastSeenAt", "acknowledged")} == {
        "id": f"{RULE}:1", "ruleId": RULE, "name": "Chat Error Rate High", "severity": "WARN",
        "metric": "chat_error_rate", "threshold": 2.0, "condition": "greater_than", "windowMinutes": 5,
        "labels": {"domain": "chat"}, "status": "firing", "timestamp": clock.ms, "lastSeenAt": clock.ms,
        "acknowledged": False}
    assert event["value"] == pytest.approx(6.25) and event["description"]
    [notice] = rec.notices
    assert notice.status == "firing" and notice.labels == {"alertname": RULE, "severity": "warn", "rule_id": RULE,
                                                           "domain": "chat"}
    assert notice.annotations["value"] == "6.25" and notice.annotations["threshold"] == "2"

    chat_traffic(store, clock.advance(1), failed=10)
    again = ev.evaluate_once()
    assert again.fired == [] and again.renotified == [] and len(rec.notices) == 1
    assert store.get_documents("alert_events", [f"{RULE}:1"])[0]["lastSeenAt"] == clock.ms

    clock.advance(6)  # the last points are now outside the 5-minute window: no data resolves
    resolved = ev.evaluate_once()
    assert resolved.resolved == [f"{RULE}:1"] and resolved.values[RULE] is None
    event = store.get_documents("alert_events", [f"{RULE}:1"])[0]
    assert event["status"] == "resolved" and event["resolvedAt"] == clock.ms
    assert rec.statuses() == [("firing", f"{RULE}:1"), ("resolved", f"{RULE}:1")]
    assert rec.notices[1].ends_at_ms == clock.ms
    assert get_alert_events(status="firing", store=store) == []


def test_cooldown_suppresses_a_re_fire_after_resolution(store: SQLiteStore) -> None:
    clock, rec = Clock(T0 + 10 * MINUTE), Recorder()
    ev = evaluator(store, clock, rec)
    chat_traffic(store, clock.ms - MINUTE, failed=10)
    fired_at = clock.ms
    assert ev.evaluate_once().fired == [f"{RULE}:1"]
    chat_traffic(store, clock.advance(1), failed=0)
    chat_traffic(store, clock.ms, failed=0, ok=10_000)  # 10 / 10_310 < 2%: resolves
    assert ev.evaluate_once().resolved == [f"{RULE}:1"]

    chat_traffic(store, clock.advance(8) - MINUTE, failed=40)  # bad again 9 minutes after firing
    result = ev.evaluate_once()
    assert result.fired == [] and result.suppressed == [RULE]
    chat_traffic(store, clock.advance(3) - MINUTE, failed=40)
    assert ev.evaluate_once().suppressed == [RULE]  # 12 minutes: still inside the 15-minute cooldown

    clock.ms = fired_at + 15 * MINUTE
    chat_traffic(store, clock.ms - MINUTE, failed=40)
    assert ev.evaluate_once().fired == [f"{RULE}:2"]
    assert [s for s, _ in rec.statuses()] == ["firing", "resolved", "firing"]


def test_a_firing_alert_is_re_notified_once_per_cooldown(store: SQLiteStore) -> None:
    clock, rec = Clock(T0 + 10 * MINUTE), Recorder()
    ev = evaluator(store, clock, rec)
    renotified = []
    for minute in range(32):
        chat_traffic(store, clock.ms - MINUTE, failed=10)
        renotified += ev.evaluate_once().renotified
        clock.advance(1)
    assert renotified == [f"{RULE}:1", f"{RULE}:1"]  # at 15 and 30 minutes
    assert store.get_documents("alert_events", [f"{RULE}:1"])[0]["notifications"] == 3
    assert len(rec.notices) == 3


def test_acknowledgement_silences_until_resolved(store: SQLiteStore) -> None:
    clock, rec = Clock(T0 + 10 * MINUTE), Recorder()
    ev = evaluator(store, clock, rec)
    chat_traffic(store, clock.ms - MINUTE, failed=10)
    ev.evaluate_once()
    assert acknowledge_alert(f"{RULE}:1", "admin-7", store=store, now_ms=clock.ms + 1000)
    for _ in range(40):  # long past two cooldowns: acknowledged means quiet
        chat_traffic(store, clock.advance(1), failed=10)
        result = ev.evaluate_once()
        assert result.renotified == [] and result.quiet == [f"{RULE}:1"]
    assert len(rec.notices) == 1
    event = store.get_documents("alert_events", [f"{RULE}:1"])[0]
    assert (event["acknowledged"], event["acknowledgedBy"], event["status"]) == (True, "admin-7", "firing")

    clock.advance(6)  # no data: resolves, and the resolution is sent even though acknowledged
    assert ev.evaluate_once().resolved == [f"{RULE}:1"]
    chat_traffic(store, clock.advance(10), failed=10)
    assert ev.evaluate_once().fired == [f"{RULE}:2"]  # a new alert is not acknowledged
    assert [s for s, _ in rec.statuses()] == ["firing", "resolved", "firing"]


def test_acknowledgement_expiry_brings_notifications_back(store: SQLiteStore) -> None:
    set_alert_rule({**_predefined(store, RULE), "ackExpiryMinutes": 20}, store=store)
    clock, rec = Clock(T0 + 10 * MINUTE), Recorder()
    ev = evaluator(store, clock, rec)
    chat_traffic(store, clock.ms - MINUTE, failed=10)
    ev.evaluate_once()
    acked_at = clock.ms
    acknowledge_alert(f"{RULE}:1", "admin-7", store=store, now_ms=acked_at)  # rule default: 20 minutes
    assert store.get_documents("alert_events", [f"{RULE}:1"])[0]["ackExpiresAt"] == acked_at + 20 * MINUTE
    renotified_at = []
    for _ in range(25):
        chat_traffic(store, clock.advance(1), failed=10)
        if ev.evaluate_once().renotified:
            renotified_at.append((clock.ms - acked_at) // MINUTE)
    assert renotified_at == [20]
    event = store.get_documents("alert_events", [f"{RULE}:1"])[0]
    assert event["acknowledged"] is False and event["ackExpiredAt"] == acked_at + 20 * MINUTE
    assert [e["id"] for e in get_alert_events(acknowledged=False, status="firing", store=store)] == [f"{RULE}:1"]


def _predefined(store: SQLiteStore, rule_id: str) -> dict[str, Any]:
    doc = store.get_alert_rule(rule_id)
    assert doc is not None
    return {k: v for k, v in doc.items() if k not in ("updatedAt", "expireAt")}


def test_two_evaluators_on_one_store_fire_and_notify_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    try:
        ensure_predefined_rules(stores[0])
        now = T0 + 10 * MINUTE
        chat_traffic(stores[0], now - MINUTE, failed=10)
        recorders = [Recorder(), Recorder()]
        evaluators = [evaluator(s, Clock(now), r) for s, r in zip(stores, recorders)]
        for round_ in range(5):  # several races, not one lucky ordering
            barrier, results = threading.Barrier(2), [None, None]

            def run(i: int) -> None:
                barrier.wait()
                results[i] = evaluators[i].evaluate_once(now)  # type: ignore[call-overload]

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            fired = [e for r in results for e in r.fired]  # type: ignore[union-attr]
            assert fired == ([f"{RULE}:1"] if round_ == 0 else [])
        assert [e["id"] for e in stores[1].query_alert_events(limit=10)] == [f"{RULE}:1"]
        assert sum(len(r.notices) for r in recorders) == 1
    finally:
        for s in stores:
            s.close()


class MeetingStore(SQLiteStore):
    """Holds each compare-and-set update until the other evaluator's arrives too (``meet``, a
    shared Barrier): both evaluators have then read the alert as firing and decided to change
    it, the race the compare-and-set is for, whichever thread the scheduler favours."""

    meet: Optional[threading.Barrier] = None

    def update_alert_event(self, event_id: str, changes: Mapping[str, Any], *,
                           expect: Optional[Mapping[str, Any]] = None) -> bool:
        if expect is not None and self.meet is not None:
            self.meet.wait(10)
        return super().update_alert_event(event_id, changes, expect=expect)


def _evaluate_together(evaluators: Sequence[AlertEvaluator], now: int) -> list[Any]:
    """``evaluate_once(now)`` on every evaluator at once, each on its own thread."""
    start, results, errors = threading.Barrier(len(evaluators)), [None] * len(evaluators), []

    def run(i: int) -> None:
        try:
            start.wait(10)
            results[i] = evaluators[i].evaluate_once(now)  # type: ignore[call-overload]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(evaluators))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


@pytest.fixture
def two_evaluators(tmp_path: Path) -> Iterator[tuple[list[MeetingStore], list[AlertEvaluator], list[Recorder]]]:
    """Two evaluators, each with its own store on one file (as two processes) and its own
    recorder, and an alert fired by the first."""
    path = tmp_path / "shared.db"
    stores = [MeetingStore(path), MeetingStore(path)]
    try:
        ensure_predefined_rules(stores[0])
        recorders = [Recorder(), Recorder()]
        evaluators = [evaluator(s, Clock(T0 + 10 * MINUTE), r) for s, r in zip(stores, recorders)]
        chat_traffic(stores[0], T0 + 9 * MINUTE, failed=10)
        assert evaluators[0].evaluate_once(T0 + 10 * MINUTE).fired == [f"{RULE}:1"]
        recorders[0].notices.clear()
        meet = threading.Barrier(2)
        for s in stores:
            s.meet = meet
        yield stores, evaluators, recorders
    finally:
        for s in stores:
            s.close()


def test_two_evaluators_resolving_one_alert_notify_once(
    two_evaluators: tuple[list[MeetingStore], list[AlertEvaluator], list[Recorder]],
) -> None:
    stores, evaluators, recorders = two_evaluators
    results = _evaluate_together(evaluators, T0 + 17 * MINUTE)  # the condition cleared: no data
    assert sorted(e for r in results for e in r.resolved) == [f"{RULE}:1"]
    assert sorted(e for r in results for e in r.resolved_elsewhere) == [f"{RULE}:1"]
    assert [n.status for rec in recorders for n in rec.notices] == ["resolved"]
    assert stores[1].get_documents("alert_events", [f"{RULE}:1"])[0]["status"] == "resolved"


def test_two_evaluators_re_notifying_one_alert_notify_once(
    two_evaluators: tuple[list[MeetingStore], list[AlertEvaluator], list[Recorder]],
) -> None:
    stores, evaluators, recorders = two_evaluators
    now = T0 + 25 * MINUTE  # one cooldown (15 minutes) after firing, still failing
    chat_traffic(stores[0], now - MINUTE, failed=10)
    results = _evaluate_together(evaluators, now)
    assert sorted(e for r in results for e in r.renotified) == [f"{RULE}:1"]
    assert sorted(e for r in results for e in r.renotified_elsewhere) == [f"{RULE}:1"]
    assert [n.status for rec in recorders for n in rec.notices] == ["firing"]
    event = stores[1].get_documents("alert_events", [f"{RULE}:1"])[0]
    assert (event["status"], event["lastNotifiedAt"], event["notifications"], event["lastSeenAt"]) == (
        "firing", now, 2, now)


def test_disabling_a_rule_resolves_its_alert(store: SQLiteStore) -> None:
    clock, rec = Clock(T0 + 10 * MINUTE), Recorder()
    ev = evaluator(store, clock, rec)
    chat_traffic(store, clock.ms - MINUTE, failed=10)
    ev.evaluate_once()
    disable_alert_rule(RULE, store=store)
    result = ev.evaluate_once(clock.advance(1))
    assert result.resolved == [f"{RULE}:1"] and RULE not in result.values
    assert store.get_documents("alert_events", [f"{RULE}:1"])[0]["resolvedReason"] == "rule removed or disabled"


def test_a_failing_cycle_never_ends_the_loop(store: SQLiteStore) -> None:
    calls: list[int] = []

    class Flaky(AlertEvaluator):
        def evaluate_once(self, now_ms: Optional[int] = None) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("store hiccup")
            if len(calls) >= 3:
                stop.set()
            return super().evaluate_once(now_ms)

    stop = threading.Event()
    ev = Flaky(store, interval_s=0.01, emit_telemetry=False)
    worker = threading.Thread(target=ev.run, args=(stop,))
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and len(calls) >= 3 and ev.failed_cycles == 1


def test_fire_and_resolve_are_telemetry_events(store: SQLiteStore, captured: Any) -> None:
    cap = captured()
    clock = Clock(T0 + 10 * MINUTE)
    ev = AlertEvaluator(store, clock=clock)
    chat_traffic(store, clock.ms - MINUTE, failed=10)
    ev.evaluate_once()
    ev.evaluate_once(clock.advance(10))
    events = [(r.attributes["avalo.operation"], r.attributes["avalo.level"] if "avalo.level" in r.attributes
               else r.severity_text, dict(r.attributes)) for r in cap.logs()]
    ops_seen = [e[0] for e in events]
    assert ops_seen == ["system.alert_fired", "system.alert_resolved"]
    fired = events[0][2]
    assert fired["avalo.domain"] == "system" and fired["avalo.metadata.rule_id"] == RULE
    assert fired["avalo.metadata.severity"] == "WARN" and fired["avalo.metadata.threshold"] == 2.0
    assert fired["avalo.metadata.value"] == pytest.approx(6.25)
    assert cap.logs()[0].severity_text in ("WARN", "WARNING")


# -- burn-rate alerts --------------------------------------------------------------------------
@dataclass
class IndicatorStub:
    indicator: Any
    burn: Mapping[str, WindowStats]


@dataclass
class ReportStub:
    slo: Any
    indicators: list[IndicatorStub] = field(default_factory=list)


SLOS = parse_slos({"slos": [
    {"id": "slo_chat", "name": "Chat", "select": {"operations": ["chat.send"]}, "alert_min_events": 20,
     "indicators": [{"id": "availability", "kind": "availability", "objective": 99}]},
    {"id": "slo_panic", "name": "Panic", "select": {"operations": ["safety.panic_press"]},
     "indicators": [{"id": "availability", "kind": "availability", "objective": 100}]},
]})


def report(slo_index: int, **bad_fractions: tuple[float, float]) -> ReportStub:
    """A report (the real WindowStats, a stand-in for the rest) whose windows have (total, bad)
    as given; other windows: 1000 good events."""
    slo = SLOS[slo_index]
    indicator = slo.indicators[0]
    windows = {w: WindowStats(w, 0, 0, *bad_fractions.get(f"w{w}", (1000, 0)), indicator.budget)
               for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")}
    return ReportStub(slo, [IndicatorStub(indicator, windows)])


def states(reports: Sequence[Any]) -> dict[str, str]:
    return {a.rule.id: a.state for a in burn_rate_alerts(reports)}


def test_burn_rate_policy_pages_tickets_and_inhibits() -> None:
    page, ticket = "slo_burn_slo_chat_availability_page", "slo_burn_slo_chat_availability_ticket"
    assert states([report(0)]) == {page: "clear", ticket: "clear"}
    # 15% bad over 1 h and 5 m with a 1% budget: burn 15 > 14.4 in both windows; the ticket's own
    # condition (burn 4 > 3 over 1 d and 2 h) holds too, so it is inhibited.
    fast = report(0, w1h=(1000, 150), w5m=(100, 15), w1d=(1000, 40), w2h=(1000, 40))
    assert states([fast]) == {page: "firing", ticket: "inhibited"}
    [p, t] = burn_rate_alerts([fast])
    assert (p.value, p.threshold, p.windows, p.rule.severity) == (pytest.approx(15), 14.4, ("1h", "5m"), "CRITICAL")
    assert dict(p.rule.labels) == {"slo": "slo_chat", "indicator": "availability", "tier": "page"}
    assert t.rule.severity == "WARN"
    # the long window burns but the short one has recovered: no page
    assert states([report(0, w1h=(1000, 150), w5m=(100, 1))])[page] == "clear"
    # the slower page pair: 7x over 6 h and 30 m
    assert states([report(0, w6h=(1000, 70), w30m=(100, 7))])[page] == "firing"
    # ticket alone: 3 d and 6 h at 1.5x
    assert states([report(0, w3d=(1000, 15), w6h=(1000, 15))]) == {page: "clear", ticket: "firing"}
    # too few events in the long window: silent however bad
    assert states([report(0, w1h=(10, 10), w5m=(10, 10))])[page] == "clear"


def test_zero_tolerance_pages_on_one_bad_event_whatever_the_volume() -> None:
    page = "slo_burn_slo_panic_availability_page"
    one_bad = report(1, w5m=(1, 1), w1h=(3, 1))
    assert states([one_bad])[page] == "firing"
    assert burn_rate_alerts([one_bad])[0].value == math.inf
    assert states([report(1, w5m=(1, 0), w1h=(3, 0))])[page] == "clear"


class StubSLOEvaluator:
    def __init__(self) -> None:
        self.reports: list[Any] = []

    def evaluate(self, now_ms: int) -> list[Any]:
        return self.reports


def test_burn_rate_events_with_labels_and_a_ticket_left_alone_while_the_page_fires(store: SQLiteStore) -> None:
    clock, rec, slo = Clock(T0), Recorder(), StubSLOEvaluator()
    ev = evaluator(store, clock, rec, slo_evaluator=slo)
    page, ticket = "slo_burn_slo_chat_availability_page", "slo_burn_slo_chat_availability_ticket"
    slo.reports = [report(0, w3d=(1000, 15), w6h=(1000, 15))]
    assert ev.evaluate_once(clock.ms).fired == [f"{ticket}:1"]
    slo.reports = [report(0, w1h=(1000, 150), w5m=(100, 15), w3d=(1000, 15), w6h=(1000, 15))]
    result = ev.evaluate_once(clock.advance(1))
    assert result.fired == [f"{page}:1"] and result.resolved == []  # the firing ticket is left as it is
    event = store.get_documents("alert_events", [f"{page}:1"])[0]
    assert event["labels"] == {"slo": "slo_chat", "indicator": "availability", "tier": "page"}
    assert event["severity"] == "CRITICAL" and event["threshold"] == 14.4
    assert rec.notices[-1].labels["tier"] == "page" and rec.notices[-1].labels["severity"] == "critical"
    slo.reports = [report(0)]
    assert sorted(ev.evaluate_once(clock.advance(1)).resolved) == [f"{page}:1", f"{ticket}:1"]
    # a ticket whose condition starts while the page fires is inhibited, never fired
    slo.reports = [report(0, w1h=(1000, 150), w5m=(100, 15), w1d=(1000, 40), w2h=(1000, 40))]
    result = ev.evaluate_once(clock.advance(30))
    assert result.fired == [f"{page}:2"] and result.inhibited == [ticket]
    # an evaluator without SLOs leaves burn-rate alerts to the ones that have them
    assert evaluator(store, clock, Recorder()).evaluate_once(clock.advance(1)).resolved == []


def test_burn_rate_alerts_from_the_real_slo_evaluator(store: SQLiteStore) -> None:
    """Stored chat.send traffic, 20% server errors: the built-in chat SLO pages through the lead's
    rollups and reports."""
    now = T0 + 2 * 60 * MINUTE
    points = []
    for minute in range(1, 121):
        ts = now - 120 * MINUTE + minute * MINUTE
        points += [ops(ts, "chat", "chat.send", "success", 80), ops(ts, "chat", "chat.send", "server_error", 20,
                                                                     error_code="TIMEOUT")]
    store.write("metrics", points)
    chat = [s for s in load_slos() if s.id == "slo_chat_delivery"]
    ev = AlertEvaluator(store, slos=chat, emit_telemetry=False, clock=lambda: now / 1000)
    result = ev.evaluate_once()
    assert "slo_burn_slo_chat_delivery_availability_page:1" in result.fired, result
    assert result.values["slo_burn_slo_chat_delivery_availability_page"] == pytest.approx(40.0)  # 20% / 0.5%


def test_resend_notifiers_get_every_firing_alert_each_cycle(store: SQLiteStore) -> None:
    """Alertmanager-style notifiers expire alerts that are not re-sent: they get every active alert
    (acknowledged ones too) on every evaluation, valid for four intervals, plus resolutions."""
    clock, rec = Clock(T0 + 10 * MINUTE), Recorder()
    rec.resend_active = True
    ev = evaluator(store, clock, rec, interval_s=30)
    for minute in range(3):
        chat_traffic(store, clock.ms - MINUTE, failed=10)
        ev.evaluate_once()
        if minute == 0:
            acknowledge_alert(f"{RULE}:1", "admin", store=store, now_ms=clock.ms)
        assert rec.notices[-1].status == "firing" and rec.notices[-1].ends_at_ms == clock.ms + 120_000
        clock.advance(1)
    assert rec.statuses() == [("firing", f"{RULE}:1")] * 3
    assert rec.notices[-1].annotations["acknowledged_by"] == "admin"
    ev.evaluate_once(clock.advance(10))
    assert rec.statuses()[-1] == ("resolved", f"{RULE}:1") and len(rec.notices) == 4
