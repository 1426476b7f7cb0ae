"""The alert evaluator: judges every enabled rule and SLO burn rate, keeps ``alert_events`` and notifies.

State lives in the store, not the process, so evaluators can restart or run side by side:
- a new alert's id is ``"<rule id>:<n>"``, n one more than the rule's newest event, and it is
  stored with ``create_alert_event`` (insert-if-absent). Two evaluators judging the same rule at
  once compute the same id, whatever their clocks say; only the one whose insert wins notifies.
- resolving and re-notifying are compare-and-sets (``update_alert_event(…, expect=…)``): on the
  status still being "firing", and on ``lastNotifiedAt`` still being what the evaluator read.
  Of two evaluators resolving or re-notifying the same alert in one cycle, one notifies.
- no data resolves an alert, as a Prometheus alert resolves when its series disappears.
- cooldown: a rule does not fire again until ``cooldown_minutes`` after its last event fired, and
  a firing alert is re-notified at most once per cooldown; an acknowledged one not at all until
  the acknowledgement expires.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

from ..store.base import Document, Store
from .burn import BURN_PREFIX, INHIBITED, BurnAlert, burn_rate_alerts
from .notifiers import FIRING, RESOLVED, AlertNotice, Notifier
from .rules import AlertRule, AlertRuleError
from .signals import MINUTE_MS, evaluate_signal

_log = logging.getLogger("avalo_otel.alerts")
_LEVELS = {"INFO": "INFO", "WARN": "WARN", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}


@dataclass
class EvaluationResult:
    """What one evaluation did (rule ids, or event ids where it says so)."""

    now_ms: int
    values: dict[str, Optional[float]] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)          # event ids this evaluator created
    fired_elsewhere: list[str] = field(default_factory=list)  # event ids another evaluator created first
    renotified: list[str] = field(default_factory=list)     # event ids
    renotified_elsewhere: list[str] = field(default_factory=list)  # event ids re-notified or resolved elsewhere first
    resolved: list[str] = field(default_factory=list)       # event ids
    resolved_elsewhere: list[str] = field(default_factory=list)  # event ids another evaluator resolved first
    suppressed: list[str] = field(default_factory=list)     # rule ids held back by their cooldown
    inhibited: list[str] = field(default_factory=list)      # burn-rate rule ids held back by a higher tier
    quiet: list[str] = field(default_factory=list)          # event ids firing but acknowledged
    errors: list[str] = field(default_factory=list)         # "<rule id>: <problem>"
    notifications: list[AlertNotice] = field(default_factory=list)  # fire/re-notify/resolve notices sent

    @property
    def evaluated(self) -> list[str]:
        return list(self.values)


@dataclass
class _Judgement:
    rule: AlertRule
    condition: bool
    value: Optional[float]
    threshold: float
    inhibited: bool = False


class AlertEvaluator:
    """Evaluate ``store``'s enabled rules and the burn rates of ``slos`` every ``interval_s``."""

    def __init__(
        self, store: Store, *, slos: Sequence[Any] = (), notifiers: Sequence[Notifier] = (),
        clock: Callable[[], float] = time.time, interval_s: float = 60.0, emit_telemetry: bool = True,
        slo_evaluator: Any = None, generator_url: str = "",
    ) -> None:
        self.store, self.slos, self.notifiers = store, tuple(slos), tuple(notifiers)
        self.clock, self.interval_s, self.emit_telemetry = clock, float(interval_s), emit_telemetry
        self.generator_url = generator_url
        self._slo_evaluator = slo_evaluator  # one per process: it keeps rollup baselines
        self._invalid_warned: set[str] = set()
        self._active: list[Document] = []  # events still firing after this cycle's judgements
        self.cycles = self.failed_cycles = 0

    # -- the loop ------------------------------------------------------------------------------
    def run(self, stop_event: threading.Event) -> None:
        """Evaluate until ``stop_event`` is set; a failing cycle is logged and the loop goes on."""
        while not stop_event.is_set():
            started = time.monotonic()
            try:
                self.evaluate_once()
            except Exception:
                self.failed_cycles += 1
                _log.exception("alert evaluation failed; trying again in %.0f s", self.interval_s)
            stop_event.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def evaluate_once(self, now_ms: Optional[int] = None) -> EvaluationResult:
        now = int(now_ms) if now_ms is not None else int(self.clock() * 1000)
        result = EvaluationResult(now_ms=now)
        self.cycles += 1
        self._active = []
        firing: dict[str, Document] = {}
        for event in self.store.query_alert_events(status=FIRING, limit=100_000):  # newest first
            firing.setdefault(str(event.get("ruleId")), event)
        keep: set[str] = set()  # rules whose firing event must not be resolved as orphaned
        judgements = self._judge_rules(now, result, keep)
        burn_ok, burn = self._judge_burn_rates(now, result)
        judgements += burn
        if not burn_ok:
            keep.update(rule_id for rule_id in firing if rule_id.startswith(BURN_PREFIX))
        transitions: list[AlertNotice] = []
        for j in judgements:
            keep.add(j.rule.id)
            result.values[j.rule.id] = j.value
            self._apply(j, firing.pop(j.rule.id, None), now, result, transitions)
        for rule_id, event in firing.items():  # rules deleted or disabled since they fired
            # Burn-rate alerts belong to evaluators given SLOs: one without them leaves them alone.
            own = not rule_id.startswith(BURN_PREFIX) or bool(self.slos or self._slo_evaluator)
            if rule_id not in keep and own:
                self._resolve(event, None, now, result, transitions, reason="rule removed or disabled")
        self._deliver(now, transitions, result)
        return result

    # -- judging -------------------------------------------------------------------------------
    def _rules(self) -> list[AlertRule]:
        rules = []
        for doc in self.store.list_alert_rules(enabled=True):
            try:
                rules.append(AlertRule.from_document(doc))
            except AlertRuleError as exc:
                key = str(doc.get("id"))
                if key not in self._invalid_warned:
                    self._invalid_warned.add(key)
                    _log.warning("alert rule %s is invalid and is not evaluated: %s", key, exc)
        return rules

    def _judge_rules(self, now: int, result: EvaluationResult, keep: set[str]) -> list[_Judgement]:
        judgements = []
        for rule in self._rules():
            try:
                value = evaluate_signal(self.store, rule, now)
            except Exception as exc:  # a store hiccup: keep the rule's state as it is
                result.errors.append(f"{rule.id}: {exc}")
                keep.add(rule.id)
                _log.warning("alert rule %s: cannot compute %s: %s", rule.id, rule.metric, exc)
                continue
            judgements.append(_Judgement(rule, rule.check(value), value, rule.threshold))
        return judgements

    def _reports(self, now: int) -> list[Any]:
        if self._slo_evaluator is None:
            from ..slo.report import SLOEvaluator

            self._slo_evaluator = SLOEvaluator(self.store, self.slos)
        return list(self._slo_evaluator.evaluate(now))

    def _judge_burn_rates(self, now: int, result: EvaluationResult) -> tuple[bool, list[_Judgement]]:
        if not self.slos and self._slo_evaluator is None:
            return True, []
        try:
            alerts: list[BurnAlert] = burn_rate_alerts(self._reports(now))
        except Exception as exc:
            result.errors.append(f"{BURN_PREFIX}*: {exc}")
            _log.warning("SLO burn-rate alerts: cannot evaluate the SLOs: %s", exc)
            return False, []
        return True, [_Judgement(a.rule, a.condition, a.value, a.threshold, a.state == INHIBITED) for a in alerts]

    # -- state changes -------------------------------------------------------------------------
    def _apply(self, j: _Judgement, active: Optional[Document], now: int, result: EvaluationResult,
               transitions: list[AlertNotice]) -> None:
        rule = j.rule
        if active is not None and not j.condition:
            self._resolve(active, j.value, now, result, transitions)
        elif active is not None:
            self._still_firing(rule, j, active, now, result, transitions)
        elif j.condition and j.inhibited:
            result.inhibited.append(rule.id)
        elif j.condition:
            self._fire(rule, j, now, result, transitions)

    def _fire(self, rule: AlertRule, j: _Judgement, now: int, result: EvaluationResult,
              transitions: list[AlertNotice]) -> None:
        newest = self.store.query_alert_events(rule_id=rule.id, limit=1)
        last = newest[0] if newest else None
        if last is not None and now - int(last.get("timestamp") or 0) < rule.cooldown_minutes * MINUTE_MS:
            result.suppressed.append(rule.id)
            return
        seq = int(last.get("seq") or 0) + 1 if last is not None else 1
        event = {
            "id": f"{rule.id}:{seq}", "seq": seq, "ruleId": rule.id, "name": rule.name,
            "severity": rule.severity, "metric": rule.metric, "value": _json_number(j.value),
            "threshold": j.threshold, "condition": rule.condition, "windowMinutes": rule.window_minutes,
            "description": rule.description, "labels": dict(rule.labels), "status": FIRING,
            "timestamp": now, "lastSeenAt": now, "lastValue": _json_number(j.value),
            "lastNotifiedAt": now, "notifications": 1, "acknowledged": False,
        }
        if rule.ack_expiry_minutes is not None:
            event["ackExpiryMinutes"] = rule.ack_expiry_minutes
        if not self.store.create_alert_event(event):
            result.fired_elsewhere.append(event["id"])  # another evaluator fired it: it notifies
            return
        result.fired.append(event["id"])
        transitions.append(self._notice(event, FIRING, now))
        self._telemetry("system.alert_fired", rule.severity, event, j.value)

    def _still_firing(self, rule: AlertRule, j: _Judgement, event: Document, now: int,
                      result: EvaluationResult, transitions: list[AlertNotice]) -> None:
        changes: dict[str, Any] = {"lastSeenAt": now, "lastValue": _json_number(j.value)}
        acknowledged = bool(event.get("acknowledged"))
        expires = event.get("ackExpiresAt")
        if acknowledged and isinstance(expires, (int, float)) and now >= expires:
            acknowledged = False  # the acknowledgement ran out: the alert wants attention again
            changes.update(acknowledged=False, ackExpiredAt=now)
        last_notified = int(event.get("lastNotifiedAt") or event.get("timestamp") or 0)
        if acknowledged:
            result.quiet.append(str(event["id"]))
        elif not j.inhibited and now - last_notified >= rule.cooldown_minutes * MINUTE_MS:
            if self._renotify(event, changes, now, result, transitions):
                return
        self.store.update_alert_event(str(event["id"]), changes)
        event.update(changes)
        self._active.append(event)

    def _renotify(self, event: Document, changes: dict[str, Any], now: int, result: EvaluationResult,
                  transitions: list[AlertNotice]) -> bool:
        """Re-notify only if ``lastNotifiedAt`` is still what this evaluator read (and the alert
        still firing): another evaluator that re-notified first moved it on, and its notice
        suffices. True if this one did (it then stored ``changes`` too)."""
        renotify = {**changes, "lastNotifiedAt": now, "notifications": int(event.get("notifications") or 1) + 1}
        expect = {"lastNotifiedAt": event.get("lastNotifiedAt"), "status": FIRING}
        if not self.store.update_alert_event(str(event["id"]), renotify, expect=expect):
            result.renotified_elsewhere.append(str(event["id"]))
            return False
        event.update(renotify)
        result.renotified.append(str(event["id"]))
        transitions.append(self._notice(event, FIRING, now))
        self._active.append(event)
        return True

    def _resolve(self, event: Document, value: Optional[float], now: int, result: EvaluationResult,
                 transitions: list[AlertNotice], reason: str = "") -> None:
        changes: dict[str, Any] = {"status": RESOLVED, "resolvedAt": now, "lastValue": _json_number(value)}
        if reason:
            changes["resolvedReason"] = reason
        if not self.store.update_alert_event(str(event["id"]), changes, expect={"status": FIRING}):
            # Gone, or no longer firing: another evaluator resolved it first (and notified).
            result.resolved_elsewhere.append(str(event["id"]))
            return
        event = {**event, **changes}
        result.resolved.append(str(event["id"]))
        transitions.append(self._notice(event, RESOLVED, now))
        self._telemetry("system.alert_resolved", str(event.get("severity") or "INFO"), event, value)

    # -- notification --------------------------------------------------------------------------
    def _notice(self, event: Document, status: str, now: int) -> AlertNotice:
        severity = str(event.get("severity") or "INFO")
        labels = {"alertname": str(event.get("ruleId")), "severity": severity.lower(),
                  "rule_id": str(event.get("ruleId")), **{str(k): str(v) for k, v in (event.get("labels") or {}).items()}}
        annotations = {
            "summary": str(event.get("name") or event.get("ruleId")),
            "description": str(event.get("description") or ""),
            "value": _format(event.get("lastValue", event.get("value"))),
            "threshold": _format(event.get("threshold")),
            "condition": str(event.get("condition") or ""),
            "metric": str(event.get("metric") or ""),
            "window": f"{event.get('windowMinutes')}m",
            "event_id": str(event.get("id")),
        }
        if event.get("acknowledged"):
            annotations["acknowledged_by"] = str(event.get("acknowledgedBy") or "")
        if status == RESOLVED:
            ends: Optional[int] = int(event.get("resolvedAt") or now)
        else:  # valid for four evaluation intervals unless re-sent (what Prometheus tells Alertmanager)
            ends = now + int(4 * self.interval_s * 1000)
        return AlertNotice(status, labels, annotations, int(event.get("timestamp") or now), ends,
                           self.generator_url, str(event.get("id")))

    def _deliver(self, now: int, transitions: list[AlertNotice], result: EvaluationResult) -> None:
        active = [self._notice(e, FIRING, now) for e in self._active]
        active += [n for n in transitions if n.status == FIRING and n.event_id in result.fired]
        self._active = []
        result.notifications.extend(transitions)
        for notifier in self.notifiers:
            if notifier.resend_active:
                notices = active + [n for n in transitions if n.status == RESOLVED]
            else:
                notices = transitions
            if not notices:
                continue
            try:
                notifier.send(notices)
            except Exception as exc:  # notifiers do not raise; a third-party one might
                _log.warning("alert notifier %s failed: %s", getattr(notifier, "name", notifier), exc)

    def _telemetry(self, operation: str, severity: str, event: Document, value: Optional[float]) -> None:
        if not self.emit_telemetry:
            return
        try:
            from ..telemetry import log_telemetry

            log_telemetry("system", operation, level=_LEVELS.get(severity, "INFO"), metadata={
                "rule_id": event.get("ruleId"), "severity": severity, "value": _json_number(value),
                "threshold": event.get("threshold"), "alert_id": event.get("id"),
            })
        except Exception as exc:  # e.g. strict mode before the operation names are registered
            _log.debug("alert telemetry %s not recorded: %s", operation, exc)


def _json_number(value: Optional[float]) -> Any:
    """Documents are JSON: infinity (a zero-tolerance burn rate) is stored as the text "inf"."""
    if value is None or math.isnan(value):
        return None
    return "inf" if math.isinf(value) else value


def _format(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return "+Inf" if math.isinf(value) else f"{value:.6g}"


def evaluate_rules(store: Store, rules: Iterable[AlertRule], now_ms: int) -> dict[str, Optional[float]]:
    """Each rule's signal value now, without touching any alert state (for dashboards and the CLI)."""
    return {rule.id: evaluate_signal(store, rule, now_ms) for rule in rules}
