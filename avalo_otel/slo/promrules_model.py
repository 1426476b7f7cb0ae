"""A small model of Prometheus 2.42 for the generated promtool tests: what the SLO rules must give.

Independent of the rule text: it evaluates the *policy* (factors, windows, guard, zero tolerance)
over synthetic series with Prometheus' own arithmetic (inclusive ``[t - w, t]`` ranges,
``extrapolatedRate``, 5m lookback, Go's number formatting), so a test file generated from it
fails when the rules are wrong. Values that sit on a rounding or threshold edge raise
``ScenarioError`` rather than produce a test that depends on the last bit of a float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from ..conventions import OUTCOME_SERVER_ERROR
from .definitions import AVAILABILITY, LATENCY_METRIC, OPERATIONS_METRIC, SLO, Indicator
from .policy import TIERS, BurnRateAlert
from . import promrules as pr

STEP_S = 60
#: promtool evaluates every rule at every step up to the last eval time: 5m keeps the file fast
#: (the burn-rate alerts have no state; keep_firing_for is modelled on this grid).
EVAL_STEP_MIN = 5
LOOKBACK_MIN = 5


class ScenarioError(AssertionError):
    """A generated scenario does not exercise what it claims (or sits on a rounding edge)."""


@dataclass
class Series:
    labels: dict[str, str]
    values: list[Optional[float]]   # one per minute from 0; None: no sample

    def range(self, t: int, w: int) -> list[tuple[int, float]]:
        return [(i, v) for i in range(max(0, t - w), t + 1) if (v := self.values[i]) is not None]

    def instant(self, t: int) -> Optional[float]:
        for i in range(t, max(-1, t - LOOKBACK_MIN - 1), -1):
            if i >= 0 and self.values[i] is not None:
                return self.values[i]
        return None


def increase(s: Series, t: int, w: int, as_rate: bool = False) -> Optional[float]:
    """Prometheus 2.42's ``extrapolatedRate`` for a counter over ``[t - w, t]`` (minutes)."""
    points = s.range(t, w)
    if len(points) < 2:
        return None
    result = points[-1][1] - points[0][1]
    last = 0.0
    for _, v in points:
        if v < last:
            result += last
        last = v
    start, end = (t - w) * STEP_S, t * STEP_S
    to_start, to_end = points[0][0] * STEP_S - start, end - points[-1][0] * STEP_S
    sampled = (points[-1][0] - points[0][0]) * STEP_S
    average = sampled / (len(points) - 1)
    if result > 0 and points[0][1] >= 0:
        to_start = min(to_start, sampled * (points[0][1] / result))
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2)
    interval += to_end if to_end < threshold else average / 2
    result = result * (interval / sampled)
    return result / (w * STEP_S) if as_rate else result


def _sum(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


class Model:
    """The SLO quantities of the generated rules, computed over ``series``."""

    def __init__(self, series: Sequence[Series], buckets: Sequence[float]) -> None:
        self.series, self.buckets = series, buckets

    def _select(self, slo: SLO, name: str, **labels: str) -> list[Series]:
        return [s for s in self.series if s.labels["__name__"] == name and slo.select.matches(s.labels)
                and all(s.labels.get(k, "") == v for k, v in labels.items())]

    def _vectors(self, slo: SLO, ind: Indicator) -> tuple[list[Series], list[Series]]:
        if ind.kind == AVAILABILITY:
            return (self._select(slo, OPERATIONS_METRIC),
                    self._select(slo, OPERATIONS_METRIC, outcome=OUTCOME_SERVER_ERROR))
        le = pr.le_value(ind.threshold_ms, self.buckets)  # type: ignore[arg-type]
        return self._select(slo, LATENCY_METRIC + "_count"), self._select(slo, LATENCY_METRIC + "_bucket", le=le)

    def sli_error(self, slo: SLO, ind: Indicator, window: str, t: int) -> Optional[float]:
        w = pr.window_minutes(window)
        total, part = self._vectors(slo, ind)
        all_rate = _sum(increase(s, t, w, True) for s in total)
        part_rate = _sum(increase(s, t, w, True) for s in part)
        if ind.kind == AVAILABILITY:
            return None if all_rate is None else _div(part_rate or 0.0, all_rate)
        return None if all_rate is None or part_rate is None else 1 - _div(part_rate, all_rate)

    def events(self, slo: SLO, ind: Indicator, window: str, t: int) -> Optional[float]:
        return _sum(increase(s, t, pr.window_minutes(window)) for s in self._vectors(slo, ind)[0])

    def burn(self, slo: SLO, ind: Indicator, window: str, t: int) -> Optional[float]:
        sli = self.sli_error(slo, ind, window, t)
        return None if sli is None else sli / pr.budget_value(ind)

    def bad_events(self, slo: SLO, ind: Indicator, window: str, t: int) -> float:
        w = pr.window_minutes(window)
        total, part = self._vectors(slo, ind)

        def fresh(series: list[Series]) -> Optional[float]:
            return _sum(s.instant(t) for s in series if s.instant(t) is not None and s.instant(t - w) is None)

        inc_part = _sum(increase(s, t, w) for s in part)
        if ind.kind == AVAILABILITY:
            return (inc_part or 0.0) + (fresh(part) or 0.0)
        inc_total = _sum(increase(s, t, w) for s in total)
        inc = None if inc_total is None or inc_part is None else inc_total - inc_part
        new_total = fresh(total)
        new = None if new_total is None else new_total - (fresh(part) or 0.0)
        return (inc or 0.0) + (new or 0.0)

    # -- alerts ------------------------------------------------------------------------------
    def burn_alert(self, slo: SLO, ind: Indicator, pairs: Sequence[BurnRateAlert], t: int,
                   min_events: Optional[int] = None) -> Optional[float]:
        """The alert's value (the long burn rate of the first pair that holds), None: silent."""
        guard = slo.alert_min_events if min_events is None else min_events
        for p in pairs:
            long, short = self.burn(slo, ind, p.long, t), self.burn(slo, ind, p.short, t)
            events = self.events(slo, ind, p.long, t)
            for value in (long, short):
                if value is not None and math.isfinite(value) and abs(value - p.factor) < 1e-9 * p.factor:
                    raise ScenarioError(f"{slo.id}/{ind.id}: burn rate {value} is on the factor {p.factor}")
            if _gt(long, p.factor) and _gt(short, p.factor) and events is not None and events >= guard:
                return long
        return None

    def zero_tolerance_alert(self, slo: SLO, ind: Indicator, tier: str, t: int) -> Optional[float]:
        span = pr.zero_tolerance_spans()[tier]
        window = pr.ZERO_TOLERANCE_WINDOW if tier == TIERS[0] else span
        hold = pr.window_minutes(span) - pr.window_minutes(window)
        # keep_firing_for: the value of the last evaluation where the condition held, while less
        # than ``hold`` has passed since the first evaluation where it did not.
        for t_active in range(t, max(-1, t - hold - 1), -EVAL_STEP_MIN):
            value = self.bad_events(slo, ind, window, t_active)
            if value > 0:
                return value if t_active == t or t - (t_active + EVAL_STEP_MIN) < hold else None
        return None


def _gt(value: Optional[float], threshold: float) -> bool:
    return value is not None and not math.isnan(value) and value > threshold


def go_printf(value: Optional[float], spec: str = ".2f") -> str:
    """Go's ``printf`` of the value (and our template's ``n/a`` for no data)."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    digits = int(spec[1:-1])
    scaled = abs(value) * 10 ** digits
    if abs(scaled - math.floor(scaled) - 0.5) < 1e-6:
        raise ScenarioError(f"{value!r} sits on a rounding edge of %{spec}")
    return format(value, spec)


def prom_round(value: float) -> float:
    """PromQL ``round(v, 0.000001)``, as Go computes it."""
    inverse = 1.0 / 0.000001
    if abs(value * inverse - math.floor(value * inverse) - 0.5) < 1e-4:
        raise ScenarioError(f"{value!r} sits on a rounding edge of round(v, 0.000001)")
    return math.floor(value * inverse + 0.5) / inverse
