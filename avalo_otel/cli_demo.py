"""``avalo-otel demo``: the main job (see ``avalo_otel.demo``)."""

from __future__ import annotations

import argparse
from typing import Any

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


def add_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="simulated Avalo traffic through the API, exported live")
    demo.add_argument("--duration", type=float, default=15.0, help="seconds of traffic (default 15)")
    demo.add_argument("--rate", type=float, default=25.0, help="operations per second (default 25)")
    demo.add_argument("--sampling", type=float, default=1.0, help="sampling rate for routine traces/events")
    demo.add_argument("--port", type=int, default=9464, help="Prometheus port (0 = any free port)")
    demo.add_argument("--linger", type=float, default=0.0, help="keep /metrics up this many seconds after")
    demo.add_argument("--quiet", action="store_true", help="no console exporter output")
    demo.add_argument("--store", default="avalo-demo.db", help="SQLite file for the embedded store")
    demo.set_defaults(run=_demo)
