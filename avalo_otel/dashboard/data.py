"""Everything the dashboard reads from the store, in one place: SLO reports (bringing the rollups
up to date first, throttled), budget histories, recent metric windows, alerts, rules, traces and
failed events.

The dashboard is a reader like any evaluator: refreshing the rollups is idempotent (every minute
it touches is recomputed from the raw points), so it may run beside the SLO evaluator. A store
that refuses the rollup write (read-only credentials) still gets reports from the rollups as they
are, with a note saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional, Sequence

from ..alerts import api as alerts_api
from ..slo import ROLLING, SLO, SLOEvaluator, SLOReport
from ..slo.history import BudgetHistory, budget_history
from ..store.base import Document, Store, StoreError
from .metrics import MetricWindow, read_window

_log = logging.getLogger("avalo_otel.dashboard")
#: Rollups are brought up to date at most this often (a manual refresh forces it).
UPDATE_INTERVAL_S = 10.0
ALERT_LIMIT = 200
SEVERITIES = ("INFO", "WARN", "ERROR", "CRITICAL")
STATUSES = ("firing", "resolved")


class DashboardData:
    def __init__(self, store: Store, slos: Sequence[SLO], clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.slos = list(slos)
        self.clock = clock
        self._evaluator = SLOEvaluator(store, self.slos)
        self._lock = threading.Lock()
        self._last_update: Optional[float] = None
        self.update_problem: Optional[str] = None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- SLOs ---------------------------------------------------------------------------------
    def refresh_rollups(self, now_ms: int, force: bool = False) -> None:
        with self._lock:
            fresh = self._last_update is not None and time.monotonic() - self._last_update < UPDATE_INTERVAL_S
            if fresh and not force:
                return
            try:
                self._evaluator.update(now_ms)
                self.update_problem = None
            except StoreError as exc:
                if self.update_problem is None:
                    _log.warning("dashboard: the SLO rollups could not be brought up to date: %s", exc)
                self.update_problem = f"SLO rollups not brought up to date ({exc}); showing them as stored."
            self._last_update = time.monotonic()

    def reports(self, view: str = ROLLING, *, force: bool = False, now_ms: Optional[int] = None) -> list[SLOReport]:
        now = self.now_ms() if now_ms is None else now_ms
        self.refresh_rollups(now, force)
        return self._evaluator.evaluate(now, view=view, update=False)

    def histories(self, view: str = ROLLING, *, now_ms: Optional[int] = None) -> dict[str, BudgetHistory]:
        """Each SLO's remaining budget through its window (call after ``reports``)."""
        now = self.now_ms() if now_ms is None else now_ms
        out = {}
        for slo in self.slos:
            # About 240 points over the window: a 30-day window in 3-hour steps.
            step = max(60, (slo.window_days * 1440) // 240 // 60 * 60)
            out[slo.id] = budget_history(self.store, slo, now, step, view=view)
        return out

    def slo(self, slo_id: str) -> Optional[SLO]:
        return next((s for s in self.slos if s.id == slo_id), None)

    # -- recent points ------------------------------------------------------------------------
    def window(self, hours: int, now_ms: Optional[int] = None) -> MetricWindow:
        return read_window(self.store, self.now_ms() if now_ms is None else now_ms, hours)

    def failures(self, domains: Sequence[Optional[str]], start_ms: int, limit: int = 10) -> list[Document]:
        """Recent failed events of ``domains`` (newest first), each possibly linking to its trace."""
        events: list[Document] = []
        for domain in domains or [None]:  # no domains: every domain
            events += self.store.query_events(domain=domain, success=False, start_ms=start_ms, limit=limit)
        events.sort(key=lambda e: e.get("ts") or 0, reverse=True)
        return events[:limit]

    # -- alerts -------------------------------------------------------------------------------
    def alerts(self, severity: Optional[str] = None, acknowledged: Optional[bool] = None,
               status: Optional[str] = None, limit: int = ALERT_LIMIT) -> list[Document]:
        return alerts_api.get_alert_events(severity=severity, acknowledged=acknowledged, status=status,
                                           limit=limit, store=self.store)

    def acknowledge(self, alert_id: str, admin: str) -> bool:
        return alerts_api.acknowledge_alert(alert_id, admin, store=self.store, now_ms=self.now_ms())

    def alert(self, alert_id: str) -> Optional[Document]:
        found = self.store.get_documents("alert_events", [alert_id]) if alert_id else []
        return found[0] if found else None

    def rules(self) -> list[dict[str, Any]]:
        """The stored rules (validated ones; an invalid stored rule is left out with a warning)."""
        return [_rule_dict(r) for r in alerts_api.list_alert_rules(store=self.store)]

    # -- traces -------------------------------------------------------------------------------
    def trace(self, trace_id: str) -> list[Document]:
        return self.store.query_traces(trace_id=trace_id, limit=1000)


def _rule_dict(rule: Any) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "severity": rule.severity, "metric": rule.metric,
            "threshold": rule.threshold, "condition": rule.condition, "window_minutes": rule.window_minutes,
            "enabled": rule.enabled, "description": rule.description, "labels": dict(rule.labels),
            "cooldown_minutes": rule.cooldown_minutes,
            "selector": {k: list(v) for k, v in rule.selector.items()},
            "ack_expiry_minutes": rule.ack_expiry_minutes}


def parse_bool(raw: Optional[str]) -> Optional[bool]:
    """Query-string filters: "true"/"false" (also yes/no, 1/0); anything else is no filter."""
    text = (raw or "").strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    return None


def alert_filters(params: Any) -> dict[str, Any]:
    """The alert list filters from a query string, unknown values dropped."""
    severity = (params.get("severity") or "").upper()
    status = (params.get("status") or "").lower()
    return {"severity": severity if severity in SEVERITIES else None,
            "acknowledged": parse_bool(params.get("acknowledged")),
            "status": status if status in STATUSES else None}
