"""The HTML pages and their htmx fragments: login, overview, domain tabs, alerts, traces.

A page renders its fragment inline; the fragment's own route serves the same markup to htmx for
the 60-second refresh and the refresh button (``?refresh=1`` also brings the SLO rollups up to
date at once). Templates escape everything; nothing from the store is ever marked safe.
"""

from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..slo import CALENDAR_MONTH, ROLLING
from .auth import COOKIE, SESSION_TTL_S
from .data import SEVERITIES, STATUSES, alert_filters
from .domains import TABS, domain_view
from .views import budget_chart, burn_chart, health, slo_card

HOURS = (1, 6, 24)
TRACE_ID = re.compile(r"^[0-9a-f]{16,32}$")


def _hours(request: Request) -> int:
    try:
        value = int(request.query_params.get("hours", "6"))
    except ValueError:
        value = 6
    return value if value in HOURS else 6


def _view(request: Request) -> str:
    return CALENDAR_MONTH if request.query_params.get("view") == CALENDAR_MONTH else ROLLING


def _forced(request: Request) -> bool:
    return request.query_params.get("refresh") == "1"


def _safe_next(raw: Any) -> str:
    """Only a local path is a place to go after login (never another site: ``//host``, ``\\``)."""
    text = str(raw or "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text or any(ord(c) < 32 for c in text):
        return "/"
    return text


def routes(ctx: Any, page: Callable[[Any], Callable[..., Any]]) -> list[Route]:
    guard = page(ctx)

    # -- login --------------------------------------------------------------------------------
    async def login_form(request: Request) -> Response:
        return ctx.templates.TemplateResponse(request, "login.html", {
            "error": None, "next": _safe_next(request.query_params.get("next")), "name": ""})

    async def login(request: Request) -> Response:
        from .auth import same_origin

        client = request.client.host if request.client else "unknown"
        form = await request.form()
        target = _safe_next(form.get("next"))
        name = str(form.get("name") or "")[:64]
        if not same_origin(request.headers, request.url.scheme):
            return Response("cross-origin login refused", status_code=403, media_type="text/plain")
        if ctx.auth.throttled(client):
            return ctx.templates.TemplateResponse(request, "login.html", {
                "error": "Too many failed attempts: wait a minute and try again.", "next": target, "name": name},
                status_code=429)
        session = ctx.auth.login(client, str(form.get("token") or ""), name)
        if session is None:
            return ctx.templates.TemplateResponse(request, "login.html", {
                "error": "That token is not the dashboard's admin token.", "next": target, "name": name},
                status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session.id, max_age=SESSION_TTL_S, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    def logout(request: Request, principal: Any, form: dict) -> Response:
        ctx.auth.logout(principal.session.id if principal.session else None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- overview -----------------------------------------------------------------------------
    def overview_context(request: Request) -> dict[str, Any]:
        view, hours = _view(request), _hours(request)
        now = ctx.data.now_ms()
        reports = ctx.data.reports(view, force=_forced(request), now_ms=now)
        histories = ctx.data.histories(view, now_ms=now)
        cards = [slo_card(r) for r in reports]
        budget = [{"card": card, "chart": budget_chart(histories[r.slo.id], r), "burn": burn_chart(card)}
                  for card, r in zip(cards, reports)]
        windows = list(cards[0]["burn_rates"]) if cards else []
        query = urlencode({"view": view, "hours": hours})
        return {"cards": cards, "budget": budget, "windows": windows, "health": health(ctx.data.window(hours, now)),
                "view": view, "hours": hours, "hours_choices": HOURS, "query": query,
                "fragment_url": f"/fragments/overview?{query}", "updated_ms": now}

    def overview(request: Request, principal: Any) -> Response:
        return ctx.render(request, "overview.html", principal, active="/", title="Overview",
                          **overview_context(request))

    def overview_fragment(request: Request, principal: Any) -> Response:
        return ctx.render(request, "_overview.html", principal, **overview_context(request))

    # -- domain tabs --------------------------------------------------------------------------
    def domain_context(request: Request) -> dict[str, Any]:
        tab = TABS.get(request.path_params["tab"])
        if tab is None:
            return {}
        hours = _hours(request)
        window = ctx.data.window(hours)
        if _forced(request):
            ctx.data.refresh_rollups(ctx.data.now_ms(), force=True)
        return {"tab": domain_view(tab, window), "hours": hours, "hours_choices": HOURS,
                "failures": ctx.data.failures(tab.domains, window.start_ms),
                "fragment_url": f"/fragments/domains/{tab.slug}?hours={hours}", "updated_ms": ctx.data.now_ms()}

    def domain(request: Request, principal: Any) -> Response:
        context = domain_context(request)
        if not context:
            return Response("no such tab", status_code=404, media_type="text/plain")
        return ctx.render(request, "domain.html", principal, active=f"/domains/{context['tab']['slug']}",
                          title=context["tab"]["title"], **context)

    def domain_fragment(request: Request, principal: Any) -> Response:
        context = domain_context(request)
        if not context:
            return Response("no such tab", status_code=404, media_type="text/plain")
        return ctx.render(request, "_domain.html", principal, **context)

    # -- alerts -------------------------------------------------------------------------------
    def alerts_context(params: Any, message: str = "") -> dict[str, Any]:
        filters = alert_filters(params)
        query = urlencode({k: ("true" if v is True else "false" if v is False else v)
                           for k, v in filters.items() if v is not None})
        return {"alerts": ctx.data.alerts(**filters), "rules": ctx.data.rules(), "filters": filters,
                "severities": SEVERITIES, "statuses": STATUSES, "message": message, "query": query,
                "fragment_url": f"/fragments/alerts?{query}", "updated_ms": ctx.data.now_ms()}

    def alerts(request: Request, principal: Any) -> Response:
        return ctx.render(request, "alerts.html", principal, active="/alerts", title="Alerts",
                          **alerts_context(request.query_params))

    def alerts_fragment(request: Request, principal: Any) -> Response:
        return ctx.render(request, "_alerts.html", principal, **alerts_context(request.query_params))

    def acknowledge(request: Request, principal: Any, form: dict) -> Response:
        alert_id = str(form.get("alert_id") or "")
        found = ctx.data.alert(alert_id)
        if found is None:
            message, status = "No such alert.", 404
        else:
            ctx.data.acknowledge(alert_id, principal.admin)
            message, status = f"Acknowledged {found.get('name') or alert_id} as {principal.admin}.", 200
        filters = {k: form.get(k) for k in ("severity", "acknowledged", "status") if form.get(k)}
        if request.headers.get("hx-request"):
            return ctx.render(request, "_alerts.html", principal, status_code=status,
                              **alerts_context(filters, message))
        return RedirectResponse("/alerts" + (f"?{urlencode(filters)}" if filters else ""), status_code=303)

    # -- traces -------------------------------------------------------------------------------
    def traces(request: Request, principal: Any) -> Response:
        from .charts import waterfall

        raw = (request.path_params.get("trace_id") or request.query_params.get("trace_id") or "").strip().lower()
        spans, problem = [], ""
        if raw and not TRACE_ID.match(raw):
            problem = "A trace id is 32 hexadecimal characters (16 to 32 accepted)."
        elif raw:
            spans = ctx.data.trace(raw)
            if not spans:
                problem = "No spans stored for this trace (traces are kept 30 days; sampled-out traces are not stored)."
        failures = ctx.data.failures((), ctx.data.now_ms() - 24 * 3_600_000, limit=20)
        return ctx.render(request, "traces.html", principal, active="/traces", title="Traces", trace_id=raw,
                          spans=spans, waterfall=waterfall(spans) if spans else None, problem=problem,
                          failures=failures, fragment_url="", updated_ms=ctx.data.now_ms())

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", guard(logout), methods=["POST"]),
        Route("/", guard(overview)),
        Route("/fragments/overview", guard(overview_fragment)),
        Route("/domains/{tab}", guard(domain)),
        Route("/fragments/domains/{tab}", guard(domain_fragment)),
        Route("/alerts", guard(alerts)),
        Route("/fragments/alerts", guard(alerts_fragment)),
        Route("/alerts/ack", guard(acknowledge), methods=["POST"]),
        Route("/traces", guard(traces)),
        Route("/traces/{trace_id}", guard(traces)),
    ]
