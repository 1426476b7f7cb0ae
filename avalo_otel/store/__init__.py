"""Storage of the original design's collections: the protocol, the document schema, SQLite.

Only the standard library and the OTel SDK are imported here: the Firestore store lives in its
own distribution so apps that do not use it never load gRPC or google-auth.
"""

from .base import (
    ALERT_EVENTS, ALERT_RULES, COLLECTIONS, DAY_MS, METRICS, RETENTION_DAYS, SLO_ROLLUPS, TELEMETRY_EVENTS,
    TIME_FIELD, TRACES, Document, Store, StoreError, StoreSettingError, check_collection, expire_at,
)
from .schema import (
    alert_event_document, alert_rule_document, event_document, metric_documents, prepare_document, span_document,
)
from .values import (
    MAX_DOCUMENT_BYTES, SHRINKABLE_FIELDS, TRUNCATION_MARKER, document_id, document_size, json_safe,
    truncate_document,
)
from .sqlite import DEFAULT_PATH, SQLiteStore

__all__ = [
    "ALERT_EVENTS", "ALERT_RULES", "COLLECTIONS", "DAY_MS", "DEFAULT_PATH", "METRICS", "RETENTION_DAYS",
    "SLO_ROLLUPS", "TELEMETRY_EVENTS", "TIME_FIELD", "TRACES", "MAX_DOCUMENT_BYTES", "SHRINKABLE_FIELDS",
    "TRUNCATION_MARKER", "Document", "SQLiteStore", "Store", "StoreError", "StoreSettingError", "alert_event_document",
    "alert_rule_document", "check_collection", "document_id", "document_size", "event_document",
    "expire_at", "json_safe", "metric_documents", "prepare_document", "span_document",
    "truncate_document",
]
