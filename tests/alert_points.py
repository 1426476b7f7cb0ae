"""Stored metric points for the alert tests, shaped exactly like ``store.schema._points`` writes them."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pytest

from avalo_otel.conventions import LATENCY_BUCKETS_MS

MINUTE = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, minute aligned
_ids = itertools.count()


def _doc(name: str, kind: str, ts: int, labels: Mapping[str, str], temporality: Optional[str],
         service: str, start: Optional[int] = None, **fields: Any) -> dict[str, Any]:
    """A delta point covers the minute before ``ts``; a cumulative one counts from ``start``."""
    if start is None:
        start = ts - MINUTE if temporality == "delta" else T0 - MINUTE
    return {"id": f"{name}-{ts}-{next(_ids)}", "name": name, "type": kind, "value": None, "labels": dict(labels),
            "timestamp": ts, "startTime": start, "temporality": temporality, "unit": None, "service": service,
            **fields}


def ops(ts: int, domain: str, operation: str, outcome: str, value: float, *, error_code: str = "",
        service: str = "svc", temporality: str = "delta", start: Optional[int] = None) -> dict[str, Any]:
    """One ``avalo_operations_total`` point: a delta (or cumulative) count of one outcome."""
    labels = {"domain": domain, "operation": operation, "outcome": outcome, "error_code": error_code}
    doc = _doc("avalo_operations_total", "counter", ts, labels, temporality, service, start)
    doc["value"] = value
    return doc


def latency(ts: int, domain: str, operation: str, counts: Sequence[float], *,
            bounds: Sequence[float] = LATENCY_BUCKETS_MS, name: str = "avalo_operation_latency_ms",
            service: str = "svc", temporality: str = "delta") -> dict[str, Any]:
    """One histogram point; ``counts`` per bucket (OTel style), padded with zeros to len(bounds)+1."""
    full = list(counts) + [0] * (len(bounds) + 1 - len(counts))
    assert len(full) == len(bounds) + 1
    return _doc(name, "histogram", ts, {"domain": domain, "operation": operation}, temporality, service,
                count=sum(full), sum=0.0, min=None, max=None,
                buckets={"bounds": [float(b) for b in bounds], "counts": full})


def gauge(ts: int, name: str, value: float, labels: Mapping[str, str], *, service: str = "svc") -> dict[str, Any]:
    doc = _doc(name, "gauge", ts, labels, None, service)
    doc["value"] = value
    return doc


def promtool() -> str:
    """Debian's promtool; a missing binary fails the test (never a skip)."""
    explicit = os.environ.get("PROMTOOL_BIN")
    for candidate in ([explicit] if explicit else ["/usr/bin/promtool", shutil.which("promtool")]):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("promtool not found: install it with `apt-get install -y --no-install-recommends prometheus` "
                "(these tests need the real promtool and are never skipped)", pytrace=False)


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, timeout=60)
