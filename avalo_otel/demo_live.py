"""The demo's live traffic: samples of ``demo_model`` performed through the public API only.

Requests arrive as a Poisson process at ``rate`` per wall second (times the time of day's traffic
curve) and run concurrently, each on a worker thread (AI requests as tasks on an asyncio loop),
taking as long as the model says they do: ``time_operation`` measures real latencies. What each
kind of request uses:

- chat.send: ``time_operation`` (with a ``trace_operation`` child for the delivery fan-out), a
  ``TimeoutError`` or ``ConnectionError`` when the broker fails, ``op.fail`` for blocked content;
- wallet: ``time_operation``; ``AvaloError("INSUFFICIENT_FUNDS")`` raised, ``op.fail("PAYMENT_DECLINED")``;
- panic: a press span with its processing as a child, both timed;
- AI companions: ``async with time_operation`` on the event loop;
- public API: a gateway trace passed on in W3C headers (``inject``/``extract``), per route and region;
- support, chat reads, safety reports and logins: ``log_telemetry`` with their latencies;
- and the domain counters and histograms (``inc_counter``/``observe_latency``), the
  ``active_users``/``active_chats`` gauges per region (``set_gauge``).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

import avalo_otel as ao

from .demo_model import NORMAL, REGIONS, Conditions, Sample, TrafficModel, active_users, diurnal
from .demo_model import domain_records, is_server_error

#: Pending requests beyond which arrivals are shed (a machine too slow for the rate).
MAX_IN_FLIGHT = 400


@dataclass
class LiveStats:
    operations: int = 0
    client_errors: int = 0
    server_errors: int = 0
    shed: int = 0
    by_domain: dict[str, list[int]] = field(default_factory=dict)  # domain → [events, failed]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, s: Sample) -> None:
        events = 2 if s.kind == "panic" else 1  # a press and its processing
        with self._lock:
            self.operations += events
            entry = self.by_domain.setdefault(s.domain, [0, 0])
            entry[0] += events
            if s.error_code is not None:
                entry[1] += 1
                if is_server_error(s.error_code):
                    self.server_errors += 1
                else:
                    self.client_errors += 1

    @property
    def errors(self) -> int:
        return self.client_errors + self.server_errors


def _sleep_ms(ms: float) -> None:
    time.sleep(ms / 1000.0)


def _raise_for(code: str) -> None:
    """How a failing dependency shows up in code: the exception ``time_operation`` maps."""
    if code == "TIMEOUT":
        raise TimeoutError("the dependency did not answer in time")
    if code == "UNAVAILABLE":
        raise ConnectionError("the dependency refused the connection")
    raise ao.AvaloError(code, "the dependency failed")


class LiveTraffic:
    def __init__(self, *, rate: float, seed: int, clock_ms: Callable[[], int],
                 conditions: Callable[[float], Conditions], model: Optional[TrafficModel] = None,
                 workers: int = 64) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.model = model or TrafficModel()
        self.clock_ms = clock_ms          # simulated now, for the traffic curve
        self.conditions = conditions      # elapsed wall seconds → what is going wrong
        self.stats = LiveStats()
        self.users = [f"user-{i:04d}" for i in range(400)]
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="avalo-demo-traffic")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="avalo-demo-ai", daemon=True)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._sessions: dict[int, str] = {}

    # -- driving -------------------------------------------------------------------------------
    def run(self, duration_s: float, stop: threading.Event, on_tick: Callable[[], None] = lambda: None) -> None:
        """Arrivals for ``duration_s`` wall seconds (or until ``stop``); then waits for the
        requests in flight."""
        self._loop_thread.start()
        started = time.monotonic()
        next_arrival = started
        next_gauges = started
        try:
            while not stop.is_set():
                now = time.monotonic()
                elapsed = now - started
                if elapsed >= duration_s:
                    break
                if now >= next_gauges:
                    self._gauges()
                    on_tick()
                    next_gauges = now + 1.0
                cond = self.conditions(elapsed)
                rate = max(0.5, self.rate * diurnal(self.clock_ms()))
                next_arrival += self.rng.expovariate(rate)
                wait = next_arrival - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    break
                self._submit(self.model.draw(self.rng, cond), self._user())
        finally:
            self.drain()

    def drain(self, timeout_s: float = 8.0) -> None:
        """Let the requests in flight finish (at most ``timeout_s``: the longest takes 6 s), then
        stop the workers; AI requests still running are cancelled (recorded as CANCELLED)."""
        deadline = time.monotonic() + timeout_s
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._loop.is_running():
            def cancel_and_stop() -> None:
                tasks = asyncio.all_tasks(self._loop)
                for task in tasks:
                    task.cancel()
                asyncio.gather(*tasks, return_exceptions=True).add_done_callback(lambda _: self._loop.stop())
                if not tasks:
                    self._loop.stop()

            self._loop.call_soon_threadsafe(cancel_and_stop)
            self._loop_thread.join(timeout=2)

    def _user(self) -> tuple[str, str]:
        index = self.rng.randrange(len(self.users))
        session = self._sessions.get(index)
        if session is None or self.rng.random() < 0.02:  # sessions end now and then
            session = self._sessions[index] = f"s-{self.rng.getrandbits(48):012x}"
        return self.users[index], session

    def _submit(self, s: Sample, who: tuple[str, str]) -> None:
        with self._lock:
            if self._in_flight >= MAX_IN_FLIGHT:
                self.stats.shed += 1
                return
            self._in_flight += 1
        if s.kind == "ai":
            asyncio.run_coroutine_threadsafe(self._ai(s, who), self._loop)
        else:
            self._pool.submit(self._perform, s, who)

    def _done(self, s: Sample) -> None:
        self.stats.count(s)
        for name, kind, labels, value in domain_records(s):
            if kind == "counter":
                ao.inc_counter(name, dict(labels), value=value)
            else:
                ao.observe_latency(name, value, dict(labels))
        with self._lock:
            self._in_flight -= 1

    def _perform(self, s: Sample, who: tuple[str, str]) -> None:
        try:
            getattr(self, f"_{s.kind}")(s, *who)
        except (ao.AvaloError, TimeoutError, ConnectionError):
            pass  # recorded by time_operation, as a caller would see it raised
        finally:
            self._done(s)

    def _gauges(self) -> None:
        now = self.clock_ms()
        for region, share, _ in REGIONS:
            users = active_users(now, share, self.rng)
            ao.set_gauge("active_users", users, {"region": region})
            ao.set_gauge("active_chats", int(users * self.rng.uniform(0.16, 0.2)), {"region": region})

    # -- the kinds of request ------------------------------------------------------------------
    def _chat_send(self, s: Sample, user: str, session: str) -> None:
        metadata = {"messageLength": s.extra["messageLength"], "messageType": s.extra["messageType"]}
        with ao.time_operation("chat", ao.Op.CHAT_SEND, actor_type="user", actor_id=user, session_id=session,
                               metadata=metadata) as op:
            if s.error_code in ("TIMEOUT", "UNAVAILABLE"):
                _sleep_ms(s.latency_ms)
                _raise_for(s.error_code)
            _sleep_ms(s.latency_ms * 0.7)
            if s.error_code is not None:
                op.fail(s.error_code)  # CONTENT_BLOCKED, RATE_LIMITED: the sender's problem
                return
            ao.trace_operation("chat.deliver", lambda ctx: _sleep_ms(s.latency_ms * 0.3))

    def _chat_read(self, s: Sample, user: str, session: str) -> None:
        ao.log_telemetry("chat", ao.Op.CHAT_READ, actor_type="user", actor_id=user, session_id=session,
                         success=s.success, error_code=s.error_code, latency_ms=s.latency_ms,
                         level="INFO" if s.success else "WARN")

    def _wallet(self, s: Sample, user: str, session: str) -> None:
        metadata = {"amount": s.extra["amount"], "currency": s.extra["currency"]}
        with ao.time_operation("wallet", s.operation, actor_type="user", actor_id=user, session_id=session,
                               metadata=metadata) as op:
            _sleep_ms(s.latency_ms)
            code = s.error_code
            if code == "PAYMENT_DECLINED":
                op.fail(code)  # the provider said no: not an exception in our code
            elif code is not None:
                _raise_for(code)  # INSUFFICIENT_FUNDS, DEPENDENCY_FAILED …: AvaloError; TIMEOUT: TimeoutError

    def _panic(self, s: Sample, user: str, session: str) -> None:
        with ao.time_operation("safety", ao.Op.SAFETY_PANIC_PRESS, actor_type="user", actor_id=user,
                               session_id=session, level="WARN", metadata={"source": "panic_button"}):
            _sleep_ms(s.extra["ack_ms"])
            with ao.time_operation("safety", ao.Op.SAFETY_PANIC_PROCESS, actor_type="system", level="WARN"):
                _sleep_ms(s.extra["process_ms"])

    def _safety_report(self, s: Sample, user: str, session: str) -> None:
        ao.log_telemetry("safety", ao.Op.SAFETY_REPORT, actor_type="user", actor_id=user, session_id=session,
                         success=s.success, error_code=s.error_code, latency_ms=s.latency_ms,
                         level="INFO" if s.success else "WARN", metadata={"reason": s.extra["reason"]})

    async def _ai(self, s: Sample, who: tuple[str, str]) -> None:
        user, session = who
        try:
            async with ao.time_operation("ai", ao.Op.AI_REQUEST, actor_type="user", actor_id=user,
                                         session_id=session, metadata={"model": s.extra["model"]}) as op:
                await asyncio.sleep(s.latency_ms / 1000.0)
                if s.error_code == "TIMEOUT":
                    raise asyncio.TimeoutError()
                if s.error_code == "AI_PROVIDER_ERROR":
                    raise ao.AvaloError("AI_PROVIDER_ERROR", "the model provider returned 503")
                if s.error_code is not None:
                    op.fail(s.error_code)
        except (asyncio.TimeoutError, asyncio.CancelledError, ao.AvaloError):
            pass
        finally:
            self._done(s)

    def _support(self, s: Sample, user: str, session: str) -> None:
        level = "INFO" if s.success else ("ERROR" if is_server_error(s.error_code) else "WARN")
        ao.log_telemetry("support", s.operation, actor_type="user", actor_id=user, session_id=session,
                         success=s.success, error_code=s.error_code, latency_ms=s.latency_ms, level=level,
                         metadata={"category": s.extra["category"]})

    def _api(self, s: Sample, user: str, session: str) -> None:
        x = s.extra
        # The gateway started the trace; the request arrives with its W3C headers and continues it.
        gateway = ao.start_trace("api.gateway", attributes={"avalo.domain": "api", "http.route": x["route"]})
        headers = ao.inject_trace_into_headers(gateway)
        parent = ao.extract_trace_from_headers(headers)
        metadata = {"route": x["route"], "method": x["method"], "region": x["region"], "status": x["status"]}
        try:
            with ao.time_operation("api", ao.Op.API_REQUEST, parent=parent, actor_type="user", actor_id=user,
                                   session_id=session, metadata=metadata) as op:
                ao.inject_trace_into_headers(op.trace)  # what the call to the next service carries
                _sleep_ms(s.latency_ms)
                if s.error_code is not None:
                    op.fail(s.error_code)
        finally:
            server = is_server_error(s.error_code)
            ao.end_trace(gateway, success=not server, error_code=s.error_code if server else None)

    def _auth(self, s: Sample, user: str, session: str) -> None:
        ao.log_telemetry("auth", ao.Op.AUTH_LOGIN, actor_type="user", actor_id=user, session_id=session,
                         success=s.success, error_code=s.error_code, latency_ms=s.latency_ms,
                         level="INFO" if s.success else "WARN")


def phase_conditions(duration_s: float, incident: Conditions) -> Callable[[float], Conditions]:
    """Normal for the first third, the incident in the second, recovered in the last."""
    def conditions(elapsed: float) -> Conditions:
        return incident if duration_s / 3 <= elapsed < 2 * duration_s / 3 else NORMAL
    return conditions


def phase_name(duration_s: float, elapsed: float) -> str:
    if elapsed < duration_s / 3:
        return "normal"
    return "incident" if elapsed < 2 * duration_s / 3 else "recovery"


__all__ = ["LiveStats", "LiveTraffic", "phase_conditions", "phase_name"]
