"""The domain tabs of the original design, each from one recent metric window.

Chat & Realtime, Wallet & Payments, Safety & Panic, AI & Support and Infrastructure: KPIs, charts
and tables over ``avalo_operations_total`` (by outcome) and ``avalo_operation_latency_ms``, the two
metrics every event records (never sampled), plus the tab's recent failed events with links to
their traces. Reference lines are the SLO thresholds and the predefined alert rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import fmt
from .metrics import MetricWindow, everything, in_domains, in_operations
from .views import (
    error_rate_chart, group_latency_chart, kpi, latency_chart, operations_table, stacked_chart, success_chart,
    volume_chart, window_hours,
)


@dataclass(frozen=True)
class Tab:
    slug: str
    title: str
    domains: tuple[str, ...]
    build: Callable[[MetricWindow], dict[str, Any]]


def _p(window: MetricWindow, select: Any, q: float) -> Any:
    return window.latency_total(select).quantile(q)


def _chat(w: MetricWindow) -> dict[str, Any]:
    chat, send = in_domains("chat"), in_operations("chat.send")
    delivery = in_operations("chat.send", "chat.deliver")
    sent, all_chat = w.counts(send), w.counts(chat)
    return {
        "kpis": [kpi("Messages sent", fmt.count(sent.total), f"last {window_hours(w)} h"),
                 kpi("Delivery P95", fmt.ms(_p(w, delivery, 0.95)), "SLO: 95% within 300 ms",
                     _latency_class(_p(w, delivery, 0.95), 300, 500)),
                 kpi("Error rate", fmt.pct(all_chat.error_rate), "server errors, all chat operations",
                     fmt.rate_class(all_chat.error_rate, 0.005, 0.02)),
                 kpi("Client errors", fmt.count(all_chat.client_errors), "rejected sends, blocked content")],
        "charts": [volume_chart(w, send, "Message volume", "messages"),
                   latency_chart(w, delivery, "Delivery latency (chat.send, chat.deliver)",
                                 refs=[(300, "300 ms SLO", "ref-warn"), (500, "500 ms", "ref-bad")]),
                   error_rate_chart(w, chat, "Chat error rate", refs=[(0.02, "2% alert", "ref-bad")])],
        "tables": [operations_table(w, chat, "Chat operations")],
    }


def _wallet(w: MetricWindow) -> dict[str, Any]:
    wallet = in_domains("wallet")
    money = in_operations("wallet.spend", "wallet.refund", "wallet.payout_request")
    counts = w.counts(wallet)
    return {
        "kpis": [kpi("Transactions", fmt.count(counts.total), f"last {window_hours(w)} h"),
                 kpi("Success rate", fmt.pct(counts.success_rate), "without any error"),
                 kpi("Server-error rate", fmt.pct(w.counts(money).error_rate, 3), "spend/refund/payout · SLO 0.2%",
                     fmt.rate_class(w.counts(money).error_rate, 0.002, 0.005)),
                 kpi("Latency P95", fmt.ms(_p(w, wallet, 0.95)), f"P99 {fmt.ms(_p(w, wallet, 0.99))}")],
        "charts": [stacked_chart(w, w.group(lambda k: k[1], wallet), "Transaction volume by operation",
                                 "transactions"),
                   success_chart(w, wallet, "Success rate", refs=[(0.998, "99.8% SLO", "ref-warn")]),
                   latency_chart(w, wallet, "Transaction latency")],
        "tables": [operations_table(w, wallet, "Wallet operations")],
    }


def _safety(w: MetricWindow) -> dict[str, Any]:
    safety = in_domains("safety")
    panic = in_operations("safety.panic_press", "safety.panic_process")
    presses = w.counts(in_operations("safety.panic_press"))
    panic_counts = w.counts(panic)
    return {
        "kpis": [kpi("Panic presses", fmt.count(presses.total), f"last {window_hours(w)} h"),
                 kpi("Processing P95", fmt.ms(_p(w, panic, 0.95)), "SLO: 95% within 2 s",
                     _latency_class(_p(w, panic, 0.95), 2000, 5000)),
                 kpi("Processing P99", fmt.ms(_p(w, panic, 0.99)), "99.9% within 5 s",
                     _latency_class(_p(w, panic, 0.99), 5000, 5000)),
                 kpi("Failed panic events", fmt.count(panic_counts.server_errors), "zero tolerance",
                     "bad" if panic_counts.server_errors else ("ok" if panic_counts.total else ""))],
        "charts": [stacked_chart(w, w.group(lambda k: k[1], panic), "Panic events", "events"),
                   latency_chart(w, panic, "Panic processing latency",
                                 refs=[(2000, "2 s SLO", "ref-warn"), (5000, "5 s", "ref-bad")]),
                   error_rate_chart(w, safety, "Safety error rate")],
        "tables": [operations_table(w, safety, "Safety operations")],
    }


def _ai_support(w: MetricWindow) -> dict[str, Any]:
    ai, support = in_domains("ai"), in_domains("support")
    ai_counts = w.counts(ai)
    tickets = w.counts(in_operations("support.ticket_create"))
    return {
        "kpis": [kpi("AI requests", fmt.count(w.counts(in_operations("ai.request")).total), f"last {window_hours(w)} h"),
                 kpi("AI success", fmt.pct(None if ai_counts.error_rate is None else 1 - ai_counts.error_rate, 2),
                     "without failures or timeouts · SLO 99%", fmt.rate_class(ai_counts.error_rate, 0.005, 0.01)),
                 kpi("AI response P95", fmt.ms(_p(w, ai, 0.95)), "SLO: 95% within 2.5 s",
                     _latency_class(_p(w, ai, 0.95), 2500, 5000)),
                 kpi("Support tickets", fmt.count(tickets.total), "created")],
        "charts": [volume_chart(w, ai, "AI request volume", "requests"),
                   success_chart(w, ai, "AI success rate", refs=[(0.99, "99% SLO", "ref-warn")]),
                   stacked_chart(w, w.group(lambda k: k[1], support), "Support tickets", "events")],
        "tables": [operations_table(w, ai, "AI operations"), operations_table(w, support, "Support operations")],
    }


def _infrastructure(w: MetricWindow) -> dict[str, Any]:
    api = in_domains("api")
    counts = w.counts(api)
    # A region label where the points have one; the service for points without it.
    by = (lambda k: k[2] or f"{k[3]} (no region)") if w.has_region else (lambda k: k[3])
    what = "region" if w.has_region else "service"
    groups = w.group(by, everything)
    named = sorted({k[2] for k in w.keys(everything) if k[2]}) if w.has_region else list(groups)
    return {
        "kpis": [kpi("API requests", fmt.count(counts.total), f"last {window_hours(w)} h"),
                 kpi("API error rate", fmt.pct(counts.error_rate, 2), "5xx · SLO at most 1%",
                     fmt.rate_class(counts.error_rate, 0.01, 0.03)),
                 kpi("API latency P95", fmt.ms(_p(w, api, 0.95)), f"P99 {fmt.ms(_p(w, api, 0.99))}"),
                 kpi(f"{what.capitalize()}s reporting", str(len(named)), ", ".join(named[:4]) or "none")],
        "charts": [error_rate_chart(w, api, "API error rate",
                                    refs=[(0.01, "1% SLO", "ref-warn"), (0.03, "3% alert", "ref-bad")]),
                   group_latency_chart(w, groups, f"Latency P95 by {what}"),
                   stacked_chart(w, groups, f"Request volume by {what}", "events")],
        "tables": [operations_table(w, everything, "Slowest operations (by P95)", limit=10, by_p95=True),
                   _groups_table(w, groups, what)],
        "group_by": what,
    }


def _groups_table(w: MetricWindow, groups: dict[str, Any], what: str) -> dict[str, Any]:
    rows = []
    for name, select in groups.items():
        counts, latency = w.counts(select), w.latency_total(select)
        rows.append({"operation": name, "domain": what, "events": counts.total,
                     "client_errors": counts.client_errors, "server_errors": counts.server_errors,
                     "error_rate": counts.error_rate, "p50_ms": latency.quantile(0.5),
                     "p95_ms": latency.quantile(0.95), "p99_ms": latency.quantile(0.99)})
    return {"title": f"By {what}", "rows": rows, "first_column": what}


def _latency_class(value: Any, warn: float, bad: float) -> str:
    v = fmt.number(value)
    if v is None:
        return ""
    return "bad" if v > bad else "warn" if v > warn else "ok"


TABS: dict[str, Tab] = {t.slug: t for t in (
    Tab("chat", "Chat & Realtime", ("chat",), _chat),
    Tab("wallet", "Wallet & Payments", ("wallet",), _wallet),
    Tab("safety", "Safety & Panic", ("safety",), _safety),
    Tab("ai-support", "AI & Support", ("ai", "support"), _ai_support),
    Tab("infrastructure", "Infrastructure", ("api",), _infrastructure),
)}


def domain_view(tab: Tab, window: MetricWindow) -> dict[str, Any]:
    view = tab.build(window)
    mine = everything if tab.slug == "infrastructure" else in_domains(*tab.domains)
    view.update(slug=tab.slug, title=tab.title, empty=not window.keys(mine))
    return view


def domain_json(tab: Tab, window: MetricWindow) -> dict[str, Any]:
    """The tab's numbers for /api/domains/<tab>: KPIs, per-operation tables and the time series."""
    from .views import series_json

    view = tab.build(window)
    return {"tab": tab.slug, "title": tab.title, "domains": list(tab.domains),
            "start_ms": window.start_ms, "end_ms": window.end_ms, "step_ms": window.step_ms,
            "kpis": view["kpis"], "tables": view["tables"],
            "series": series_json(window, in_domains(*tab.domains))}
