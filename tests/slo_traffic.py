"""Synthetic stored metric points, shaped exactly as the store exporters write them
(``avalo_otel.store.schema._points``): delta points of ``avalo_operations_total`` and of the
``avalo_operation_latency_ms`` histogram, per process and export interval."""

from __future__ import annotations

import bisect
from typing import Any, Iterable, Optional, Sequence

from avalo_otel.conventions import LATENCY_BUCKETS_MS

MINUTE = 60_000
DAY = 86_400_000


def bucket_counts(latencies_ms: Iterable[float], bounds: Sequence[float] = LATENCY_BUCKETS_MS) -> list[int]:
    """OTel explicit-bucket counts: bucket i holds (bounds[i-1], bounds[i]], the last one +Inf."""
    counts = [0] * (len(bounds) + 1)
    for value in latencies_ms:
        counts[bisect.bisect_left(bounds, value)] += 1
    return counts


def points(ts: int, operation: str, *, ok: int = 0, client_errors: int = 0, server_errors: int = 0,
           latencies_ms: Iterable[float] = (), service: str = "svc", process: str = "p1",
           temporality: str = "delta", start: Optional[int] = None,
           bounds: Sequence[float] = LATENCY_BUCKETS_MS) -> list[dict[str, Any]]:
    domain = operation.split(".", 1)[0]
    docs = []
    for outcome, value, code in (("success", ok, ""), ("client_error", client_errors, "VALIDATION_FAILED"),
                                 ("server_error", server_errors, "INTERNAL")):
        if value:
            labels = {"domain": domain, "operation": operation, "outcome": outcome, "error_code": code}
            docs.append(_doc("avalo_operations_total", "counter", ts, labels, service, process, temporality, start,
                             value=value))
    latencies = list(latencies_ms)
    if latencies:
        counts = bucket_counts(latencies, bounds)
        docs.append(_doc("avalo_operation_latency_ms", "histogram", ts, {"domain": domain, "operation": operation},
                         service, process, temporality, start, value=None, count=len(latencies),
                         sum=float(sum(latencies)), buckets={"bounds": [float(b) for b in bounds], "counts": counts}))
    return docs


def _doc(name: str, kind: str, ts: int, labels: dict[str, str], service: str, process: str, temporality: str,
         start: Optional[int], **fields: Any) -> dict[str, Any]:
    key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return {"id": f"{service}/{process}/{name}/{key}/{ts}", "name": name, "type": kind, "labels": labels,
            "timestamp": ts, "startTime": start if start is not None else ts - MINUTE, "temporality": temporality,
            "unit": None, "service": service, **fields}
