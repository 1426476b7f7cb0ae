"""JSON-safe values, document ids and document sizes: what the schema's builders and every store
share. Documents stay under Firestore's 1 MiB: ``truncate_document`` shrinks the free-form fields
of one that is not (long strings clipped with a marker, then the largest entries dropped)."""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import uuid
from decimal import Decimal
from enum import Enum
from typing import Any, Mapping, Optional

import orjson

from .base import Document, StoreError

#: Below Firestore's 1 MiB (1,048,576 bytes) with room for its per-field overhead.
MAX_DOCUMENT_BYTES = 1_000_000
TRUNCATION_MARKER = "…[truncated]"
#: Fields ``truncate_document`` may shrink; everything else (the indexed fields) is kept whole.
SHRINKABLE_FIELDS = ("metadata", "attributes", "events", "message", "statusMessage")

_MAX_DEPTH = 32
# Generous room for a document's fixed fields (names, ids, times, flags) in a size bound.
_FIXED_FIELDS_BYTES = 2048
_INT64 = 2**63


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
    return _flat_size(mapping) >= 0


def _flat_size(mapping: dict) -> int:
    """An upper bound of the compact JSON size (bytes) of a flat mapping of JSON scalars, or -1
    when it is not one (then ``json_safe`` has work to do and the size must be measured)."""
    if mapping and set(map(type, mapping)) != _STR_ONLY:
        return -1
    chars = _scalar_chars(mapping.values())
    # 6 bytes per character covers the worst escape (\u001f); 32 per entry covers quotes, colon,
    # comma and any number's digits.
    return -1 if chars < 0 else 6 * (sum(map(len, mapping)) + chars) + 32 * len(mapping)


_STR_ONLY = {str}


def _scalar_chars(values: Any) -> int:
    """Characters of the text values, or -1 when a value is not a JSON scalar."""
    chars = 0
    for item in values:
        kind = type(item)
        if kind is str:
            chars += len(item)
        elif kind is float:
            if item - item != 0.0:  # NaN or ±inf: not JSON
                return -1
        elif kind is int:
            if not -_INT64 <= item < _INT64:
                return -1
        elif kind is not bool and item is not None:
            return -1
    return chars


def _copy(attributes: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    # The SDK's BoundedAttributes keeps a plain dict inside; copying that one runs in C, where
    # dict(mapping) would call back into Python for every item.
    return dict(getattr(attributes, "_dict", attributes)) if attributes else {}


def _flat(attributes: Optional[Mapping[str, Any]]) -> tuple[dict[str, Any], int]:
    """OTel attributes as a JSON-safe dict, with ``_flat_size``'s bound (-1: not flat scalars)."""
    attrs = _copy(attributes)
    size = _flat_size(attrs)  # the common case: nothing to convert, and the size is bounded
    return (attrs, size) if size >= 0 else (json_safe(attrs), -1)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def document_id(*parts: Any) -> str:
    """Deterministic id: the first 32 hex digits of the SHA-256 of the parts' canonical JSON."""
    return hashlib.sha256(_canonical(json_safe(list(parts))).encode()).hexdigest()[:32]


def _record_id(*parts: Any) -> str:
    """``document_id`` for the JSON-safe ``parts`` the builders below pass, several times cheaper:
    the same canonical JSON (keys sorted) from orjson, hashed with BLAKE2b."""
    try:
        data = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # (orjson refuses lone surrogates, which the stdlib encoder escapes)
        data = _canonical(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _sized(doc: Document, size: int, *texts: str) -> Document:
    """``doc`` as ``truncate_document`` would return it, without encoding it when ``size`` (the
    bound of its variable parts from ``_flat_size``, -1 if unknown) proves it small enough."""
    if 0 <= size and size + 6 * sum(map(len, texts)) + _FIXED_FIELDS_BYTES <= MAX_DOCUMENT_BYTES:
        return doc
    return truncate_document(doc)


# -- size --------------------------------------------------------------------------------------
def document_size(doc: Any) -> int:
    """Bytes of the compact UTF-8 JSON encoding: the estimate of a document's stored size."""
    return len(_canonical(doc).encode("utf-8", "surrogatepass"))


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
