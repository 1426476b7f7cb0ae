"""Entry points for ``opentelemetry-instrument``: our distro and configurator.

``opentelemetry-instrument python app.py`` loads :class:`AvaloDistro` (``opentelemetry_distro``)
and :class:`AvaloConfigurator` (``opentelemetry_configurator``); the configurator runs
``avalo_otel.configure()`` from the environment, so the app needs no code change.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

_log = logging.getLogger("avalo_otel")


class AvaloDistro(BaseDistro):
    """Defaults to set before instrumentors load (every other default lives in ``settings``)."""

    def _configure(self, **kwargs: Any) -> None:
        # opentelemetry-instrumentation-logging (our dependency, for its handler) would otherwise
        # hang its own handler on the root logger: stdlib logging is bridged by ``capture_logging``,
        # behind the privacy stage, or not at all.
        os.environ.setdefault("OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION", "false")


class AvaloConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from ._configure import configure

        # A bad setting must not stop the app from starting: say what is wrong and run untraced.
        try:
            configure()
        except ValueError as exc:
            _log.error("avalo-otel: not configured: %s", exc)
