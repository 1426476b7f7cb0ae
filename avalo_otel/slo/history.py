"""Error-budget history: the remaining budget through an SLO's window, against the ideal burn line.

Read from the ``slo_rollups`` day documents once (~31 reads for a 30-day window, whatever the
traffic). The budget of a window is ``(100% - objective) x the window's events``; the history
gives, at each step ``t``, the share of that budget still left after the bad events from the
window's start up to ``t``. The last point is the report's ``budget_remaining`` exactly. The
ideal line is the budget spent evenly: 100% at the window's start, 0% at its end (for the
calendar month, at the month's end, so "above the line" means on track).

A zero-tolerance indicator (objective 100%) has no budget: its history is 1.0 until the first bad
event and 0.0 (exhausted) from then on; an indicator with no events has ``None`` throughout.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import itertools
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..store.base import DAY_MS, Store
from .definitions import SLO
from .policy import MINUTE_MS
from .report import CALENDAR_MONTH, ROLLING, window_bounds
from .rollup import MINUTES_PER_DAY, day_start, read_rollups, series_key


@dataclass(frozen=True)
class IndicatorHistory:
    indicator: str
    kind: str
    objective: float
    zero_tolerance: bool
    events: float
    bad_events: float
    #: (time in epoch ms, remaining budget as a fraction: 1.0 untouched, <= 0 exhausted, None: no data)
    points: Sequence[tuple[int, Optional[float]]]

    def to_dict(self) -> dict[str, Any]:
        return {"indicator": self.indicator, "kind": self.kind, "objective": self.objective,
                "zero_tolerance": self.zero_tolerance, "events": self.events, "bad_events": self.bad_events,
                "points": [[t, None if v is None else round(v, 6)] for t, v in self.points]}


@dataclass(frozen=True)
class BudgetHistory:
    slo: str
    view: str
    start_ms: int
    #: The end of the data: the end of the minute that holds "now".
    end_ms: int
    #: Where the ideal line reaches 0: the window's end (rolling) or the month's end (calendar).
    period_end_ms: int
    step_ms: int
    indicators: Sequence[IndicatorHistory]

    def ideal(self, t_ms: int) -> float:
        """The remaining budget if it were spent evenly over the period."""
        span = max(1, self.period_end_ms - self.start_ms)
        return max(0.0, 1.0 - (t_ms - self.start_ms) / span)

    def to_dict(self) -> dict[str, Any]:
        return {"slo": self.slo, "view": self.view, "start_ms": self.start_ms, "end_ms": self.end_ms,
                "period_end_ms": self.period_end_ms, "step_ms": self.step_ms,
                "ideal": [[self.start_ms, 1.0], [self.period_end_ms, 0.0]],
                "indicators": [i.to_dict() for i in self.indicators]}


def budget_history(store: Store, slo: SLO, now_ms: int, step_minutes: int = 60, *,
                   view: str = ROLLING) -> BudgetHistory:
    """The remaining error budget of each indicator of ``slo`` every ``step_minutes`` through its
    window (rolling, or the calendar month so far), plus the ideal burn line."""
    if isinstance(step_minutes, bool) or not isinstance(step_minutes, int) or step_minutes < 1:
        raise ValueError(f"step_minutes: must be a positive whole number, not {step_minutes!r}")
    start, end = window_bounds(slo, now_ms, view)
    period_end = end if view == ROLLING else _month_end(start)
    step = step_minutes * MINUTE_MS
    times = list(range(start, end, step))[1:] + [end]
    times.insert(0, start)
    days = {r.day_ms: r for r in read_rollups(store, slo, start, end)}
    first_day = day_start(start)
    n_days = (day_start(end - 1) - first_day) // DAY_MS + 1
    offset = (start - first_day) // MINUTE_MS
    n_minutes = (end - start) // MINUTE_MS
    zeros = [0] * MINUTES_PER_DAY

    def cumulative(key: str) -> list[float]:
        columns = (days[d].series.get(key, zeros) if d in days else zeros
                   for d in range(first_day, first_day + n_days * DAY_MS, DAY_MS))
        minutes = itertools.islice(itertools.chain.from_iterable(columns), offset, offset + n_minutes)
        return list(itertools.accumulate(minutes, initial=0))

    histories = []
    for ind in slo.indicators:
        total = cumulative(series_key(ind, "total"))
        bad = cumulative(series_key(ind, "bad"))
        events, bad_events = total[-1], bad[-1]
        allowed = ind.budget * events
        points: list[tuple[int, Optional[float]]] = []
        for t in times:
            so_far = bad[min(len(bad) - 1, (t - start) // MINUTE_MS)]
            if events <= 0:
                value: Optional[float] = None
            elif allowed <= 0:
                value = 0.0 if so_far > 0 else 1.0
            else:
                value = 1.0 - so_far / allowed
            points.append((t, value))
        histories.append(IndicatorHistory(ind.id, ind.kind, ind.objective, ind.zero_tolerance,
                                          events, bad_events, points))
    return BudgetHistory(slo.id, view, start, end, period_end, step, histories)


def _month_end(month_start_ms: int) -> int:
    start = _dt.datetime.fromtimestamp(month_start_ms / 1000, tz=_dt.timezone.utc)
    days = calendar.monthrange(start.year, start.month)[1]
    return month_start_ms + days * DAY_MS


__all__ = ["BudgetHistory", "IndicatorHistory", "budget_history", "CALENDAR_MONTH", "ROLLING"]
