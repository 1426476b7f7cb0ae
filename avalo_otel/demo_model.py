"""The demo's model of Avalo's traffic: what requests arrive, how long they take, how they fail.

One model serves both halves of the demo, so the history and the live run are the same series:
``draw`` makes one simulated request (a ``Sample``) and ``records`` lists exactly the metric
measurements that request produces — the two the API records for every event
(``avalo_operations_total``, ``avalo_operation_latency_ms``) and the domain metrics the live
traffic records with ``inc_counter``/``observe_latency``. The backfill aggregates ``records`` into
per-minute delta points; the live traffic (``demo_live``) performs the sample through the public API.

``Conditions`` are what an incident changes (the live incident: the payment provider fails and
chat slows down; the history has a few smaller ones at fixed places).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any, Optional

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

USERS = 400
#: (region, share of traffic, latency multiplier)
REGIONS = (("eu-central", 0.45, 1.0), ("us-east", 0.35, 1.3), ("ap-southeast", 0.20, 1.8))
#: (method, route, median latency ms, share of API requests)
ROUTES = (
    ("GET", "/v1/feed", 45.0, 0.30), ("GET", "/v1/matches", 70.0, 0.20), ("POST", "/v1/swipes", 30.0, 0.25),
    ("GET", "/v1/profile", 35.0, 0.12), ("GET", "/v1/chats", 50.0, 0.08),
    ("POST", "/v1/payments/checkout", 240.0, 0.05),
)
#: (model, share, median latency ms)
MODELS = (("companion-v2", 0.7, 900.0), ("companion-lite", 0.3, 450.0))
SUPPORT_CATEGORIES = ("billing", "account", "safety", "bug")
MESSAGE_TYPES = (("text", 0.82), ("image", 0.12), ("voice", 0.06))
#: HTTP status of each error code on the public API.
HTTP_STATUS = {
    None: 200, "VALIDATION_FAILED": 400, "UNAUTHORIZED": 401, "NOT_FOUND": 404, "RATE_LIMITED": 429,
    "INTERNAL": 500, "DEPENDENCY_FAILED": 502, "UNAVAILABLE": 503,
}
#: The wallet operations: (operation, share of all traffic, median ms, client error codes).
WALLET_OPS = (
    # Paid messages and gifts: a spend for many chat messages.
    ("wallet.spend", 0.18, 120.0, {"INSUFFICIENT_FUNDS": 0.03, "PAYMENT_DECLINED": 0.012}),
    ("wallet.refund", 0.015, 200.0, {"CONFLICT": 0.01}),
    ("wallet.payout_request", 0.01, 350.0, {"FORBIDDEN": 0.01, "VALIDATION_FAILED": 0.01}),
    ("wallet.topup", 0.03, 400.0, {"PAYMENT_DECLINED": 0.03}),
)


@dataclass(frozen=True)
class Conditions:
    """What is going wrong: extra server-error probabilities and latency multipliers."""

    name: str = "normal"
    wallet_failure: float = 0.0
    wallet_slowdown: float = 1.0
    chat_failure: float = 0.0
    chat_slowdown: float = 1.0
    ai_failure: float = 0.0
    ai_slowdown: float = 1.0
    checkout_failure: float = 0.0
    description: str = ""


NORMAL = Conditions()
LIVE_INCIDENT_DESCRIPTION = "payment provider outage (wallet failures) and slow chat delivery"


def live_incident(minutes: float) -> Conditions:
    """The live incident, ``minutes`` of simulated time long: chat eight times slower with 12% of
    sends failing, and the payment provider failing a share of wallet calls sized so the story
    plays out within the run whatever the speed: its bad events add up to about three minutes'
    worth of wallet traffic, enough for the SLO page's 14.4x burn over 1 h (and 5 min) part-way
    through, too few for the 6x over 6 h (and 30 min) that would hold the page for half an hour
    into the recovery; so it resolves five simulated minutes after the provider recovers."""
    failing = min(0.5, max(0.08, 2.9 / max(minutes, 1.0)))
    return Conditions("incident", wallet_failure=failing, wallet_slowdown=1.6, chat_failure=0.12, chat_slowdown=8.0,
                      checkout_failure=failing / 2, description=LIVE_INCIDENT_DESCRIPTION)


@dataclass(frozen=True)
class PastIncident:
    """An incident in the backfilled history, ``days_ago`` before the live run starts."""

    days_ago: float
    minutes: int
    conditions: Conditions


PAST_INCIDENTS = (
    PastIncident(1.62, 35, Conditions("wallet blip", wallet_failure=0.10, checkout_failure=0.08,
                                      description="card processor timeouts")),
    PastIncident(3.30, 50, Conditions("chat slowdown", chat_slowdown=6.0, chat_failure=0.03,
                                      description="message broker failover")),
    PastIncident(5.55, 40, Conditions("AI provider", ai_failure=0.12, ai_slowdown=2.0,
                                      description="AI model provider degraded")),
    PastIncident(10.2, 30, Conditions("wallet outage", wallet_failure=0.25, checkout_failure=0.2,
                                      description="ledger database failover")),
    PastIncident(17.7, 45, Conditions("chat outage", chat_failure=0.08, chat_slowdown=3.0,
                                      description="realtime gateway restart loop")),
    PastIncident(24.4, 25, Conditions("AI timeouts", ai_failure=0.2, description="AI model provider timeouts")),
)


@dataclass(slots=True)
class Sample:
    """One simulated request: what it is, how long it takes, how it ends."""

    kind: str
    domain: str
    operation: str
    latency_ms: float
    error_code: Optional[str]
    user: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.error_code is None


# (name, kind, labels as a sorted tuple of pairs, value); ``implicit``: what the API records itself.
Record = tuple[str, str, tuple[tuple[str, str], ...], float]

_CLIENT = frozenset({"INSUFFICIENT_FUNDS", "PAYMENT_DECLINED", "CONFLICT", "FORBIDDEN", "VALIDATION_FAILED",
                     "CONTENT_BLOCKED", "RATE_LIMITED", "NOT_FOUND", "UNAUTHORIZED", "CANCELLED"})


def is_server_error(code: Optional[str]) -> bool:
    return code is not None and code not in _CLIENT


def diurnal(ms: int) -> float:
    """Traffic relative to the day's average: an evening peak (20:00 UTC), a morning trough, and
    a little more at weekends. Gentle, so the hour of a live run and the six before it see
    similar traffic (the burn-rate windows compare them)."""
    hours = (ms % DAY_MS) / HOUR_MS
    weekday = (ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday: 5, 6 are Saturday, Sunday
    weekend = 1.1 if weekday >= 5 else 1.0
    return (0.9 + 0.15 * math.cos(2 * math.pi * (hours - 20) / 24)) * weekend


def active_users(ms: int, region_share: float, rng: random.Random) -> int:
    return int(2600 * diurnal(ms) * region_share * rng.uniform(0.93, 1.07))


_CUMULATIVE: dict[int, tuple[Any, list[float], float]] = {}


def _pick(rng: random.Random, weighted: Any, weight: int = 1) -> Any:
    """One of the tuples of ``weighted`` (a module constant), chosen by the weight at index ``weight``."""
    found = _CUMULATIVE.get(id(weighted))
    if found is None or found[0] is not weighted:
        cumulative = list(itertools.accumulate(w[weight] for w in weighted))
        found = _CUMULATIVE[id(weighted)] = (weighted, cumulative, cumulative[-1])
    _, cumulative, total = found
    return weighted[min(len(weighted) - 1, bisect.bisect_right(cumulative, rng.random() * total))]


def _table(client: dict[str, float], server: dict[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple((code, p) for code, p in (*client.items(), *server.items()) if p > 0)


def _error(rng: random.Random, table: tuple[tuple[str, float], ...]) -> Optional[str]:
    x = rng.random()
    for code, p in table:
        if x < p:
            return code
        x -= p
    return None


def _lognormal(rng: random.Random, median: float, sigma: float, cap: float = 30_000.0) -> float:
    return min(cap, rng.lognormvariate(math.log(median), sigma))


# The error mix of each kind of request under given conditions (cached: conditions are few).
@functools.lru_cache(maxsize=None)
def _chat_errors(cond: Conditions) -> tuple[tuple[str, float], ...]:
    # Mostly fast failures (the broker refuses): a timeout's outcome lands seconds later, which
    # at 300x is many simulated minutes into the recovery.
    return _table({"CONTENT_BLOCKED": 0.006, "RATE_LIMITED": 0.002},
                  {"UNAVAILABLE": 0.0004 + cond.chat_failure * 0.75, "TIMEOUT": 0.0002 + cond.chat_failure * 0.25})


@functools.lru_cache(maxsize=None)
def _wallet_errors(operation: str, cond: Conditions) -> tuple[tuple[str, float], ...]:
    client = next(w[3] for w in WALLET_OPS if w[0] == operation)
    p = cond.wallet_failure
    return _table(client, {"DEPENDENCY_FAILED": p * 0.75, "TIMEOUT": 0.0001 + p * 0.15,
                           "DATABASE_ERROR": 0.0001 + p * 0.1})


@functools.lru_cache(maxsize=None)
def _ai_errors(cond: Conditions) -> tuple[tuple[str, float], ...]:
    return _table({"CONTENT_BLOCKED": 0.012},
                  {"AI_PROVIDER_ERROR": 0.003 + cond.ai_failure * 0.6, "TIMEOUT": 0.002 + cond.ai_failure * 0.4})


@functools.lru_cache(maxsize=None)
def _api_errors(route: str, cond: Conditions) -> tuple[tuple[str, float], ...]:
    server = {"INTERNAL": 0.0012, "UNAVAILABLE": 0.0006}
    if route == "/v1/payments/checkout":
        server["DEPENDENCY_FAILED"] = cond.checkout_failure
    return _table({"VALIDATION_FAILED": 0.006, "UNAUTHORIZED": 0.008, "NOT_FOUND": 0.01, "RATE_LIMITED": 0.004},
                  server)


_CHAT_READ_ERRORS = _table({"NOT_FOUND": 0.003}, {})
_REPORT_ERRORS = _table({"VALIDATION_FAILED": 0.01}, {"DATABASE_ERROR": 0.0003})
_SUPPORT_ERRORS = _table({"VALIDATION_FAILED": 0.01}, {"DATABASE_ERROR": 0.0003})
_AUTH_ERRORS = _table({"UNAUTHORIZED": 0.05}, {"UNAVAILABLE": 0.0003})
_AMOUNTS = (10, 25, 50, 100, 250, 500)
_REASONS = ("spam", "harassment", "fake_profile")


class TrafficModel:
    """Draws samples: each kind of request has its share of all traffic."""

    def __init__(self) -> None:
        self.kinds: tuple[tuple[str, float], ...] = (
            ("chat_send", 0.24), ("chat_read", 0.09), ("wallet", sum(w[1] for w in WALLET_OPS)),
            ("panic", 0.005), ("safety_report", 0.01), ("ai", 0.11), ("support", 0.035), ("api", 0.23),
            ("auth", 0.03),
        )
        self._draw = {name: getattr(self, f"_draw_{name}") for name, _ in self.kinds}

    def draw(self, rng: random.Random, cond: Conditions = NORMAL) -> Sample:
        kind = _pick(rng, self.kinds)[0]
        return self._draw[kind](rng, cond)

    # -- the kinds of request ------------------------------------------------------------------
    def _draw_chat_send(self, rng: random.Random, cond: Conditions) -> Sample:
        code = _error(rng, _chat_errors(cond))
        latency = 1000.0 + rng.random() * 50 if code == "TIMEOUT" else _lognormal(rng, 55 * cond.chat_slowdown, 0.55)
        return Sample("chat_send", "chat", "chat.send", latency, code, rng.randrange(USERS),
                      {"messageType": _pick(rng, MESSAGE_TYPES)[0], "messageLength": rng.randrange(1, 400),
                       "delivery_ms": _lognormal(rng, 80 * cond.chat_slowdown, 0.5)})

    def _draw_chat_read(self, rng: random.Random, cond: Conditions) -> Sample:
        return Sample("chat_read", "chat", "chat.read", _lognormal(rng, 15, 0.5), _error(rng, _CHAT_READ_ERRORS),
                      rng.randrange(USERS))

    def _draw_wallet(self, rng: random.Random, cond: Conditions) -> Sample:
        operation, _, median, _ = _pick(rng, WALLET_OPS)
        code = _error(rng, _wallet_errors(operation, cond))
        if code == "TIMEOUT":
            latency = 1000.0 + rng.random() * 80  # the payment provider's client gives up after a second
        else:
            latency = _lognormal(rng, median * cond.wallet_slowdown, 0.45)
        return Sample("wallet", "wallet", operation, latency, code, rng.randrange(USERS),
                      {"amount": _AMOUNTS[rng.randrange(len(_AMOUNTS))], "currency": "coins"})

    def _draw_panic(self, rng: random.Random, cond: Conditions) -> Sample:
        # Panic presses never fail here: the SLO is zero tolerance, and Avalo retries until stored.
        ack, process = _lognormal(rng, 60, 0.4), _lognormal(rng, 550, 0.45, cap=4800)
        return Sample("panic", "safety", "safety.panic_press", ack + process, None, rng.randrange(USERS),
                      {"process_ms": process, "ack_ms": ack})

    def _draw_safety_report(self, rng: random.Random, cond: Conditions) -> Sample:
        return Sample("safety_report", "safety", "safety.report", _lognormal(rng, 90, 0.5),
                      _error(rng, _REPORT_ERRORS), rng.randrange(USERS),
                      {"reason": _REASONS[rng.randrange(len(_REASONS))]})

    def _draw_ai(self, rng: random.Random, cond: Conditions) -> Sample:
        model, _, median = _pick(rng, MODELS)
        code = _error(rng, _ai_errors(cond))
        latency = 6000.0 if code == "TIMEOUT" else _lognormal(rng, median * cond.ai_slowdown, 0.5, cap=5900)
        return Sample("ai", "ai", "ai.request", latency, code, rng.randrange(USERS), {"model": model})

    def _draw_support(self, rng: random.Random, cond: Conditions) -> Sample:
        create = rng.random() < 0.43
        return Sample("support", "support", "support.ticket_create" if create else "support.ticket_reply",
                      _lognormal(rng, 140 if create else 90, 0.5), _error(rng, _SUPPORT_ERRORS), rng.randrange(USERS),
                      {"category": SUPPORT_CATEGORIES[rng.randrange(len(SUPPORT_CATEGORIES))]})

    def _draw_api(self, rng: random.Random, cond: Conditions) -> Sample:
        method, route, median, _ = _pick(rng, ROUTES, weight=3)
        region, _, slower = _pick(rng, REGIONS)
        code = _error(rng, _api_errors(route, cond))
        return Sample("api", "api", "api.request", _lognormal(rng, median * slower, 0.5), code, rng.randrange(USERS),
                      {"method": method, "route": route, "region": region, "status": HTTP_STATUS[code]})

    def _draw_auth(self, rng: random.Random, cond: Conditions) -> Sample:
        return Sample("auth", "auth", "auth.login", _lognormal(rng, 120, 0.4), _error(rng, _AUTH_ERRORS),
                      rng.randrange(USERS))


# -- what a sample records ---------------------------------------------------------------------
def _labels(**labels: Any) -> tuple[tuple[str, str], ...]:
    return _sorted_labels(tuple(labels.items()))


@functools.lru_cache(maxsize=4096)
def _sorted_labels(pairs: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in pairs))


@functools.lru_cache(maxsize=1024)
def _op_labels(domain: str, operation: str, code: Optional[str]) -> tuple[Any, Any]:
    outcome = "success" if code is None else ("server_error" if is_server_error(code) else "client_error")
    return (_labels(domain=domain, operation=operation, outcome=outcome, error_code=code or ""),
            _labels(domain=domain, operation=operation))


def _op_records(domain: str, operation: str, code: Optional[str], latency: float) -> list[Record]:
    ops, lat = _op_labels(domain, operation, code)
    return [("avalo_operations_total", "counter", ops, 1.0), ("avalo_operation_latency_ms", "histogram", lat, latency)]


def implicit_records(s: Sample) -> list[Record]:
    """What the API itself records for the sample's telemetry event(s)."""
    if s.kind == "panic":
        return (_op_records("safety", "safety.panic_press", None, s.latency_ms)
                + _op_records("safety", "safety.panic_process", None, s.extra["process_ms"]))
    return _op_records(s.domain, s.operation, s.error_code, s.latency_ms)


def domain_records(s: Sample) -> list[Record]:
    """The domain metrics the live traffic records for the sample (``inc_counter``/``observe_latency``)."""
    x, code, short = s.extra, s.error_code, s.operation.split(".", 1)[1]
    if s.kind == "chat_send":
        if code is None:
            return [("chat_messages_sent_total", "counter", _labels(domain="chat", messageType=x["messageType"]), 1.0),
                    ("chat_delivery_latency_ms", "histogram", _labels(domain="chat", operation="chat.deliver"),
                     s.latency_ms + x["delivery_ms"])]
        return [("chat_messages_failed_total", "counter", _labels(domain="chat", errorCode=code), 1.0)]
    if s.kind == "wallet":
        latency = ("wallet_tx_latency_ms", "histogram", _labels(domain="wallet", operation=short), s.latency_ms)
        if code is None:
            return [("wallet_tx_success_total", "counter", _labels(domain="wallet", operation=short), 1.0), latency]
        return [("wallet_tx_failed_total", "counter", _labels(domain="wallet", operation=short, errorCode=code), 1.0),
                latency]
    if s.kind == "panic":
        return [("panic_events_total", "counter", _labels(domain="safety", operation="panic_press"), 1.0),
                ("panic_processing_latency_ms", "histogram", _labels(domain="safety"), x["process_ms"])]
    if s.kind == "ai":
        out = [("ai_requests_total", "counter", _labels(domain="ai", operation="request", model=x["model"]), 1.0)]
        if code is None:
            out.append(("ai_response_latency_ms", "histogram", _labels(domain="ai", model=x["model"]), s.latency_ms))
        else:
            out.append(("ai_failures_total", "counter", _labels(domain="ai", errorCode=code), 1.0))
        return out
    if s.kind == "support":
        if code is None and s.operation == "support.ticket_create":
            return [("support_tickets_created_total", "counter", _labels(domain="support", category=x["category"]), 1.0)]
        return []
    if s.kind == "api":
        request = _labels(domain="api", route=x["route"], method=x["method"], status=x["status"], region=x["region"])
        out = [("api_requests_total", "counter", request, 1.0),
               ("api_latency_ms", "histogram", _labels(domain="api", route=x["route"], method=x["method"],
                                                        region=x["region"]), s.latency_ms)]
        if x["status"] >= 400:
            out.append(("api_http_errors_total", "counter", request, 1.0))
        return out
    return []


def records(s: Sample) -> list[Record]:
    return implicit_records(s) + domain_records(s)
