"""``avalo-otel doctor``: checks the configuration and whether every configured backend answers,
and says what is wrong. Read-only: it writes nothing anywhere and sends no alert."""

from __future__ import annotations

import argparse
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Iterator

OK, WARN, FAIL = "ok", "warn", "FAIL"
TIMEOUT_S = 3.0


@dataclass
class Check:
    name: str
    status: str
    detail: str


def add_parser(sub: Any, store_args: Callable[[argparse.ArgumentParser], None]) -> None:
    doctor = sub.add_parser(
        "doctor", help="check the configuration and that every configured backend answers",
        description="Check the settings, the SLO definitions, the stores, the OTLP endpoint, the Prometheus "
                    "port and the alert receivers, and say what is wrong. Exit 1 if any check fails.")
    store_args(doctor)
    doctor.add_argument("--json", action="store_true", help="the checks as JSON")
    doctor.set_defaults(run=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    checks = list(run_checks(args))
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{c.status:<4}  {c.name:<22} {c.detail}")
        failed = sum(c.status == FAIL for c in checks)
        print(f"\n{len(checks)} checks: {failed} failed, {sum(c.status == WARN for c in checks)} warnings")
    return 1 if any(c.status == FAIL for c in checks) else 0


def run_checks(args: argparse.Namespace) -> Iterator[Check]:
    from .settings import ConfigurationError, Settings

    try:
        settings = Settings.load()
    except ConfigurationError as exc:
        yield Check("settings", FAIL, str(exc))
        return
    yield Check("settings", OK, f"service {settings.service_name!r}; traces {_names(settings.traces_exporters)}, "
                                f"logs {_names(settings.logs_exporters)}, metrics {_names(settings.metrics_exporters)}")
    if not settings.pseudonym_key:
        yield Check("pseudonym key", WARN, "AVALO_OTEL_PSEUDONYM_KEY is not set: each process pseudonymises user "
                                           "ids with its own random key, so they do not match across services")
    yield _slo_check(settings)
    yield _privacy_check(settings)
    exporters = {*settings.traces_exporters, *settings.logs_exporters, *settings.metrics_exporters}
    if args.backend == "sqlite" or "sqlite" in exporters:
        yield _sqlite_check(args, settings, wanted=args.backend == "sqlite")
    if args.backend == "firestore" or "firestore" in exporters:
        yield _firestore_check(args)
    if "otlp" in exporters:
        yield _reach("OTLP endpoint", settings.otlp_endpoint or _default_otlp(settings))
    if "prometheus" in exporters:
        yield _port_check(settings.prometheus_host, settings.prometheus_port)
    if settings.alertmanager_url:
        yield _http_check("Alertmanager", settings.alertmanager_url.rstrip("/") + "/-/ready")
    if settings.alert_webhook_url:
        yield _reach("alert webhook", settings.alert_webhook_url)


def _names(names: Any) -> str:
    return ",".join(names) or "none"


def _privacy_check(settings: Any) -> Check:
    """The configure-time privacy self-check (a canary per signal), here without exporting."""
    from .privacy.selfcheck import run_for

    result = run_for(settings)
    if result.failures:
        return Check("privacy self-check", FAIL, "; ".join(f"{signal}: {why} (they would not be exported)"
                                                           for signal, why in result.failures.items()))
    return Check("privacy self-check", OK, f"traces, logs and metrics arrive redacted ({result.elapsed_ms:.0f} ms)")


def _slo_check(settings: Any) -> Check:
    from .slo import SLODefinitionError, configured_slos

    try:
        slos = configured_slos(settings)
    except SLODefinitionError as exc:
        return Check("SLO definitions", FAIL, str(exc))
    return Check("SLO definitions", OK, f"{len(slos)} SLOs: {', '.join(s.id for s in slos)}")


def _sqlite_check(args: argparse.Namespace, settings: Any, wanted: bool) -> Check:
    import sqlite3

    path = args.path or settings.store_path
    if not os.path.isfile(path):
        status = FAIL if wanted and args.path else WARN
        return Check("SQLite store", status, f"no store file at {path!r} yet (the exporters create it on first "
                                             "write; cleanup, query and slo need it to exist)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_S)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Check("SQLite store", FAIL, f"{path}: {exc}")
    from .store import COLLECTIONS

    prefix = args.prefix or settings.store_prefix
    missing = [c for c in COLLECTIONS if prefix + c not in tables]
    if missing:
        return Check("SQLite store", WARN, f"{path}: tables {', '.join(missing)} are created on the next write")
    return Check("SQLite store", OK, f"{path} ({os.path.getsize(path) / 1e6:.1f} MB)")


def _firestore_check(args: argparse.Namespace) -> Check:
    try:
        from .cli import open_store

        store: Any = open_store(argparse.Namespace(**{**vars(args), "backend": "firestore"}))
    except Exception as exc:  # the package missing, or bad settings: the message says which
        return Check("Firestore store", FAIL, str(exc))
    try:
        store.timeout = min(store.timeout, TIMEOUT_S)
        store.get_documents("alert_rules", ["__avalo_doctor__"])
        where = os.environ.get("FIRESTORE_EMULATOR_HOST")
        return Check("Firestore store", OK, f"answers ({'emulator at ' + where if where else 'Google Cloud'})")
    except Exception as exc:
        return Check("Firestore store", FAIL, str(exc))
    finally:
        store.close()


def _default_otlp(settings: Any) -> str:
    return "http://localhost:4318" if settings.otlp_protocol == "http/protobuf" else "http://localhost:4317"


def _reach(name: str, url: str) -> Check:
    """A TCP connection to the URL's host and port: reachable, without sending anything."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = f"{parts.scheme}://{host}:{port}"  # never the path or query: they may carry a token
    try:
        socket.create_connection((host, port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        return Check(name, FAIL, f"{shown} unreachable: {exc.strerror or exc}")
    return Check(name, OK, f"{shown} accepts connections")


def _http_check(name: str, url: str) -> Check:
    parts = urllib.parse.urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            return Check(name, OK, f"{shown} answers {resp.status}")
    except urllib.error.HTTPError as exc:
        return Check(name, FAIL, f"{shown} answers {exc.code}")
    except OSError as exc:
        return Check(name, FAIL, f"{shown} unreachable: {getattr(exc, 'reason', exc)}")


def _port_check(host: str, port: int) -> Check:
    if port == 0:
        return Check("Prometheus port", OK, f"{host}: any free port")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, port))
    except OSError as exc:
        return Check("Prometheus port", WARN, f"{host}:{port} is taken ({exc.strerror}): an app would run without "
                                              "/metrics; set OTEL_EXPORTER_PROMETHEUS_PORT")
    return Check("Prometheus port", OK, f"{host}:{port} is free")

