"""SLO reports from the rollups: SLI, status colour, error budget, burn rates, time to exhaustion.

Edge cases are decided here, once, for every consumer (CLI, gauges, alerts, dashboard):
- no events in a window: SLI and burn rate are ``None`` and the status is ``no_data``, never a
  colour; fewer than ``slo.min_events``: ``inconclusive``;
- an objective of 100% has no budget: one bad event exhausts it, its burn rate is ``math.inf``
  (``"inf"`` in JSON) and with no bad event it is 0 — never a division by zero or a NaN.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from ..store.base import DAY_MS, Store
from .definitions import SLO, Indicator
from .policy import (
    BURN_WINDOWS, CRITICAL, EXHAUSTED, GREEN, HEALTHY, INCONCLUSIVE, MINUTE_MS, NO_DATA, POLICY_ACTIONS,
    PROJECTION_WINDOW, RED, WARNING, YELLOW, budget_status,
)
from .rollup import MINUTES_PER_DAY, RollupUpdater, UpdateStats, day_start, read_rollups, series_key

ROLLING, CALENDAR_MONTH = "rolling", "calendar_month"
VIEWS = (ROLLING, CALENDAR_MONTH)
_COLOUR_RANK = {RED: 0, YELLOW: 1, NO_DATA: 2, INCONCLUSIVE: 2, GREEN: 3}
_BUDGET_RANK = {EXHAUSTED: 0, CRITICAL: 1, WARNING: 2, NO_DATA: 3, INCONCLUSIVE: 3, HEALTHY: 4}


@dataclass(frozen=True)
class WindowStats:
    """Events and bad events of one indicator over one window."""

    window: str
    start_ms: int
    end_ms: int
    total: float
    bad: float
    budget: float

    @property
    def sli(self) -> Optional[float]:
        return None if self.total <= 0 else 1.0 - self.bad / self.total

    @property
    def burn_rate(self) -> Optional[float]:
        """Bad fraction / budget: 1.0 spends the budget exactly over the SLO window."""
        if self.total <= 0:
            return None
        if self.budget <= 0:
            return math.inf if self.bad > 0 else 0.0
        return (self.bad / self.total) / self.budget


@dataclass(frozen=True)
class IndicatorReport:
    indicator: Indicator
    window: WindowStats
    burn: Mapping[str, WindowStats]
    min_events: int
    warn_bad: Optional[float] = None

    @property
    def sli(self) -> Optional[float]:
        return self.window.sli

    @property
    def allowed_bad_events(self) -> float:
        """The budget in events: how many of this window's events may be bad."""
        return self.indicator.budget * self.window.total

    @property
    def budget_consumed(self) -> Optional[float]:
        """Fraction of the budget spent (over 1 when overspent; inf when a zero budget is hit)."""
        if self.window.total <= 0:
            return None
        allowed = self.allowed_bad_events
        if allowed <= 0:
            return math.inf if self.window.bad > 0 else 0.0
        return self.window.bad / allowed

    @property
    def budget_remaining(self) -> Optional[float]:
        consumed = self.budget_consumed
        return None if consumed is None else (-math.inf if consumed == math.inf else 1.0 - consumed)

    @property
    def bad_events_remaining(self) -> Optional[int]:
        if self.window.total <= 0:
            return None
        return max(0, math.floor(self.allowed_bad_events - self.window.bad + 1e-9))

    @property
    def has_enough_data(self) -> bool:
        return self.window.total >= self.min_events

    @property
    def budget_status(self) -> str:
        if self.window.total <= 0:
            return NO_DATA
        if self.indicator.zero_tolerance and self.window.bad > 0:
            return EXHAUSTED  # one bad event is enough, however few events there were
        if not self.has_enough_data:
            return INCONCLUSIVE
        return budget_status(self.budget_remaining or 0.0)

    @property
    def status(self) -> str:
        """green / yellow / red as the original's thresholds say, or no_data / inconclusive."""
        budget = self.budget_status
        if budget in (NO_DATA, INCONCLUSIVE):
            return budget
        sli, ind = self.sli or 0.0, self.indicator
        if ind.warn_objective is None and ind.warn_threshold_ms is None:
            return {HEALTHY: GREEN, WARNING: YELLOW}.get(budget, RED)
        if sli >= ind.target:
            return GREEN
        if ind.warn_objective is not None:
            return YELLOW if sli >= ind.warn_objective / 100.0 else RED
        warn_sli = 1.0 - (self.warn_bad or 0.0) / self.window.total
        return YELLOW if warn_sli >= ind.target else RED

    @property
    def burn_rates(self) -> dict[str, Optional[float]]:
        return {name: stats.burn_rate for name, stats in self.burn.items()}

    @property
    def time_to_exhaustion_s(self) -> Optional[float]:
        """At the current (1 h) burn rate, seconds until the budget is gone; None if not burning."""
        remaining = self.budget_remaining
        if remaining is None:
            return None
        if remaining <= 0:
            return 0.0
        rate = self.burn[PROJECTION_WINDOW].burn_rate if PROJECTION_WINDOW in self.burn else None
        if not rate or rate == math.inf:
            return 0.0 if rate == math.inf else None
        window_s = (self.window.end_ms - self.window.start_ms) / 1000
        return remaining * window_s / rate

    def to_dict(self) -> dict[str, Any]:
        ind = self.indicator
        return {
            "indicator": ind.id, "kind": ind.kind, "objective": ind.objective, "threshold_ms": ind.threshold_ms,
            "description": ind.label(), "zero_tolerance": ind.zero_tolerance,
            "sli": _num(self.sli), "events": _num(self.window.total), "bad_events": _num(self.window.bad),
            "status": self.status,
            "error_budget": {
                "total": _num(ind.budget), "allowed_bad_events": _num(self.allowed_bad_events),
                "consumed": _num(self.budget_consumed), "remaining": _num(self.budget_remaining),
                "bad_events_remaining": self.bad_events_remaining,
            },
            "budget_status": self.budget_status,
            "burn_rates": {name: _num(rate) for name, rate in self.burn_rates.items()},
            "time_to_exhaustion_s": _num(self.time_to_exhaustion_s),
        }


@dataclass(frozen=True)
class SLOReport:
    slo: SLO
    view: str
    start_ms: int
    end_ms: int
    indicators: Sequence[IndicatorReport]

    @property
    def status(self) -> str:
        return _worst([i.status for i in self.indicators], _COLOUR_RANK)

    @property
    def primary(self) -> IndicatorReport:
        """The indicator that decides the SLO's budget: the least budget remaining."""
        return min(self.indicators, key=lambda i: (_BUDGET_RANK[i.budget_status],
                                                    i.budget_remaining if i.budget_remaining is not None else math.inf))

    @property
    def budget_status(self) -> str:
        return _worst([i.budget_status for i in self.indicators], _BUDGET_RANK)

    @property
    def policy_action(self) -> str:
        return POLICY_ACTIONS[self.budget_status]

    def to_dict(self) -> dict[str, Any]:
        primary = self.primary
        return {
            "slo": self.slo.id, "name": self.slo.name, "description": self.slo.description,
            "view": self.view, "start_ms": self.start_ms, "end_ms": self.end_ms,
            "window_days": round((self.end_ms - self.start_ms) / DAY_MS, 3),
            "status": self.status, "budget_status": self.budget_status, "policy_action": self.policy_action,
            "primary_indicator": primary.indicator.id,
            "sli": _num(primary.sli), "budget_remaining": _num(primary.budget_remaining),
            "burn_rates": {name: _num(rate) for name, rate in primary.burn_rates.items()},
            "time_to_exhaustion_s": _num(primary.time_to_exhaustion_s),
            "indicators": [i.to_dict() for i in self.indicators],
        }


def _worst(statuses: Sequence[str], rank: Mapping[str, int]) -> str:
    """An SLO takes its worst indicator; it is "no data" only when none of them has any."""
    worst = min(statuses, key=rank.__getitem__)
    if worst in (NO_DATA, INCONCLUSIVE):
        return NO_DATA if all(s == NO_DATA for s in statuses) else INCONCLUSIVE
    return worst


def _num(value: Optional[float]) -> Any:
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return round(value, 9) if isinstance(value, float) else value


class _Minutes:
    """One SLO's minute counts over a span of days, as prefix sums: any window is two lookups."""

    def __init__(self, store: Store, slo: SLO, start_ms: int, end_ms: int) -> None:
        self.first_day = day_start(start_ms)
        days = {r.day_ms: r for r in read_rollups(store, slo, start_ms, end_ms)}
        n_days = (day_start(end_ms - 1) - self.first_day) // DAY_MS + 1
        zeros = [0] * MINUTES_PER_DAY
        self._prefix: dict[str, list[float]] = {}
        keys = {series_key(i, name) for i in slo.indicators for name in i.series}
        for key in keys:
            columns = (days[d].series.get(key, zeros) if d in days else zeros
                       for d in range(self.first_day, self.first_day + n_days * DAY_MS, DAY_MS))
            self._prefix[key] = list(itertools.accumulate(itertools.chain.from_iterable(columns), initial=0))

    def sum(self, key: str, start_ms: int, end_ms: int) -> float:
        """Counts of the minutes that start in ``[start_ms, end_ms)``."""
        prefix = self._prefix[key]
        first = max(0, (start_ms - self.first_day + MINUTE_MS - 1) // MINUTE_MS)
        last = min(len(prefix) - 1, max(first, (end_ms - self.first_day + MINUTE_MS - 1) // MINUTE_MS))
        return prefix[last] - prefix[first]


def window_bounds(slo: SLO, now_ms: int, view: str = ROLLING) -> tuple[int, int]:
    """``[start, end)`` of the SLO's window ending with the minute that holds ``now_ms``."""
    end = now_ms - now_ms % MINUTE_MS + MINUTE_MS
    if view == CALENDAR_MONTH:
        now = _dt.datetime.fromtimestamp(now_ms / 1000, tz=_dt.timezone.utc)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return int(month.timestamp() * 1000), end
    if view != ROLLING:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    return end - slo.window_days * DAY_MS, end


def report_slo(store: Store, slo: SLO, now_ms: int, view: str = ROLLING) -> SLOReport:
    """One SLO's report from its rollups (which must be up to date: see ``SLOEvaluator``)."""
    start, end = window_bounds(slo, now_ms, view)
    longest = max(BURN_WINDOWS.values()) * MINUTE_MS
    minutes = _Minutes(store, slo, min(start, end - longest), end)
    indicators = []
    for ind in slo.indicators:
        def stats(name: str, a: int, b: int) -> WindowStats:
            return WindowStats(name, a, b, minutes.sum(series_key(ind, "total"), a, b),
                               minutes.sum(series_key(ind, "bad"), a, b), ind.budget)

        burn = {name: stats(name, end - m * MINUTE_MS, end) for name, m in BURN_WINDOWS.items()}
        warn_bad = minutes.sum(series_key(ind, "warn_bad"), start, end) if ind.warn_threshold_ms is not None else None
        indicators.append(IndicatorReport(ind, stats(view, start, end), burn, slo.min_events, warn_bad))
    return SLOReport(slo, view, start, end, indicators)


@dataclass
class SLOEvaluator:
    """Brings the rollups up to date, then reports every SLO. Keep one per process: it remembers
    cumulative baselines between updates and its last reports (the gauges read those)."""

    store: Store
    slos: Sequence[SLO]
    lateness_ms: Optional[int] = None
    last_reports: list[SLOReport] = field(default_factory=list)
    last_update: Optional[UpdateStats] = None

    def __post_init__(self) -> None:
        kwargs = {} if self.lateness_ms is None else {"lateness_ms": self.lateness_ms}
        self._updater = RollupUpdater(self.store, self.slos, **kwargs)

    def update(self, now_ms: Optional[int] = None) -> UpdateStats:
        self.last_update = self._updater.update(_now(now_ms))
        return self.last_update

    def evaluate(self, now_ms: Optional[int] = None, *, view: str = ROLLING, update: bool = True) -> list[SLOReport]:
        now = _now(now_ms)
        if update:
            self.update(now)
        reports = [report_slo(self.store, slo, now, view) for slo in self.slos]
        if view == ROLLING:
            self.last_reports = reports
        return reports


def evaluate_slos(store: Store, slos: Sequence[SLO], now_ms: Optional[int] = None, *,
                  view: str = ROLLING, update: bool = True) -> list[SLOReport]:
    """Update the rollups of ``slos`` (unless ``update=False``) and report each SLO."""
    return SLOEvaluator(store, slos).evaluate(now_ms, view=view, update=update)


def _now(now_ms: Optional[int]) -> int:
    return int(time.time() * 1000) if now_ms is None else int(now_ms)
