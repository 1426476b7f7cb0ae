"""The JSON API behind the pages (documented in ``openapi``): the same numbers the pages show.

Every route needs the admin session or ``Authorization: Bearer <token>``; the one POST
(acknowledge) also needs the session's CSRF token when it comes with the session cookie.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..slo import CALENDAR_MONTH, ROLLING
from ..slo.history import budget_history
from .data import alert_filters
from .domains import TABS, domain_json
from .openapi import document
from .pages import HOURS, TRACE_ID
from .views import health, slo_card


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(_safe(value), status_code=status_code)


def _safe(value: Any) -> Any:
    """JSON without NaN/Infinity (which JSON has not): infinities as "inf"/"-inf", NaN as null."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value


def _error(code: str, detail: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code)


def _hours(request: Request) -> Any:
    raw = request.query_params.get("hours", "6")
    try:
        hours = int(raw)
    except ValueError:
        return None
    return hours if 1 <= hours <= 48 else None


def _view(request: Request) -> Any:
    view = request.query_params.get("view", ROLLING)
    return view if view in (ROLLING, CALENDAR_MONTH) else None


def routes(ctx: Any, api: Callable[[Any], Callable[..., Any]]) -> list[Route]:
    guard = api(ctx)

    def slos(request: Request, principal: Any) -> Response:
        view = _view(request)
        if view is None:
            return _error("bad_request", "view: rolling or calendar_month", 400)
        now = ctx.data.now_ms()
        reports = ctx.data.reports(view, force=request.query_params.get("refresh") == "1", now_ms=now)
        cards = []
        for report in reports:
            card = slo_card(report)
            card.pop("display", None)
            for ind in card["indicators"]:
                ind.pop("display", None)
            cards.append(card)
        return _json({"view": view, "generated_at_ms": now, "slos": cards, "note": ctx.data.update_problem})

    def history(request: Request, principal: Any) -> Response:
        slo = ctx.data.slo(request.path_params["slo_id"])
        view = _view(request)
        if slo is None:
            return _error("not_found", "no such SLO", 404)
        if view is None:
            return _error("bad_request", "view: rolling or calendar_month", 400)
        try:
            step = int(request.query_params.get("step_minutes", "60"))
        except ValueError:
            step = 0
        if not 1 <= step <= 1440:
            return _error("bad_request", "step_minutes: a whole number from 1 to 1440", 400)
        now = ctx.data.now_ms()
        ctx.data.refresh_rollups(now)
        return _json(budget_history(ctx.data.store, slo, now, step, view=view).to_dict())

    def health_route(request: Request, principal: Any) -> Response:
        hours = _hours(request)
        if hours is None:
            return _error("bad_request", "hours: a whole number from 1 to 48", 400)
        return _json({"hours": hours, **health(ctx.data.window(hours))["json"]})

    def domain(request: Request, principal: Any) -> Response:
        tab = TABS.get(request.path_params["tab"])
        hours = _hours(request)
        if tab is None:
            return _error("not_found", f"no such tab; tabs: {', '.join(TABS)}", 404)
        if hours is None:
            return _error("bad_request", "hours: a whole number from 1 to 48", 400)
        window = ctx.data.window(hours)
        out = domain_json(tab, window)
        out["failures"] = ctx.data.failures(tab.domains, window.start_ms)
        return _json(out)

    def alerts(request: Request, principal: Any) -> Response:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            return _error("bad_request", "limit: a whole number from 1 to 500", 400)
        filters = alert_filters(request.query_params)
        return _json({"filters": filters, "alerts": ctx.data.alerts(limit=limit, **filters)})

    def acknowledge(request: Request, principal: Any, body: dict) -> Response:
        alert_id = str(request.path_params["alert_id"])
        if ctx.data.alert(alert_id) is None:
            return _error("not_found", "no such alert", 404)
        by = principal.admin if principal.via_cookie else str(body.get("by") or "admin")
        from .auth import clean_name

        ctx.data.acknowledge(alert_id, clean_name(by))
        return _json({"acknowledged": True, "alert": ctx.data.alert(alert_id)})

    def rules(request: Request, principal: Any) -> Response:
        return _json({"rules": ctx.data.rules()})

    def trace(request: Request, principal: Any) -> Response:
        trace_id = str(request.path_params["trace_id"]).lower()
        if not TRACE_ID.match(trace_id):
            return _error("bad_request", "a trace id is 16 to 32 hexadecimal characters", 400)
        spans = ctx.data.trace(trace_id)
        if not spans:
            return _error("not_found", "no spans stored for this trace", 404)
        return _json({"trace_id": trace_id, "spans": spans})

    def openapi(request: Request, principal: Any) -> Response:
        return _json(document(list(TABS), HOURS))

    return [
        Route("/api/slos", guard(slos)),
        Route("/api/slos/{slo_id}/budget-history", guard(history)),
        Route("/api/health", guard(health_route)),
        Route("/api/domains/{tab}", guard(domain)),
        Route("/api/alerts", guard(alerts)),
        Route("/api/alerts/{alert_id:path}/ack", guard(acknowledge), methods=["POST"]),
        Route("/api/rules", guard(rules)),
        Route("/api/traces/{trace_id}", guard(trace)),
        Route("/api/openapi.json", guard(openapi)),
    ]
