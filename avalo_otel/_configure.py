"""``configure()``: build the OTel SDK providers once, from settings, and hand them to the API."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Callable, Mapping, Optional, Sequence

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from . import _exporters, _runtime
from .privacy import Pseudonymizer, allowed_metric_labels, build_redactor
from .privacy.processors import RedactingLogProcessor, RedactingMetricExporter, SpanExportPipeline, metric_views
from .sampling import AvaloSampler
from .settings import ConfigurationError, Settings
from .store.base import StoreError
from .version import __version__

_log = logging.getLogger("avalo_otel")
_lock = threading.RLock()
_current: Optional["Telemetry"] = None


class Telemetry:
    """What ``configure()`` returns: the running pipeline. ``shutdown()`` flushes and stops it."""

    def __init__(self, settings: Settings, metric_readers: Sequence[MetricReader] = ()) -> None:
        self.settings = settings
        self._closed = False
        self.prometheus: Optional[_exporters.PrometheusEndpoint] = None
        self.store: Any = None  # the embedded SQLite store, when a signal is exported to it
        self._logging_handler: Optional[logging.Handler] = None
        try:
            self._build(settings, metric_readers)
        except Exception as exc:
            self._abort()
            if isinstance(exc, StoreError):
                # A store that cannot be opened is a configuration problem: say so, and which.
                raise ConfigurationError(f"cannot open the telemetry store: {exc}") from None
            raise

    def _abort(self) -> None:
        """Undo a half-built pipeline: no port, thread or file is left behind by a failed configure."""
        self._closed = True
        for name in ("tracer_provider", "logger_provider", "meter_provider"):
            provider = getattr(self, name, None)
            if provider is not None:
                provider.shutdown()
        if self.prometheus is not None:
            self.prometheus.close()
        if self.store is not None:
            self.store.close()

    def _build(self, settings: Settings, metric_readers: Sequence[MetricReader]) -> None:
        resource = Resource.create(_resource_attributes(settings))
        self.pseudonymize = Pseudonymizer(settings.pseudonym_key)
        # The redactor counts by rule itself (a dict per thread) and the counter is observed at
        # collection: a counter.add() per redaction would cost more than the redaction itself.
        self.redactor = build_redactor(settings, self.pseudonymize)

        # Metrics first: the redaction counter lives there. Views limit label keys and series.
        readers: list[MetricReader] = []
        if "prometheus" in settings.metrics_exporters:
            self.prometheus = _exporters.start_prometheus(settings, self.redactor)
            if self.prometheus is not None:
                readers.append(self.prometheus.reader)
        push_builders = {"otlp": _exporters.otlp_metric_exporter, "console": _exporters.console_metric_exporter,
                         "sqlite": self._sqlite_exporter("metrics")}
        self._push_readers = [
            PeriodicExportingMetricReader(
                RedactingMetricExporter(
                    self.redactor, push_builders.get(name) and push_builders[name](settings)
                    or _exporters.installed_exporter("metrics", name)),
                export_interval_millis=settings.metric_export_interval_ms,
            )
            for name in settings.metrics_exporters if name != "prometheus"
        ]
        self.meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[*readers, *self._push_readers, *metric_readers],
            views=metric_views(allowed_metric_labels(settings), settings.metric_cardinality_limit),
        )
        self.meter_provider.get_meter("avalo_otel", __version__).create_observable_counter(
            "avalo_otel_redactions_total", callbacks=[self._observe_redactions],
            description="Values redacted before export, by rule",
        )

        self.tracer_provider = TracerProvider(
            resource=resource,
            sampler=AvaloSampler(settings.sampling_rate),
            span_limits=SpanLimits(
                max_span_attributes=settings.attribute_count_limit,
                max_span_attribute_length=settings.attribute_value_length_limit,
            ),
        )
        # One privacy stage for all span exporters: keep errors, redact once, fan out.
        self._span_pipeline = SpanExportPipeline(self.redactor)
        self.tracer_provider.add_span_processor(self._span_pipeline)
        span_builders = {"otlp": _exporters.otlp_span_exporter, "console": _exporters.console_span_exporter,
                         "sqlite": self._sqlite_exporter("traces")}
        for name in settings.traces_exporters:
            build = span_builders.get(name)
            self.add_span_exporter(build(settings) if build else _exporters.installed_exporter("traces", name))

        self.logger_provider = LoggerProvider(
            resource=resource,
            log_record_limits=LogRecordLimits(
                max_attributes=settings.attribute_count_limit,
                max_attribute_length=settings.attribute_value_length_limit,
            ),
        )
        self.logger_provider.add_log_record_processor(RedactingLogProcessor(self.redactor))
        log_builders = {"otlp": _exporters.otlp_log_exporter, "console": _exporters.console_log_exporter,
                        "sqlite": self._sqlite_exporter("logs")}
        for name in settings.logs_exporters:
            build = log_builders.get(name)
            self.add_log_exporter(build(settings) if build else _exporters.installed_exporter("logs", name))
        if settings.capture_logging:
            self._logging_handler = _capture_stdlib_logging(self)

        self.runtime = _runtime.Runtime(settings, self.tracer_provider, self.meter_provider, self.logger_provider,
                                        redactor=self.redactor, pseudonymize=self.pseudonymize)

    def _sqlite_exporter(self, signal: str) -> Callable[[Settings], Any]:
        """A builder for the embedded store's exporter; the store and its writer are shared."""
        def build(settings: Settings) -> Any:
            from .store import SQLiteStore
            from .store.exporters import StoreLogExporter, StoreMetricExporter, StoreSpanExporter
            from .store.writer import StoreWriter

            if self.store is None:
                self.store = SQLiteStore(settings.store_path, prefix=settings.store_prefix)
                self._store_writer = StoreWriter(self.store, name="sqlite", max_buffer=settings.store_buffer)
            kind = {"traces": StoreSpanExporter, "logs": StoreLogExporter, "metrics": StoreMetricExporter}[signal]
            return kind(self.store, writer=self._store_writer)
        return build

    def _observe_redactions(self, options: Any) -> list[Observation]:
        return [Observation(count, {"rule": rule}) for rule, count in self.redactor.redaction_counts().items()]

    def add_span_exporter(self, exporter: SpanExporter, *, batch: bool = True) -> None:
        """Send spans to one more exporter, behind the privacy stage and in its own queue
        (a slow backend holds up no other)."""
        delay = self.settings.traces_schedule_delay_ms
        processor = _processor(exporter, BatchSpanProcessor, delay) if batch else SimpleSpanProcessor(exporter)
        self._span_pipeline.add(processor)

    def add_log_exporter(self, exporter: LogRecordExporter, *, batch: bool = True) -> None:
        """Send telemetry events (log records) to one more exporter, behind the privacy stage."""
        delay = self.settings.logs_schedule_delay_ms
        if batch:
            self.logger_provider.add_log_record_processor(_processor(exporter, BatchLogRecordProcessor, delay))
        else:
            self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))

    @property
    def prometheus_url(self) -> Optional[str]:
        """Where /metrics is served, or ``None`` if it is off or its port was taken."""
        return self.prometheus.url if self.prometheus else None

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything recorded so far; ``False`` if some exporter did not finish in time."""
        if self._closed:
            return False
        results = [
            self.tracer_provider.force_flush(timeout_millis),
            self.logger_provider.force_flush(timeout_millis),
        ]
        # Not meter_provider.force_flush(): collecting the Prometheus reader outside a scrape makes
        # the next scrape serve every series twice. Prometheus pulls; only push readers flush.
        results += [reader.force_flush(timeout_millis) for reader in self._push_readers]
        # The SDK's batch processors do not flush their exporters: store writers are flushed here.
        from .store.writer import writers

        results += [writer.flush(timeout_millis / 1000) for writer in writers()]
        return all(r is not False for r in results)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Flush and stop every exporter within ``timeout_s`` overall; the API becomes a no-op
        until configured again."""
        global _current
        with _lock:
            if self._closed:
                return
            self._closed = True
            if _current is self:
                _current = None
                _runtime.install(None)
        if self._logging_handler is not None:
            logging.getLogger().removeHandler(self._logging_handler)
        from .store import writer as store_writer

        store_writer.shutdown_deadline(time.monotonic() + timeout_s)
        try:
            for provider in (self.tracer_provider, self.logger_provider, self.meter_provider):
                try:
                    provider.shutdown()
                except Exception:  # noqa: BLE001 - one failing exporter must not stop the others
                    _log.exception("avalo-otel: error while shutting down %s", type(provider).__name__)
            if self.store is not None:
                self._store_writer.shutdown(timeout_s=timeout_s)
        finally:
            store_writer.shutdown_deadline(None)
        if self.prometheus is not None:
            self.prometheus.close()
        if self.store is not None:
            self.store.close()

    @property
    def is_shut_down(self) -> bool:
        return self._closed

    def __enter__(self) -> "Telemetry":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()


def _processor(exporter: Any, batch_processor: Callable[..., Any], schedule_delay_ms: int) -> Any:
    """The processor in front of ``exporter``: its own when it has one (the store exporters,
    whose writer already batches in the background), else the OTel batch processor."""
    own = getattr(exporter, "processor", None)
    if callable(own):
        return own(schedule_delay_ms=schedule_delay_ms)
    return batch_processor(exporter, schedule_delay_millis=schedule_delay_ms)


def _capture_stdlib_logging(handle: "Telemetry") -> logging.Handler:
    """Bridge the stdlib ``logging`` root logger into the log pipeline (behind the privacy stage).

    The handler is the one from ``opentelemetry-instrumentation-logging`` (the SDK's own
    ``LoggingHandler`` is deprecated in its favour); it is given our provider, so every record goes
    through the redacting log processor. Code attributes (file, function, line) are kept, as the
    SDK's handler always added them."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    handler = LoggingHandler(level=logging.INFO, logger_provider=handle.logger_provider, log_code_attributes=True)
    # Records about exporting must not be exported: a failing backend would feed itself.
    handler.addFilter(lambda record: not record.name.startswith(("opentelemetry", "avalo_otel")))
    logging.getLogger().addHandler(handler)
    return handler


def _resource_attributes(settings: Settings) -> Mapping[str, Any]:
    attrs: dict[str, Any] = {
        "service.name": settings.service_name,
        "telemetry.distro.name": "avalo-otel",
        "telemetry.distro.version": __version__,
    }
    if settings.environment:
        attrs["deployment.environment.name"] = settings.environment
    return attrs


def configure(
    *,
    environ: Optional[Mapping[str, str]] = None,
    metric_readers: Sequence[MetricReader] = (),
    **settings: Any,
) -> Telemetry:
    """Set up traces, metrics and logs from keyword arguments over ``OTEL_*``/``AVALO_OTEL_*`` variables.

    Idempotent: called again with the same settings it returns the running handle; with other
    settings it warns and keeps the running ones (shut the handle down first to change them).
    ``metric_readers`` adds readers of your own (e.g. an ``InMemoryMetricReader``) to the
    built ones. Raises :class:`ConfigurationError` on a bad value.
    """
    global _current
    resolved = Settings.load(environ, **settings)
    with _lock:
        if _current is not None:
            if _current.settings != resolved:
                message = (
                    "avalo-otel is already configured with other settings; keeping the running "
                    "configuration (call shutdown() on the handle before configuring again)"
                )
                if resolved.strict:
                    raise ConfigurationError(message)
                _log.warning(message)
            return _current
        if resolved.disabled:
            _log.info("avalo-otel: OTEL_SDK_DISABLED is set; telemetry is off")
            handle = _DisabledTelemetry(resolved)
        else:
            handle = Telemetry(resolved, metric_readers)
            _set_globals(handle)
            if resolved.flush_on_sigterm:
                _flush_on_sigterm()
            _runtime.reset_caches()
            _runtime.install(handle.runtime)
        _current = handle
        return handle


def _flush_on_sigterm() -> None:
    """Python's default SIGTERM kills the process without running ``atexit``, so what was
    recorded just before would be lost. If nobody else handles SIGTERM, shut telemetry down
    first, then die by the signal as before (same exit status for the supervisor)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the app (or its server: gunicorn, uvicorn) owns SIGTERM and exits normally

    def on_sigterm(signum: int, frame: Any) -> None:
        handle = _current
        if handle is not None:
            handle.shutdown()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def force_flush(timeout_millis: int = 10_000) -> bool:
    handle = _current
    return handle.force_flush(timeout_millis) if handle is not None else True


def _set_globals(handle: Telemetry) -> None:
    """Make the providers global so third-party instrumentations use them too.

    OTel lets a global be set once per process; after a shutdown a new configure() replaces it.
    Tracers handed out earlier keep the old provider, which is why configure belongs at start-up.
    """
    globals_ = (
        (trace, "_TRACER_PROVIDER_SET_ONCE", trace.get_tracer_provider),
        (metrics._internal, "_METER_PROVIDER_SET_ONCE", metrics.get_meter_provider),
        (_logs._internal, "_LOGGER_PROVIDER_SET_ONCE", _logs.get_logger_provider),
    )
    for module, flag, current in globals_:
        once = getattr(module, flag, None)
        # Only a provider we installed may be replaced: never take over one the app set itself.
        if once is not None and getattr(once, "_done", False) and _runtime.is_owned(current()):
            once._done = False
    trace.set_tracer_provider(handle.tracer_provider)
    metrics.set_meter_provider(handle.meter_provider)
    _logs.set_logger_provider(handle.logger_provider)
    for provider in (handle.tracer_provider, handle.meter_provider, handle.logger_provider):
        _runtime.owned[id(provider)] = provider


class _DisabledTelemetry(Telemetry):
    """The handle when ``OTEL_SDK_DISABLED=true``: nothing is built, every call is a no-op."""

    def __init__(self, settings: Settings) -> None:  # noqa: D107 - deliberately builds nothing
        self.settings = settings
        self._closed = False
        self.prometheus = None

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        return True

    def shutdown(self, timeout_s: float = 10.0) -> None:
        global _current
        with _lock:
            self._closed = True
            if _current is self:
                _current = None
