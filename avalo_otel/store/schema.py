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

import base64
import datetime as _dt
import hashlib
import json
import math
import time
import uuid
from decimal import Decimal
from enum import Enum
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

#: Below Firestore's 1 MiB (1,048,576 bytes) with room for its per-field overhead.
MAX_DOCUMENT_BYTES = 1_000_000
TRUNCATION_MARKER = "…[truncated]"
#: Fields ``truncate_document`` may shrink; everything else (the indexed fields) is kept whole.
SHRINKABLE_FIELDS = ("metadata", "attributes", "events", "message", "statusMessage")

_DOMAINS = frozenset(d.value for d in Domain)
_MAX_DEPTH = 32
_INT64 = 2**63
# The attributes that become document fields (everything else goes to metadata).
_EVENT_FIELDS = {
    Attr.DOMAIN: "domain", Attr.OPERATION: "operation", Attr.ACTOR_TYPE: "actorType",
    Attr.ACTOR_ID: "actorId", Attr.SESSION_ID: "sessionId", Attr.ERROR_TYPE: "errorCode",
    Attr.LATENCY_MS: "latencyMs",
}
_CONSUMED = frozenset(_EVENT_FIELDS) | {Attr.LEVEL, Attr.SUCCESS}
_LEVEL_NAMES = {
    "TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "NOTICE": "INFO", "WARN": "WARN",
    "WARNING": "WARN", "ERROR": "ERROR", "CRITICAL": "CRITICAL", "FATAL": "CRITICAL",
}
_FAILING_LEVELS = frozenset({"ERROR", "CRITICAL"})

LogData = Union[ReadableLogRecord, ReadWriteLogRecord]


# -- values ------------------------------------------------------------------------------------
def json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` as JSON/Firestore-storable data: bytes → base64 text, sets → sorted lists,
    NaN/±inf → ``"nan"``/``"inf"``/``"-inf"``, ints beyond 64 bits → text, anything unknown →
    ``"<TypeName>"`` (never ``str(obj)``: it could carry personal data)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)  # str enums → plain text
    if isinstance(value, int):
        return int(value) if -_INT64 <= value < _INT64 else str(int(value))
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    if _depth >= _MAX_DEPTH:  # also what stops a self-referencing structure
        return f"<{type(value).__name__}>"
    if type(value) is dict and _plain(value):
        return value  # the common case (attributes of scalars): nothing to convert, no copy
    if isinstance(value, Mapping):
        return {(k if isinstance(k, str) else str(json_safe(k, _depth + 1))): json_safe(v, _depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v, _depth + 1) for v in value), key=_canonical)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, Enum):
        return json_safe(value.value, _depth + 1)
    return f"<{type(value).__name__}>"


def _plain(mapping: dict) -> bool:
    for key, item in mapping.items():
        kind = type(item)
        if type(key) is not str or not (
            kind is str or kind is bool or item is None
            or (kind is int and -_INT64 <= item < _INT64)
            or (kind is float and math.isfinite(item))
        ):
            return False
    return True


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def document_id(*parts: Any) -> str:
    """Deterministic id: the first 32 hex digits of the SHA-256 of the parts' canonical JSON."""
    return hashlib.sha256(_canonical(json_safe(list(parts))).encode()).hexdigest()[:32]


def _ms(ns: Optional[int]) -> Optional[int]:
    return None if ns is None else int(ns) // 1_000_000


def _hex(value: Optional[int], width: int) -> Optional[str]:
    return f"{value:0{width}x}" if value else None


def _domain_of(attrs: Mapping[str, Any]) -> str:
    domain = attrs.get(Attr.DOMAIN)
    if domain:
        return str(domain)
    prefix = str(attrs.get(Attr.OPERATION) or "").split(".", 1)[0]
    return prefix if prefix in _DOMAINS else Domain.SYSTEM.value


def _level_of(text: Optional[str], number: Any) -> str:
    if text:
        name = _LEVEL_NAMES.get(text.strip().upper().rstrip("0123456789"))
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


def _metadata(attrs: Mapping[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    # Sorted so "a" always lands before "a.b": the outcome never depends on attribute order.
    for key in sorted(attrs):
        if key.startswith(Attr.METADATA_PREFIX):
            _set_path(metadata, key[len(Attr.METADATA_PREFIX):], attrs[key])
        elif key not in _CONSUMED:
            flat[key] = attrs[key]
    for key, value in flat.items():
        metadata.setdefault(key, value)
    return metadata


# -- telemetry events --------------------------------------------------------------------------
def event_document(log_data: LogData, service: str) -> Document:
    """A ``telemetry_events`` document from an SDK log record (Avalo event or any other log)."""
    record: LogRecord = log_data.log_record
    attrs: dict[str, Any] = json_safe(dict(record.attributes or {}))
    body = json_safe(record.body)
    time_ns = record.timestamp or record.observed_timestamp or time.time_ns()
    trace_id = _hex(getattr(record, "trace_id", None), 32)
    span_id = _hex(getattr(record, "span_id", None), 16)
    scope = getattr(log_data, "instrumentation_scope", None)

    level = _level_of(str(attrs.get(Attr.LEVEL) or record.severity_text or ""), record.severity_number)
    operation = attrs.get(Attr.OPERATION) or (body if isinstance(body, str) and Attr.DOMAIN in attrs else None)
    operation = str(operation or (scope.name if scope is not None and scope.name else "log"))
    success = attrs.get(Attr.SUCCESS)
    ts = int(time_ns) // 1_000_000
    doc: Document = {
        "id": document_id(service, trace_id, span_id, time_ns, record.severity_text, body, attrs),
        "ts": ts,
        "domain": _domain_of(attrs),
        "level": level,
        "operation": operation,
        "success": bool(success) if success is not None else level not in _FAILING_LEVELS,
    }
    for key, field in _EVENT_FIELDS.items():
        if field not in doc:
            doc[field] = attrs.get(key)
    doc["metadata"] = _metadata(attrs)
    if body is not None and body != operation:
        doc["message"] = body
    doc.update(traceId=trace_id, spanId=span_id, service=service, expireAt=expire_at(TELEMETRY_EVENTS, ts))
    return truncate_document(doc)


# -- traces ------------------------------------------------------------------------------------
def span_document(span: ReadableSpan, service: str) -> Document:
    """A ``traces`` document (one per span) with id ``"<traceId>-<spanId>"``."""
    ctx = span.context
    trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    attrs: dict[str, Any] = json_safe(dict(span.attributes or {}))
    start, end = _ms(span.start_time), _ms(span.end_time)
    duration = (span.end_time - span.start_time) / 1e6 if span.end_time and span.start_time else None
    status = span.status.status_code
    success = attrs.get(Attr.SUCCESS)
    doc: Document = {
        "id": f"{trace_id}-{span_id}",
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": _hex(span.parent.span_id, 16) if span.parent is not None else None,
        "operation": str(attrs.get(Attr.OPERATION) or span.name),
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
        "events": [
            {"name": e.name, "timestamp": _ms(e.timestamp), "attributes": json_safe(dict(e.attributes or {}))}
            for e in span.events
        ],
        "service": service,
        "expireAt": expire_at(TRACES, start) if start is not None else None,
    }
    return truncate_document(doc)


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
        labels = json_safe(dict(point.attributes or {}))
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
        doc.update(service=service, expireAt=expire_at(METRICS, timestamp))
        yield doc


def _buckets(point: Any, exponential: bool) -> dict[str, Any]:
    if not exponential:
        return {"bounds": json_safe(list(point.explicit_bounds)), "counts": list(point.bucket_counts)}
    return {
        "scale": point.scale, "zeroCount": point.zero_count,
        "positive": {"offset": point.positive.offset, "counts": list(point.positive.bucket_counts)},
        "negative": {"offset": point.negative.offset, "counts": list(point.negative.bucket_counts)},
    }


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


# -- size --------------------------------------------------------------------------------------
def document_size(doc: Any) -> int:
    """Bytes of the compact UTF-8 JSON encoding: the estimate of a document's stored size."""
    return len(_canonical(doc).encode())


def truncate_document(doc: Document, max_bytes: int = MAX_DOCUMENT_BYTES) -> Document:
    """``doc`` itself if small enough; otherwise a copy whose ``SHRINKABLE_FIELDS`` were cut
    (long strings clipped with ``TRUNCATION_MARKER``, then the largest entries dropped) and
    ``truncated: True``. Raises ``StoreError`` if the other fields alone are too big."""
    if document_size(doc) <= max_bytes:
        return doc
    out = dict(doc)
    out["truncated"] = True
    present = [k for k in SHRINKABLE_FIELDS if k in out]
    for limit in (4096, 512, 64):
        for key in present:
            out[key] = _clip(out[key], limit)
        if document_size(out) <= max_bytes:
            return out
    for key in present:
        out[key] = _drop_largest(out, key, document_size(out) - max_bytes)
        if document_size(out) <= max_bytes:
            return out
    cut = ", ".join(present) or "nothing to cut"
    raise StoreError(f"document {doc.get('id')!r} is over {max_bytes} bytes outside its shrinkable fields ({cut})")


def _clip(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return value[:limit] + TRUNCATION_MARKER if len(value) > limit + len(TRUNCATION_MARKER) else value
    if isinstance(value, dict):
        return {_clip(k, limit): _clip(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v, limit) for v in value]
    return value


def _drop_largest(doc: Document, key: str, excess: int) -> Any:
    value = doc[key]
    if isinstance(value, dict):
        kept = dict(value)
        for size, k in sorted(((document_size({k: v}), k) for k, v in value.items()), reverse=True):
            if excess <= 0:
                break
            del kept[k]
            excess -= size
        return kept
    if isinstance(value, list):
        kept_list = list(value)
        while kept_list and excess > 0:  # the earliest entries (e.g. span events) are kept
            excess -= document_size(kept_list.pop())
        return kept_list
    return TRUNCATION_MARKER if isinstance(value, str) else None
