"""A real Prometheus server on loopback, for tests that check what Prometheus itself sees.

``PrometheusServer`` writes a config (``scrape_interval: 1s``, one job with static targets),
starts Debian's ``/usr/bin/prometheus`` on a free loopback port, waits for ``/-/ready`` and
answers PromQL over the HTTP API. Targets can be set after start (``reload``), because an app's
``/metrics`` port is only known once ``configure()`` has bound it.

Prometheus here takes ~5-6 s to scrape a target for the first time after start or reload
(target updates from discovery are batched every 5 s); poll with ``wait_for`` rather than sleep.
A missing binary fails the test loudly: it is never skipped.

Use it from a test module with ``from prometheus_server import prometheus_server`` (the fixture
is module-scoped: one Prometheus per module), or as a plugin via ``pytest_plugins``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import pytest

from server_process import LoopbackServer, free_port

DEFAULT_BINARY = "/usr/bin/prometheus"
Result = dict[str, Any]


def prometheus_binary() -> str:
    """The Prometheus binary: ``$PROMETHEUS_BIN`` if set, else ``/usr/bin/prometheus`` (or on PATH).

    A missing binary fails the test with a message saying how to install it; never a skip.
    """
    explicit = os.environ.get("PROMETHEUS_BIN")
    candidates = [explicit] if explicit else [DEFAULT_BINARY, shutil.which("prometheus")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    where = f"$PROMETHEUS_BIN={explicit!r}" if explicit else f"{DEFAULT_BINARY} or on PATH"
    pytest.fail(
        f"Prometheus binary not found ({where}): install it with "
        "`apt-get install -y --no-install-recommends prometheus`. "
        "This suite needs a real Prometheus and is never skipped.",
        pytrace=False,
    )


def as_target(target: str) -> tuple[str, str]:
    """``"http://127.0.0.1:9464/metrics"`` or ``"127.0.0.1:9464"`` → (``host:port``, metrics path)."""
    if "://" not in target:
        return target, "/metrics"
    parsed = urllib.parse.urlsplit(target)
    if parsed.scheme != "http" or not parsed.netloc:
        raise ValueError(f"target {target!r}: expected http://host:port/path or host:port")
    return parsed.netloc, parsed.path or "/metrics"


def sample_value(result: Result) -> float:
    """The float of one instant-vector or scalar result (``NaN``/``+Inf`` included)."""
    return float(result["value"][1])


class PrometheusError(RuntimeError):
    """The query API answered with an error (bad PromQL, server trouble)."""


class PrometheusServer(LoopbackServer):
    """One Prometheus process scraping ``targets`` every second, with its own TSDB and log in ``workdir``.

    Port, readiness, stop by PID and cleanup come from ``server_process.LoopbackServer``.
    """

    name = "Prometheus"

    def __init__(
        self,
        targets: Iterable[str] = (),
        *,
        job: str = "avalo",
        workdir: Optional[os.PathLike[str] | str] = None,
        binary: Optional[str] = None,
        scrape_interval: str = "1s",
        rule_files: Iterable[os.PathLike[str] | str] = (),
        alertmanagers: Iterable[str] = (),
    ) -> None:
        self.job = job
        self.scrape_interval = scrape_interval
        #: Rule files to load (evaluated every ``scrape_interval``) and ``host:port`` of
        #: Alertmanagers to send their alerts to.
        self.rule_files = [str(Path(f).resolve()) for f in rule_files]
        self.alertmanagers = list(alertmanagers)
        self.binary = binary
        super().__init__(workdir, prefix="prometheus-", log_name="prometheus.log")
        self.config_path = self.workdir / "prometheus.yml"
        self.targets: list[str] = list(targets)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, ready_timeout: float = 20.0) -> "PrometheusServer":
        """Start on a free port and wait for ``/-/ready``; a binary that is missing or does not
        come up fails the test (with the log's tail)."""
        binary = self.binary or prometheus_binary()
        self._write_config()

        def command(port: int) -> list[str]:
            return [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / f'data-{port}'}",  # one TSDB per attempt
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=info",
            ]

        self._start_on_free_port(command, "/-/ready", ready_timeout)
        return self

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- configuration -------------------------------------------------------------------------
    def _write_config(self) -> None:
        parsed = [as_target(t) for t in self.targets]
        paths = {path for _, path in parsed} or {"/metrics"}
        if len(paths) != 1:
            raise ValueError(f"all targets of one job must share a metrics path, got {sorted(paths)}")
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": paths.pop(),
                    "static_configs": [{"targets": [hostport for hostport, _ in parsed]}],
                }
            ],
        }
        if self.rule_files:
            config["rule_files"] = self.rule_files
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]}
        # JSON is YAML: no YAML library needed to write a valid prometheus.yml.
        self.config_path.write_text(json.dumps(config, indent=2))

    def reload(self, targets: Iterable[str]) -> None:
        """Scrape ``targets`` (``host:port`` or ``http://host:port/path``) from now on."""
        self.targets = list(targets)
        self._write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                if resp.status != 200:
                    pytest.fail(f"Prometheus reload answered HTTP {resp.status}\n{self.log_tail()}", pytrace=False)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            pytest.fail(f"Prometheus rejected the new config (HTTP {exc.code}): {body}\n{self.log_tail()}", pytrace=False)

    # -- HTTP API ------------------------------------------------------------------------------
    def _api(self, path: str, params: Optional[dict[str, str]] = None) -> Any:
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as exc:  # 400/422 carry a JSON error body
            try:
                payload = json.load(exc)
            except ValueError:
                raise PrometheusError(f"{path}: HTTP {exc.code}") from exc
        if payload.get("status") != "success":
            raise PrometheusError(f"{path}: {payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def query(self, promql: str) -> list[Result]:
        """Evaluate ``promql`` now: a list of ``{"metric": {...}, "value": [ts, "str"]}``.

        A scalar or string result comes back as one entry with an empty ``metric``.
        """
        data = self._api("/api/v1/query", {"query": promql})
        if data["resultType"] in ("vector", "matrix"):
            return list(data["result"])
        return [{"metric": {}, "value": data["result"]}]

    def value(self, promql: str) -> Optional[float]:
        """The single value of ``promql`` now, or ``None`` if it has no result."""
        results = self.query(promql)
        if len(results) > 1:
            raise AssertionError(f"{promql} has {len(results)} series, expected one: {results}")
        return sample_value(results[0]) if results else None

    def targets_status(self) -> list[dict[str, Any]]:
        return list(self._api("/api/v1/targets", {"state": "active"})["activeTargets"])

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[Result]], bool] = bool,
        timeout: float = 30.0,
        interval: float = 0.25,
    ) -> list[Result]:
        """Poll ``promql`` until ``predicate(results)`` holds; fails the test after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        results: list[Result] = []
        error: Optional[str] = None
        while True:
            try:
                results = self.query(promql)
                error = None
                if predicate(results):
                    return results
            except PrometheusError as exc:
                error = str(exc)
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        try:
            targets = json.dumps(
                [{k: t.get(k) for k in ("scrapeUrl", "health", "lastError", "lastScrape")} for t in self.targets_status()]
            )
        except (PrometheusError, OSError) as exc:
            targets = f"(unavailable: {exc})"
        pytest.fail(
            f"after {timeout:.0f} s Prometheus still answers {promql!r} with {results!r}"
            + (f" (last error: {error})" if error else "")
            + f"\ntargets: {targets}\n--- prometheus log ---\n{self.log_tail()}",
            pytrace=False,
        )

    def wait_for_value(self, promql: str, expected: float, timeout: float = 30.0, rel: float = 1e-9) -> float:
        """Poll until ``promql`` has exactly one series with value ``expected``; return it."""

        def matches(results: list[Result]) -> bool:
            return len(results) == 1 and math.isclose(sample_value(results[0]), expected, rel_tol=rel, abs_tol=rel)

        return sample_value(self.wait_for(promql, matches, timeout)[0])


@pytest.fixture(scope="module")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A started Prometheus (no targets yet) for the whole module: call ``reload([url])`` once the
    app serves /metrics. Stopped by PID after the module's tests."""
    server = PrometheusServer(workdir=tmp_path_factory.mktemp("prometheus"))
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


__all__: Sequence[str] = (
    "PrometheusServer", "PrometheusError", "prometheus_server", "free_port", "prometheus_binary",
    "as_target", "sample_value",
)
