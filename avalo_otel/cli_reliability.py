"""The reliability subcommands of ``avalo-otel``: ``slo report``, ``slo gate``, ``rules``,
``evaluate`` and ``alerts``. Each works on the store the exporters write (SQLite by default)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable, Optional, Sequence

from .slo.policy import CRITICAL, EXHAUSTED, INCONCLUSIVE, NO_DATA

# Exit codes of `slo gate`, for deploy pipelines.
GATE_PASS, GATE_FAIL, GATE_INCONCLUSIVE, GATE_ERROR = 0, 1, 2, 4


def add_parsers(sub: Any, store_args: Callable[[argparse.ArgumentParser], None]) -> None:
    slo = sub.add_parser("slo", help="SLO reports and the deploy gate", description="SLO reports and the deploy gate")
    slo_sub = slo.add_subparsers(dest="slo_command", required=True)
    report = slo_sub.add_parser("report", help="every SLO: SLI, status, error budget, burn rates",
                                description="Bring the SLO rollups up to date from the stored metrics, then "
                                            "print each SLO's SLI, status colour, error budget and burn rates.")
    _slo_args(report, store_args)
    report.add_argument("--view", choices=("rolling", "calendar_month"), default="rolling",
                        help="rolling window (30 days by default) or the calendar month so far")
    report.add_argument("--json", action="store_true", help="the reports as one JSON document")
    report.set_defaults(run=_report)
    gate = slo_sub.add_parser("gate", help="exit 0 pass, 1 fail (budget critical/exhausted), 2 inconclusive",
                              description="For deploy pipelines: exit 0 when every selected SLO has budget, 1 when "
                                          "one is critical (< 20%% left) or exhausted, 2 when one has no or too few "
                                          "events to judge.")
    _slo_args(gate, store_args)
    gate.add_argument("--dry-run", action="store_true", help="print the decision but always exit 0")
    gate.add_argument("--json", action="store_true", help="the decision as JSON")
    gate.set_defaults(run=_gate)


def _slo_args(p: argparse.ArgumentParser, store_args: Callable[[argparse.ArgumentParser], None]) -> None:
    store_args(p)
    p.add_argument("--slo", action="append", metavar="ID", help="only this SLO (repeatable)")
    p.add_argument("--slo-file", action="append", default=[], metavar="FILE",
                   help="SLO definitions added to the built-in ones (also AVALO_OTEL_SLO_FILES)")
    p.add_argument("--now", type=float, help=argparse.SUPPRESS)  # epoch seconds: for tests and replays


def selected_slos(args: argparse.Namespace) -> list[Any]:
    from .slo import configured_slos

    slos = configured_slos(extra_files=args.slo_file)
    if args.slo:
        known = {s.id for s in slos}
        unknown = [s for s in args.slo if s not in known]
        if unknown:
            from .settings import ConfigurationError

            raise ConfigurationError(f"unknown SLO {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        slos = [s for s in slos if s.id in args.slo]
    return slos


def _evaluate(args: argparse.Namespace, view: str = "rolling") -> list[Any]:
    from .cli import open_store
    from .slo import SLOEvaluator

    slos = selected_slos(args)
    store = open_store(args)
    try:
        now = None if args.now is None else int(args.now * 1000)
        return SLOEvaluator(store, slos).evaluate(now, view=view)
    finally:
        store.close()


def _report(args: argparse.Namespace) -> int:
    reports = _evaluate(args, args.view)
    if args.json:
        print(json.dumps({"reports": [r.to_dict() for r in reports]}, indent=2))
    else:
        print(format_table(reports))
    return 0


def pct(value: Optional[float], digits: int = 3) -> str:
    """A fraction as a percentage for the console; None as "-", infinities spelled out."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return f"{value * 100:.{digits}f}%"


def rate(value: Optional[float], suffix: str = "") -> str:
    """A burn rate for the console: None as "-", infinity as "inf"."""
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.2f}{suffix}"


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds <= 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def format_table(reports: Sequence[Any]) -> str:
    """A readable table: one line per SLO (its primary indicator), one per indicator below it."""
    windows = ("5m", "1h", "6h", "1d", "3d")
    head = (f"{'SLO / indicator':<34} {'status':<12} {'SLI':>9} {'target':>8} {'events':>9} {'budget left':>11} "
            f"{'budget':<12} " + " ".join(f"{'burn ' + w:>8}" for w in windows) + f" {'exhausts in':>11}")
    lines = [head, "-" * len(head)]
    for report in reports:
        lines.append(_row(report.slo.id, report.status, report.primary, report.budget_status, windows))
        if len(report.indicators) > 1:
            for ind in report.indicators:
                lines.append(_row("  " + ind.indicator.short_label(), ind.status, ind, ind.budget_status, windows))
        if report.budget_status not in ("healthy",):
            lines.append(f"  policy: {report.policy_action}")
    return "\n".join(lines)


def _row(name: str, status: str, ind: Any, budget: str, windows: Sequence[str]) -> str:
    rates = ind.burn_rates
    return (f"{name:<34} {status:<12} {pct(ind.sli):>9} {ind.indicator.objective:>7g}% {ind.window.total:>9.0f} "
            f"{pct(ind.budget_remaining, 1):>11} {budget:<12} " + " ".join(f"{rate(rates[w]):>8}" for w in windows)
            + f" {_duration(ind.time_to_exhaustion_s):>11}")


def gate_decision(reports: Sequence[Any]) -> tuple[int, list[str]]:
    """(exit code, reasons): fail beats inconclusive beats pass."""
    failed, unclear = [], []
    for report in reports:
        for ind in report.indicators:
            status, name = ind.budget_status, f"{report.slo.id}/{ind.indicator.id}"
            if status in (CRITICAL, EXHAUSTED):
                failed.append(f"{name}: error budget {status} ({pct(ind.budget_remaining, 1)} left; "
                              f"{ind.window.bad:.0f} bad of {ind.window.total:.0f} events)")
            elif status == NO_DATA:
                unclear.append(f"{name}: no events in the window")
            elif status == INCONCLUSIVE:
                unclear.append(f"{name}: only {ind.window.total:.0f} events (fewer than {ind.min_events})")
    if failed:
        return GATE_FAIL, failed
    if unclear:
        return GATE_INCONCLUSIVE, unclear
    return GATE_PASS, [f"{len(reports)} SLO(s) within budget"]


def _gate(args: argparse.Namespace) -> int:
    from .settings import ConfigurationError
    from .slo import SLODefinitionError
    from .store.base import StoreError

    try:
        reports = _evaluate(args)
    except (ConfigurationError, SLODefinitionError, StoreError) as exc:
        # Not 2: a pipeline must not read a broken gate as "inconclusive".
        print(f"SLO gate: error: {exc}", file=sys.stderr)
        return GATE_ERROR
    code, reasons = gate_decision(reports)
    verdict = {GATE_PASS: "pass", GATE_FAIL: "fail", GATE_INCONCLUSIVE: "inconclusive"}[code]
    if args.json:
        print(json.dumps({"decision": verdict, "exit_code": code, "reasons": reasons, "dry_run": args.dry_run}))
    else:
        print(f"SLO gate: {verdict}" + (" (dry run: exit 0)" if args.dry_run else ""))
        for reason in reasons:
            print(f"  {reason}")
    return 0 if args.dry_run else code

