"""The alerting subcommands of ``avalo-otel``: ``evaluate`` (the worker), ``alerts`` (events,
acknowledgement, rules) and ``rules`` (the Prometheus rule files)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from .cli_reliability import _slo_args, selected_slos

StoreArgs = Callable[[argparse.ArgumentParser], None]


def add_parsers(sub: Any, store_args: StoreArgs) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="the SLO and alert evaluator: a long-running worker (or --once)",
        description="Every --interval seconds: fold new metric points into the SLO rollups, judge every "
                    "enabled alert rule and every SLO burn rate, store fired and resolved alert events and "
                    "send them to the notifiers. Serves the SLO gauges on a Prometheus endpoint.")
    _slo_args(evaluate, store_args)
    evaluate.add_argument("--interval", type=float, default=60.0, help="seconds between evaluations (default 60)")
    evaluate.add_argument("--once", action="store_true", help="evaluate once, print what happened, exit")
    evaluate.add_argument("--alertmanager", metavar="URL", help="Alertmanager base URL (also AVALO_OTEL_ALERTMANAGER_URL)")
    evaluate.add_argument("--webhook", metavar="URL", help="webhook receiving Alertmanager's payload "
                                                           "(also AVALO_OTEL_ALERT_WEBHOOK_URL)")
    evaluate.add_argument("--metrics-port", type=int, metavar="PORT",
                          help="serve the avalo_slo_* gauges on this port (0: any free port; default: none)")
    evaluate.set_defaults(run=_evaluate)

    alerts = sub.add_parser("alerts", help="alert events, acknowledgement and alert rules",
                            description="Alert events, acknowledgement and alert rules in the store.")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    listing = alerts_sub.add_parser("list", help="alert events, newest first", description="Alert events, newest first.")
    store_args(listing)
    listing.add_argument("--severity", choices=("INFO", "WARN", "ERROR", "CRITICAL"))
    listing.add_argument("--acknowledged", choices=("yes", "no"))
    listing.add_argument("--status", choices=("firing", "resolved"))
    listing.add_argument("--limit", type=_positive, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON document per line")
    listing.set_defaults(run=_list)
    ack = alerts_sub.add_parser("ack", help="acknowledge an alert event",
                                description="Acknowledge an alert event: it stays quiet on re-triggers until it "
                                            "resolves or the acknowledgement expires.")
    store_args(ack)
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, metavar="ADMIN", help="the admin acknowledging it (recorded)")
    ack.add_argument("--expires-minutes", type=_positive, help="the acknowledgement lapses after this long")
    ack.set_defaults(run=_ack)
    rules = alerts_sub.add_parser("rules", help="list, set, enable, disable or delete alert rules",
                                  description="Alert rules in the store (the four predefined ones are added "
                                              "on first use; disable one rather than delete it).")
    store_args(rules)
    rules.add_argument("action", nargs="?", default="list", choices=("list", "set", "enable", "disable", "delete"))
    rules.add_argument("target", nargs="?", help="rule id, or for 'set' a JSON/YAML file of one rule or a list ('-': stdin)")
    rules.add_argument("--json", action="store_true", help="list as JSON")
    rules.set_defaults(run=_rules)

    generate = sub.add_parser(
        "rules", help="write Prometheus rules (and their promtool tests) from the SLO definitions",
        description="Write avalo-slo-rules.yml (recording rules for SLIs and burn rates, multiwindow burn-rate "
                    "alerts, the predefined and the stored threshold alerts), avalo-slo-rules.test.yml for "
                    "promtool test rules, and alertmanager-inhibit.yml (pages inhibit tickets).")
    generate.add_argument("--out", default="prometheus-rules", help="output directory (default ./prometheus-rules)")
    generate.add_argument("--slo-file", action="append", default=[], metavar="FILE",
                          help="SLO definitions added to the built-in ones (also AVALO_OTEL_SLO_FILES)")
    generate.add_argument("--slo", action="append", metavar="ID", help="only this SLO (repeatable)")
    generate.add_argument("--rules-from", metavar="SQLITE_FILE",
                          help="also the enabled alert rules stored in this SQLite store (default: the predefined ones)")
    generate.set_defaults(run=_generate)


def _positive(text: str) -> int:
    from .cli import _positive_int

    return _positive_int(text)


def _notifiers(args: argparse.Namespace) -> list[Any]:
    from .alerts import AlertmanagerNotifier, LogNotifier, WebhookNotifier
    from .settings import Settings

    settings = Settings.load()
    notifiers: list[Any] = [LogNotifier()]
    alertmanager = args.alertmanager or settings.alertmanager_url
    webhook = args.webhook or settings.alert_webhook_url
    if alertmanager:
        notifiers.append(AlertmanagerNotifier(alertmanager))
    if webhook:
        notifiers.append(WebhookNotifier(webhook))
    return notifiers


def _evaluate(args: argparse.Namespace) -> int:
    from .alerts import AlertEvaluator, ensure_predefined_rules
    from .cli import open_store
    from .slo import SLOEvaluator
    from .slo.gauges import register_gauges

    slos = selected_slos(args)
    store = open_store(args)
    handle = None
    try:
        ensure_predefined_rules(store)
        slo_evaluator = SLOEvaluator(store, slos)
        handle = _configure_telemetry(args)
        if args.metrics_port is not None:
            register_gauges(slo_evaluator, handle.meter_provider)
            print(f"SLO gauges on {handle.prometheus_url or 'no endpoint (port taken, see the warning)'}")
        evaluator = AlertEvaluator(store, slos=slos, notifiers=_notifiers(args), slo_evaluator=slo_evaluator,
                                   interval_s=args.interval, emit_telemetry=True)
        if args.once:
            result = evaluator.evaluate_once(None if args.now is None else int(args.now * 1000))
            _print_result(result)
            return 1 if result.errors else 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        print(f"evaluating {len(slos)} SLO(s) and the enabled alert rules every {args.interval:g}s (Ctrl-C stops)")
        evaluator.run(stop)
        return 0
    finally:
        if handle is not None:
            handle.shutdown()
        store.close()


def _configure_telemetry(args: argparse.Namespace) -> Any:
    """The worker's own pipeline: its alert events (system.alert_fired/resolved) go into the
    store's telemetry_events like every other event; its gauges to a Prometheus endpoint."""
    import os

    import avalo_otel
    from .settings import Settings

    overrides: dict[str, Any] = {
        "service_name": "avalo-otel-evaluator", "traces_exporters": "none",
        "metrics_exporters": "prometheus" if args.metrics_port is not None else "none",
        "prometheus_port": args.metrics_port or 0,
    }
    if args.backend == "firestore":
        if args.project:  # the Firestore exporters read their project from the environment
            os.environ["AVALO_OTEL_FIRESTORE_PROJECT"] = args.project
        overrides["logs_exporters"] = "firestore"
    else:
        settings = Settings.load()
        overrides.update(logs_exporters="sqlite", store_path=args.path or settings.store_path,
                         store_prefix=args.prefix or settings.store_prefix)
    return avalo_otel.configure(**overrides)


def _print_result(result: Any) -> None:
    print(f"evaluated {len(result.values)} rule(s): {len(result.fired)} fired, {len(result.resolved)} resolved, "
          f"{len(result.renotified)} re-notified, {len(result.suppressed)} in cooldown, "
          f"{len(result.inhibited)} inhibited, {len(result.quiet)} acknowledged")
    for name in ("fired", "resolved", "errors"):
        for item in getattr(result, name):
            print(f"  {name}: {item}")


def _list(args: argparse.Namespace) -> int:
    from .alerts import get_alert_events
    from .cli import open_store

    store = open_store(args)
    try:
        acknowledged = None if args.acknowledged is None else args.acknowledged == "yes"
        events = get_alert_events(args.severity, acknowledged, args.limit, args.status, store=store)
    finally:
        store.close()
    if args.json:
        for event in events:
            print(json.dumps(event, sort_keys=True, default=str))
        return 0
    if not events:
        print("no alert events")
    for e in events:
        ack = f"acked by {e.get('acknowledgedBy')}" if e.get("acknowledged") else "unacked"
        print(f"{e['id']:<44} {e.get('severity', ''):<8} {e.get('status', ''):<8} {ack:<24} {e.get('name', '')}"
              f" value={e.get('value')} threshold={e.get('threshold')}")
    return 0


def _ack(args: argparse.Namespace) -> int:
    from .alerts import acknowledge_alert
    from .cli import open_store

    store = open_store(args)
    try:
        found = acknowledge_alert(args.alert_id, args.by, expires_minutes=args.expires_minutes, store=store)
    finally:
        store.close()
    if not found:
        print(f"avalo-otel: no alert event {args.alert_id!r}", file=sys.stderr)
        return 1
    print(f"acknowledged {args.alert_id} by {args.by}")
    return 0


def _rules(args: argparse.Namespace) -> int:
    from . import alerts
    from .cli import open_store

    store = open_store(args)
    try:
        alerts.ensure_predefined_rules(store)
        if args.action == "list":
            rules = alerts.list_alert_rules(store=store)
            if args.json:
                print(json.dumps([r.to_document() for r in rules], indent=2, sort_keys=True))
            for r in [] if args.json else rules:
                state = "enabled " if r.enabled else "disabled"
                print(f"{r.id:<28} {state} {r.severity:<8} {r.metric} {r.condition} {r.threshold:g} "
                      f"over {r.window_minutes} min, cooldown {r.cooldown_minutes} min")
            return 0
        if not args.target:
            print(f"avalo-otel: 'alerts rules {args.action}' needs a {'file' if args.action == 'set' else 'rule id'}",
                  file=sys.stderr)
            return 2
        if args.action == "set":
            for rule in _read_rules(args.target):
                print(f"set {alerts.set_alert_rule(rule, store=store).id}")
            return 0
        done = {"enable": alerts.enable_alert_rule, "disable": alerts.disable_alert_rule,
                "delete": alerts.delete_alert_rule}[args.action](args.target, store=store)
        if not done:
            print(f"avalo-otel: no alert rule {args.target!r}", file=sys.stderr)
            return 1
        print(f"{args.action}d {args.target}")
        return 0
    finally:
        store.close()


def _read_rules(target: str) -> list[Any]:
    import yaml

    from .alerts import AlertRuleError

    text = sys.stdin.read() if target == "-" else Path(target).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise AlertRuleError(f"{target}: not valid JSON or YAML: {exc}") from None
    items = data if isinstance(data, list) else [data]
    from .alerts import validate_rule

    return [validate_rule(item) for item in items]  # all valid before any is stored


def _generate(args: argparse.Namespace) -> int:
    from .slo.promrules import write_rules

    rules: Optional[list[Any]] = None
    if args.rules_from:
        from .alerts import PREDEFINED_RULES, list_alert_rules
        from .store import SQLiteStore

        if not Path(args.rules_from).is_file():
            from .settings import ConfigurationError

            raise ConfigurationError(f"no telemetry store at {args.rules_from!r}")
        with SQLiteStore(args.rules_from) as store:
            stored = {r.id: r for r in list_alert_rules(enabled=True, store=store)}
        rules = list({**{r.id: r for r in PREDEFINED_RULES}, **stored}.values())
    for path in write_rules(args.out, selected_slos(args), rules):
        print(f"wrote {path}")
    print("check them with: promtool check rules <dir>/avalo-slo-rules.yml && "
          "promtool test rules <dir>/avalo-slo-rules.test.yml")
    return 0
