"""Process management shared by the test helpers that run a real server on loopback.

``prometheus_server``, ``alertmanager_server`` and ``firestore_emulator`` each start one server
binary on a free ``127.0.0.1`` port, wait until an HTTP readiness URL answers, and stop it again.
The rules they share live here, once:

* a port is asked of the OS and can be taken by someone else before the server binds it, so
  starting retries on a fresh port when the log says the address is in use;
* a server is stopped only through the ``Popen`` its helper saved (its PID): SIGTERM, wait, then
  SIGKILL. Never by name (``pkill``/``killall``): other suites and people run the same binaries;
* a server that does not come up fails the test with the tail of its log, never a skip.

``LoopbackServer`` is the base for a helper that owns one process, its log file and (unless
given one) its work directory; the functions serve a helper with its own life cycle.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_http_ready(
    url: str,
    process: subprocess.Popen[bytes],
    timeout: float,
    *,
    body_ok: Optional[Callable[[bytes], bool]] = None,
    request_timeout: float = 2.0,
) -> Optional[str]:
    """Poll ``url`` until it answers HTTP 200 (and ``body_ok(body)``, if given): ``None`` once it
    does, else why not (the process exited, or the last answer or error before ``timeout`` s).

    Checking ``process`` on every round stops the wait as soon as the server dies, instead of
    polling a port nobody will ever listen on until the timeout.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"process exited with code {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=request_timeout) as resp:
                if resp.status == 200 and (body_ok is None or body_ok(resp.read())):
                    return None
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:  # e.g. 503 while starting
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    return f"not ready after {timeout:.0f} s ({last})"


def stop_process(process: Optional[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """Stop ``process`` by its PID: SIGTERM, wait up to ``timeout`` s, then SIGKILL and wait.

    Only the process the helper started is signalled (never a search by name), and it is always
    reaped, so no zombie or stray server outlives the test. ``None`` or an exited one is a no-op.
    """
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of the log at ``path`` (``"(no log)"`` if it cannot be read), for
    failure messages: why a server did not start is in its own log."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LoopbackServer:
    """One server process on a free loopback port, its log file and its work directory.

    A subclass builds the command line and calls ``_start_on_free_port``; ``stop`` (by PID),
    ``cleanup`` (stop, then remove the work directory if this object created it) and ``log_tail``
    come from here. ``name`` is what failure messages call the server.
    """

    name = "server"

    def __init__(self, workdir: Optional[Any], *, prefix: str, log_name: str) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = self.workdir / log_name
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._log_file: Any = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} is not started")
        return f"http://127.0.0.1:{self.port}"

    def _start_on_free_port(
        self, command: Callable[[int], list[str]], ready_path: str, ready_timeout: float, attempts: int = 3
    ) -> None:
        """Run ``command(port)`` on a free port until ``ready_path`` answers 200; else fail the test.

        Retried on a fresh port only when the log says the address was in use: the free port can
        be taken between asking and binding. Any other failure will not go away by retrying.
        """
        last_problem = ""
        for _attempt in range(attempts):
            self.port = free_port()
            argv = command(self.port)
            self._log_file = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
            )
            problem = wait_http_ready(f"{self.url}{ready_path}", self.process, ready_timeout)
            if problem is None:
                return
            last_problem = problem
            self.stop()
            if "address already in use" not in self.log_tail().lower():
                break
        pytest.fail(f"{self.name} did not become ready: {last_problem}\n--- log ---\n{self.log_tail()}", pytrace=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process by its PID: SIGTERM, wait, then SIGKILL; close its log file."""
        process, self.process = self.process, None
        stop_process(process, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self) -> None:
        """Stop, then remove the work directory if this object created it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)
