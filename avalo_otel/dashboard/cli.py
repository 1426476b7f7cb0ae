"""``avalo-otel dashboard``: serve the admin reliability dashboard over a store.

Imports nothing of the web stack until the command runs, so building the ``avalo-otel`` parser
costs nothing and works without the ``dashboard`` extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from typing import Any, Callable

from ..cli import port_number

DEFAULT_PORT = 8765


def add_parser(sub: Any, store_args: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "dashboard", help="serve the admin reliability dashboard (SLOs, error budgets, alerts, traces)",
        description="Serve the admin reliability dashboard over the telemetry store: SLOs and error budgets, "
                    "system health, the domain tabs, alerts (with acknowledgement) and trace waterfalls, plus "
                    "its JSON API (/api/openapi.json). Every page needs the admin token: set "
                    "AVALO_OTEL_DASHBOARD_TOKEN, or a token is generated and printed once. Needs the "
                    "dashboard extra: pip install 'avalo-otel[dashboard]'.")
    store_args(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--slo-file", action="append", default=[], metavar="FILE",
                        help="SLO definitions added to the built-in ones (also AVALO_OTEL_SLO_FILES)")
    parser.set_defaults(run=run)
    return parser


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from ..cli import open_store
    from ..settings import ConfigurationError, Settings
    from ..slo import configured_slos

    settings = Settings.load()
    token = settings.dashboard_token
    generated = token is None
    try:
        from . import start_dashboard
        from .auth import new_token
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        print(f"avalo-otel: {exc}", file=sys.stderr)
        return 2
    if generated:
        token = new_token()
    elif len(token) < 8:
        raise ConfigurationError("AVALO_OTEL_DASHBOARD_TOKEN: use at least 8 characters (better: a random token)")
    slos = configured_slos(settings, extra_files=args.slo_file)
    store = open_store(args)
    try:
        try:
            server = start_dashboard(store, slos=slos, host=args.host, port=args.port, admin_token=token)
        except ImportError as exc:
            print(f"avalo-otel: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"avalo-otel: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"Avalo reliability dashboard: {server.url}", flush=True)
        if generated:
            print(f"Admin token (shown only now; set AVALO_OTEL_DASHBOARD_TOKEN to choose one): {token}", flush=True)
        else:
            print("Admin token: the one in AVALO_OTEL_DASHBOARD_TOKEN", flush=True)
        if not _loopback(args.host):
            print(f"avalo-otel: warning: listening on {args.host}, reachable from other machines; serve it behind "
                  "HTTPS (a reverse proxy) so the token and session cookie are not sent in clear", file=sys.stderr)
        print("Press Ctrl-C to stop.", flush=True)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.stop()
        print("Dashboard stopped.", flush=True)
        return 0
    finally:
        store.close()
