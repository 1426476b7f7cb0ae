"""Alert rules: the typed rule, its validation and the four predefined rules of the original design.

A rule is checked once, when it is set, so the evaluator never meets a rule it cannot judge:
an unknown metric would never fire, a NaN threshold would compare false forever, and a label
Prometheus or Alertmanager refuses would make every notification of the rule fail.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Union

from ..conventions import Domain

SEVERITIES = ("INFO", "WARN", "ERROR", "CRITICAL")
#: Condition name → (Python comparison, PromQL comparison operator).
CONDITIONS: Mapping[str, tuple[Callable[[float, float], bool], str]] = {
    "greater_than": (operator.gt, ">"),
    "greater_than_or_equal": (operator.ge, ">="),
    "less_than": (operator.lt, "<"),
    "less_than_or_equal": (operator.le, "<="),
    "equals": (operator.eq, "=="),
    "not_equals": (operator.ne, "!="),
}
MAX_WINDOW_MINUTES = 1440
MAX_COOLDOWN_MINUTES = 10_080  # a week
DEFAULT_COOLDOWN_MINUTES = 15

RULE_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Prometheus' label name pattern; names starting with "__" are reserved to Prometheus itself.
LABEL_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Labels every alert gets from its rule: a rule's own labels may not override them.
RESERVED_LABELS = frozenset({"alertname", "severity", "rule_id"})

# Field name → the keys accepted for it (snake_case and the original's camelCase).
_KEYS: Mapping[str, tuple[str, ...]] = {
    "id": ("id",), "name": ("name",), "severity": ("severity",), "metric": ("metric",),
    "threshold": ("threshold",), "window_minutes": ("window_minutes", "windowMinutes"),
    "condition": ("condition",), "enabled": ("enabled",), "description": ("description",),
    "labels": ("labels",), "cooldown_minutes": ("cooldown_minutes", "cooldownMinutes"),
    "selector": ("selector",), "ack_expiry_minutes": ("ack_expiry_minutes", "ackExpiryMinutes"),
}
_REQUIRED = ("id", "severity", "metric", "threshold", "window_minutes")
#: Fields a store adds to a rule document; ``from_document`` ignores them.
_STORE_FIELDS = frozenset({"updatedAt", "createdAt", "expireAt"})

Selector = Mapping[str, tuple[str, ...]]


class AlertRuleError(ValueError):
    """A rule is invalid; the message names the field and what is allowed."""


@dataclass(frozen=True)
class AlertRule:
    """One threshold rule: fire when ``metric`` over the last ``window_minutes`` meets ``condition``."""

    id: str
    name: str
    severity: str
    metric: str
    threshold: float
    window_minutes: int
    condition: str = "greater_than"
    enabled: bool = True
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    cooldown_minutes: int = DEFAULT_COOLDOWN_MINUTES
    #: Label → allowed values, narrowing the metric's series (``{"operation": ("chat.send",)}``).
    selector: Selector = field(default_factory=dict, hash=False)
    #: An acknowledgement silences the alert this long (None: until it resolves).
    ack_expiry_minutes: Optional[int] = None

    def __post_init__(self) -> None:
        # Read-only copies: a frozen rule must not change through a dict the caller still holds.
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "selector", MappingProxyType(
            {k: (v,) if isinstance(v, str) else tuple(v) for k, v in self.selector.items()}))

    def check(self, value: Optional[float]) -> bool:
        """Whether ``value`` meets the condition; no data (None, NaN) never does."""
        if value is None or math.isnan(value):
            return False
        return CONDITIONS[self.condition][0](value, self.threshold)

    @property
    def promql_operator(self) -> str:
        return CONDITIONS[self.condition][1]

    def to_document(self) -> dict[str, Any]:
        """The ``alert_rules`` document, with the original's camelCase field names."""
        doc: dict[str, Any] = {
            "id": self.id, "name": self.name, "severity": self.severity, "metric": self.metric,
            "threshold": self.threshold, "windowMinutes": self.window_minutes, "condition": self.condition,
            "enabled": self.enabled, "description": self.description, "labels": dict(self.labels),
            "cooldownMinutes": self.cooldown_minutes,
        }
        if self.selector:
            doc["selector"] = {k: list(v) for k, v in self.selector.items()}
        if self.ack_expiry_minutes is not None:
            doc["ackExpiryMinutes"] = self.ack_expiry_minutes
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "AlertRule":
        """A stored rule, validated again (a document may have been edited by hand)."""
        return validate_rule({k: v for k, v in doc.items() if k not in _STORE_FIELDS})

    def replace(self, **changes: Any) -> "AlertRule":
        """A validated copy with ``changes`` (snake_case field names)."""
        doc = self.to_document()
        for name, value in changes.items():
            if name not in _KEYS:
                raise AlertRuleError(f"unknown field {name!r}")
            for key in _KEYS[name]:
                doc.pop(key, None)
            doc[name] = value
        return validate_rule(doc)


def alert_labels(rule: AlertRule) -> dict[str, str]:
    """The labels of the rule's alerts, as sent to Alertmanager and put in generated Prometheus rules."""
    return {"alertname": rule.id, "severity": rule.severity.lower(), "rule_id": rule.id, **rule.labels}


# -- validation --------------------------------------------------------------------------------
def validate_rule(rule: Union[Mapping[str, Any], AlertRule]) -> AlertRule:
    """An ``AlertRule`` from a mapping (snake_case or camelCase keys); raises ``AlertRuleError``."""
    if isinstance(rule, AlertRule):
        rule = rule.to_document()
    if not isinstance(rule, Mapping):
        raise AlertRuleError(f"an alert rule must be a mapping, not {type(rule).__name__}")
    values = _collect(rule)
    rule_id = values.get("id")
    if not isinstance(rule_id, str) or not RULE_ID_PATTERN.match(rule_id):
        raise AlertRuleError(f"id: {rule_id!r} is not a valid rule id (lower-case letters, digits and '_', "
                             "starting with a letter, at most 63 characters)")
    where = f"alert rule {rule_id}"
    for name in _REQUIRED:
        if name not in values:
            raise AlertRuleError(f"{where}: missing required field {_KEYS[name][-1]!r}")

    severity = values["severity"]
    if severity not in SEVERITIES:
        raise AlertRuleError(f"{where}: severity: unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}")
    condition = values.get("condition", "greater_than")
    if condition not in CONDITIONS:
        raise AlertRuleError(f"{where}: condition: unknown condition {condition!r}; "
                             f"expected one of {', '.join(CONDITIONS)}")
    threshold = values["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold) \
            or math.isinf(threshold):
        raise AlertRuleError(f"{where}: threshold: must be a finite number, not {threshold!r}")
    if threshold < 0:
        raise AlertRuleError(f"{where}: threshold: must not be negative (every signal is >= 0), not {threshold!r}")

    metric = values["metric"]
    from .signals import signal_for  # the catalog imports nothing from here at run time

    try:
        signal = signal_for(metric)
    except AlertRuleError as exc:
        raise AlertRuleError(f"{where}: {exc}") from None
    selector = _selector(where, values.get("selector", {}), signal)
    return AlertRule(
        id=rule_id,
        name=_text(where, "name", values.get("name", rule_id)) or rule_id,
        severity=severity,
        metric=metric,
        threshold=float(threshold),
        window_minutes=_whole(where, "windowMinutes", values["window_minutes"], 1, MAX_WINDOW_MINUTES),
        condition=condition,
        enabled=_flag(where, "enabled", values.get("enabled", True)),
        description=_text(where, "description", values.get("description", "")),
        labels=_labels(where, values.get("labels", {})),
        cooldown_minutes=_whole(where, "cooldownMinutes", values.get("cooldown_minutes", DEFAULT_COOLDOWN_MINUTES),
                                0, MAX_COOLDOWN_MINUTES),
        selector=selector,
        ack_expiry_minutes=None if values.get("ack_expiry_minutes") is None else _whole(
            where, "ackExpiryMinutes", values["ack_expiry_minutes"], 1, MAX_COOLDOWN_MINUTES),
    )


def _collect(rule: Mapping[str, Any]) -> dict[str, Any]:
    """Field name → value, refusing unknown keys and a field given under both spellings."""
    by_key = {key: name for name, keys in _KEYS.items() for key in keys}
    unknown = sorted(str(k) for k in rule if k not in by_key)
    if unknown:
        where = f"alert rule {rule.get('id')}" if isinstance(rule.get("id"), str) else "alert rule"
        raise AlertRuleError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(by_key)}")
    values: dict[str, Any] = {}
    for key, value in rule.items():
        name = by_key[key]
        if name in values:
            raise AlertRuleError(f"alert rule {rule.get('id')}: {name!r} is given twice ({' and '.join(_KEYS[name])})")
        values[name] = value
    return values


def _whole(where: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AlertRuleError(f"{where}: {name}: must be a whole number from {low} to {high}, not {value!r}")
    return value


def _text(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise AlertRuleError(f"{where}: {name}: must be text, not {type(value).__name__}")
    return value


def _flag(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AlertRuleError(f"{where}: {name}: must be true or false, not {value!r}")
    return value


def _label_name(where: str, field_name: str, name: Any) -> str:
    if not isinstance(name, str) or not LABEL_NAME_PATTERN.match(name) or name.startswith("__"):
        raise AlertRuleError(f"{where}: {field_name}: {name!r} is not a valid label name "
                             "(letters, digits and '_', not starting with a digit or '__')")
    return name


def _labels(where: str, labels: Any) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        raise AlertRuleError(f"{where}: labels: must be a mapping of label name to text")
    out = {}
    for name, value in labels.items():
        _label_name(where, "labels", name)
        if name in RESERVED_LABELS:
            raise AlertRuleError(f"{where}: labels: {name!r} is set from the rule itself; "
                                 f"reserved: {', '.join(sorted(RESERVED_LABELS))}")
        if not isinstance(value, str):
            raise AlertRuleError(f"{where}: labels: the value of {name!r} must be text, not {value!r}")
        out[name] = value
    return out


def _selector(where: str, selector: Any, signal: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(selector, Mapping):
        raise AlertRuleError(f"{where}: selector: must be a mapping of label name to a value or a list of values")
    out = {}
    for name, value in selector.items():
        _label_name(where, "selector", name)
        problem = signal.selector_problem(name)
        if problem:
            raise AlertRuleError(f"{where}: selector: {problem}")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, str) for v in values):
            raise AlertRuleError(f"{where}: selector: the value of {name!r} must be text or a non-empty list of text")
        out[name] = tuple(values)
    return out


# -- the original design's predefined rules ----------------------------------------------------
PREDEFINED_RULES: tuple[AlertRule, ...] = (
    AlertRule("chat_error_rate_high", "Chat Error Rate High", "WARN", "chat_error_rate", 2.0, 5,
              description="Chat operations error rate (server-side failures, percent) above 2% over 5 minutes",
              labels={"domain": Domain.CHAT.value}),
    AlertRule("wallet_failures_critical", "Wallet Failures Critical", "CRITICAL", "wallet_error_rate", 0.5, 5,
              description="Wallet transaction failures (server-side, percent) above 0.5% over 5 minutes",
              labels={"domain": Domain.WALLET.value}),
    AlertRule("panic_latency_critical", "Panic Latency Critical", "CRITICAL", "panic_latency_p95_ms", 5000.0, 1,
              description="Panic processing latency (P95) above 5 s over 1 minute",
              labels={"domain": Domain.SAFETY.value}),
    AlertRule("api_error_rate_critical", "API Error Rate Critical", "CRITICAL", "api_error_rate", 3.0, 10,
              description="Overall API error rate (server-side failures, percent) above 3% over 10 minutes",
              labels={"domain": Domain.API.value}),
)
