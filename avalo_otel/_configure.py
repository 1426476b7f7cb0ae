"""``configure()``: build the OTel SDK providers once, from settings, and hand them to the API."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from typing import Any, Callable, Mapping, Optional, Sequence

from opentelemetry import _logs, metrics, trace
from typing_extensions import Unpack
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from . import _exporters, _runtime
from ._deadlines import exporter_name, flush_reader, millis_to, within
from ._globals import capture_stdlib_logging, set_globals
from .privacy import Pseudonymizer, allowed_metric_labels, build_redactor
from .privacy.processors import RedactingLogProcessor, RedactingMetricExporter, SpanExportPipeline, metric_views
from .privacy.selfcheck import SelfCheck, check_logs, check_metrics, check_traces
from .export_faults import (
    BoundedBatchLogRecordProcessor, BoundedBatchSpanProcessor, guard_exporter, prepare_counting, stop_retrying,
)
from .sampling import AvaloSampler, ReplayIdGenerator
from .options import Options
from .settings import ConfigurationError, Settings
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
        #: Exporters that could not start, by name, with the reason (see ``_exporter``).
        self.disabled_exporters: dict[str, str] = {}
        try:
            self._build(settings, metric_readers)
        except Exception:
            self._abort()
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
        # Each signal's privacy stage proves it redacts (a canary, see privacy.selfcheck) before
        # any exporter is attached to it; a signal that fails is not exported at all.
        self.selfcheck = SelfCheck(self.redactor)
        views = metric_views(allowed_metric_labels(settings), settings.metric_cardinality_limit)
        metrics_ok = self.selfcheck.run("metrics", check_metrics, self.redactor, views,
                                        "prometheus" in settings.metrics_exporters)

        # Metrics first: the redaction counter lives there. Views limit label keys and series.
        readers: list[MetricReader] = []
        if "prometheus" in settings.metrics_exporters and metrics_ok:
            self.prometheus = _exporters.start_prometheus(settings, self.redactor, resource)
            if self.prometheus is not None:
                readers.append(self.prometheus.reader)
        push_builders = {"otlp": _exporters.otlp_metric_exporter, "console": _exporters.console_metric_exporter,
                         "sqlite": self._sqlite_exporter("metrics")}
        self._push_readers = []
        for name in settings.metrics_exporters if metrics_ok else ():
            exporter = self._exporter("metrics", name, push_builders) if name != "prometheus" else None
            if exporter is not None:
                self._push_readers.append(PeriodicExportingMetricReader(
                    RedactingMetricExporter(self.redactor, guard_exporter(exporter, exporter_name(exporter), "metrics")),
                    export_interval_millis=settings.metric_export_interval_ms,
                ))
        self.meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[*readers, *self._push_readers, *metric_readers],
            views=views,
        )
        self.meter_provider.get_meter("avalo_otel", __version__).create_observable_counter(
            "avalo_otel_redactions_total", callbacks=[self._observe_redactions],
            description="Values redacted before export, by rule",
        )

        span_limits = SpanLimits(
            max_span_attributes=settings.attribute_count_limit,
            max_span_attribute_length=settings.attribute_value_length_limit,
        )
        self.tracer_provider = TracerProvider(
            resource=resource,
            sampler=AvaloSampler(settings.sampling_rate),
            # Lets a sampled-out span that must be kept be re-emitted with its own ids (see sampling).
            id_generator=ReplayIdGenerator(),
            span_limits=span_limits,
        )
        # One privacy stage for all span exporters: keep errors, redact once, fan out.
        self._span_pipeline = SpanExportPipeline(self.redactor)
        if self.selfcheck.run("traces", check_traces, self.redactor, resource, span_limits):
            self.tracer_provider.add_span_processor(self._span_pipeline)
        span_builders = {"otlp": _exporters.otlp_span_exporter, "console": _exporters.console_span_exporter,
                         "sqlite": self._sqlite_exporter("traces")}
        for name in settings.traces_exporters if self.selfcheck.passed("traces") else ():
            span_exporter = self._exporter("traces", name, span_builders)
            if span_exporter is not None:
                self.add_span_exporter(span_exporter)

        log_limits = LogRecordLimits(
            max_attributes=settings.attribute_count_limit,
            max_attribute_length=settings.attribute_value_length_limit,
        )
        self.logger_provider = LoggerProvider(resource=resource, log_record_limits=log_limits)
        log_redaction = RedactingLogProcessor(self.redactor)
        if self.selfcheck.run("logs", check_logs, log_redaction, resource, log_limits):
            self.logger_provider.add_log_record_processor(log_redaction)
        log_builders = {"otlp": _exporters.otlp_log_exporter, "console": _exporters.console_log_exporter,
                        "sqlite": self._sqlite_exporter("logs")}
        for name in settings.logs_exporters if self.selfcheck.passed("logs") else ():
            log_exporter = self._exporter("logs", name, log_builders)
            if log_exporter is not None:
                self.add_log_exporter(log_exporter)
        if settings.capture_logging and self.selfcheck.passed("logs"):
            self._logging_handler = capture_stdlib_logging(self)

        self.runtime = _runtime.Runtime(settings, self.tracer_provider, self.meter_provider, self.logger_provider,
                                        redactor=self.redactor, pseudonymize=self.pseudonymize)

    def _exporter(self, signal: str, name: str, builders: Mapping[str, Callable[[Settings], Any]]) -> Any:
        """The exporter ``name`` for ``signal``, or None when its backend cannot be used (a store
        path on a read-only filesystem, a directory…): that exporter alone is off, with one
        clear error, and every other exporter runs. A bad setting (a ValueError) still raises,
        and so does any failure in strict mode."""
        build = builders.get(name)
        try:
            if name in self.disabled_exporters:
                return None
            return build(self.settings) if build else _exporters.installed_exporter(signal, name)
        except ConfigurationError:
            raise
        except ValueError as exc:  # a bad setting of that exporter (e.g. StoreSettingError)
            raise ConfigurationError(f"the {name} exporter: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any backend failure disables that exporter only
            if self.settings.strict:
                raise ConfigurationError(f"cannot start the {name} exporter: {exc}") from None
            self.disabled_exporters[name] = str(exc)
            _log.error("avalo-otel: the %s exporter is off: %s; the other exporters keep running", name, exc)
            return None

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

    #: The batch processors' deadlines and drop accounting (see ``export_faults``), for shutdown.
    _bounded: tuple[Any, ...] = ()

    def add_span_exporter(self, exporter: SpanExporter, *, batch: bool = True) -> None:
        """Send spans to one more exporter, behind the privacy stage and in its own queue
        (a slow backend holds up no other); what it loses is counted in
        ``avalo_otel_export_dropped_total``."""
        if self._dropped("traces"):
            return
        delay = self.settings.traces_schedule_delay_ms
        if batch:
            self._span_pipeline.add(self._processor(exporter, BoundedBatchSpanProcessor, delay, "traces"))
        else:
            self._span_pipeline.add(SimpleSpanProcessor(guard_exporter(exporter, exporter_name(exporter), "traces")))

    def add_log_exporter(self, exporter: LogRecordExporter, *, batch: bool = True) -> None:
        """Send telemetry events (log records) to one more exporter, behind the privacy stage."""
        if self._dropped("logs"):
            return
        delay = self.settings.logs_schedule_delay_ms
        if batch:
            processor = self._processor(exporter, BoundedBatchLogRecordProcessor, delay, "logs")
            self.logger_provider.add_log_record_processor(processor)
        else:
            guarded = guard_exporter(exporter, exporter_name(exporter), "logs")
            self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(guarded))

    def _processor(self, exporter: Any, batch_processor: Callable[..., Any], schedule_delay_ms: int,
                   signal: str) -> Any:
        """The processor in front of ``exporter``: its own when it has one (the store exporters,
        whose writer already batches in the background and counts its drops), else a batch
        processor that counts what is lost and keeps the shutdown deadline."""
        own = getattr(exporter, "processor", None)
        if callable(own):
            return own(schedule_delay_ms=schedule_delay_ms)
        name = exporter_name(exporter)
        # Every exporter's failed batches are counted, not only ours (OTLP is guarded when built).
        processor = batch_processor(guard_exporter(exporter, name, signal), name, schedule_delay_millis=schedule_delay_ms)
        self._bounded = (*self._bounded, processor.bounds)
        return processor

    def _dropped(self, signal: str) -> bool:
        """Whether ``signal`` failed its privacy self-check: then no exporter may be added to it."""
        why = self.selfcheck.failures.get(signal)
        if why is not None:
            _log.error("avalo-otel: not adding a %s exporter: the privacy self-check failed (%s)", signal, why)
        return why is not None

    @property
    def prometheus_url(self) -> Optional[str]:
        """Where /metrics is served, or ``None`` if it is off or its port was taken."""
        return self.prometheus.url if self.prometheus else None

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Export everything recorded so far, waiting at most ``timeout_s`` seconds overall;
        ``False`` if some exporter did not finish in time (it goes on in the background)."""
        if self._closed:
            return False
        deadline = time.monotonic() + timeout_s
        # Not meter_provider.force_flush(): collecting the Prometheus reader outside a scrape makes
        # the next scrape serve every series twice. Prometheus pulls; only push readers flush. They
        # run on their own threads too: an export still retrying from an earlier flush holds the
        # reader's lock, and waiting for it must not outlast the deadline.
        results = within(deadline, [
            lambda: self.tracer_provider.force_flush(millis_to(deadline)),
            lambda: self.logger_provider.force_flush(millis_to(deadline)),
            *[lambda reader=reader: flush_reader(reader, deadline) for reader in self._push_readers],
        ])
        if self.prometheus is not None:  # a pre-fork worker writes its metrics for the serving process
            results.append(self.prometheus.flush(millis_to(deadline)))
        # The SDK's batch processors do not flush their exporters: store writers are flushed here.
        from .store.writer import writers

        results += [writer.flush(millis_to(deadline) / 1000) for writer in writers()]
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

        deadline = time.monotonic() + timeout_s
        # Spans and events shut down side by side; the final metrics collection (which also
        # reports what they dropped) gets the last slice of the time.
        metrics_from = deadline - min(1.0, timeout_s / 4)
        batches_by = metrics_from - min(0.25, timeout_s / 16)  # then what they could not send is counted
        prepare_counting()
        for bounds in self._bounded:
            bounds.deadline, bounds.count_by = batches_by, metrics_from
        store_writer.shutdown_deadline(deadline)
        try:
            within(metrics_from, [self.tracer_provider.shutdown, self.logger_provider.shutdown])
            # The readers shut down one after the other: a backend that is down gets one try at
            # the final export, so the readers after it still get theirs.
            stop_retrying(self._push_readers)
            within(deadline, [lambda: self.meter_provider.shutdown(timeout_millis=max(1.0, millis_to(deadline)))])
            if self.store is not None:
                self._store_writer.shutdown(timeout_s=max(0.0, deadline - time.monotonic()))
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
    **settings: Unpack[Options],
) -> Telemetry:
    """Set up traces, metrics and logs from keyword arguments over ``OTEL_*``/``AVALO_OTEL_*`` variables.

    The keywords are the settings (:class:`~avalo_otel.options.Options`, typed; see the README's
    table): ``configure(service_name="chat-api", traces_exporters="otlp,sqlite", sampling_rate=0.1)``.

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
            # Registered after the SDK providers' own at-exit handlers, so it runs before them:
            # one shutdown within one deadline, not three of up to 30 s each.
            atexit.unregister(_shutdown_at_exit)
            atexit.register(_shutdown_at_exit)
            set_globals(handle)
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


def _shutdown_at_exit() -> None:
    handle = _current
    if handle is not None:
        handle.shutdown()


def force_flush(timeout_s: float = 10.0) -> bool:
    """Export what the configured pipeline recorded so far, within ``timeout_s`` seconds."""
    handle = _current
    return handle.force_flush(timeout_s) if handle is not None else True


class _DisabledTelemetry(Telemetry):
    """The handle when ``OTEL_SDK_DISABLED=true``: nothing is built, every call is a no-op and
    every attribute answers as an empty pipeline would (no store, no URL, no-op providers)."""

    def __init__(self, settings: Settings) -> None:  # noqa: D107 - deliberately builds nothing
        self.settings = settings
        self._closed = False
        self.prometheus = None
        self.store = None
        self._logging_handler = None
        self.disabled_exporters = {}
        self.selfcheck = None
        self.tracer_provider = trace.NoOpTracerProvider()
        self.meter_provider = metrics.NoOpMeterProvider()
        self.logger_provider = _logs.NoOpLoggerProvider()
        self.pseudonymize = Pseudonymizer(settings.pseudonym_key)
        self.redactor = build_redactor(settings, self.pseudonymize)
        self.runtime = None

    def add_span_exporter(self, exporter: SpanExporter, *, batch: bool = True) -> None:
        return None

    def add_log_exporter(self, exporter: LogRecordExporter, *, batch: bool = True) -> None:
        return None

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 10.0) -> None:
        global _current
        with _lock:
            self._closed = True
            if _current is self:
                _current = None
