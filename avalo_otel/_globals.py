"""What ``configure()`` changes outside its own objects: OTel's global providers and the stdlib
root logger."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import _logs, metrics, trace

from . import _runtime

if TYPE_CHECKING:
    from ._configure import Telemetry


def capture_stdlib_logging(handle: "Telemetry") -> logging.Handler:
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


def set_globals(handle: "Telemetry") -> None:
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
