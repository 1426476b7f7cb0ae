"""``avalo-otel demo``: the main job (see ``avalo_otel.demo``)."""

from __future__ import annotations

import argparse
from typing import Any

from .cli import port_number

DESCRIPTION = (
    "The whole system on compressed time: simulated Avalo traffic (chat, wallet, safety, AI companions, "
    "support, public API) through the public API into an embedded store, with a Prometheus endpoint, "
    "in-process SLO and alert evaluation and the admin dashboard. Before the live traffic, --history-days "
    "of history are backfilled so the 30-day SLO views have data; in the middle third of the live run an "
    "incident (payment provider failing, chat slow) burns error budget and fires alerts, which resolve in "
    "the last third. Ctrl-C or SIGTERM stops it cleanly, flushing everything.")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        return value
    return parse


def _not_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (or 'inf')") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoOptions, run_demo

    options = DemoOptions(
        duration_s=args.duration, speed=args.speed, rate=args.rate, history_days=args.history_days,
        backend=args.backend, port=args.port, dashboard=not args.no_dashboard, dashboard_port=args.dashboard_port,
        data_dir=args.data_dir, seed=args.seed, linger_s=args.linger, console=args.console, sampling=args.sampling,
    )
    return run_demo(options)


def add_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="the whole system on simulated Avalo traffic: store, Prometheus, SLOs, "
                                       "alerts, dashboard", description=DESCRIPTION)
    demo.add_argument("--duration", type=_positive(float), default=75.0, metavar="SECONDS",
                      help="wall seconds of live traffic (default 75; the incident is the middle third)")
    demo.add_argument("--speed", type=_positive(float), default=60.0, metavar="X",
                      help="time compression: 60 = a simulated minute per wall second (default 60)")
    demo.add_argument("--rate", type=_positive(float), default=50.0, metavar="PER_S",
                      help="requests per wall second at an average hour of the day (default 50)")
    demo.add_argument("--history-days", type=_not_negative, default=None, metavar="DAYS",
                      help="simulated days of history backfilled before the live traffic (default 7, with "
                           "--backend firestore 1: the emulator is slow; 0: none)")
    demo.add_argument("--backend", choices=("sqlite", "firestore"), default="sqlite",
                      help="sqlite (default: a file in --data-dir) or firestore (the emulator at "
                           "FIRESTORE_EMULATOR_HOST; needs avalo-otel-exporter-firestore)")
    demo.add_argument("--port", type=port_number, default=9464, help="Prometheus port (default 9464; 0 = any free port)")
    demo.add_argument("--dashboard-port", type=port_number, default=8050, metavar="PORT",
                      help="dashboard port on 127.0.0.1 (default 8050; 0 = any free port)")
    demo.add_argument("--no-dashboard", action="store_true", help="do not serve the admin dashboard")
    demo.add_argument("--data-dir", metavar="DIR",
                      help="where the store goes (default $XDG_DATA_HOME/avalo-otel/demo, else "
                           "~/.local/share/avalo-otel/demo); each run starts it afresh")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulated traffic (default 7)")
    demo.add_argument("--linger", type=_not_negative, default=None, metavar="SECONDS",
                      help="keep serving (dashboard, /metrics, evaluation) this long after the traffic, or until "
                           "Ctrl-C ('inf': until Ctrl-C; default: until Ctrl-C when the dashboard runs in a "
                           "terminal, else 0)")
    demo.add_argument("--console", action="store_true",
                      help="also print every exported span and event (the console exporter)")
    demo.add_argument("--sampling", type=float, default=1.0, metavar="RATE",
                      help="sampling rate for routine traces and events (failures and wallet/safety are always kept)")
    demo.set_defaults(run=_demo)
