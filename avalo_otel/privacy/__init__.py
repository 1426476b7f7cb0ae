"""What keeps personal data inside the process: redaction and keyed pseudonymisation.

``configure()`` builds one :class:`Redactor` from settings and puts it in front of every exporter
(see ``processors``); nothing here is public API beyond the settings that shape it.
"""

from __future__ import annotations

from typing import Any, Callable

from ..conventions import METRICS
from ..settings import Settings
from .pseudonym import Pseudonymizer
from .redactor import Redactor

#: Metric label keys of OTel semantic conventions that carry no personal data.
SEMCONV_METRIC_LABELS = frozenset({
    "http.request.method", "http.response.status_code", "http.route", "http.method", "http.status_code",
    "http.scheme", "http.flavor", "url.scheme", "network.protocol.name", "network.protocol.version",
    "server.port", "rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code", "db.system",
    "db.system.name", "db.operation", "db.operation.name", "db.collection.name", "messaging.system",
    "messaging.operation", "messaging.operation.type", "error.type", "gen_ai.system", "gen_ai.operation.name",
    "gen_ai.request.model", "gen_ai.token.type", "cpython.gc.generation", "process.cpython.gc.generation",
})
#: Labels of avalo-otel's own metrics.
OWN_METRIC_LABELS = frozenset({"reason", "rule", "exporter", "signal", "slo", "indicator", "window", "notifier", "severity"})


def allowed_metric_labels(settings: Settings) -> frozenset[str]:
    """Every metric label key allowed to leave: Avalo's per-metric labels, safe semantic-convention
    keys and what the settings add. Anything else is dropped by the metric view."""
    avalo = {label for spec in METRICS.values() for label in spec.labels}
    return frozenset(avalo | SEMCONV_METRIC_LABELS | OWN_METRIC_LABELS | set(settings.metric_labels))


def build_redactor(settings: Settings, pseudonymize: Callable[[Any], str],
                   on_redact: Callable[[str], None] | None = None) -> Redactor:
    """The redactor for ``settings``. Without ``on_redact`` it counts redactions by itself
    (:meth:`Redactor.redaction_counts`), which costs the span path less than a call per rule."""
    return Redactor(
        pseudonymize=pseudonymize,
        extra_deny_keys=settings.redact_keys,
        safe_keys=settings.safe_keys,
        extra_value_patterns=settings.redact_patterns,
        redact_ip_addresses=settings.redact_ip_addresses,
        phone_regions=settings.phone_regions,
        callback=settings.redaction_hook,
        on_redact=on_redact,
    )


__all__ = ["Pseudonymizer", "Redactor", "allowed_metric_labels", "build_redactor"]
