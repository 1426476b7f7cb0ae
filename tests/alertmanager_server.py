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
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from prometheus_server import free_port

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


class AlertmanagerServer:
    """One Alertmanager process routing every alert to ``webhook_url``."""

    def __init__(self, webhook_url: str, *, workdir: Optional[Path] = None, group_wait: str = "1s") -> None:
        self.webhook_url, self.group_wait = webhook_url, group_wait
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="alertmanager-"))
        self.config_path = self.workdir / "alertmanager.yml"
        self.log_path = self.workdir / "alertmanager.log"
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._log_file: Any = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("Alertmanager is not started")
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        config = {
            "route": {"receiver": "test-webhook", "group_by": ["alertname"], "group_wait": self.group_wait,
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "test-webhook",
                           "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}]}],
        }
        self.config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML

    def start(self, ready_timeout: float = 20.0) -> "AlertmanagerServer":
        binary = alertmanager_binary()
        self._write_config()
        problem = ""
        for _attempt in range(3):  # the free port can be taken between asking and binding
            self.port = free_port()
            storage = self.workdir / f"data-{self.port}"
            storage.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                [binary, f"--config.file={self.config_path}", f"--storage.path={storage}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=info"],
                stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT)
            problem = self._wait_ready(ready_timeout) or ""
            if not problem:
                return self
            self.stop()
            if "address already in use" not in self.log_tail().lower():
                break
        pytest.fail(f"Alertmanager did not become ready: {problem}\n--- log ---\n{self.log_tail()}", pytrace=False)

    def _wait_ready(self, timeout: float) -> Optional[str]:
        deadline, last = time.monotonic() + timeout, "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return f"process exited with code {self.process.returncode}"
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return None
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        return f"not ready after {timeout:.0f} s ({last})"

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now (``GET /api/v2/alerts``)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as resp:
            return list(json.load(resp))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process by its PID: SIGTERM, wait, then SIGKILL."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


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
