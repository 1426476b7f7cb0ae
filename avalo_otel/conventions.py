"""Avalo's telemetry vocabulary and how it maps onto OpenTelemetry.

Everything here is data: domains, levels, actor types, operations, error codes (each with the
class that decides whether it burns error budget), metric names and attribute keys. The names
are those of the original design, so dashboards and alert rules keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Mapping

from opentelemetry._logs import SeverityNumber


class _StrEnum(str, Enum):
    """``str`` enum that formats as its value (``enum.StrEnum`` is 3.11+)."""

    def __str__(self) -> str:
        return self.value


class Domain(_StrEnum):
    CHAT = "chat"
    WALLET = "wallet"
    SAFETY = "safety"
    AI = "ai"
    SUPPORT = "support"
    API = "api"
    AUTH = "auth"
    MEDIA = "media"
    NOTIFICATIONS = "notifications"
    SYSTEM = "system"


#: Domains whose every operation is kept whatever the sampling rate: money and personal safety.
CRITICAL_DOMAINS: frozenset[str] = frozenset({Domain.WALLET.value, Domain.SAFETY.value})


class Level(_StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self.value]

    @property
    def severity(self) -> SeverityNumber:
        return LEVEL_SEVERITY[self.value]


_LEVEL_RANK = {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3, "CRITICAL": 4}

#: Avalo level → OTel log severity. CRITICAL has no OTel name of its own: FATAL is the match.
LEVEL_SEVERITY: Mapping[str, SeverityNumber] = {
    "DEBUG": SeverityNumber.DEBUG,
    "INFO": SeverityNumber.INFO,
    "WARN": SeverityNumber.WARN,
    "ERROR": SeverityNumber.ERROR,
    "CRITICAL": SeverityNumber.FATAL,
}


class ActorType(_StrEnum):
    USER = "user"
    CREATOR = "creator"
    ADMIN = "admin"
    SYSTEM = "system"
    AI = "ai"
    SERVICE = "service"


class Operation(_StrEnum):
    # chat & realtime
    CHAT_SEND = "chat.send"
    CHAT_DELIVER = "chat.deliver"
    CHAT_RECEIVE = "chat.receive"
    CHAT_READ = "chat.read"
    CHAT_MEDIA_UPLOAD = "chat.media_upload"
    # wallet & payments
    WALLET_SPEND = "wallet.spend"
    WALLET_REFUND = "wallet.refund"
    WALLET_PAYOUT_REQUEST = "wallet.payout_request"
    WALLET_TOPUP = "wallet.topup"
    WALLET_BALANCE = "wallet.balance"
    # safety
    SAFETY_PANIC_PRESS = "safety.panic_press"
    SAFETY_PANIC_PROCESS = "safety.panic_process"
    SAFETY_REPORT = "safety.report"
    SAFETY_BLOCK = "safety.block"
    # AI companions
    AI_REQUEST = "ai.request"
    AI_RESPONSE = "ai.response"
    AI_MODERATION = "ai.moderation"
    # support
    SUPPORT_TICKET_CREATE = "support.ticket_create"
    SUPPORT_TICKET_REPLY = "support.ticket_reply"
    SUPPORT_TICKET_CLOSE = "support.ticket_close"
    # public API, auth, media, notifications
    API_REQUEST = "api.request"
    AUTH_LOGIN = "auth.login"
    AUTH_LOGOUT = "auth.logout"
    AUTH_TOKEN_REFRESH = "auth.token_refresh"
    AUTH_SIGNUP = "auth.signup"
    MEDIA_UPLOAD = "media.upload"
    NOTIFICATIONS_PUSH = "notifications.push"
    # the reliability layer's own events
    SYSTEM_ALERT_FIRED = "system.alert_fired"
    SYSTEM_ALERT_RESOLVED = "system.alert_resolved"


#: The original design's ``TELEMETRY_OPERATIONS``: ``CHAT_SEND`` → ``"chat.send"``.
TELEMETRY_OPERATIONS: Mapping[str, str] = {op.name: op.value for op in Operation}
KNOWN_OPERATIONS: frozenset[str] = frozenset(TELEMETRY_OPERATIONS.values())

#: Custom operations are allowed; they must look like ``domain.verb``.
OPERATION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class ErrorClass(_StrEnum):
    """Who is at fault: only ``SERVER`` errors are unreliability and burn error budget."""

    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True)
class ErrorCode:
    code: str
    error_class: ErrorClass
    description: str

    @property
    def burns_budget(self) -> bool:
        return self.error_class is ErrorClass.SERVER


_C, _S = ErrorClass.CLIENT, ErrorClass.SERVER
_ERRORS = [
    ErrorCode("INSUFFICIENT_FUNDS", _C, "the wallet balance does not cover the amount"),
    ErrorCode("VALIDATION_FAILED", _C, "the request was malformed or invalid"),
    ErrorCode("UNAUTHORIZED", _C, "no valid credentials"),
    ErrorCode("FORBIDDEN", _C, "credentials valid but not allowed"),
    ErrorCode("NOT_FOUND", _C, "the target does not exist"),
    ErrorCode("RATE_LIMITED", _C, "the caller exceeded its quota"),
    ErrorCode("CONFLICT", _C, "the request conflicts with current state"),
    ErrorCode("CONTENT_BLOCKED", _C, "moderation refused the content"),
    ErrorCode("PAYMENT_DECLINED", _C, "the payment provider declined the payment"),
    ErrorCode("CANCELLED", _C, "the caller cancelled the operation"),
    ErrorCode("TIMEOUT", _S, "the operation did not finish in time"),
    ErrorCode("INTERNAL", _S, "an unexpected server-side failure"),
    ErrorCode("UNAVAILABLE", _S, "a dependency or the service is unavailable"),
    ErrorCode("DEPENDENCY_FAILED", _S, "a downstream service returned an error"),
    ErrorCode("DATABASE_ERROR", _S, "the database failed"),
    ErrorCode("AI_PROVIDER_ERROR", _S, "the AI model provider failed"),
    ErrorCode("UNKNOWN", _S, "an error with no code: counted as server-side"),
]
ERROR_CODES: Mapping[str, ErrorCode] = {e.code: e for e in _ERRORS}
#: The original design's ``TELEMETRY_ERROR_CODES``: ``TIMEOUT`` → ``"TIMEOUT"``.
TELEMETRY_ERROR_CODES: Mapping[str, str] = {e.code: e.code for e in _ERRORS}


def error_class(code: str | None) -> ErrorClass:
    """Class of an error code; unknown codes count as server-side (they are unexplained)."""
    known = ERROR_CODES.get(code or "UNKNOWN")
    return known.error_class if known else ErrorClass.SERVER


class MetricKind(_StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: MetricKind
    description: str
    labels: tuple[str, ...] = ()


_K = MetricKind
_METRICS = [
    MetricSpec("chat_messages_sent_total", _K.COUNTER, "Chat messages sent", ("domain", "messageType")),
    MetricSpec("chat_messages_failed_total", _K.COUNTER, "Chat messages that failed to send", ("domain", "errorCode")),
    MetricSpec("chat_delivery_latency_ms", _K.HISTOGRAM, "Chat delivery latency (ms)", ("domain", "operation")),
    MetricSpec("wallet_tx_success_total", _K.COUNTER, "Successful wallet transactions", ("domain", "operation")),
    MetricSpec("wallet_tx_failed_total", _K.COUNTER, "Failed wallet transactions", ("domain", "operation", "errorCode")),
    MetricSpec("wallet_tx_latency_ms", _K.HISTOGRAM, "Wallet transaction latency (ms)", ("domain", "operation")),
    MetricSpec("panic_events_total", _K.COUNTER, "Panic button presses", ("domain", "operation")),
    MetricSpec("panic_processing_latency_ms", _K.HISTOGRAM, "Panic press to persistence latency (ms)", ("domain",)),
    MetricSpec("ai_requests_total", _K.COUNTER, "AI companion requests", ("domain", "operation", "model")),
    MetricSpec("ai_failures_total", _K.COUNTER, "AI companion failures and timeouts", ("domain", "errorCode")),
    MetricSpec("ai_response_latency_ms", _K.HISTOGRAM, "AI response completion latency (ms)", ("domain", "model")),
    MetricSpec("support_tickets_created_total", _K.COUNTER, "Support tickets created", ("domain", "category")),
    MetricSpec("api_requests_total", _K.COUNTER, "Public API requests", ("domain", "route", "method", "status")),
    MetricSpec("api_http_errors_total", _K.COUNTER, "HTTP error responses", ("domain", "route", "method", "status")),
    MetricSpec("api_latency_ms", _K.HISTOGRAM, "Public API latency (ms)", ("domain", "route", "method")),
    MetricSpec("active_users", _K.GAUGE, "Users active now", ("region",)),
    MetricSpec("active_chats", _K.GAUGE, "Chats active now", ("region",)),
    # What every telemetry event records, never sampled: every SLO is computed from these two.
    MetricSpec("avalo_operations_total", _K.COUNTER, "Operations by domain, operation, outcome and error code",
               ("domain", "operation", "outcome", "error_code")),
    MetricSpec("avalo_operation_latency_ms", _K.HISTOGRAM, "Operation latency (ms)", ("domain", "operation")),
]
METRICS: Mapping[str, MetricSpec] = {m.name: m for m in _METRICS}
#: The original design's ``METRIC_NAMES``: ``CHAT_MESSAGES_SENT_TOTAL`` → ``"chat_messages_sent_total"``.
METRIC_NAMES: Mapping[str, str] = {m.name.upper(): m.name for m in _METRICS}

#: Prometheus-valid metric name (custom names must be usable as they are on /metrics).
METRIC_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: Bucket bounds for every latency histogram, in ms: dense around the SLO thresholds
#: (300 and 500 ms chat, 2 s panic, 2.5 s AI, 5 s panic budget) so quantiles there are sharp.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000,
    1500, 2000, 2500, 3000, 4000, 5000, 7500, 10000, 15000, 30000, 60000,
)

# Outcome label of ``avalo_operations_total``: the SLO "bad events" are ``server_error``.
OUTCOME_SUCCESS = "success"
OUTCOME_CLIENT_ERROR = "client_error"
OUTCOME_SERVER_ERROR = "server_error"


class Attr:
    """OTel attribute keys for spans and log records (metrics use the short label names)."""

    DOMAIN = "avalo.domain"
    OPERATION = "avalo.operation"
    LEVEL = "avalo.level"
    ACTOR_TYPE = "avalo.actor.type"
    ACTOR_ID = "avalo.actor.id"
    SESSION_ID = "session.id"
    SUCCESS = "avalo.success"
    ERROR_TYPE = "error.type"
    ERROR_CLASS = "avalo.error.class"
    LATENCY_MS = "avalo.latency_ms"
    METADATA_PREFIX = "avalo.metadata."


def outcome_of(success: bool, error_code: str | None) -> str:
    if success:
        return OUTCOME_SUCCESS
    return OUTCOME_CLIENT_ERROR if error_class(error_code) is ErrorClass.CLIENT else OUTCOME_SERVER_ERROR
