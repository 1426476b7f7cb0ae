"""The demo's console: one status line redrawn in place on a terminal (``\\r``), a line every few
seconds otherwise, and the few lines worth keeping (alerts firing and resolving, warnings)
printed above it."""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from typing import Optional, TextIO


class Progress:
    def __init__(self, stream: Optional[TextIO] = None, *, tty: Optional[bool] = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.every_s = every_s
        self._status = ""
        self._drawn = False
        self._last = 0.0
        self._lock = threading.RLock()

    def _width(self) -> int:
        return max(20, shutil.get_terminal_size((100, 24)).columns - 1)

    def status(self, text: str, *, force: bool = False) -> None:
        """The current state: redrawn in place on a terminal; elsewhere printed every ``every_s``."""
        with self._lock:
            self._status = text
            if self.tty:
                self.stream.write("\r" + text[: self._width()] + "\x1b[K")
                self._drawn = True
            elif force or time.monotonic() - self._last >= self.every_s:
                self._last = time.monotonic()
                self.stream.write(text + "\n")
            self.stream.flush()

    def line(self, text: str) -> None:
        """A line to keep, above the status line."""
        with self._lock:
            if self.tty and self._drawn:
                self.stream.write("\r\x1b[K" + text + "\n" + self._status[: self._width()])
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def done(self) -> None:
        """Leave the status line where it is and go on below it."""
        with self._lock:
            if self.tty and self._drawn:
                self.stream.write("\n")
                self.stream.flush()
            self._drawn = False


class ProgressLogHandler(logging.Handler):
    """Log records as lines above the status line (so a warning never tears it apart)."""

    def __init__(self, progress: Progress, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.progress.line(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class LoggingToProgress:
    """While active: the root logger's console handlers are replaced by one writing through
    ``progress``; the demo's own alert log (``avalo_otel.demo.alerts``) shows each alert."""

    ALERTS = "avalo_otel.demo.alerts"

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._root_handlers: list[logging.Handler] = []
        self._handler = ProgressLogHandler(progress, logging.WARNING)
        self._handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self._alerts_handler = ProgressLogHandler(progress, logging.INFO)
        self._alerts_handler.setFormatter(logging.Formatter("  %(message)s"))

    def __enter__(self) -> "LoggingToProgress":
        root = logging.getLogger()
        self._root_handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
                               and getattr(h, "stream", None) in (sys.stderr, sys.stdout)]
        for h in self._root_handlers:
            root.removeHandler(h)
        root.addHandler(self._handler)
        if root.level > logging.WARNING or root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)
        alerts = logging.getLogger(self.ALERTS)
        alerts.addHandler(self._alerts_handler)
        alerts.setLevel(logging.INFO)
        alerts.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self._handler)
        for h in self._root_handlers:
            root.addHandler(h)
        logging.getLogger(self.ALERTS).removeHandler(self._alerts_handler)
