"""The Starlette application: routes, templates, static files, security headers, error pages.

``create_app`` is the one way in (``avalo_otel.dashboard.create_app`` re-exports it). Pages and
fragments are in ``pages``, the JSON API in ``api``; this module wires them to one ``Context``.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Awaitable, Callable, Optional, Sequence

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..slo import SLO
from ..store.base import Store, StoreError
from ..version import __version__
from . import fmt
from .auth import Auth, Principal, same_origin
from .data import DashboardData
from .domains import TABS
from .security import SecurityHeaders

_log = logging.getLogger("avalo_otel.dashboard")
MAX_BODY = 64 * 1024
#: (path, label) of the navigation, in order.
NAV = [("/", "Overview")] + [(f"/domains/{t.slug}", t.title) for t in TABS.values()] + [
    ("/alerts", "Alerts"), ("/traces", "Traces")]


@dataclass
class Context:
    data: DashboardData
    auth: Auth
    templates: Jinja2Templates

    def principal(self, request: Request) -> Optional[Principal]:
        return self.auth.authenticate(request.headers, request.cookies)

    def render(self, request: Request, name: str, principal: Principal, status_code: int = 200,
               **context: Any) -> Response:
        context.update(principal=principal, csrf=principal.csrf, nav=NAV, now_ms=self.data.now_ms(),
                       update_problem=self.data.update_problem, version=__version__)
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)


Endpoint = Callable[..., Any]


def page(ctx: Context) -> Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]:
    """A page or fragment: the admin session (or bearer token) required, else to /login (pages) or
    401 with ``HX-Redirect`` (fragments, so htmx sends the browser to the login page)."""

    def wrap(fn: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            principal = ctx.principal(request)
            if principal is None:
                if request.headers.get("hx-request") or request.url.path.startswith("/fragments/"):
                    return Response("login required", status_code=401, headers={"HX-Redirect": "/login"},
                                    media_type="text/plain")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                from urllib.parse import quote

                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            return await _call(fn, request, principal)

        return endpoint

    return wrap


def api(ctx: Context) -> Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]:
    """A JSON endpoint: the admin session or ``Authorization: Bearer <token>``, else 401."""

    def wrap(fn: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            principal = ctx.principal(request)
            if principal is None:
                return JSONResponse({"error": "unauthorized", "detail": "log in or send Authorization: Bearer <token>"},
                                    status_code=401, headers={"WWW-Authenticate": 'Bearer realm="avalo-dashboard"'})
            return await _call(fn, request, principal)

        return endpoint

    return wrap


async def _call(fn: Endpoint, request: Request, principal: Principal) -> Response:
    """Store work runs in the thread pool (the stores block); POST bodies are read here first."""
    from starlette.concurrency import run_in_threadpool

    form = None
    if request.method == "POST":
        if not same_origin(request.headers, request.url.scheme):
            return _forbidden(request, "cross-origin request refused")
        if (request.headers.get("content-type") or "").startswith(("application/x-www-form-urlencoded",
                                                                     "multipart/form-data")):
            form = dict(await request.form())
        else:
            form = {}
            raw = await request.body()
            if raw:
                import json

                try:
                    body = json.loads(raw)
                except ValueError:
                    return JSONResponse({"error": "bad_request", "detail": "the body is not JSON"}, status_code=400)
                form = body if isinstance(body, dict) else {}
        given = form.get("csrf_token") or request.headers.get("x-csrf-token")
        if not Auth.csrf_ok(principal, given):
            return _forbidden(request, "missing or wrong CSRF token: reload the page and try again")
    return await run_in_threadpool(fn, request, principal, *([form] if form is not None else []))


def _forbidden(request: Request, detail: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "forbidden", "detail": detail}, status_code=403)
    return Response(detail, status_code=403, media_type="text/plain")


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.PackageLoader("avalo_otel.dashboard", "templates"),
                             autoescape=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(fmt.FILTERS)
    env.globals["static"] = lambda name: f"/static/{name}?v={__version__}"
    return Jinja2Templates(env=env)


def create_app(store: Store, *, slos: Optional[Sequence[SLO]] = None, admin_token: str,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The dashboard as an ASGI app over ``store``; ``slos=None`` means ``configured_slos()``."""
    from . import api as api_routes
    from . import pages

    if slos is None:
        from ..slo import configured_slos

        slos = configured_slos()
    ctx = Context(DashboardData(store, slos, clock), Auth(admin_token), _templates())
    static = StaticFiles(directory=str(resources.files("avalo_otel.dashboard").joinpath("static")))
    routes = [*pages.routes(ctx, page), *api_routes.routes(ctx, api), Mount("/static", static, name="static")]

    async def store_error(request: Request, exc: Exception) -> Response:
        _log.warning("dashboard: store error on %s: %s", request.url.path, exc)
        detail = f"The telemetry store could not be read: {exc}"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "store_unavailable", "detail": detail}, status_code=503)
        return Response(detail, status_code=503, media_type="text/plain")

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "not_found"}, status_code=404)
        return Response("not found", status_code=404, media_type="text/plain")

    app = Starlette(routes=routes, exception_handlers={StoreError: store_error, 404: not_found},
                    max_body_size=MAX_BODY)
    app.add_middleware(SecurityHeaders)
    app.state.dashboard = ctx
    return app
