"""The ``avalo-otel`` command: the parser, and the data subcommands ``cleanup`` (expired data out
of a store), ``query`` (stored documents as JSON lines) and ``settings`` (what configure() would
use). The others live beside it: cli_demo, cli_reliability (slo), cli_alerts (evaluate, alerts,
rules), cli_doctor."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from .settings import ConfigurationError, Settings
from .store.base import StoreError


def _cleanup(args: argparse.Namespace) -> int:
    import time

    from .store import COLLECTIONS, RETENTION_DAYS

    store = open_store(args)
    now = int(time.time() * 1000)
    verb = "would delete" if args.dry_run else "deleted"
    try:
        for collection in COLLECTIONS:
            if RETENTION_DAYS[collection] is None:
                continue
            count = store.delete_expired(collection, now, batch_size=args.batch_size, dry_run=args.dry_run)
            print(f"{collection}: {verb} {count} expired document(s)")
    finally:
        store.close()
    return 0


def open_store(args: argparse.Namespace) -> object:
    """The store ``cleanup`` and ``query`` work on. Neither makes one: a mistyped SQLite path
    must not become a new, empty store that reports nothing to delete or find."""
    if args.backend == "firestore":
        try:
            from avalo_otel_exporter_firestore import FirestoreStore
        except ImportError:
            raise ConfigurationError("the firestore backend needs the Firestore store: pip install -e exporters/firestore "
                                     "(from the avalo-otel checkout)") from None
        # The exporters' own settings (AVALO_OTEL_FIRESTORE_*), with the flags over them.
        env = dict(os.environ)
        if args.project:
            env["AVALO_OTEL_FIRESTORE_PROJECT"] = args.project
        if args.prefix:
            env["AVALO_OTEL_FIRESTORE_PREFIX"] = args.prefix
        return FirestoreStore.from_env(env)
    from .store import SQLiteStore

    settings = Settings.load()
    path = args.path or settings.store_path
    if not os.path.isfile(path):
        raise ConfigurationError(f"no telemetry store at {path!r}: check --path or AVALO_OTEL_STORE_PATH")
    return SQLiteStore(path, prefix=args.prefix or settings.store_prefix)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 meaning any free one."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535; 0 picks a free one)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


#: The filters each collection takes: any other given is an error, never silently ignored.
_QUERY_FILTERS = {"events": ("domain", "operation"), "traces": ("trace_id", "operation"), "metrics": ("name",),
                  "alerts": ("severity",)}


def _check_query_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    given = [name for names in _QUERY_FILTERS.values() for name in names if getattr(args, name) is not None]
    wrong = sorted({n for n in given if n not in _QUERY_FILTERS[args.collection]})
    if wrong:
        flags = ", ".join("--" + n.replace("_", "-") for n in wrong)
        allowed = ", ".join("--" + n.replace("_", "-") for n in _QUERY_FILTERS[args.collection])
        parser.error(f"query {args.collection}: {flags} does not apply (its filters: {allowed})")


def _query(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        if args.collection == "events":
            docs = store.query_events(domain=args.domain, operation=args.operation, limit=args.limit)
        elif args.collection == "traces":
            docs = store.query_traces(trace_id=args.trace_id, operation=args.operation, limit=args.limit)
        elif args.collection == "metrics":
            docs = store.query_metrics(name=args.name, limit=args.limit)
        else:
            docs = store.query_alert_events(severity=args.severity, limit=args.limit)
        for doc in docs:
            print(json.dumps(doc, default=str, sort_keys=True))
    finally:
        store.close()
    return 0


def _settings(args: argparse.Namespace) -> int:
    print(json.dumps(Settings.load().describe(), indent=2, default=str))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="avalo-otel", description="Avalo's observability on OpenTelemetry: the demo, the stored data, "
                                       "SLO reports and the deploy gate, the alert evaluator, Prometheus rules.")
    sub = parser.add_subparsers(dest="command", required=True)
    from . import cli_demo

    cli_demo.add_parser(sub)
    def store_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=("sqlite", "firestore"), default="sqlite")
        p.add_argument("--path", help="SQLite file (default: AVALO_OTEL_STORE_PATH or avalo-telemetry.db)")
        p.add_argument("--prefix", default="", help="collection name prefix (default: the store's setting)")
        p.add_argument("--project", help="Firestore project (default: AVALO_OTEL_FIRESTORE_PROJECT, "
                                         "GOOGLE_CLOUD_PROJECT, or the credentials' project)")

    cleanup = sub.add_parser("cleanup", help="delete data past its retention (events 90 d, metrics/traces 30 d)")
    store_args(cleanup)
    cleanup.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    cleanup.add_argument("--batch-size", type=_positive_int, default=500,
                         help="documents deleted per transaction or commit (default 500)")
    cleanup.set_defaults(run=_cleanup)
    query = sub.add_parser("query", help="print stored documents as JSON lines")
    store_args(query)
    query.add_argument("collection", choices=("events", "traces", "metrics", "alerts"))
    query.add_argument("--domain", help="events: only this domain")
    query.add_argument("--operation", help="events, traces: only this operation")
    query.add_argument("--trace-id", help="traces: the spans of this trace")
    query.add_argument("--name", help="metrics: only this metric")
    query.add_argument("--severity", choices=("INFO", "WARN", "ERROR", "CRITICAL"), help="alerts: only this severity")
    query.add_argument("--limit", type=_positive_int, default=20)
    query.set_defaults(run=_query)
    from . import cli_alerts, cli_doctor, cli_reliability

    cli_reliability.add_parsers(sub, store_args)
    cli_alerts.add_parsers(sub, store_args)
    cli_doctor.add_parser(sub, store_args)
    from .dashboard import cli as dashboard_cli  # (the web stack is imported only when it runs)

    dashboard_cli.add_parser(sub, store_args)
    settings = sub.add_parser("settings", help="print the resolved settings (secrets masked)")
    settings.set_defaults(run=_settings)
    args = parser.parse_args(argv)
    if args.command == "query":
        _check_query_flags(parser, args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except ConfigurationError as exc:
        print(f"avalo-otel: configuration error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # invalid SLO definitions or alert rules: the message says what and where
        if type(exc).__name__ not in ("SLODefinitionError", "AlertRuleError"):
            raise
        print(f"avalo-otel: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"avalo-otel: store error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
