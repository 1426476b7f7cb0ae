"""Simulated Avalo traffic through the public API: the main job of ``avalo-otel demo``.

Chat, wallet (with declined spends and rare timeouts), panic presses, AI companions (async,
with timeouts), support tickets and API requests that arrive with W3C trace headers and call
downstream services. The console shows what is exported; Prometheus serves the metrics.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable, Optional

import avalo_otel as ao


@dataclass
class DemoResult:
    operations: int
    prometheus_url: Optional[str]
    metrics_text: str


def _pause(ms: float) -> None:
    time.sleep(ms / 1000.0)


class _Traffic:
    def __init__(self, rng: random.Random, speed: float) -> None:
        self.rng = rng
        self.speed = speed  # scales simulated latencies down so a short demo still covers a lot
        self.users = [f"user-{i:04d}" for i in range(200)]

    def _user(self) -> str:
        return self.rng.choice(self.users)

    def _latency(self, median_ms: float) -> float:
        return self.rng.lognormvariate(0, 0.5) * median_ms

    def chat(self) -> None:
        user = self._user()
        with ao.time_operation("chat", "chat.send", actor_type="user", actor_id=user,
                               metadata={"messageLength": self.rng.randint(1, 400), "hasAttachments": False}):
            _pause(self._latency(40) * self.speed)
            ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
        ao.observe_latency("chat_delivery_latency_ms", self._latency(120), {"domain": "chat", "operation": "chat.send"})

    def wallet(self) -> None:
        user = self._user()
        amount = self.rng.choice([10, 25, 50, 100, 250])
        try:
            with ao.time_operation("wallet", "wallet.spend", actor_type="user", actor_id=user,
                                   metadata={"requestedAmount": amount}):
                _pause(self._latency(30) * self.speed)
                roll = self.rng.random()
                if roll < 0.04:
                    raise ao.AvaloError("INSUFFICIENT_FUNDS", "balance too low")
                if roll < 0.045:
                    raise TimeoutError("ledger did not answer")
            ao.inc_counter("wallet_tx_success_total", {"domain": "wallet", "operation": "spend"})
        except (ao.AvaloError, TimeoutError) as exc:
            code = getattr(exc, "error_code", "TIMEOUT")
            ao.inc_counter("wallet_tx_failed_total", {"domain": "wallet", "operation": "spend", "errorCode": code})
        ao.observe_latency("wallet_tx_latency_ms", self._latency(180), {"domain": "wallet", "operation": "spend"})

    def panic(self) -> None:
        press = ao.start_trace("safety.panic_press", attributes={"avalo.domain": "safety"})
        ao.inc_counter("panic_events_total", {"domain": "safety", "operation": "panic_press"})
        latency = self._latency(600)
        ao.time_operation("safety", "safety.panic_process", lambda: _pause(latency * self.speed), parent=press)
        ao.observe_latency("panic_processing_latency_ms", latency, {"domain": "safety"})
        ao.end_trace(press, success=True)

    async def ai(self) -> None:
        ao.inc_counter("ai_requests_total", {"domain": "ai", "operation": "request", "model": "companion-v2"})
        try:
            async with ao.time_operation("ai", "ai.request", actor_type="user", actor_id=self._user()):
                latency = self._latency(900)
                if self.rng.random() < 0.02:
                    raise asyncio.TimeoutError()
                await asyncio.sleep(latency * self.speed / 1000)
            ao.observe_latency("ai_response_latency_ms", latency, {"domain": "ai", "model": "companion-v2"})
        except asyncio.TimeoutError:
            ao.inc_counter("ai_failures_total", {"domain": "ai", "errorCode": "TIMEOUT"})

    def support(self) -> None:
        ao.log_success("support", "support.ticket_create", actor_type="user", actor_id=self._user(),
                       latency_ms=self._latency(150), metadata={"category": "billing"})
        ao.inc_counter("support_tickets_created_total", {"domain": "support", "category": "billing"})

    def api_request(self) -> None:
        # An upstream gateway sent W3C headers; the request continues its trace and calls on.
        upstream = ao.inject_trace_into_headers(ao.start_trace("api.request"))
        parent = ao.extract_trace_from_headers(upstream)
        status = 500 if self.rng.random() < 0.005 else 200
        route = self.rng.choice(["/v1/profile", "/v1/feed", "/v1/matches"])
        with ao.time_operation("api", "api.request", parent=parent) as op:
            ao.inject_trace_into_headers(op.trace)  # what a downstream call would carry
            _pause(self._latency(25) * self.speed)
            if status >= 500:
                op.fail("UNAVAILABLE")
        labels = {"domain": "api", "route": route, "method": "GET", "status": str(status)}
        ao.inc_counter("api_requests_total", labels)
        if status >= 400:
            ao.inc_counter("api_http_errors_total", labels)
        ao.observe_latency("api_latency_ms", self._latency(80), {"domain": "api", "route": route, "method": "GET"})


def run(duration_s: float = 15.0, rate_per_s: float = 25.0, seed: int = 7, speed: float = 0.05,
        on_tick: Optional[Callable[[int], None]] = None) -> int:
    """Drive traffic through the configured API for ``duration_s``; returns the operation count."""
    rng = random.Random(seed)
    traffic = _Traffic(rng, speed)
    sync_steps = [traffic.chat] * 5 + [traffic.wallet] * 3 + [traffic.api_request] * 3 + [traffic.support, traffic.panic]
    loop = asyncio.new_event_loop()
    done = 0
    deadline = time.monotonic() + duration_s
    try:
        while time.monotonic() < deadline:
            started = time.monotonic()
            if rng.random() < 0.15:
                loop.run_until_complete(traffic.ai())
            else:
                rng.choice(sync_steps)()
            done += 1
            if done % 50 == 0:
                ao.set_gauge("active_users", rng.randint(900, 1400), {"region": "eu-central"})
                ao.set_gauge("active_chats", rng.randint(100, 300), {"region": "eu-central"})
                if on_tick:
                    on_tick(done)
            time.sleep(max(0.0, 1.0 / rate_per_s - (time.monotonic() - started)))
    finally:
        loop.close()
    return done


def scrape(url: Optional[str]) -> str:
    if not url:
        return ""
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
