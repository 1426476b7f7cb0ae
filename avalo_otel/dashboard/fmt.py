"""How numbers, times and statuses read on the dashboard: one formatter per kind of value.

Every function takes what the reports give (floats, None for no data, ``"inf"`` strings from
``to_dict``) and returns plain text; the templates escape it like any other text.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Optional

DASH = "–"


def number(value: Any) -> Optional[float]:
    """A float from a report value (``"inf"`` → inf), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def pct(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage: 0.99512 → "99.51%"."""
    v = number(value)
    if v is None:
        return DASH
    if math.isinf(v):
        return "−∞" if v < 0 else "∞"
    text = f"{v * 100:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def ms(value: Any) -> str:
    """Milliseconds: "87 ms", "1.25 s", "2.5 min"."""
    v = number(value)
    if v is None or math.isinf(v):
        return DASH
    if v == 0:
        return "0 ms"
    if v < 10:
        return f"{_trim(f'{v:.1f}')} ms"
    if v < 1000:
        return f"{v:.0f} ms"
    if v < 60_000:
        return f"{_trim(f'{v / 1000:.2f}')} s"
    return f"{_trim(f'{v / 60_000:.1f}')} min"


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def count(value: Any) -> str:
    """An event count: 950, 12.3k, 4.1M."""
    v = number(value)
    if v is None or math.isinf(v):
        return DASH
    if abs(v) < 10_000:
        return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"
    if abs(v) < 1_000_000:
        return f"{v / 1000:.1f}k"
    return f"{v / 1_000_000:.1f}M"


def rate(value: Any) -> str:
    """Events per minute."""
    v = number(value)
    if v is None:
        return DASH
    if v < 10:
        return f"{v:.1f}/min"
    return f"{count(round(v))}/min"


def burn(value: Any) -> str:
    """A burn rate: "0.42×", "14×", "∞"."""
    v = number(value)
    if v is None:
        return DASH
    if math.isinf(v):
        return "∞"
    if v == 0:
        return "0×"
    if v < 10:
        return f"{v:.2f}×"
    return f"{v:.0f}×"


def duration(seconds: Any) -> str:
    """A time span: "45 s", "12 min", "5 h 20 min", "3 d 4 h"."""
    v = number(seconds)
    if v is None or math.isinf(v):
        return DASH
    v = max(0.0, v)
    if v < 60:
        return f"{v:.0f} s"
    if v < 3600:
        return f"{v / 60:.0f} min"
    if v < 86_400:
        h, m = divmod(int(v // 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(int(v // 3600), 24)
    return f"{d} d {h} h" if h else f"{d} d"


def when(ms_value: Any, *, seconds: bool = False) -> str:
    """Epoch ms as UTC: "2026-01-01 12:00 UTC"."""
    v = number(ms_value)
    if v is None or math.isinf(v):
        return DASH
    moment = _dt.datetime.fromtimestamp(v / 1000, tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def clock(ms_value: Any) -> str:
    v = number(ms_value)
    if v is None:
        return DASH
    return _dt.datetime.fromtimestamp(v / 1000, tz=_dt.timezone.utc).strftime("%H:%M:%S")


def value(v: Any) -> str:
    """An alert value or threshold: a number as short as it reads, anything else as text."""
    n = number(v)
    if n is None:
        return DASH if v is None else str(v)
    if math.isinf(n):
        return "∞" if n > 0 else "−∞"
    return f"{n:.4g}"


#: Status → (CSS class, words) for the colour pills.
STATUS = {
    "green": ("ok", "Green"), "yellow": ("warn", "Yellow"), "red": ("bad", "Red"),
    "no_data": ("none", "No data"), "inconclusive": ("none", "Too few events"),
    "healthy": ("ok", "Healthy"), "warning": ("warn", "Warning"), "critical": ("bad", "Critical"),
    "exhausted": ("bad", "Exhausted"),
}


def status_class(status: Any) -> str:
    return STATUS.get(str(status), ("none", ""))[0]


def status_text(status: Any) -> str:
    return STATUS.get(str(status), ("none", str(status)))[1]


def burn_class(value: Any) -> str:
    """A burn rate's colour: page-level red, ticket-level amber, burning faster than even amber-light."""
    v = number(value)
    if v is None:
        return "none"
    if v >= 14.4:
        return "bad"
    if v >= 6:
        return "hot"
    if v >= 1:
        return "warn"
    return "ok"


def rate_class(error_rate: Any, warn: float = 0.01, bad: float = 0.05) -> str:
    v = number(error_rate)
    if v is None:
        return "none"
    return "bad" if v >= bad else "warn" if v >= warn else "ok"


_CONDITIONS = {"greater_than": ">", "greater_than_or_equal": "≥", "less_than": "<", "less_than_or_equal": "≤",
               "equals": "=", "not_equals": "≠"}


def condition(name: Any) -> str:
    return _CONDITIONS.get(str(name), str(name or ""))


FILTERS = {
    "pct": pct, "ms": ms, "qty": count, "rate": rate, "burn": burn, "duration": duration,
    "when": when, "clock": clock, "value": value, "status_class": status_class, "status_text": status_text,
    "burn_class": burn_class, "rate_class": rate_class, "condition": condition,
}
