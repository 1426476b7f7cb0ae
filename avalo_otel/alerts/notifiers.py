"""Where alerts go: Alertmanager's API, a webhook in Alertmanager's format, the log.

A notifier never raises into the evaluator: an unreachable receiver costs one warning per outage,
a counted failure per attempt (``failures`` and ``avalo_alert_notifications_failed_total{notifier}``)
and a short timeout, so one dead receiver cannot stall alert evaluation.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Protocol, Sequence

_log = logging.getLogger("avalo_otel.alerts")
FIRING, RESOLVED = "firing", "resolved"
#: Alertmanager's "not resolved" time in its webhook payload.
ZERO_TIME = "0001-01-01T00:00:00Z"
FAILED_METRIC = "avalo_alert_notifications_failed_total"


@dataclass(frozen=True)
class AlertNotice:
    """One alert's state as sent out: its identity is its labels (as in Alertmanager)."""

    status: str                              # "firing" | "resolved"
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at_ms: int = 0
    #: Resolved: when. Firing: until when the alert is valid unless re-sent (None: receiver's default).
    ends_at_ms: Optional[int] = None
    generator_url: str = ""
    event_id: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


class Notifier(Protocol):
    name: str
    #: True: wants every still-firing alert on every evaluation (Alertmanager expires alerts that
    #: are not re-sent); False: only fire, re-notify and resolve transitions.
    resend_active: bool
    failures: int

    def send(self, notices: Sequence[AlertNotice]) -> bool:
        """Deliver; False on failure (never raises)."""


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's alert fingerprint: FNV-1a 64 over the sorted label names and values, each
    followed by the byte 0xff (Prometheus ``model.LabelSet.Fingerprint``)."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8") + b"\xff":
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC (what Alertmanager parses and prints)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Delivery:
    """Failure bookkeeping shared by the notifiers: count every failure, warn once per outage."""

    name = "notifier"
    resend_active = False

    def __init__(self) -> None:
        self.failures = 0
        self.sent = 0
        self._down = False
        self._lock = threading.Lock()

    def _failed(self, target: str, problem: str) -> bool:
        with self._lock:
            self.failures += 1
            first = not self._down
            self._down = True
        if first:
            _log.warning("alert notifier %s cannot deliver to %s: %s (further failures are counted, not logged, "
                         "until it recovers)", self.name, target, problem)
        try:
            from ..metrics import inc_counter

            inc_counter(FAILED_METRIC, {"notifier": self.name})
        except Exception:  # strict mode rejects unknown metric names: the count above still holds
            pass
        return False

    def _delivered(self, target: str, count: int) -> bool:
        with self._lock:
            self.sent += count
            recovered, self._down = self._down, False
        if recovered:
            _log.info("alert notifier %s delivers to %s again", self.name, target)
        return True


class _HTTPNotifier(_Delivery):
    def __init__(self, url: str, *, timeout_s: float = 3.0, headers: Optional[Mapping[str, str]] = None) -> None:
        super().__init__()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{type(self).__name__}: url must be http:// or https://, not {url!r}")
        self.url, self.timeout_s = url.rstrip("/"), timeout_s
        self.headers = dict(headers or {})

    def _post(self, url: str, payload: Any, count: int) -> bool:
        body = json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **self.headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace").strip()
            return self._failed(url, f"HTTP {exc.code} {detail}".strip())
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            return self._failed(url, str(getattr(exc, "reason", None) or exc))
        return self._delivered(url, count)


class AlertmanagerNotifier(_HTTPNotifier):
    """Posts alerts to Alertmanager's ``/api/v2/alerts``; grouping, silences, inhibition and
    repeats are Alertmanager's. Firing alerts are re-sent every evaluation (as Prometheus does),
    so Alertmanager keeps them active; two evaluators sending the same alert are deduplicated there."""

    name = "alertmanager"
    resend_active = True

    def send(self, notices: Sequence[AlertNotice]) -> bool:
        if not notices:
            return True
        return self._post(f"{self.url}/api/v2/alerts", [self.alert(n) for n in notices], len(notices))

    @staticmethod
    def alert(notice: AlertNotice) -> dict[str, Any]:
        alert: dict[str, Any] = {"labels": dict(notice.labels), "annotations": dict(notice.annotations),
                                 "startsAt": rfc3339(notice.starts_at_ms)}
        if notice.ends_at_ms is not None:
            alert["endsAt"] = rfc3339(notice.ends_at_ms)
        if notice.generator_url:
            alert["generatorURL"] = notice.generator_url
        return alert


class WebhookNotifier(_HTTPNotifier):
    """Posts each group of alerts (by ``alertname``) in Alertmanager's webhook format (version 4),
    so a receiver written for Alertmanager takes these too."""

    name = "webhook"

    def __init__(self, url: str, *, receiver: str = "avalo-otel", external_url: str = "", **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.receiver, self.external_url = receiver, external_url

    def send(self, notices: Sequence[AlertNotice]) -> bool:
        groups: dict[str, list[AlertNotice]] = {}
        for notice in notices:
            groups.setdefault(notice.labels.get("alertname", ""), []).append(notice)
        ok = True
        for alerts in groups.values():
            ok = self._post(self.url, self.payload(alerts), len(alerts)) and ok
        return ok

    def payload(self, notices: Sequence[AlertNotice]) -> dict[str, Any]:
        """The webhook body for one group of alerts sharing an ``alertname``."""
        group_labels = {"alertname": notices[0].labels.get("alertname", "")}
        common_labels = _common([n.labels for n in notices])
        group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
        return {
            "version": "4",
            "groupKey": group_key,
            "truncatedAlerts": 0,
            "status": FIRING if any(n.status == FIRING for n in notices) else RESOLVED,
            "receiver": self.receiver,
            "groupLabels": group_labels,
            "commonLabels": common_labels,
            "commonAnnotations": _common([n.annotations for n in notices]),
            "externalURL": self.external_url,
            "alerts": [{
                "status": n.status,
                "labels": dict(n.labels),
                "annotations": dict(n.annotations),
                "startsAt": rfc3339(n.starts_at_ms),
                "endsAt": rfc3339(n.ends_at_ms) if n.status == RESOLVED and n.ends_at_ms is not None else ZERO_TIME,
                "generatorURL": n.generator_url,
                "fingerprint": n.fingerprint,
            } for n in notices],
        }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


class LogNotifier(_Delivery):
    """One log line per fire, re-notification and resolution (level from the alert's severity)."""

    name = "log"
    _LEVELS = {"critical": logging.ERROR, "error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO}

    def __init__(self, logger: Optional[logging.Logger] = None) -> None:
        super().__init__()
        self.logger = logger or _log

    def send(self, notices: Sequence[AlertNotice]) -> bool:
        for n in notices:
            severity = n.labels.get("severity", "warn")
            level = logging.INFO if n.status == RESOLVED else self._LEVELS.get(severity, logging.WARNING)
            self.logger.log(level, "alert %s %s severity=%s value=%s threshold=%s %s", n.status.upper(),
                            n.labels.get("alertname"), severity, n.annotations.get("value", "-"),
                            n.annotations.get("threshold", "-"), n.annotations.get("summary", ""))
        return self._delivered("log", len(notices))
