"""The ``avalo-otel`` command: ``demo`` (the main job), ``settings`` (what configure() would use)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Optional, Sequence

from .settings import ConfigurationError, Settings

_DEMO_SERIES = (
    "avalo_operations_total", "chat_messages_sent_total", "wallet_tx_success_total", "wallet_tx_failed_total",
    "panic_events_total", "ai_requests_total", "api_http_errors_total", "active_users",
    "chat_delivery_latency_ms_count", "avalo_operation_latency_ms_count",
)


def _demo(args: argparse.Namespace) -> int:
    import avalo_otel
    from . import demo

    overrides = {
        "service_name": "avalo-demo",
        "traces_exporters": "console" if not args.quiet else "none",
        "logs_exporters": "console" if not args.quiet else "none",
        "metrics_exporters": "prometheus",
        "prometheus_port": args.port,
        "sampling_rate": args.sampling,
        "pseudonym_key": "avalo-demo-key",
    }
    handle = avalo_otel.configure(**overrides)
    print(f"avalo-otel demo: {args.duration:g}s of simulated Avalo traffic (sampling {args.sampling:g})")
    print(f"Prometheus endpoint: {handle.prometheus_url or 'off (port taken, see warning above)'}")
    print("console: 'span' and 'event' lines are what the exporters send (user ids pseudonymised)\n")
    count = demo.run(duration_s=args.duration, rate_per_s=args.rate)
    handle.force_flush()
    text = demo.scrape(handle.prometheus_url)
    print(f"\n{count} operations recorded. Prometheus series now served (selection):")
    for line in text.splitlines():
        if line.startswith(_DEMO_SERIES):
            print("  " + line)
    if args.linger > 0 and handle.prometheus_url:
        import time

        print(f"\nServing {handle.prometheus_url} for {args.linger:g}s more (Ctrl-C to stop)")
        try:
            time.sleep(args.linger)
        except KeyboardInterrupt:
            pass
    handle.shutdown()
    return 0


def _settings(args: argparse.Namespace) -> int:
    print(json.dumps(Settings.load().describe(), indent=2, default=str))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="avalo-otel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulated Avalo traffic through the API, exported live")
    demo.add_argument("--duration", type=float, default=15.0, help="seconds of traffic (default 15)")
    demo.add_argument("--rate", type=float, default=25.0, help="operations per second (default 25)")
    demo.add_argument("--sampling", type=float, default=1.0, help="sampling rate for routine traces/events")
    demo.add_argument("--port", type=int, default=9464, help="Prometheus port (0 = any free port)")
    demo.add_argument("--linger", type=float, default=0.0, help="keep /metrics up this many seconds after")
    demo.add_argument("--quiet", action="store_true", help="no console exporter output")
    demo.set_defaults(run=_demo)
    settings = sub.add_parser("settings", help="print the resolved settings (secrets masked)")
    settings.set_defaults(run=_settings)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except ConfigurationError as exc:
        print(f"avalo-otel: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
