"""The SLO reports as gauges on the metrics endpoint (and any other metric exporter).

Observable gauges read the evaluator's last reports at collection: a scrape never triggers an
evaluation. Each SLO is reported by its primary indicator (the one with the least budget left).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .report import SLOEvaluator, SLOReport

BUDGET_REMAINING = "avalo_slo_error_budget_remaining_ratio"
BURN_RATE = "avalo_slo_burn_rate"
SLI = "avalo_slo_sli"
BAD_EVENTS = "avalo_slo_bad_events"


def register_gauges(evaluator: SLOEvaluator, meter_provider: Optional[Any] = None) -> None:
    """Serve ``evaluator.last_reports`` as ``avalo_slo_*`` gauges from ``meter_provider``
    (the global one by default)."""
    meter = (meter_provider or metrics.get_meter_provider()).get_meter("avalo_otel.slo")

    def reports() -> Iterable[SLOReport]:
        return list(evaluator.last_reports)

    def remaining(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(_finite(r.primary.budget_remaining), {"slo": r.slo.id})
                for r in reports() if r.primary.budget_remaining is not None]

    def burn(options: CallbackOptions) -> Iterable[Observation]:
        # OTel drops non-finite measurements: a zero-tolerance SLO that was hit has no finite
        # burn rate, so it shows in avalo_slo_bad_events (a count) and in the budget (-1) instead.
        return [Observation(rate, {"slo": r.slo.id, "window": window})
                for r in reports() for window, rate in r.primary.burn_rates.items()
                if rate is not None and not math.isinf(rate)]

    def bad(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(stats.bad, {"slo": r.slo.id, "window": window})
                for r in reports() for window, stats in r.primary.burn.items() if stats.total > 0]

    def sli(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(r.primary.sli, {"slo": r.slo.id}) for r in reports() if r.primary.sli is not None]

    meter.create_observable_gauge(BUDGET_REMAINING, [remaining],
                                  description="Error budget remaining (1 = untouched, 0 or less = exhausted)")
    meter.create_observable_gauge(BURN_RATE, [burn], description="Error-budget burn rate per window")
    meter.create_observable_gauge(SLI, [sli], description="SLI over the SLO window (good events / all events)")
    meter.create_observable_gauge(BAD_EVENTS, [bad], description="Budget-burning events per burn-rate window")


def _finite(value: Optional[float]) -> float:
    # A zero-tolerance SLO that was hit has -inf budget left: "fully spent and then some" reads
    # better on a dashboard as -1 than as a value that breaks axis scaling.
    return -1.0 if value is None or (math.isinf(value) and value < 0) else value
