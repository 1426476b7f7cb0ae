"""The error-budget policy and the burn-rate alerting policy: numbers and words, one home.

Both evaluators read these: the in-process reports and alerts, and the generated Prometheus rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

MINUTE_MS = 60_000

#: Burn-rate windows reported per SLO, in minutes (the SRE Workbook's multiwindow set).
BURN_WINDOWS: Mapping[str, int] = {
    "5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320,
}
#: The window whose burn rate projects the time to budget exhaustion.
PROJECTION_WINDOW = "1h"


@dataclass(frozen=True)
class BurnRateAlert:
    """Fire when the burn rate exceeds ``factor`` over both the long and the short window."""

    tier: str          # "page" or "ticket": the lower tier is inhibited while a higher one fires
    severity: str      # Avalo alert severity of the event
    long: str
    short: str
    factor: float


#: SRE Workbook, table 5-8: 2% of a 30-day budget in 1 h, 5% in 6 h (page); 10% in 1 d, 10% in 3 d (ticket).
MULTIWINDOW_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("page", "CRITICAL", "1h", "5m", 14.4),
    BurnRateAlert("page", "CRITICAL", "6h", "30m", 6.0),
    BurnRateAlert("ticket", "WARN", "1d", "2h", 3.0),
    BurnRateAlert("ticket", "WARN", "3d", "6h", 1.0),
)
TIERS = ("page", "ticket")  # highest first

# Budget status by remaining budget (the original's "Error Budget Status" table).
HEALTHY, WARNING, CRITICAL, EXHAUSTED = "healthy", "warning", "critical", "exhausted"
NO_DATA, INCONCLUSIVE = "no_data", "inconclusive"
GREEN, YELLOW, RED = "green", "yellow", "red"

POLICY_ACTIONS: Mapping[str, str] = {
    HEALTHY: "Continue normal operations.",
    WARNING: "Monitor closely; consider slowing releases.",
    CRITICAL: "Freeze non-critical releases; focus on reliability.",
    EXHAUSTED: ("Pause all non-critical deployments; prioritise bug fixes and stability; review recent "
                "changes; notify engineering and stakeholders; resume when the budget is back above 50%."),
    NO_DATA: "No events in the window: the SLO cannot be judged. Check that the service reports telemetry.",
    INCONCLUSIVE: "Too few events in the window to judge the SLO.",
}


def budget_status(remaining: float) -> str:
    """healthy > 50% remaining, warning 20-50%, critical < 20%, exhausted at 0 or below."""
    if remaining <= 0:
        return EXHAUSTED
    if remaining < 0.2:
        return CRITICAL
    if remaining <= 0.5:
        return WARNING
    return HEALTHY
