"""Deadlines for flush and shutdown: calls run side by side, none may hold up the others, and
time left is handed down to each exporter in the unit it takes."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Sequence

from opentelemetry.sdk.metrics import MetricsTimeoutError
from opentelemetry.sdk.metrics.export import MetricReader

_log = logging.getLogger("avalo_otel")


def exporter_name(exporter: Any) -> str:
    """The ``exporter`` label of what ``exporter`` drops: ``otlp`` for ours, else its class name
    without the signal (``ConsoleSpanExporter`` → ``console``)."""
    name = getattr(exporter, "exporter_name", None)
    if name:
        return str(name)
    name = type(exporter).__name__
    for suffix in ("SpanExporter", "LogRecordExporter", "LogExporter", "MetricExporter", "Exporter"):
        if name.endswith(suffix) and name != suffix:
            return name[: -len(suffix)].lower()
    return name.lower()


def millis_to(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic()) * 1000


def flush_reader(reader: MetricReader, deadline: float) -> bool:
    try:
        return reader.force_flush(millis_to(deadline)) is not False
    except MetricsTimeoutError:  # the collection itself did not finish in the time left
        return False


def within(deadline: float, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` side by side, each on its own thread, and wait for them until ``deadline``
    (monotonic seconds) at most; a call still running then is left to finish in the background
    and counts as ``False``. One that raises is logged and counts as ``False`` too."""
    results: list[Any] = [False] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            results[i] = call()
        except Exception:  # noqa: BLE001 - one failing exporter must not stop the others
            _log.exception("avalo-otel: error while flushing or shutting down telemetry")
            results[i] = False

    threads = [threading.Thread(target=run, args=(i, call), name="avalo-otel-shutdown", daemon=True)
               for i, call in enumerate(calls)]
    for i, thread in enumerate(threads):
        try:
            thread.start()
        except RuntimeError:  # the interpreter is exiting: no new threads, one after the other
            run(i, calls[i])
    for thread in threads:
        if thread.ident is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
    return [False if thread.is_alive() else result for result, thread in zip(results, threads)]
