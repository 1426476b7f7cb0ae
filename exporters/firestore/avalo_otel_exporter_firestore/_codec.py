"""Mapping between store documents and Firestore: keys, ``expireAt`` timestamps, sizes, names."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from avalo_otel.store.base import Document, StoreError

EXPIRE_FIELD = "expireAt"
#: Firestore's documented maximum document size.
MAX_DOCUMENT_BYTES = 1_048_576
#: Firestore caps a commit at 500 writes.
MAX_BATCH_WRITES = 500
# Firestore caps a commit request at 10 MiB, the emulator (a gRPC server with default limits) at
# 4 MiB; our estimate is the storage formula, not the wire size, so aim well below both (a commit
# that is still too large is split in two and retried).
MAX_BATCH_BYTES = 3 * 1_048_576

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_COLLECTION_ID = re.compile(r"[A-Za-z0-9_-]*")
_RESERVED = re.compile(r"__.*__", re.DOTALL)


def collection_id(prefix: str, name: str) -> str:
    """``prefix + name`` after checking the prefix gives a valid Firestore collection id."""
    if (
        not isinstance(prefix, str)
        or not _COLLECTION_ID.fullmatch(prefix)
        or (prefix and _RESERVED.fullmatch(prefix))
        or _RESERVED.fullmatch(prefix + name)
        or len((prefix + name).encode()) > 1500
    ):
        raise StoreError(
            f"invalid collection prefix {prefix!r}: use letters, digits, '_' and '-' only "
            "(and not of the form __name__)"
        )
    return prefix + name


def document_key(doc_id: Any) -> str:
    """The Firestore document id for a store ``id``: the id itself when Firestore accepts it."""
    key = str(doc_id)
    raw = key.encode("utf-8", "surrogatepass")
    if key and "/" not in key and key not in (".", "..") and not _RESERVED.fullmatch(key) and len(raw) <= 1500:
        return key
    # Still deterministic, so a retried write of the same document lands on the same key.
    return "~" + hashlib.sha256(raw).hexdigest()


def ms_to_timestamp(ms: int) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except (OverflowError, TypeError) as exc:
        raise StoreError(f"{EXPIRE_FIELD} {ms!r} is not an epoch-ms time Firestore can store") from exc


def timestamp_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - _EPOCH) // _MS


def to_firestore(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` as Firestore stores it: ``expireAt`` a UTC datetime (TTL needs a timestamp),
    keys and arrays Firestore refuses rewritten (see ``firestore_value``)."""
    data: dict[str, Any] = firestore_value(document)
    expire = data.get(EXPIRE_FIELD)
    if isinstance(expire, (int, float)) and not isinstance(expire, bool):
        data[EXPIRE_FIELD] = ms_to_timestamp(int(expire))
    return data


def firestore_value(value: Any, in_array: bool = False) -> Any:
    """``value`` with what Firestore rejects made storable instead of failing the whole commit:
    an empty, reserved (``__x__``) or over-long map key gets a ``~`` mark, and an array inside
    an array becomes ``{"values": [...]}``."""
    if isinstance(value, Mapping):
        return {firestore_key(str(k)): firestore_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [firestore_value(v, True) for v in value]
        return {"values": items} if in_array else items
    return value


def firestore_key(key: str) -> str:
    if key == "":
        return "~"
    if _RESERVED.fullmatch(key):
        return "~" + key
    raw = key.encode("utf-8", "surrogatepass")
    if len(raw) > 1500:
        clipped = raw[:1400].decode("utf-8", "ignore")
        return f"{clipped}~{hashlib.sha256(raw).hexdigest()[:16]}"
    return key


def from_firestore(key: str, data: Mapping[str, Any] | None) -> Document:
    """The store document back: ``expireAt`` as epoch ms again, ``id`` always present."""
    document: Document = dict(data or {})
    document.setdefault("id", key)
    expire = document.get(EXPIRE_FIELD)
    if isinstance(expire, datetime):
        document[EXPIRE_FIELD] = timestamp_to_ms(expire)
    return document


def _string_size(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass")) + 1


def value_size(value: Any) -> int:
    """Storage size of one value, by Firestore's documented formula."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, datetime)):
        return 8
    if isinstance(value, str):
        return _string_size(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_string_size(str(k)) + value_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(value_size(v) for v in value)
    return _string_size(str(value))


def document_size(collection: str, key: str, data: Mapping[str, Any]) -> int:
    """Firestore's size of the document ``collection/key`` holding ``data``."""
    name = _string_size(collection) + _string_size(key) + 16
    return name + value_size(data) + 32
