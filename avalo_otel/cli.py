"""The ``avalo-otel`` command: ``demo`` (the main job), ``cleanup`` (expired data out of a store),
``query`` (stored documents as JSON lines) and ``settings`` (what configure() would use)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from .settings import ConfigurationError, Settings
from .store.base import StoreError

_DEMO_SERIES = (
    "avalo_operations_total", "chat_messages_sent_total", "wallet_tx_success_total", "wallet_tx_failed_total",
    "panic_events_total", "ai_requests_total", "api_http_errors_total", "active_users",
    "chat_delivery_latency_ms_count", "avalo_operation_latency_ms_count",
)


def _demo(args: argparse.Namespace) -> int:
    import avalo_otel
    from . import demo

    console = () if args.quiet else ("console",)
    overrides = {
        "service_name": "avalo-demo",
        "traces_exporters": (*console, "sqlite"),
        "logs_exporters": (*console, "sqlite"),
        "metrics_exporters": ("prometheus", "sqlite"),
        "metric_export_interval_ms": 5000,
        "store_path": args.store,
        "prometheus_port": args.port,
        "sampling_rate": args.sampling,
        "pseudonym_key": "avalo-demo-key",
    }
    handle = avalo_otel.configure(**overrides)
    print(f"avalo-otel demo: {args.duration:g}s of simulated Avalo traffic (sampling {args.sampling:g})")
    print(f"Prometheus endpoint: {handle.prometheus_url or 'off (port taken, see warning above)'}")
    print(f"embedded store (SQLite): {args.store}")
    print("console: 'span' and 'event' lines are what the exporters send (user ids pseudonymised)\n")
    count = demo.run(duration_s=args.duration, rate_per_s=args.rate)
    handle.force_flush()
    text = demo.scrape(handle.prometheus_url)
    print(f"\n{count} operations recorded. Prometheus series now served (selection):")
    for line in text.splitlines():
        if line.startswith(_DEMO_SERIES):
            print("  " + line)
    _store_summary(handle.store)
    if args.linger > 0 and handle.prometheus_url:
        import time

        print(f"\nServing {handle.prometheus_url} for {args.linger:g}s more (Ctrl-C to stop)")
        try:
            time.sleep(args.linger)
        except KeyboardInterrupt:
            pass
    handle.shutdown()
    return 0


def _store_summary(store: object) -> None:
    from .conventions import Domain

    print("\nStored in the embedded store (queried back through the Store API):")
    for domain in Domain:
        events = store.query_events(domain=domain.value, limit=100_000)  # type: ignore[attr-defined]
        if events:
            failed = sum(1 for e in events if not e["success"])
            print(f"  telemetry_events domain={domain.value:<8} {len(events):5d} events, {failed} failed")
    failures = store.query_events(success=False, limit=3)  # type: ignore[attr-defined]
    for event in failures:
        print(f"  latest failure: {event['operation']} {event['errorCode']} actor={event['actorId']}")
    if failures and failures[0].get("traceId"):
        spans = store.query_traces(trace_id=failures[0]["traceId"])  # type: ignore[attr-defined]
        print(f"  its trace {failures[0]['traceId'][:8]}…: " + ", ".join(s["name"] for s in spans))
    points = store.query_metrics(name="avalo_operations_total", limit=100_000)  # type: ignore[attr-defined]
    print(f"  metrics: {len(points)} avalo_operations_total points (delta per export interval)")


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
            raise ConfigurationError("the firestore backend needs: pip install avalo-otel-exporter-firestore") from None
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


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
            docs = store.query_alert_events(limit=args.limit)
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
    demo = sub.add_parser("demo", help="simulated Avalo traffic through the API, exported live")
    demo.add_argument("--duration", type=float, default=15.0, help="seconds of traffic (default 15)")
    demo.add_argument("--rate", type=float, default=25.0, help="operations per second (default 25)")
    demo.add_argument("--sampling", type=float, default=1.0, help="sampling rate for routine traces/events")
    demo.add_argument("--port", type=int, default=9464, help="Prometheus port (0 = any free port)")
    demo.add_argument("--linger", type=float, default=0.0, help="keep /metrics up this many seconds after")
    demo.add_argument("--quiet", action="store_true", help="no console exporter output")
    demo.add_argument("--store", default="avalo-demo.db", help="SQLite file for the embedded store")
    demo.set_defaults(run=_demo)
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
    query.add_argument("--domain")
    query.add_argument("--operation")
    query.add_argument("--trace-id")
    query.add_argument("--name")
    query.add_argument("--limit", type=_positive_int, default=20)
    query.set_defaults(run=_query)
    from . import cli_alerts, cli_reliability

    cli_reliability.add_parsers(sub, store_args)
    cli_alerts.add_parsers(sub, store_args)
    settings = sub.add_parser("settings", help="print the resolved settings (secrets masked)")
    settings.set_defaults(run=_settings)
    args = parser.parse_args(argv)
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
