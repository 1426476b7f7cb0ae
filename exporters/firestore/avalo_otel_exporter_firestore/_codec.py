"""Mapping between store documents and Firestore: keys, ``expireAt`` timestamps, sizes, names,
and the raw commit requests that write documents.

``encode_write`` turns a document straight into the raw (upb) ``Write`` protobuf that the
client's ``batch.set()`` would build, and Firestore's storage size of it, in one pass. The
client's own path (``DocumentExtractor`` → ``encode_value`` → ~25 proto-plus messages per
document), with the rewriting and sizing passes it needed, took an exporter thread ~190 µs of
GIL time per small telemetry event; this takes ~13.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from google.cloud.firestore_v1._helpers import encode_value
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import document as _document
from google.cloud.firestore_v1.types import firestore as _firestore
from google.cloud.firestore_v1.types import write as _write

from avalo_otel.store import values
from avalo_otel.store.base import Document, StoreError, StoreSettingError

from ._errors import store_error

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
# The range of datetime, which is also about Firestore's timestamp range (years 1 to 9999).
_MIN_MS = (datetime.min.replace(tzinfo=timezone.utc) - _EPOCH) // _MS
_MAX_MS = (datetime.max.replace(tzinfo=timezone.utc) - _EPOCH) // _MS
_Write = _write.Write.pb()
_CommitRequest = _firestore.CommitRequest.pb()
_ValuePb = _document.Value.pb


def collection_id(prefix: str, name: str) -> str:
    """``prefix + name`` after checking the prefix gives a valid Firestore collection id."""
    if (
        not isinstance(prefix, str)
        or not _COLLECTION_ID.fullmatch(prefix)
        or (prefix and _RESERVED.fullmatch(prefix))
        or _RESERVED.fullmatch(prefix + name)
        or len((prefix + name).encode()) > 1500
    ):
        raise StoreSettingError(
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


def firestore_key(key: str) -> str:
    """``key`` as a map key Firestore accepts: an empty, reserved (``__x__``) or over-long key
    would fail the whole commit, so it gets a ``~`` mark (long ones clipped and hashed)."""
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




# -- commit requests ------------------------------------------------------------------------------

def commit_requests(database: str, path: str, docs: Mapping[str, Document], name: str) -> list[Any]:
    """Raw CommitRequests writing ``docs`` (by key, under the collection ``path``): at most 500
    writes and about ``MAX_BATCH_BYTES`` each. Every document is encoded straight into its
    request; a request made from finished writes would copy each one (~5 µs per document on the
    exporter's thread). ``name`` (the collection) is for error messages."""
    requests: list[Any] = []
    request, size = None, 0
    for key, doc in docs.items():
        if request is None or len(request.writes) >= MAX_BATCH_WRITES:
            request, size = _CommitRequest(database=database), 0
            requests.append(request)
        doc_size = _fit(name, path + key, doc, request.writes)
        if size and size + doc_size > MAX_BATCH_BYTES:  # opens the next request
            moved = request.writes.pop()
            request, size = _CommitRequest(database=database), 0
            request.writes.append(moved)
            requests.append(request)
        size += doc_size
    return requests


def precondition(write: Any, *, exists: bool) -> None:
    """Make ``write`` a create (``exists=False``: refused with ALREADY_EXISTS if the document is
    there) or an update of only the top-level fields it holds (``exists=True``: NOT_FOUND if the
    document is not there; the mask names the fields as stored, after ``firestore_key``)."""
    write.current_document.exists = exists
    if exists:
        write.update_mask.SetInParent()  # an empty mask still means "no other field"
        write.update_mask.field_paths.extend(FieldPath(name).to_api_repr() for name in write.update.fields)


def halves(request: Any) -> tuple[Any, Any]:
    """``request``'s writes in two requests (for a commit the backend found too large)."""
    writes, half = request.writes, len(request.writes) // 2
    first, second = _CommitRequest(database=request.database), _CommitRequest(database=request.database)
    first.writes.extend(writes[:half])
    second.writes.extend(writes[half:])
    return first, second


def _fit(name: str, document_path: str, doc: Document, writes: Any) -> int:
    """Adds ``doc``'s Write to ``writes`` (a request's repeated field) and returns its size,
    under 1 MiB as Firestore counts (8 bytes per number, where the schema's JSON estimate may
    count 2): shrunk further by the schema's truncation."""
    size = _encode(name, document_path, doc, writes)
    if size <= MAX_DOCUMENT_BYTES:
        return size
    budget = values.document_size(doc)
    for _ in range(4):
        del writes[-1]
        budget = int(budget * MAX_DOCUMENT_BYTES / size * 0.9)
        doc = values.truncate_document(doc, budget)
        size = _encode(name, document_path, doc, writes)
        if size <= MAX_DOCUMENT_BYTES:
            return size
    del writes[-1]
    raise StoreError(f"{name}/{doc['id']}: document is {size} bytes, over Firestore's {MAX_DOCUMENT_BYTES}-byte limit")


def _encode(name: str, document_path: str, doc: Document, writes: Any) -> int:
    """Adds ``doc``'s Write to ``writes``; returns its size. On failure ``writes`` is as it was."""
    write = writes.add()
    try:
        return encode_write(document_path, doc, write)[1]
    except Exception as exc:
        del writes[-1]  # (half-filled)
        if isinstance(exc, StoreError):
            raise
        raise store_error(exc, f"encode {name}/{doc['id']}") from exc


# -- encoding -------------------------------------------------------------------------------------

class UnstorableValue(ValueError):
    """A value Firestore cannot store, with the dotted path of the field holding it."""

    def __init__(self, path: str, reason: BaseException) -> None:
        super().__init__(f"field {path!r}: {type(reason).__name__}: {reason}")
        self.path, self.reason = path, reason


def encode_write(document_path: str, document: Mapping[str, Any], write: Any = None) -> tuple[Any, int]:
    """The raw ``Write`` protobuf replacing the document at ``document_path`` (absolute, as the
    client's ``DocumentReference._document_path``) with ``document``, and the document's size by
    Firestore's formula. Stored as ``batch.set()`` would store it after these rewrites: keys by
    ``firestore_key``, an array inside an array as ``{"values": [...]}``, a numeric top-level
    ``expireAt`` (epoch ms) as a timestamp, which Firestore's TTL policy needs.

    ``write``: an empty Write to fill (say, a commit request's ``writes.add()``) instead of a
    new one."""
    expire = document.get(EXPIRE_FIELD)
    ms = _expire_ms(expire) if isinstance(expire, (int, float)) and not isinstance(expire, bool) else None
    if write is None:
        write = _Write()
    update = write.update
    update.name = document_path
    size = _fill_map(update, document)
    if ms is not None:
        seconds, millis = divmod(ms, 1000)  # a timestamp counts 8 bytes like the number: same size
        stamp = update.fields[EXPIRE_FIELD].timestamp_value
        stamp.seconds, stamp.nanos = seconds, millis * 1_000_000
    # Firestore counts the name as its collection and document ids (not the project/database).
    ids = document_path.split("/documents/", 1)[-1].split("/")
    return write, size + sum(_string_size(i) for i in ids) + 16 + 32


def _expire_ms(value: int | float) -> int:
    try:
        ms = int(value)
    except (OverflowError, ValueError):  # inf, nan
        ms = None
    if ms is None or not _MIN_MS <= ms <= _MAX_MS:
        raise StoreError(f"{EXPIRE_FIELD} {value!r} is not an epoch-ms time Firestore can store")
    return ms


def _string_size(value: str) -> int:
    if value.isascii():
        return len(value) + 1
    return len(value.encode("utf-8", "surrogatepass")) + 1


# Map keys repeat from document to document (field names, attribute names): remember what each
# becomes and its size. Bounded: attribute keys can be arbitrary.
_KEYS: dict[str, tuple[str, int]] = {}
_KEYS_MAX = 4096


def _key(key: Any) -> tuple[str, int]:
    name = _utf8(firestore_key(key if type(key) is str else str(key))).decode("utf-8")
    entry = (name, _string_size(name))
    if type(key) is str and len(key) <= 256:  # (str subclasses may str() differently)
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        _KEYS[key] = entry
    return entry


def _fill_map(target: Any, mapping: Mapping[Any, Any]) -> int:
    """Fill ``target.fields`` (a MapValue or Document) from ``mapping``; returns its size: keys'
    string sizes plus values' sizes."""
    fields = target.fields
    size = 0
    for key, value in mapping.items():
        entry = _KEYS.get(key) if type(key) is str else None
        name, key_size = entry if entry is not None else _key(key)
        try:
            size += key_size + _fill(fields[name], value, False)
        except UnstorableValue as error:
            raise UnstorableValue(f"{name}.{error.path}", error.reason) from error.reason
        except (TypeError, ValueError, OverflowError) as exc:
            raise UnstorableValue(name, exc) from exc
    if len(fields) != len(mapping):
        # Two keys became one (say "" and "~"): the later wins, as in a dict of the rewritten
        # keys; refill, since the loop above merged the two values into one entry.
        fields.clear()
        return _fill_map(target, {_key(key)[0]: value for key, value in mapping.items()})
    if not mapping:
        target.SetInParent()  # an empty map is still a map, not an unset value
    return size


def _fill_array(target: Any, items: Any, in_array: bool) -> int:
    size = 0
    if in_array:
        # Firestore refuses an array directly inside an array: store {"values": [...]} instead.
        target = target.map_value.fields["values"]
        size = 7  # the key "values"
    array = target.array_value
    add = array.values.add
    for item in items:
        size += _fill(add(), item, True)
    if not items:
        array.SetInParent()
    return size


def _fill(target: Any, value: Any, in_array: bool) -> int:
    """Set the Value ``target`` from ``value`` as the client's ``encode_value`` would; returns
    Firestore's size of it. Exact types first: they are nearly all there is."""
    kind = type(value)
    if kind is str:  # (the size inline: this is the hottest line of an export)
        if value.isascii():
            target.string_value = value
            return len(value) + 1
        return _fill_text(target, value)
    if kind is int:
        target.integer_value = value
        return 8
    if kind is float:
        target.double_value = value
        return 8
    if kind is bool:
        target.boolean_value = value
        return 1
    if value is None:
        target.null_value = 0
        return 1
    if kind is dict:
        return _fill_map(target.map_value, value)
    if kind is list:
        return _fill_array(target, value, in_array)
    return _fill_other(target, value, in_array)


def _fill_text(target: Any, value: str) -> int:
    data = _utf8(value)
    target.string_value = data.decode("utf-8")
    return len(data) + 1


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8, a lone surrogate (no UTF-8 form; Firestore refuses it) as "?": one bad
    character must not fail a whole batch of events."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _fill_other(target: Any, value: Any, in_array: bool) -> int:
    # Subclasses, in encode_value's order (bool before int), then what the client does.
    if isinstance(value, bool):
        target.boolean_value = value
        return 1
    if isinstance(value, int):
        target.integer_value = value
        return 8
    if isinstance(value, float):
        target.double_value = value
        return 8
    if isinstance(value, str):
        return _fill_text(target, str.__str__(value))
    if isinstance(value, (bytes, bytearray, memoryview)) and getattr(value, "subtype", None) is None:
        data = bytes(value)  # (bytes with a ``subtype`` are BSON binary: below)
        target.bytes_value = data
        return len(data)
    if isinstance(value, Mapping):
        return _fill_map(target.map_value, value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return _fill_array(target, value, in_array)
    # Datetimes, GeoPoints, references, vectors, BSON types: whatever the client makes of them
    # (a TypeError for anything else). Rare enough that its proto-plus cost does not matter.
    target.CopyFrom(_ValuePb(encode_value(value)))
    if isinstance(value, datetime):
        return 8
    return len(value) if isinstance(value, bytes) else _string_size(str(value))
