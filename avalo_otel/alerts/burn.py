"""Multiwindow burn-rate alerts from SLO reports: a pure function, so the policy can be tested
without a store and is decided once for every evaluator.

Policy (``avalo_otel.slo.policy.MULTIWINDOW_ALERTS``, SRE Workbook table 5-8): a tier fires when
any of its (long, short) window pairs burns the error budget faster than the pair's factor in
both windows. The long window needs ``slo.alert_min_events`` events first, so three requests with
one failure do not page; a zero-tolerance indicator (objective 100) skips that guard: any bad
event pages. While the page tier fires, the ticket tier of the same indicator is inhibited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..slo.policy import BURN_WINDOWS, MULTIWINDOW_ALERTS, TIERS, BurnRateAlert
from .rules import AlertRule

FIRING, CLEAR, INHIBITED = "firing", "clear", "inhibited"
BURN_METRIC = "slo_burn_rate"
BURN_PREFIX = "slo_burn_"


@dataclass(frozen=True)
class BurnAlert:
    """The judgement of one tier of one SLO indicator at one evaluation."""

    rule: AlertRule
    state: str                      # firing | clear | inhibited (its own condition holds, page fires)
    value: Optional[float]          # the long-window burn rate of the firing pair (else the highest seen)
    threshold: float                # the factor of that pair
    windows: tuple[str, str]        # (long, short)
    reason: str = ""

    @property
    def condition(self) -> bool:
        return self.state != CLEAR


def burn_rule_id(slo_id: str, indicator_id: str, tier: str) -> str:
    return f"{BURN_PREFIX}{slo_id}_{indicator_id}_{tier}"


def burn_rule(slo: Any, indicator: Any, tier: str) -> AlertRule:
    """The synthetic rule of one tier: labels ``slo``, ``indicator``, ``tier``."""
    pairs = [a for a in MULTIWINDOW_ALERTS if a.tier == tier]
    first = pairs[0]
    windows = " or ".join(f"{a.factor:g}x over {a.long} and {a.short}" for a in pairs)
    return AlertRule(
        id=burn_rule_id(slo.id, indicator.id, tier),
        name=f"{slo.name}: {indicator.id} error budget burn ({tier})",
        severity=first.severity,
        metric=BURN_METRIC,
        threshold=first.factor,
        window_minutes=BURN_WINDOWS[first.long],
        description=f"{slo.name} ({indicator.label()}) burns its error budget too fast: {windows}",
        labels={"slo": slo.id, "indicator": indicator.id, "tier": tier},
    )


def _judge_pair(pair: BurnRateAlert, burn: Any, min_events: int, zero_tolerance: bool) -> tuple[bool, Optional[float], str]:
    long, short = burn.get(pair.long), burn.get(pair.short)
    if long is None or short is None:
        return False, None, f"no {pair.long}/{pair.short} window in the report"
    long_rate, short_rate = long.burn_rate, short.burn_rate
    if not zero_tolerance and long.total < min_events:
        return False, long_rate, f"{long.total:g} events over {pair.long}, fewer than {min_events}"
    if long_rate is None or short_rate is None:
        return False, long_rate, "no events"
    if long_rate > pair.factor and short_rate > pair.factor:
        return True, long_rate, f"burn rate {long_rate:g} over {pair.long}, {short_rate:g} over {pair.short}"
    return False, long_rate, ""


def burn_rate_alerts(reports: Iterable[Any]) -> list[BurnAlert]:
    """Every tier of every indicator of ``reports`` (``SLOReport``-like: ``.slo``, ``.indicators``
    with ``.indicator`` and ``.burn[window]`` having ``.total`` and ``.burn_rate``), judged."""
    out: list[BurnAlert] = []
    for report in reports:
        slo = report.slo
        for ind in report.indicators:
            indicator = ind.indicator
            judged: dict[str, BurnAlert] = {}
            for tier in TIERS:
                pairs = [a for a in MULTIWINDOW_ALERTS if a.tier == tier]
                best: Optional[float] = None
                chosen: Optional[tuple[BurnRateAlert, Optional[float], str]] = None
                for pair in pairs:
                    fires, rate, why = _judge_pair(pair, ind.burn, slo.alert_min_events, indicator.zero_tolerance)
                    if rate is not None and (best is None or rate > best):
                        best = rate
                    if fires:
                        chosen = (pair, rate, why)
                        break
                rule = burn_rule(slo, indicator, tier)
                if chosen is None:
                    judged[tier] = BurnAlert(rule, CLEAR, best, pairs[0].factor, (pairs[0].long, pairs[0].short))
                else:
                    pair, rate, why = chosen
                    judged[tier] = BurnAlert(rule, FIRING, rate, pair.factor, (pair.long, pair.short), why)
            for higher, lower in zip(TIERS, TIERS[1:]):
                if judged[higher].state == FIRING and judged[lower].state == FIRING:
                    b = judged[lower]
                    judged[lower] = BurnAlert(b.rule, INHIBITED, b.value, b.threshold, b.windows,
                                              f"inhibited while {judged[higher].rule.id} fires")
            out.extend(judged[tier] for tier in TIERS)
    return out
