"""OTel SDK data → the original design's documents: pure functions shared by every store.

Every builder returns JSON-safe documents with a deterministic ``id`` (a retried export rewrites
the same documents instead of duplicating them), epoch-millisecond times, an ``expireAt`` from
``RETENTION_DAYS`` and a size under Firestore's 1 MiB limit (see ``truncate_document``).

Mapping decisions:

- A log record without ``avalo.domain`` (e.g. stdlib ``logging`` through the OTel bridge) still
  becomes a ``telemetry_events`` document: domain ``"system"`` unless ``avalo.operation`` starts
  with a known domain, operation = the logger (instrumentation scope) name or ``"log"``, level from
  the severity, ``success`` false only at ERROR and above.
- A body that is not the operation itself (a stdlib log message) is kept as ``message``.
- ``avalo.metadata.a.b`` attributes are rebuilt as ``metadata["a"]["b"]``; every other attribute
  that is not a document field keeps its full key, flat, in ``metadata`` (``"code.line.number"``).
- Metric ``temporality`` is ``"delta"`` or ``"cumulative"`` as the reader chose, ``None`` for gauges.
  Exponential histograms are ``type="histogram"`` with ``buckets`` holding ``scale``, ``zeroCount``,
  ``positive`` and ``negative`` (``{"offset", "counts"}``) instead of explicit bounds.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping, Optional, Union

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality, ExponentialHistogram, Gauge, Histogram, MetricsData, Sum,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from ..conventions import Attr, Domain
from .base import (
    ALERT_EVENTS, ALERT_RULES, METRICS, TELEMETRY_EVENTS, TIME_FIELD, TRACES, Document, StoreError,
    check_collection, expire_at,
)
from .values import (
    _copy, _flat, _flat_size, _record_id, _scalar_chars, _sized, document_id, json_safe, truncate_document,
)

_DOMAINS = frozenset(d.value for d in Domain)
# The attributes that become document fields (everything else goes to metadata).
_EVENT_FIELDS = {
    Attr.DOMAIN: "domain", Attr.OPERATION: "operation", Attr.ACTOR_TYPE: "actorType",
    Attr.ACTOR_ID: "actorId", Attr.SESSION_ID: "sessionId", Attr.ERROR_TYPE: "errorCode",
    Attr.LATENCY_MS: "latencyMs",
}
_CONSUMED = frozenset(_EVENT_FIELDS) | {Attr.LEVEL, Attr.SUCCESS}
_DOMAIN, _OPERATION, _LEVEL, _SUCCESS = Attr.DOMAIN, Attr.OPERATION, Attr.LEVEL, Attr.SUCCESS
_ACTOR_TYPE, _ACTOR_ID, _SESSION_ID = Attr.ACTOR_TYPE, Attr.ACTOR_ID, Attr.SESSION_ID
_ERROR_TYPE, _LATENCY_MS = Attr.ERROR_TYPE, Attr.LATENCY_MS
_EVENT_RETENTION_MS = expire_at(TELEMETRY_EVENTS, 0)
_LEVEL_NAMES = {
    "TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "NOTICE": "INFO", "WARN": "WARN",
    "WARNING": "WARN", "ERROR": "ERROR", "CRITICAL": "CRITICAL", "FATAL": "CRITICAL",
}
_FAILING_LEVELS = frozenset({"ERROR", "CRITICAL"})

LogData = Union[ReadableLogRecord, ReadWriteLogRecord]


def _ms(ns: Optional[int]) -> Optional[int]:
    return None if ns is None else int(ns) // 1_000_000


def _hex(value: Optional[int], width: int) -> Optional[str]:
    return f"{value:0{width}x}" if value else None


def _domain_of(attrs: Mapping[str, Any]) -> str:
    domain = attrs.get(_DOMAIN)
    if domain:
        return str(domain)
    prefix = str(attrs.get(Attr.OPERATION) or "").split(".", 1)[0]
    return prefix if prefix in _DOMAINS else Domain.SYSTEM.value


def _level_of(text: Optional[str], number: Any) -> str:
    if text:
        name = _LEVEL_NAMES.get(text) or _LEVEL_NAMES.get(text.strip().upper().rstrip("0123456789"))
        if name:
            return name
    n = int(getattr(number, "value", number) or 0)
    if n <= 0:
        return "INFO"
    return ("DEBUG", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")[min((n - 1) // 4, 5)]


def _set_path(root: dict[str, Any], key: str, value: Any) -> None:
    node, parts = root, key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):  # "a" is a value and "a.b" too: keep the rest flat
            node[".".join(parts[i:])] = value
            return
        node = child
    node[parts[-1]] = value  # never a subtree already: keys arrive sorted, "a" before "a.b"


def _event_attributes(attributes: Optional[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """A log record's attributes as a JSON-safe dict, its ``metadata`` (``avalo.metadata.a.b`` as
    ``metadata["a"]["b"]``, other non-field keys flat) and ``_flat_size``'s bound of the dict
    (-1: unknown)."""
    attrs = _copy(attributes)
    keys = tuple(attrs)
    plan = _PLANS.get(keys)
    if plan is None:
        plan = _plan(keys)
    if plan:  # the commonest case: event fields and plain metadata keys, a key set seen before
        key_chars, simple = plan
        chars = _scalar_chars(attrs.values())
        if chars >= 0:
            return attrs, {path: attrs[key] for key, path in simple}, 6 * (key_chars + chars) + 32 * len(attrs)
    size = _flat_size(attrs)
    if size < 0:
        attrs = json_safe(attrs)
    return attrs, _metadata(attrs), size


# Per attribute key set (events of one operation share theirs): the key characters and the
# (key, metadata path) pairs, or False when the keys need ``_metadata`` (nested or extra keys).
_PLANS: dict[tuple[Any, ...], Any] = {}


def _plan(keys: tuple[Any, ...]) -> Any:
    prefix, cut = Attr.METADATA_PREFIX, len(Attr.METADATA_PREFIX)
    simple: list[tuple[str, str]] = []
    plan: Any = (sum(len(k) for k in keys if type(k) is str), simple)
    for key in keys:
        if type(key) is not str:
            plan = False
        elif key.startswith(prefix):
            if "." in key[cut:]:
                plan = False
            simple.append((key, key[cut:]))
        elif key not in _CONSUMED:
            plan = False
    if len(_PLANS) >= 1024:  # bounded: attribute keys can be anything
        _PLANS.clear()
    _PLANS[keys] = plan
    return plan


def _metadata(attrs: Mapping[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    flat: list[str] = []
    nested: list[str] = []
    prefix, cut = Attr.METADATA_PREFIX, len(Attr.METADATA_PREFIX)
    for key, item in attrs.items():
        if key.startswith(prefix):
            path = key[cut:]
            if "." in path:
                nested.append(key)
            else:
                metadata[path] = item
        elif key not in _CONSUMED:
            flat.append(key)
    # Sorted, after the plain keys, so "a" always lands before "a.b": the outcome never depends
    # on attribute order.
    for key in sorted(nested):
        _set_path(metadata, key[cut:], attrs[key])
    for key in sorted(flat):
        metadata.setdefault(key, attrs[key])
    return metadata


# -- telemetry events --------------------------------------------------------------------------
def event_document(log_data: LogData, service: str) -> Document:
    """A ``telemetry_events`` document from an SDK log record (Avalo event or any other log)."""
    record: LogRecord = log_data.log_record
    attrs, metadata, size = _event_attributes(record.attributes)
    body = record.body
    if body is not None and type(body) is not str:
        body, size = json_safe(body), -1
    elif body is not None and size >= 0:
        size += 6 * len(body)
    time_ns = record.timestamp or record.observed_timestamp or time.time_ns()
    trace_id = _hex(getattr(record, "trace_id", None), 32)
    span_id = _hex(getattr(record, "span_id", None), 16)
    scope = getattr(log_data, "instrumentation_scope", None)

    # (Module constants for the attribute keys: this runs for every event.)
    get = attrs.get
    level = _level_of(str(get(_LEVEL) or record.severity_text or ""), record.severity_number)
    operation = get(_OPERATION) or (body if isinstance(body, str) and _DOMAIN in attrs else None)
    operation = str(operation or (scope.name if scope is not None and scope.name else "log"))
    success = get(_SUCCESS)
    ts = int(time_ns) // 1_000_000
    doc: Document = {  # the fields of _EVENT_FIELDS, spelled out
        "id": _record_id(service, trace_id, span_id, time_ns, record.severity_text, body, attrs),
        "ts": ts,
        "domain": _domain_of(attrs),
        "level": level,
        "operation": operation,
        "success": bool(success) if success is not None else level not in _FAILING_LEVELS,
        "actorType": get(_ACTOR_TYPE),
        "actorId": get(_ACTOR_ID),
        "sessionId": get(_SESSION_ID),
        "errorCode": get(_ERROR_TYPE),
        "latencyMs": get(_LATENCY_MS),
        "metadata": metadata,
        "traceId": trace_id,
        "spanId": span_id,
        "service": service,
        "expireAt": ts + _EVENT_RETENTION_MS,
    }
    if body is not None and body != operation:
        doc["message"] = body
    return _sized(doc, size, service, operation)


# -- traces ------------------------------------------------------------------------------------
def span_document(span: ReadableSpan, service: str) -> Document:
    """A ``traces`` document (one per span) with id ``"<traceId>-<spanId>"``."""
    ctx = span.context
    trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    # The SDK span's own attributes: ``span.attributes`` wraps them in a read-only proxy, which
    # makes copying them call back into Python per item (twice the cost).
    attrs, size = _flat(getattr(span, "_attributes", None) or span.attributes)
    start, end = _ms(span.start_time), _ms(span.end_time)
    duration = (span.end_time - span.start_time) / 1e6 if span.end_time and span.start_time else None
    status = span.status.status_code
    success = attrs.get(Attr.SUCCESS)
    events = []
    for event in span.events:
        event_attrs, event_size = _flat(event.attributes)
        size = -1 if size < 0 or event_size < 0 else size + event_size + 6 * len(event.name) + 64
        events.append({"name": event.name, "timestamp": _ms(event.timestamp), "attributes": event_attrs})
    operation = str(attrs.get(Attr.OPERATION) or span.name)
    doc: Document = {
        "id": f"{trace_id}-{span_id}",
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": _hex(span.parent.span_id, 16) if span.parent is not None else None,
        "operation": operation,
        "name": span.name,
        "domain": _domain_of(attrs),
        "kind": span.kind.name.lower(),
        "startTime": start,
        "endTime": end,
        "durationMs": duration,
        "success": bool(success) if success is not None else status is not StatusCode.ERROR,
        "errorCode": attrs.get(Attr.ERROR_TYPE),
        "status": status.name.lower(),
        "statusMessage": span.status.description,
        "attributes": attrs,
        "events": events,
        "service": service,
        "expireAt": expire_at(TRACES, start) if start is not None else None,
    }
    return _sized(doc, size, service, operation, span.name, span.status.description or "")


# -- metrics -----------------------------------------------------------------------------------
def metric_documents(metrics_data: MetricsData, service: str) -> list[Document]:
    """One ``metrics`` document per data point."""
    docs: list[Document] = []
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                docs.extend(_points(metric, scope_metrics.scope.name, service))
    return docs


def _points(metric: Any, scope: str, service: str) -> Iterator[Document]:
    data = metric.data
    if isinstance(data, Sum):
        kind = "counter" if data.is_monotonic else "updowncounter"
    elif isinstance(data, Gauge):
        kind = "gauge"
    elif isinstance(data, (Histogram, ExponentialHistogram)):
        kind = "histogram"
    else:  # a data type this SDK version does not have yet: skip it rather than guess
        return
    temporality = getattr(data, "aggregation_temporality", None)
    temporality_name = None if temporality is None else (
        "delta" if temporality == AggregationTemporality.DELTA else "cumulative")
    for point in data.data_points:
        labels, size = _flat(point.attributes)
        timestamp = int(point.time_unix_nano) // 1_000_000
        doc: Document = {
            "id": document_id(service, scope, metric.name, sorted(labels.items()),
                              point.start_time_unix_nano, point.time_unix_nano),
            "name": metric.name,
            "type": kind,
            "value": json_safe(point.value) if kind != "histogram" else None,
            "labels": labels,
            "timestamp": timestamp,
            "startTime": _ms(point.start_time_unix_nano) or None,
            "temporality": temporality_name,
            "unit": metric.unit or None,
        }
        if kind == "histogram":
            empty = not point.count  # the SDK reports min=+inf, max=-inf for no measurements
            doc.update(count=point.count, sum=json_safe(point.sum),
                       min=None if empty else json_safe(point.min), max=None if empty else json_safe(point.max),
                       buckets=_buckets(point, isinstance(data, ExponentialHistogram)))
            numbers = sum(len(part) for part in _bucket_lists(doc["buckets"]))
            size = size + 32 * numbers if size >= 0 else -1
        doc.update(service=service, expireAt=expire_at(METRICS, timestamp))
        yield _sized(doc, size, service, scope, metric.name, metric.unit or "")


def _buckets(point: Any, exponential: bool) -> dict[str, Any]:
    if not exponential:
        return {"bounds": json_safe(list(point.explicit_bounds)), "counts": list(point.bucket_counts)}
    return {
        "scale": point.scale, "zeroCount": point.zero_count,
        "positive": {"offset": point.positive.offset, "counts": list(point.positive.bucket_counts)},
        "negative": {"offset": point.negative.offset, "counts": list(point.negative.bucket_counts)},
    }


def _bucket_lists(buckets: Mapping[str, Any]) -> Iterator[list[Any]]:
    for value in buckets.values():
        if isinstance(value, list):
            yield value
        elif isinstance(value, Mapping):
            yield from _bucket_lists(value)


# -- what every store applies on write ---------------------------------------------------------
def prepare_document(collection: str, doc: Mapping[str, Any]) -> Document:
    """What a store writes for ``doc``: JSON-safe, ``id`` checked, ``expireAt`` filled from the
    time field and retention when missing (never for alert rules), size-limited."""
    check_collection(collection)
    if not isinstance(doc, Mapping):
        raise StoreError(f"{collection}: a document must be a mapping, not {type(doc).__name__}")
    out: Document = json_safe(doc)
    if out is doc:
        out = dict(doc)  # json_safe returns plain data as it is: never change the caller's dict
    if out.get("id") in (None, ""):
        raise StoreError(f"{collection}: document has no 'id'")
    out["id"] = str(out["id"])
    if collection == ALERT_RULES:
        out.pop("expireAt", None)
    elif "expireAt" not in out and isinstance(out.get(TIME_FIELD[collection]), (int, float)):
        out["expireAt"] = expire_at(collection, int(out[TIME_FIELD[collection]]))
    return truncate_document(out)


def alert_rule_document(rule: Mapping[str, Any], now_ms: Optional[int] = None) -> Document:
    """A rule as stored: ``enabled`` defaults to true, ``updatedAt`` to now."""
    doc = dict(rule)
    doc.setdefault("enabled", True)
    if doc.get("updatedAt") is None:
        doc["updatedAt"] = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    return prepare_document(ALERT_RULES, doc)


def alert_event_document(event: Mapping[str, Any], now_ms: Optional[int] = None) -> Document:
    """An alert event as stored: ``timestamp`` defaults to now, ``acknowledged`` to false (so an
    ``acknowledged == false`` query finds it), ``id`` to a hash of the event."""
    doc = dict(event)
    if doc.get("timestamp") is None:
        doc["timestamp"] = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    doc.setdefault("acknowledged", False)
    if doc.get("id") in (None, ""):
        doc["id"] = document_id(ALERT_EVENTS, doc)
    return prepare_document(ALERT_EVENTS, doc)


def alert_event_changes(event_id: str, changes: Mapping[str, Any]) -> Document:
    """``update_alert_event``'s changes as stored: JSON-safe top-level fields. The ``id`` is the
    key and cannot change (given unchanged, it is dropped)."""
    if not isinstance(changes, Mapping):
        raise StoreError(f"{ALERT_EVENTS}: changes must be a mapping, not {type(changes).__name__}")
    out: Document = dict(json_safe(changes))
    if "id" in out and str(out.pop("id")) != str(event_id):
        raise StoreError(f"{ALERT_EVENTS}: an alert event's id cannot change (event {event_id!r})")
    return out


def acknowledgement(by: str, at_ms: Optional[int] = None) -> Document:
    """The changes ``acknowledge_alert`` makes (``acknowledgedAt`` defaults to now)."""
    at = int(at_ms) if at_ms is not None else time.time_ns() // 1_000_000
    return {"acknowledged": True, "acknowledgedBy": by, "acknowledgedAt": at}
