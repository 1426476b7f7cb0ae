"""A real Alertmanager on loopback routing to a webhook receiver in the test process.

``WebhookReceiver`` is a small ``http.server`` on a free loopback port that keeps every JSON body
posted to it. ``AlertmanagerServer`` writes a config routing every alert to that receiver
(``group_wait``/``group_interval`` 1 s, resolved notifications on), starts Debian's
``/usr/bin/prometheus-alertmanager`` with its own storage dir, no cluster listener
(``--cluster.listen-address=``) and a free loopback port, waits for ``/-/ready``, and is stopped
by its PID. A missing binary fails the test loudly: it is never skipped.

Use from a test module: ``from alertmanager_server import alertmanager, webhook_receiver``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from server_process import LoopbackServer

DEFAULT_BINARY = "/usr/bin/prometheus-alertmanager"
Payload = dict[str, Any]


def alertmanager_binary() -> str:
    explicit = os.environ.get("ALERTMANAGER_BIN")
    candidates = [explicit] if explicit else [DEFAULT_BINARY, shutil.which("prometheus-alertmanager"),
                                              shutil.which("alertmanager")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("Alertmanager binary not found (/usr/bin/prometheus-alertmanager): install it with "
                "`apt-get install -y --no-install-recommends prometheus-alertmanager`. "
                "This suite needs a real Alertmanager and is never skipped.", pytrace=False)


class WebhookReceiver:
    """Collects the JSON bodies posted to it (any path), in arrival order."""

    def __init__(self, *, status: int = 200) -> None:
        self.payloads: list[Payload] = []
        self.paths: list[str] = []
        self.status = status
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    receiver.payloads.append(json.loads(body))
                    receiver.paths.append(self.path)
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def wait_for(self, predicate: Callable[[Payload], bool], timeout: float = 30.0) -> Payload:
        """The first payload matching ``predicate``; fails the test after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for payload in self.payloads:
                    if predicate(payload):
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no matching webhook payload after {timeout:.0f} s; got {self.payloads!r}",
                                pytrace=False)
                self._cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AlertmanagerServer(LoopbackServer):
    """One Alertmanager process routing every alert to ``webhook_url``.

    Port, readiness, stop by PID and cleanup come from ``server_process.LoopbackServer``.
    """

    name = "Alertmanager"

    def __init__(self, webhook_url: str, *, workdir: Optional[Path] = None, group_wait: str = "1s") -> None:
        self.webhook_url, self.group_wait = webhook_url, group_wait
        super().__init__(workdir, prefix="alertmanager-", log_name="alertmanager.log")
        self.config_path = self.workdir / "alertmanager.yml"

    def _write_config(self) -> None:
        config = {
            "route": {"receiver": "test-webhook", "group_by": ["alertname"], "group_wait": self.group_wait,
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "test-webhook",
                           "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}]}],
        }
        self.config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML

    def start(self, ready_timeout: float = 20.0) -> "AlertmanagerServer":
        """Start on a free port and wait for ``/-/ready``; a binary that is missing or does not
        come up fails the test (with the log's tail)."""
        binary = alertmanager_binary()
        self._write_config()

        def command(port: int) -> list[str]:
            storage = self.workdir / f"data-{port}"  # one storage dir per attempt
            storage.mkdir(parents=True, exist_ok=True)
            # No cluster listener: by default it binds the fixed port 9094 on every interface,
            # which two runs at once would fight over.
            return [binary, f"--config.file={self.config_path}", f"--storage.path={storage}",
                    f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=info"]

        self._start_on_free_port(command, "/-/ready", ready_timeout)
        return self

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now (``GET /api/v2/alerts``)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as resp:
            return list(json.load(resp))



@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def alertmanager(webhook_receiver: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    """A started Alertmanager routing to ``webhook_receiver``; stopped by PID after the module."""
    server = AlertmanagerServer(webhook_receiver.url, workdir=tmp_path_factory.mktemp("alertmanager"))
    server.start()
    try:
        yield server
    finally:
        server.cleanup()
