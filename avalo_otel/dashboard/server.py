"""``DashboardServer``: the dashboard on uvicorn in a background thread (the demo and tests use it)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Optional

_log = logging.getLogger("avalo_otel.dashboard")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


class DashboardServer:
    """A running dashboard: ``url`` (``http://host:port/``), ``admin_token`` and ``stop()``."""

    def __init__(self, app: Any, *, host: str, port: int, admin_token: str) -> None:
        import uvicorn

        self.admin_token = admin_token
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        self._socket.set_inheritable(False)
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"http://{shown}:{self.port}/"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                server_header=False, date_header=False, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._stopped = False
        self._lock = threading.Lock()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="avalo-dashboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the dashboard did not start on {self.url}: {self._error or 'timed out'}")
            time.sleep(0.02)

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # noqa: BLE001 - reported by the constructor or stop()
            self._error = exc
            _log.error("dashboard server stopped: %s", exc)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT_S)
        try:
            self._socket.close()
        except OSError:
            pass

    def __enter__(self) -> "DashboardServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:  # never the token
        return f"DashboardServer(url={self.url!r}, running={self.running})"
