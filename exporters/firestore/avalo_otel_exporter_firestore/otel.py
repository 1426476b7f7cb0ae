"""The ``firestore`` OTel exporters: ``OTEL_TRACES_EXPORTER=firestore`` (and logs, metrics).

The SDK builds each exporter with no arguments, so they share one ``FirestoreStore`` configured
from the environment (see ``FirestoreStore.from_env``): one gRPC client for all three.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from .store import FirestoreStore

try:
    from avalo_otel.store.exporters import StoreLogExporter, StoreMetricExporter, StoreSpanExporter
except ImportError as exc:  # an avalo-otel without the store exporters: say so, not just "no module"
    raise ImportError(
        "avalo-otel-exporter-firestore needs avalo_otel.store.exporters (StoreSpanExporter, StoreLogExporter, "
        f"StoreMetricExporter), which the installed avalo-otel lacks: upgrade avalo-otel ({exc})"
    ) from exc

__all__ = ["FirestoreLogExporter", "FirestoreMetricExporter", "FirestoreSpanExporter", "shared_store"]

_lock = threading.Lock()
_shared: Optional[FirestoreStore] = None


def shared_store() -> FirestoreStore:
    """The process's environment-configured store, created on first use."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = FirestoreStore.from_env()
        return _shared


class FirestoreSpanExporter(StoreSpanExporter):
    """Spans → ``traces`` in Firestore."""

    def __init__(self, store: Optional[FirestoreStore] = None, **kwargs: Any) -> None:
        kwargs.setdefault("name", "firestore-traces")
        super().__init__(store if store is not None else shared_store(), **kwargs)


class FirestoreLogExporter(StoreLogExporter):
    """Log records → ``telemetry_events`` in Firestore."""

    def __init__(self, store: Optional[FirestoreStore] = None, **kwargs: Any) -> None:
        kwargs.setdefault("name", "firestore-logs")
        super().__init__(store if store is not None else shared_store(), **kwargs)


class FirestoreMetricExporter(StoreMetricExporter):
    """Metric points → ``metrics`` in Firestore (delta temporality)."""

    def __init__(self, store: Optional[FirestoreStore] = None, **kwargs: Any) -> None:
        kwargs.setdefault("name", "firestore-metrics")
        super().__init__(store if store is not None else shared_store(), **kwargs)
