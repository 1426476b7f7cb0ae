"""Entry points for ``opentelemetry-instrument``: our distro and configurator.

``opentelemetry-instrument python app.py`` loads :class:`AvaloDistro` (``opentelemetry_distro``)
and :class:`AvaloConfigurator` (``opentelemetry_configurator``); the configurator runs
``avalo_otel.configure()`` from the environment, so the app needs no code change.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

_log = logging.getLogger("avalo_otel")


class AvaloDistro(BaseDistro):
    """Nothing to set before instrumentors load: every default lives in ``avalo_otel.settings``."""

    def _configure(self, **kwargs: Any) -> None:
        return None


class AvaloConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from ._configure import configure

        # A bad setting must not stop the app from starting: say what is wrong and run untraced.
        try:
            configure()
        except ValueError as exc:
            _log.error("avalo-otel: not configured: %s", exc)
