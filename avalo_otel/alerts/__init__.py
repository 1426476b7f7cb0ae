"""Alerting: rules over Avalo's metrics, SLO burn-rate alerts, alert events and notifiers.

The public calls mirror the original design (``set_alert_rule``, ``get_alert_events``,
``acknowledge_alert`` …); ``AlertEvaluator`` is the worker that fires and resolves alerts.
"""

from .api import (
    acknowledge_alert, delete_alert_rule, disable_alert_rule, enable_alert_rule, ensure_predefined_rules,
    get_alert_events, get_alert_rule, list_alert_rules, set_alert_rule,
)
from .burn import BurnAlert, burn_rate_alerts
from .evaluator import AlertEvaluator, EvaluationResult
from .notifiers import AlertmanagerNotifier, AlertNotice, LogNotifier, WebhookNotifier
from .rules import CONDITIONS, PREDEFINED_RULES, SEVERITIES, AlertRule, AlertRuleError, alert_labels, validate_rule
from .signals import CATALOG, evaluate_signal, histogram_quantile, prometheus_alerting_rule, rule_promql

__all__ = [
    "AlertRule", "AlertRuleError", "validate_rule", "alert_labels", "PREDEFINED_RULES", "SEVERITIES", "CONDITIONS",
    "set_alert_rule", "get_alert_rule", "list_alert_rules", "enable_alert_rule", "disable_alert_rule",
    "delete_alert_rule", "get_alert_events", "acknowledge_alert", "ensure_predefined_rules",
    "AlertEvaluator", "EvaluationResult", "BurnAlert", "burn_rate_alerts",
    "AlertmanagerNotifier", "WebhookNotifier", "LogNotifier", "AlertNotice",
    "CATALOG", "evaluate_signal", "rule_promql", "prometheus_alerting_rule", "histogram_quantile",
]
