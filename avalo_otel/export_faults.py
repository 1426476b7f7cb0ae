"""When telemetry cannot be delivered: every lost item is counted, and shutdown keeps its deadline.

* :func:`count_dropped` is the one counter, ``avalo_otel_export_dropped_total{exporter, signal,
  reason}``, for the batch processors, the exporters behind them and the store writers. Reasons:
  ``queue_full`` (a bounded queue or buffer overflowed), ``export_failed`` (the backend refused or
  was unreachable until the export timed out), ``shutdown`` (still queued or in flight when the
  shutdown deadline passed, or handed in after it), ``invalid`` (could not be made a document).
* :func:`guard_exporter` wraps an exporter: a failed export is counted by its item count (spans,
  log records, metric points); its shutdown ends the SDK exporter's retries at once.
* :class:`BoundedBatchSpanProcessor` and :class:`BoundedBatchLogRecordProcessor` are the SDK's
  batch processors with their queue overflow counted (the SDK drops silently), ``force_flush`` and
  ``shutdown`` within their deadline, and what the queue still holds at the deadline counted.
* :func:`retry_promptly` makes an OTLP exporter's retry go as soon as an unreachable collector
  accepts connections again (not up to a backoff of 1, 2, 4 … s later); :func:`stop_retrying`
  leaves the final metrics export at shutdown one try.

Why the SDK alone is not enough (opentelemetry-sdk 1.45): ``BatchSpanProcessor.shutdown()`` takes
no timeout and waits up to 30 s for its worker, which sits in the OTLP exporter's retry loop (up
to the export timeout per batch, for every batch queued) until the exporter is shut down, after
that wait. So the deadline is handed to the processor here, and the exporter is shut down as
soon as the processor stops waiting: its retry backoff wakes up and gives up.

Uses private SDK attributes: ``BatchProcessor._metrics``, ``_queue``, ``_export_lock``; the OTLP
exporters' backoff events (gRPC ``_shutdown_in_progress`` and ``_channel``, HTTP
``_client._shutdown_event`` and ``_client._endpoint``); ``PeriodicExportingMetricReader._exporter``.
The SDK and exporters are pinned below their next minor in pyproject.toml for that reason; a
missing attribute makes ``retry_promptly``/``stop_retrying`` do nothing rather than fail.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any, Callable, Optional, Sequence

from opentelemetry import metrics
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .version import __version__

_log = logging.getLogger("avalo_otel")

DROPPED_METRIC = "avalo_otel_export_dropped_total"
QUEUE_FULL, EXPORT_FAILED, SHUTDOWN, INVALID = "queue_full", "export_failed", "shutdown", "invalid"
#: The deadline of a shutdown nobody gave one (the SDK's own at-exit shutdown): ``Telemetry.shutdown``'s.
DEFAULT_SHUTDOWN_S = 10.0

_counter_of: tuple[Any, Any] = (None, None)  # (meter provider, its counter)


def _counter() -> Any:
    """The counter of the global meter provider (the one configure() installed when the drop
    happens, even for an exporter built before it)."""
    global _counter_of
    provider = metrics.get_meter_provider()
    cached_provider, counter = _counter_of
    if cached_provider is not provider:
        counter = provider.get_meter("avalo_otel", __version__).create_counter(
            DROPPED_METRIC, description="Telemetry items an exporter could not deliver, by exporter, signal and reason")
        _counter_of = (provider, counter)
    return counter


def count_dropped(exporter: str, signal: str, reason: str, count: int) -> None:
    """Add ``count`` lost items to ``avalo_otel_export_dropped_total``."""
    if count > 0:
        _counter().add(count, {"exporter": exporter, "signal": signal, "reason": reason})


def prepare_counting() -> None:
    """Make the counter now (before a shutdown, while the meter provider still hands out meters)."""
    _counter()


# -- exporters ------------------------------------------------------------------------------------
class _Guard:
    """Counts what the wrapped exporter failed to deliver; shuts it down once."""

    signal = ""

    def _guard(self, inner: Any, name: str) -> None:
        self.inner = inner
        self.exporter_name = name
        self._stopping = False
        self._failing = False  # raised on the last export: said once per outage, not per batch
        self._lock = threading.Lock()

    def _exported(self, count: int, export: Callable[[], Any], success: Any, failure: Any) -> Any:
        if self._stopping:
            count_dropped(self.exporter_name, self.signal, SHUTDOWN, count)
            return failure
        try:
            result = export()
            self._failing = False
        except Exception:  # noqa: BLE001 - a failing exporter is a lost batch, not a dead worker thread
            if not self._failing:
                self._failing = True
                _log.exception("avalo-otel: the %s %s exporter failed (its losses are counted in %s; said "
                               "again only after it has worked once)", self.exporter_name, self.signal,
                               DROPPED_METRIC)
            result = failure
        if result is not success:
            count_dropped(self.exporter_name, self.signal, SHUTDOWN if self._stopping else EXPORT_FAILED, count)
        return result

    def _close(self, **kwargs: Any) -> None:
        # An OTLP export in its retry backoff gives up now (the backoff event is set at once);
        # the exporter's own shutdown, which closes its channel or session and so cancels a call
        # in flight, then runs on its own thread: closing a gRPC channel can take a few hundred
        # ms. Any other exporter is shut down here, as the SDK would.
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        if self.stop_retrying():
            threading.Thread(target=self._close_inner, kwargs=kwargs, name=f"avalo-otel-close-{self.signal}",
                             daemon=True).start()
        else:
            self.inner.shutdown(**kwargs)

    def _close_inner(self, **kwargs: Any) -> None:
        # gRPC's connectivity-polling thread (running while the retry probe watches the channel)
        # raises in its own thread if the channel is closed under it: let it stop first. It
        # stops within its 0.2 s poll once the probe has unsubscribed (the backoff just ended).
        state = getattr(getattr(self.inner, "_channel", None), "_connectivity_state", None)
        end = time.monotonic() + 1.0
        while getattr(state, "polling", False) and time.monotonic() < end:
            time.sleep(0.02)
        self.inner.shutdown(**kwargs)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def stop_retrying(self) -> bool:
        """From now on an export that fails is not retried (each is tried once): for the last
        export at shutdown, when waiting for the backend would only take other exporters' time.
        Sets the SDK exporter's private backoff event (see ``retry_promptly``); False if it has none."""
        found = False
        for event in (getattr(self.inner, "_shutdown_in_progress", None),
                      getattr(getattr(self.inner, "_client", None), "_shutdown_event", None)):
            if isinstance(event, threading.Event):
                event.set()
                found = True
        return found


class GuardedSpanExporter(_Guard, SpanExporter):
    signal = "traces"

    def __init__(self, inner: SpanExporter, name: str) -> None:
        self._guard(inner, name)

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return self._exported(len(spans), lambda: self.inner.export(spans), SpanExportResult.SUCCESS,
                              SpanExportResult.FAILURE)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._close()


class GuardedLogExporter(_Guard, LogRecordExporter):
    signal = "logs"

    def __init__(self, inner: LogRecordExporter, name: str) -> None:
        self._guard(inner, name)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return self._exported(len(batch), lambda: self.inner.export(batch), LogRecordExportResult.SUCCESS,
                              LogRecordExportResult.FAILURE)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._close()


class GuardedMetricExporter(_Guard, MetricExporter):
    signal = "metrics"

    def __init__(self, inner: MetricExporter, name: str) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality,  # noqa: SLF001 - pass the choice on
                         preferred_aggregation=inner._preferred_aggregation)  # noqa: SLF001
        self._guard(inner, name)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return self._exported(_points(metrics_data),
                              lambda: self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
                              MetricExportResult.SUCCESS, MetricExportResult.FAILURE)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._close(timeout_millis=timeout_millis)


def _points(data: MetricsData) -> int:
    return sum(len(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)


_Probe = tuple[Callable[[], bool], Callable[[], Any]]  # (is the collector back?, stop watching)


class _RetryPause(threading.Event):
    """Stands in for the event an SDK OTLP exporter sleeps its retry backoff on (1, 2, 4 … s; set
    at shutdown): the sleep also ends, as "not shut down", when the collector was unreachable and
    accepts connections again, so the export is retried right after a collector restart, not up
    to a backoff later. A collector that answers with an error (overloaded) gets the full backoff."""

    def __init__(self, probe: Callable[[], _Probe]) -> None:
        super().__init__()
        self._probe = probe

    def wait(self, timeout: Optional[float] = None) -> bool:
        if self.is_set():
            return True
        try:
            is_back, stop = self._probe()
        except Exception:  # noqa: BLE001 - e.g. a channel closed meanwhile: the plain backoff
            return super().wait(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        try:
            while not is_back():
                left = 0.1 if end is None else min(0.1, end - time.monotonic())
                if left <= 0 or super().wait(left):
                    break
        finally:
            stop()
        return self.is_set()


def _grpc_probe(exporter: Any) -> Callable[[], _Probe]:
    def probe() -> _Probe:
        import grpc

        # The channel the SDK re-made after UNAVAILABLE, asked to connect (as often as
        # GRPC_RECONNECT_OPTIONS allow): back once it is READY after a failure to connect.
        channel, failed, back = exporter._channel, threading.Event(), threading.Event()

        def watch(state: Any) -> None:
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                failed.set()
            elif state is grpc.ChannelConnectivity.READY and failed.is_set():
                back.set()

        channel.subscribe(watch, try_to_connect=True)
        return back.is_set, lambda: channel.unsubscribe(watch)
    return probe


def _http_probe(endpoint: str) -> Callable[[], _Probe]:
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    address = (url.hostname or "localhost", url.port or (443 if url.scheme == "https" else 80))

    def probe() -> _Probe:
        next_try, refused = [0.0], [False]

        def is_back() -> bool:
            # Back once a TCP connection is accepted after one was not (a refused one fails at
            # once). Tried twice a second at most; not again once it was accepted at first.
            if time.monotonic() < next_try[0]:
                return False
            next_try[0] = time.monotonic() + 0.5
            try:
                socket.create_connection(address, timeout=0.2).close()
            except OSError:
                refused[0] = True
                return False
            if not refused[0]:
                next_try[0] = float("inf")
            return refused[0]

        return is_back, lambda: None
    return probe


def retry_promptly(exporter: Any) -> Any:
    """``exporter`` (an SDK OTLP exporter, gRPC or HTTP) retrying as soon as its collector is back.
    Replaces the SDK's private backoff event (gRPC: ``_shutdown_in_progress``; HTTP:
    ``_client._shutdown_event``); an exporter without one is left as it is."""
    if isinstance(getattr(exporter, "_shutdown_in_progress", None), threading.Event):
        exporter._shutdown_in_progress = _RetryPause(_grpc_probe(exporter))
    client = getattr(exporter, "_client", None)
    if isinstance(getattr(client, "_shutdown_event", None), threading.Event) and getattr(client, "_endpoint", None):
        client._shutdown_event = _RetryPause(_http_probe(client._endpoint))
    return exporter


def stop_retrying(readers: Sequence[Any]) -> None:
    """``stop_retrying`` for the guarded exporters of these metric readers (behind the privacy
    stage's wrapper; ``PeriodicExportingMetricReader._exporter`` is private SDK API)."""
    for reader in readers:
        exporter = getattr(reader, "_exporter", None)
        guard = getattr(exporter, "inner", exporter)
        if isinstance(guard, _Guard):
            guard.stop_retrying()


def guard_exporter(exporter: Any, name: str, signal: str) -> Any:
    """``exporter`` with its failures counted under ``name``; an already guarded one as it is."""
    if isinstance(exporter, _Guard):
        return exporter
    kind = {"traces": GuardedSpanExporter, "logs": GuardedLogExporter, "metrics": GuardedMetricExporter}[signal]
    return kind(exporter, name)


# -- batch processors -----------------------------------------------------------------------------
class _CountingProcessorMetrics:
    """Stands in for the SDK batch processor's own metrics hook, which is where it reports a
    record dropped for a full queue (or one handed in after shutdown): count those too."""

    def __init__(self, inner: Any, name: str, signal: str) -> None:
        self._inner, self._name, self._signal = inner, name, signal

    def register_queue_size(self, get_queue_size: Callable[[], int]) -> None:
        self._inner.register_queue_size(get_queue_size)

    def drop_items(self, count: int, error_type: str = QUEUE_FULL) -> None:
        self._inner.drop_items(count, error_type)
        count_dropped(self._name, self._signal, QUEUE_FULL if error_type == QUEUE_FULL else SHUTDOWN, count)

    def finish_items(self, count: int) -> None:
        self._inner.finish_items(count)


class _Bounds:
    """Deadlines and drop accounting around one SDK ``BatchProcessor`` (its private API)."""

    def __init__(self, batch: Any, name: str, signal: str) -> None:
        self._batch, self._name, self._signal = batch, name, signal
        # Monotonic seconds, set by Telemetry.shutdown: stop exporting at ``deadline``; count what
        # is left by ``count_by`` (before the final metrics collection reports it).
        self.deadline: Optional[float] = None
        self.count_by: Optional[float] = None
        batch._metrics = _CountingProcessorMetrics(batch._metrics, name, signal)

    def force_flush(self, timeout_millis: Optional[float]) -> bool:
        # The SDK's flush ignores its timeout and exports on the caller's thread, retries and all:
        # it runs on a helper thread instead and the caller waits at most the timeout.
        timeout = (timeout_millis if timeout_millis is not None else 30_000) / 1000
        result: list[bool] = []
        helper = threading.Thread(target=lambda: result.append(self._batch.force_flush()),
                                  name=f"avalo-otel-flush-{self._signal}", daemon=True)
        helper.start()
        helper.join(timeout)
        return bool(result and result[0])

    def shutdown(self) -> None:
        deadline = self.deadline if self.deadline is not None else time.monotonic() + DEFAULT_SHUTDOWN_S
        # Waits for the worker to export what is queued until the deadline, then shuts the
        # exporter down (which ends a retrying export) and stops the worker's next one.
        self._batch.shutdown(timeout_millis=max(0.0, deadline - time.monotonic()) * 1000)
        # What is still queued will never be exported. The worker may still hold the export lock
        # for a moment (an export ending after the exporter was shut down): count once it lets
        # go, waiting for that until ``count_by`` at most, and after that in the background.
        count_by = self.count_by if self.count_by is not None else deadline + 0.5
        lock = self._batch._export_lock
        if lock.acquire(timeout=max(0.05, count_by - time.monotonic())):
            self._drop_unsent(lock)
        else:
            with contextlib.suppress(RuntimeError):  # no new threads once the interpreter exits
                threading.Thread(target=lambda: lock.acquire() and self._drop_unsent(lock),
                                 name=f"avalo-otel-unsent-{self._signal}", daemon=True).start()

    def _drop_unsent(self, lock: Any) -> None:
        """Count and forget what the queue still holds; ``lock`` (the export lock) is held."""
        try:
            left = len(self._batch._queue)
            self._batch._queue.clear()
        finally:
            lock.release()
        if left:
            _log.warning("avalo-otel: %d %s not exported by the shutdown deadline (%s exporter)",
                         left, self._signal, self._name)
            count_dropped(self._name, self._signal, SHUTDOWN, left)


class BoundedBatchSpanProcessor(BatchSpanProcessor):
    """``BatchSpanProcessor`` whose drops are counted and whose flush and shutdown keep a deadline."""

    def __init__(self, exporter: SpanExporter, name: str, **kwargs: Any) -> None:
        super().__init__(guard_exporter(exporter, name, "traces"), **kwargs)
        self.bounds = _Bounds(self._batch_processor, name, "traces")

    def force_flush(self, timeout_millis: Optional[int] = None) -> bool:
        return self.bounds.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.bounds.shutdown()


class BoundedBatchLogRecordProcessor(BatchLogRecordProcessor):
    """``BatchLogRecordProcessor`` whose drops are counted and whose flush and shutdown keep a deadline."""

    def __init__(self, exporter: LogRecordExporter, name: str, **kwargs: Any) -> None:
        super().__init__(guard_exporter(exporter, name, "logs"), **kwargs)
        self.bounds = _Bounds(self._batch_processor, name, "logs")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.bounds.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.bounds.shutdown()


__all__ = [
    "DROPPED_METRIC", "EXPORT_FAILED", "INVALID", "QUEUE_FULL", "SHUTDOWN",
    "BoundedBatchLogRecordProcessor", "BoundedBatchSpanProcessor", "count_dropped", "guard_exporter",
    "prepare_counting", "retry_promptly", "stop_retrying",
]
