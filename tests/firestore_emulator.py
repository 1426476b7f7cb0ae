"""Google's Firestore emulator (the official jar) on loopback, for tests against real Firestore code.

The session fixture ``firestore_emulator`` starts ``java … CloudFirestore`` on a free port, waits
for ``GET /`` to answer ``Ok`` and sets ``FIRESTORE_EMULATOR_HOST`` for the session (so clients
created lazily, even in forked children, talk to it). Isolate tests by giving each its own
``project_id()``. ``stop()``/``start()`` simulate an outage and recovery on the same port (the
emulator keeps data in memory: a restart empties it).

After an outage, gRPC's reconnect backoff (shared by every channel to the same address) can delay
a client's recovery by seconds beyond the emulator being ready again: poll, don't sleep.

A missing java or jar fails the test loudly; it is never skipped. Use it with
``pytest_plugins = ["firestore_emulator"]`` or ``-p firestore_emulator``.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from server_process import free_port, log_tail, stop_process, wait_http_ready

DEFAULT_JAR = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
ENV = "FIRESTORE_EMULATOR_HOST"


def emulator_command(port: int) -> list[str]:
    """The java command line; fails the test if java or the jar is missing."""
    jar = os.environ.get("FIRESTORE_EMULATOR_JAR", DEFAULT_JAR)
    java = os.environ.get("JAVA") or shutil.which("java")
    problems = []
    if not java or not os.access(java, os.X_OK):
        problems.append("java is not installed (need OpenJDK >= 11 on PATH, or $JAVA)")
    if not os.path.isfile(jar):
        problems.append(f"the Firestore emulator jar is missing at {jar} (install the "
                        "google-cloud-cli-firestore-emulator package, or set $FIRESTORE_EMULATOR_JAR)")
    if problems:
        pytest.fail("Firestore emulator unavailable: " + "; ".join(problems)
                    + ". The Firestore tests need the real emulator and are never skipped.", pytrace=False)
    return [str(java), "-Duser.language=en", "-cp", jar, MAIN_CLASS, "--host=127.0.0.1", f"--port={port}"]


class FirestoreEmulator:
    """One emulator process; the port is chosen on the first start and kept across restarts.

    Not a ``server_process.LoopbackServer``: keeping the port across restarts (an outage and a
    recovery at the same address) and the ``Ok`` readiness body differ, so it uses the functions.
    """

    def __init__(self, workdir: Optional[Path] = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="firestore-emulator-"))
        self.log_path = self.workdir / "emulator.log"
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen[bytes]] = None
        atexit.register(self.stop)  # also when the session ends without fixture teardown

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` (what ``FIRESTORE_EMULATOR_HOST`` holds)."""
        if self.port is None:
            raise RuntimeError("the Firestore emulator was never started")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, ready_timeout: float = 30.0) -> "FirestoreEmulator":
        """Start (or restart on the same port) and wait until it answers ``Ok``."""
        if self.running:
            return self
        first = self.port is None
        for _attempt in range(3 if first else 1):  # a fresh free port can be taken before java binds it
            if first:
                self.port = free_port()
            assert self.port is not None
            command = emulator_command(self.port)
            with open(self.log_path, "ab") as log:
                log.write(f"\n--- start {' '.join(command)}\n".encode())
                log.flush()
                # Same process group as pytest: if pytest is killed as a group, java goes too.
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
            if self._wait_ready(ready_timeout):
                return self
            self.stop()
        pytest.fail(f"the Firestore emulator did not become ready on {self.host} within {ready_timeout:.0f} s; "
                    f"log {self.log_path}:\n{self.log_tail()}", pytrace=False)

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        return wait_http_ready(self.url + "/", self.process, timeout, request_timeout=1,
                               body_ok=lambda body: body.strip() == b"Ok") is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop this emulator by its PID: terminate, then kill. Data is lost; the port is kept."""
        process, self.process = self.process, None
        stop_process(process, timeout)

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    # -- per-test helpers ----------------------------------------------------------------------
    def project_id(self) -> str:
        """A fresh project id: each is an empty, separate database in the emulator."""
        return f"demo-avalo-{uuid.uuid4().hex[:12]}"

    def client(self, project: Optional[str] = None) -> Any:
        """A real ``google.cloud.firestore.Client`` on this emulator (anonymous credentials)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        previous = os.environ.get(ENV)
        os.environ[ENV] = self.host  # the client reads it once, in its constructor
        try:
            return firestore.Client(project=project or self.project_id(), credentials=AnonymousCredentials())
        finally:
            if previous is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = previous

    def wipe(self, project: str) -> None:
        """Delete every document of ``project``'s default database."""
        self._request("DELETE", f"/emulator/v1/projects/{project}/databases/(default)/documents")

    def load_rules(self, project: str, rules: str) -> None:
        """Enforce ``rules`` for ``project``'s client-SDK requests (server clients bypass them)."""
        body = {"rules": {"files": [{"name": "firestore.rules", "content": rules}]}}
        self._request("PUT", f"/emulator/v1/projects/{project}:securityRules", body)

    def rest(self, method: str, project: str, path: str, body: Optional[dict[str, Any]] = None,
             token: Optional[str] = None) -> tuple[int, dict[str, Any]]:
        """A Firestore REST call as a client SDK makes it (``token``: an ID token, or None)."""
        url = f"/v1/projects/{project}/databases/(default)/documents/{path}"
        return self._request(method, url, body, token=token, check=False)

    @staticmethod
    def user_token(project: str, uid: str = "user-1") -> str:
        """An unsigned Firebase ID token, which the emulator accepts as a signed-in user."""
        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
        now = int(time.time())
        claims = {"sub": uid, "user_id": uid, "aud": project, "iss": f"https://securetoken.google.com/{project}",
                  "iat": now, "exp": now + 3600, "auth_time": now, "firebase": {"sign_in_provider": "password"}}
        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."

    def _request(self, method: str, path: str, body: Optional[dict[str, Any]] = None, *,
                 token: Optional[str] = None, check: bool = True) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
            if check:
                raise AssertionError(f"{method} {path}: HTTP {status}: {raw[:300]!r}") from error
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            payload = {"raw": raw.decode(errors="replace")}
        return status, payload if isinstance(payload, dict) else {"value": payload}


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """The running emulator for the session, with ``FIRESTORE_EMULATOR_HOST`` pointing at it."""
    emulator = FirestoreEmulator(tmp_path_factory.mktemp("firestore-emulator"))
    patch = pytest.MonkeyPatch()
    try:
        emulator.start()
        patch.setenv(ENV, emulator.host)
        yield emulator
    finally:
        patch.undo()
        emulator.stop()
