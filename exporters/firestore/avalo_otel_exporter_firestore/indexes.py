"""The Firestore index configuration ``FirestoreStore``'s queries need (Firebase CLI format).

``firestore.indexes.json`` next to this distribution is ``render()``; with a collection prefix,
generate your own: ``avalo-otel-firestore-indexes --prefix staging_ > firestore.indexes.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import Any, Optional, Sequence

from avalo_otel.store.base import ALERT_EVENTS, METRICS, RETENTION_DAYS, SLO_ROLLUPS, TELEMETRY_EVENTS, TRACES

from ._codec import EXPIRE_FIELD, collection_id

ASC, DESC = "ASCENDING", "DESCENDING"


def _subsets(fields: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(c for n in range(1, len(fields) + 1) for c in itertools.combinations(fields, n))


#: (collection, the combinations of equality filters the store issues, time field, its order).
#: Firestore needs a composite index per combination of equality filters followed by the ordered
#: field; queries on the time field alone use the automatic single-field indexes.
QUERY_FAMILIES: tuple[tuple[str, tuple[tuple[str, ...], ...], str, str], ...] = (
    (TELEMETRY_EVENTS, _subsets(("domain", "level", "operation", "success")), "ts", DESC),
    (METRICS, _subsets(("name", "type")), "timestamp", DESC),
    # scan_metrics: one name, oldest first (then by document id, which every index ends with).
    (METRICS, (("name",),), "timestamp", ASC),
    (TRACES, (("operation",),), "startTime", DESC),
    # By trace id the spans come oldest first (the trace's order), with or without an operation.
    (TRACES, (("traceId",), ("traceId", "operation")), "startTime", ASC),
    (ALERT_EVENTS, _subsets(("severity", "acknowledged", "ruleId", "status")), "timestamp", DESC),
)

#: Map fields no query filters on: not indexing them saves an index entry per key per document.
UNINDEXED_FIELDS: tuple[tuple[str, str], ...] = (
    (TELEMETRY_EVENTS, "metadata"),
    (METRICS, "labels"),
    (TRACES, "attributes"),
    # A rollup's minute counts: a JSON text of up to ~100 KB, read by id only.
    (SLO_ROLLUPS, "data"),
)


def composite_indexes(prefix: str = "") -> list[dict[str, Any]]:
    return [
        {
            "collectionGroup": collection_id(prefix, collection),
            "queryScope": "COLLECTION",
            "fields": [{"fieldPath": f, "order": ASC} for f in combo] + [{"fieldPath": time_field, "order": order}],
        }
        for collection, combos, time_field, order in QUERY_FAMILIES
        for combo in combos
    ]


def field_overrides(prefix: str = "") -> list[dict[str, Any]]:
    overrides: list[dict[str, Any]] = []
    for collection, days in RETENTION_DAYS.items():
        if days is None:
            continue
        # TTL deletes by this timestamp; the ascending index stays for delete_expired's range
        # query (descending and array indexes on it would only cost storage).
        overrides.append({
            "collectionGroup": collection_id(prefix, collection),
            "fieldPath": EXPIRE_FIELD,
            "ttl": True,
            "indexes": [{"order": ASC, "queryScope": "COLLECTION"}],
        })
    for collection, field in UNINDEXED_FIELDS:
        overrides.append({"collectionGroup": collection_id(prefix, collection), "fieldPath": field, "indexes": []})
    return overrides


def render(prefix: str = "") -> dict[str, Any]:
    """The whole ``firestore.indexes.json`` document for collections named ``prefix + name``."""
    return {"indexes": composite_indexes(prefix), "fieldOverrides": field_overrides(prefix)}


#: (collection id, equality-filtered fields, ordered fields with their direction).
Shape = tuple[str, frozenset[str], tuple[tuple[str, str], ...]]


def query_shape(structured_query: Any) -> Shape:
    """The ``Shape`` of a ``StructuredQuery`` (as ``Query._to_protobuf()`` builds it)."""
    from google.cloud.firestore_v1.types import StructuredQuery

    pb = StructuredQuery.pb(structured_query)
    equal: set[str] = set()
    ranged: set[str] = set()
    pending = [pb.where] if pb.HasField("where") else []
    while pending:
        flt = pending.pop()
        kind = flt.WhichOneof("filter_type")
        if kind == "composite_filter":
            pending.extend(flt.composite_filter.filters)
        elif kind == "field_filter":
            field = flt.field_filter
            (equal if field.op == field.Operator.EQUAL else ranged).add(field.field.field_path)
        elif kind == "unary_filter":
            equal.add(flt.unary_filter.field.field_path)
    orders = tuple((o.field.field_path, StructuredQuery.Direction(o.direction).name) for o in pb.order_by)
    orders = _without_implicit_name(orders)
    # Without an explicit order, Firestore sorts by the range-filtered field, ascending.
    orders = orders or tuple((f, ASC) for f in sorted(ranged))
    if len({f for f, _ in orders} | ranged) > 1:
        raise ValueError(f"query ranges or orders on several fields: {sorted(ranged)}, {orders}")
    return pb.from_[0].collection_id, frozenset(equal), orders


def _without_implicit_name(orders: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``orders`` less a last ``__name__`` in the direction of the order before it: every index
    ends with the document name in that direction, so it needs no index field of its own."""
    if len(orders) >= 2 and orders[-1][0] == "__name__" and orders[-1][1] == orders[-2][1]:
        return orders[:-1]
    return orders


def is_covered(shape: Shape, config: dict[str, Any]) -> bool:
    """Whether Firestore can serve a query of ``shape`` with the indexes of ``config``."""
    collection, equal, orders = shape
    overrides = {(o["collectionGroup"], o["fieldPath"]): o["indexes"] for o in config.get("fieldOverrides", [])}

    def single_field(field: str, order: str) -> bool:  # automatic, unless an override drops it
        kept = overrides.get((collection, field))
        return kept is None or any(ix.get("order") == order and ix["queryScope"] == "COLLECTION" for ix in kept)

    if not equal:
        return all(single_field(f, o) for f, o in orders)
    if not orders:  # equality filters only: Firestore merges the single-field indexes
        return all(single_field(f, ASC) for f in equal)
    for index in config.get("indexes", []):
        fields = [(f["fieldPath"], f.get("order")) for f in index["fields"]]
        head, tail = fields[: len(equal)], tuple(fields[len(equal):])
        if (index["collectionGroup"] == collection and index["queryScope"] == "COLLECTION"
                and {f for f, _ in head} == equal and all(o == ASC for _, o in head) and tail == orders):
            return True
    return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Print firestore.indexes.json for avalo-otel's collections.")
    parser.add_argument("--prefix", default="", help="collection prefix given to FirestoreStore")
    args = parser.parse_args(argv)
    json.dump(render(args.prefix), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
