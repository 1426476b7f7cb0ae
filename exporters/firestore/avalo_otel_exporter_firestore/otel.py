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


def _defaults(kwargs: dict[str, Any], name: str) -> dict[str, Any]:
    """The exporter's name, and its buffer bound from ``AVALO_OTEL_STORE_BUFFER`` (read, like
    every avalo-otel setting, by ``avalo_otel.settings``)."""
    from avalo_otel.settings import Settings

    kwargs.setdefault("name", name)
    if "writer" not in kwargs:
        kwargs.setdefault("max_buffer", Settings.load().store_buffer)
    return kwargs


class FirestoreSpanExporter(StoreSpanExporter):
    """Spans → ``traces`` in Firestore."""

    def __init__(self, store: Optional[FirestoreStore] = None, **kwargs: Any) -> None:
        super().__init__(store if store is not None else shared_store(), **_defaults(kwargs, "firestore-traces"))


class FirestoreLogExporter(StoreLogExporter):
    """Log records → ``telemetry_events`` in Firestore."""

    def __init__(self, store: Optional[FirestoreStore] = None, **kwargs: Any) -> None:
        super().__init__(store if store is not None else shared_store(), **_defaults(kwargs, "firestore-logs"))


class FirestoreMetricExporter(StoreMetricExporter):
    """Metric points → ``metrics`` in Firestore (delta temporality)."""

    def __init__(self, store: Optional[FirestoreStore] = None, **kwargs: Any) -> None:
        super().__init__(store if store is not None else shared_store(), **_defaults(kwargs, "firestore-metrics"))
