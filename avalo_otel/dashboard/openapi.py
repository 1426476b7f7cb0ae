"""The OpenAPI 3.1 document of the dashboard's JSON API (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any, Sequence

from ..version import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _get(summary: str, description: str, params: Sequence[dict[str, Any]] = (),
         responses: Sequence[int] = (400,)) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": summary, "description": description, "parameters": list(params),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": {"description": "no admin session or bearer token",
                              "content": {"application/json": {"schema": _ERROR}}}},
    }
    for code in responses:
        out["responses"][str(code)] = {"description": {400: "invalid parameter", 403: "CSRF or origin check failed",
                                                        404: "not found", 503: "store unavailable"}[code],
                                       "content": {"application/json": {"schema": _ERROR}}}
    out["responses"]["503"] = {"description": "the store could not be read",
                               "content": {"application/json": {"schema": _ERROR}}}
    return out


def _q(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _p(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def document(tabs: Sequence[str], hours: Sequence[int]) -> dict[str, Any]:
    view = _q("view", "rolling window (default) or the calendar month so far",
              {"type": "string", "enum": ["rolling", "calendar_month"], "default": "rolling"})
    hours_param = _q("hours", f"how many recent hours (1 to 48; the pages offer {', '.join(map(str, hours))})",
                     {"type": "integer", "minimum": 1, "maximum": 48, "default": 6})
    paths = {
        "/api/slos": {"get": _get(
            "Every SLO's report", "SLI, status colour, error budget, burn rates per window and time to exhaustion "
            "for each SLO and indicator (as `avalo-otel slo report --json`), plus the SLI target. Infinite burn "
            "rates are the string \"inf\". `refresh=1` brings the SLO rollups up to date first.",
            [view, _q("refresh", "1: update the rollups now", {"type": "string", "enum": ["1"]})])},
        "/api/slos/{slo_id}/budget-history": {"get": _get(
            "Error budget remaining through the window", "Per indicator, the fraction of the window's error budget "
            "left at each step (null: no events), and the ideal even burn from 1 to 0.",
            [_p("slo_id", "an SLO id, e.g. slo_chat_delivery", {"type": "string"}), view,
             _q("step_minutes", "minutes between points", {"type": "integer", "minimum": 1, "maximum": 1440,
                                                           "default": 60})], (400, 404))},
        "/api/health": {"get": _get(
            "System health", "Request count and rate, server/client errors, error rate and latency percentiles "
            "(P50/P95/P99, interpolated within histogram buckets) of all user traffic, overall and per bucket.",
            [hours_param])},
        "/api/domains/{tab}": {"get": _get(
            "A domain tab's numbers", "The tab's KPIs, per-operation tables, time series and recent failed events.",
            [_p("tab", "the tab", {"type": "string", "enum": list(tabs)}), hours_param], (400, 404))},
        "/api/alerts": {"get": _get(
            "Alert events, newest first", "Stored alert events, filtered.",
            [_q("severity", "only this severity", {"type": "string", "enum": ["INFO", "WARN", "ERROR", "CRITICAL"]}),
             _q("acknowledged", "true or false", {"type": "boolean"}),
             _q("status", "firing (active) or resolved", {"type": "string", "enum": ["firing", "resolved"]}),
             _q("limit", "at most this many", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50})])},
        "/api/alerts/{alert_id}/ack": {"post": {
            **_get("Acknowledge an alert", "Records who acknowledged it and when. With the session cookie the "
                   "request must carry the session's CSRF token (header X-CSRF-Token or form field csrf_token); the "
                   "session's admin name is recorded. With a bearer token, `by` in the JSON body names the admin "
                   "(default \"admin\").", [_p("alert_id", "the alert event id, e.g. chat_error_rate_high:3",
                                               {"type": "string"})], (403, 404)),
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"by": {"type": "string", "maxLength": 64}}}}}}}},
        "/api/rules": {"get": _get("Alert rules", "The stored alert rules with their enabled state.", (), ())},
        "/api/traces/{trace_id}": {"get": _get(
            "A trace's spans", "Every stored span of the trace, oldest first (documents of the traces collection).",
            [_p("trace_id", "32 hexadecimal characters", {"type": "string", "pattern": "^[0-9a-fA-F]{16,32}$"})],
            (400, 404))},
        "/api/openapi.json": {"get": _get("This document", "The OpenAPI description of the dashboard's API.", (), ())},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Avalo reliability dashboard API", "version": __version__,
                 "description": "The JSON behind the admin dashboard's pages. Every route needs the admin session "
                                "cookie (log in at /login) or `Authorization: Bearer <admin token>`."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "avalo_dashboard_session"}},
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}},
        },
        "paths": paths,
    }
