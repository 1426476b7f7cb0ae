"""SLOs and error budgets: definitions (a data file plus typed objects), minute rollups in the
store, reports with budgets and burn rates, gauges, and the Prometheus rules generated from the
same definitions."""

from __future__ import annotations

from typing import Iterable, Optional

from ..settings import Settings, latency_buckets
from .definitions import SLO, Indicator, Selector, SLODefinitionError, load_slos, parse_slos
from .report import CALENDAR_MONTH, ROLLING, IndicatorReport, SLOEvaluator, SLOReport, WindowStats, evaluate_slos


def configured_slos(settings: Optional[Settings] = None, extra_files: Iterable[str] = ()) -> list[SLO]:
    """The built-in SLOs plus those of ``AVALO_OTEL_SLO_FILES`` and ``extra_files``, validated
    against the configured latency buckets."""
    settings = settings or Settings.load()
    return load_slos([*settings.slo_files, *extra_files], buckets=latency_buckets(settings))


__all__ = [
    "CALENDAR_MONTH", "ROLLING", "SLO", "Indicator", "IndicatorReport", "SLODefinitionError", "SLOEvaluator",
    "SLOReport", "Selector", "WindowStats", "configured_slos", "evaluate_slos", "load_slos", "parse_slos",
]
