"""The original design's alerting calls (``setAlertRule``, ``getAlertEvents``, ``acknowledgeAlert`` …)
in Python style, over any ``Store``.

Rules are validated before anything is written, so a bad rule never reaches the evaluator.
``store=None`` means the store of the running ``configure()`` handle.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Optional, Union

from .. import _configure
from ..slo.policy import MINUTE_MS
from ..store.base import Document, Store
from .rules import PREDEFINED_RULES, AlertRule, AlertRuleError, validate_rule

_log = logging.getLogger("avalo_otel.alerts")
_warned_invalid: set[str] = set()


def _store(store: Optional[Store]) -> Store:
    if store is not None:
        return store
    handle = _configure._current
    found = getattr(handle, "store", None) if handle is not None else None
    if found is None:
        raise RuntimeError(
            "no alert store: pass store=… (e.g. avalo_otel.store.SQLiteStore(path)) or configure avalo_otel "
            "with a store exporter (e.g. AVALO_OTEL_LOGS_EXPORTER=sqlite) so its handle has a store")
    return found


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _rule(doc: Optional[Document]) -> Optional[AlertRule]:
    """A stored rule, or None (with one warning) when the stored document no longer validates."""
    if doc is None:
        return None
    try:
        return AlertRule.from_document(doc)
    except AlertRuleError as exc:
        key = str(doc.get("id"))
        if key not in _warned_invalid:
            _warned_invalid.add(key)
            _log.warning("stored alert rule %s is invalid and is ignored: %s", key, exc)
        return None


def set_alert_rule(rule: Union[Mapping[str, Any], AlertRule], *, store: Optional[Store] = None) -> AlertRule:
    """Create or replace a rule; raises ``AlertRuleError`` (and stores nothing) if it is invalid."""
    validated = validate_rule(rule)
    _store(store).put_alert_rule(validated.to_document())
    _warned_invalid.discard(validated.id)
    return validated


def get_alert_rule(rule_id: str, *, store: Optional[Store] = None) -> Optional[AlertRule]:
    return _rule(_store(store).get_alert_rule(rule_id))


def list_alert_rules(enabled: Optional[bool] = None, *, store: Optional[Store] = None) -> list[AlertRule]:
    """Rules by id; stored documents that do not validate are left out with a warning."""
    rules = (_rule(doc) for doc in _store(store).list_alert_rules(enabled=enabled))
    return [r for r in rules if r is not None]


def _set_enabled(rule_id: str, enabled: bool, store: Optional[Store]) -> bool:
    target = _store(store)
    doc = target.get_alert_rule(rule_id)
    if doc is None:
        return False
    doc = {k: v for k, v in doc.items() if k not in ("updatedAt", "expireAt")}
    doc["enabled"] = enabled
    target.put_alert_rule(doc)
    return True


def enable_alert_rule(rule_id: str, *, store: Optional[Store] = None) -> bool:
    """True if the rule exists (and is now enabled)."""
    return _set_enabled(rule_id, True, store)


def disable_alert_rule(rule_id: str, *, store: Optional[Store] = None) -> bool:
    """True if the rule exists (and is now disabled); its firing alert resolves at the next evaluation."""
    return _set_enabled(rule_id, False, store)


def delete_alert_rule(rule_id: str, *, store: Optional[Store] = None) -> bool:
    """True if a rule was deleted. A predefined rule comes back at the next ``ensure_predefined_rules``:
    disable it instead to keep it off."""
    return _store(store).delete_alert_rule(rule_id)


def get_alert_events(
    severity: Optional[str] = None, acknowledged: Optional[bool] = None, limit: int = 50,
    status: Optional[str] = None, *, rule_id: Optional[str] = None, store: Optional[Store] = None,
) -> list[Document]:
    """Alert events, newest first (``status``: "firing" or "resolved")."""
    return _store(store).query_alert_events(severity=severity, acknowledged=acknowledged, limit=limit,
                                            status=status, rule_id=rule_id)


def acknowledge_alert(
    alert_id: str, admin_user_id: str, *, expires_minutes: Optional[int] = None,
    store: Optional[Store] = None, now_ms: Optional[int] = None,
) -> bool:
    """Record who acknowledged the alert and when; False if there is no such alert event.

    An acknowledged alert stays quiet while it keeps firing, until it resolves or, with
    ``expires_minutes`` (default: the rule's ``ack_expiry_minutes``), until the acknowledgement expires.
    """
    if not isinstance(admin_user_id, str) or not admin_user_id.strip():
        raise ValueError("admin_user_id: the acknowledging admin's id must be non-empty text")
    if expires_minutes is not None and (isinstance(expires_minutes, bool) or not isinstance(expires_minutes, int)
                                        or expires_minutes <= 0):
        raise ValueError(f"expires_minutes: must be a positive whole number of minutes, not {expires_minutes!r}")
    target = _store(store)
    found = target.get_documents("alert_events", [alert_id])
    if not found:
        return False
    event = found[0]
    at = now_ms if now_ms is not None else _now_ms()
    minutes = expires_minutes if expires_minutes is not None else event.get("ackExpiryMinutes")
    changes = {
        "acknowledged": True, "acknowledgedBy": admin_user_id, "acknowledgedAt": at,
        "ackExpiresAt": at + int(minutes) * MINUTE_MS if minutes else None,
    }
    return target.update_alert_event(alert_id, changes)


def ensure_predefined_rules(store: Optional[Store] = None) -> list[str]:
    """Store the original design's four rules where absent; never touch a rule that exists (a
    user's edit, or a disabled predefined rule, stays as it is). Returns the ids created."""
    target = _store(store)
    created = []
    for rule in PREDEFINED_RULES:
        if target.get_alert_rule(rule.id) is None:
            target.put_alert_rule(rule.to_document())
            created.append(rule.id)
    return created
