"""A tiny web app for pre-fork servers launched by ``opentelemetry-instrument``: ``wsgi`` for gunicorn,
``asgi`` for uvicorn. It never configures telemetry itself (the distro did, in the parent).

``GET /hit`` records one chat message, one telemetry event (counter + latency histogram) and sets
the ``active_users`` gauge to ``?users=`` if given; every answer is JSON with the worker's pid and
the ``prometheus_url`` its handle reports. The handler blocks for a moment on purpose, so that
concurrent requests are spread over the workers (a busy worker cannot accept).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

import avalo_otel

HANDLE_S = 0.03


def _handle(path: str, query: str) -> dict[str, Any]:
    if path == "/hit":
        time.sleep(HANDLE_S)
        avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
        avalo_otel.log_telemetry("chat", "chat.send", latency_ms=40)
        users = parse_qs(query).get("users")
        if users:
            avalo_otel.set_gauge("active_users", float(users[0]), {"region": "eu-central"})
    # configure() with the same settings returns the running handle (configured by the distro).
    return {"pid": os.getpid(), "prometheus_url": avalo_otel.configure().prometheus_url}


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps(_handle(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    # Blocking on purpose (see the module docstring): this worker accepts nothing meanwhile.
    body = json.dumps(_handle(scope["path"], scope.get("query_string", b"").decode())).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
