"""What the demo prints at the end: the traffic, the SLOs, the alerts, the served series, the store."""

from __future__ import annotations

from typing import Any, Optional

from .cli_reliability import pct, rate

_SERIES = ("avalo_slo_error_budget_remaining_ratio", "avalo_slo_sli")


def _pct(value: Optional[float]) -> str:
    return pct(value, 1)


def _rate(value: Optional[float]) -> str:
    return rate(value, "x")


def print_summary(demo: Any, store: Any, where: str, clock: Any, pipeline: Any, loop: Any, history: Any) -> None:
    from .demo import scrape, sim_time

    say = demo.say
    traffic = getattr(demo, "traffic", None)
    if traffic is not None:
        s = traffic.stats
        domains = ", ".join(f"{d} {n[0]:,}" for d, n in sorted(s.by_domain.items()))
        say(f"traffic: {s.operations:,} operations, {s.errors:,} errors ({s.server_errors:,} server-side, "
            f"{s.client_errors:,} client-side){f', {s.shed:,} shed' if s.shed else ''}: {domains}")
    now = clock.now_ms()
    reports = loop.slo.last_reports
    if reports:
        say(f"SLOs over the rolling {reports[0].slo.window_days} days, at sim {sim_time(now)}:")
        for r in reports:
            p = r.primary
            say(f"  {r.slo.id:<24} {r.status:<12} budget left {_pct(p.budget_remaining):>7}  "
                f"burn 1h {_rate(p.burn_rates.get('1h')):>7}  ({p.indicator.id}, {r.budget_status})")
    events = store.query_alert_events(limit=1000)
    live = [e for e in events if int(e.get("timestamp") or 0) >= clock.sim_start_ms]
    past = len(events) - len(live)
    firing = [e for e in live if e.get("status") == "firing"]
    say(f"alerts: {len(live)} fired during the run, {len(live) - len(firing)} of them resolved, "
        f"{len(firing)} still firing; {past} in the history")
    for e in sorted(live, key=lambda e: int(e.get("timestamp") or 0)):
        resolved = f"resolved {sim_time(int(e['resolvedAt']))[11:16]}" if e.get("resolvedAt") else "firing"
        say(f"  {str(e.get('id')):<52} {str(e.get('severity')):<8} fired {sim_time(int(e['timestamp']))[11:16]}, "
            f"{resolved}  ({e.get('name')})")
    url = pipeline.prometheus_url
    if url:
        try:
            text = scrape(url)
        except OSError as exc:
            say(f"Prometheus: {url} did not answer: {exc}")
        else:
            ops = [line for line in text.splitlines() if line.startswith("avalo_operations_total{")]
            total = sum(float(line.rsplit(" ", 1)[1]) for line in ops)
            say(f"Prometheus {url}: avalo_operations_total {total:,.0f} in {len(ops)} series; the SLO gauges:")
            for line in text.splitlines():
                if line.startswith(_SERIES):
                    say("  " + line)
    n_events = len(store.query_events(limit=10_000_000))
    n_spans = len(store.query_traces(limit=10_000_000))
    points = (history.points if history is not None else 0) + pipeline.restamp.points
    say(f"stored: {n_events:,} telemetry events, {n_spans:,} spans, {points:,} metric points "
        f"({history.points if history is not None else 0:,} history), {len(events):,} alert events")
    say(f"  in {where}")
    if "SQLite" in where:
        path = store.path
        say(f"  look again: avalo-otel slo report --path {path}  |  avalo-otel alerts list --path {path}"
            f"  |  avalo-otel dashboard --path {path}")
