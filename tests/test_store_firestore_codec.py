"""``_codec.encode_write`` against the client's own ``batch.set()``, on Google's Firestore emulator.

The store builds Write protobufs itself (``encode_write``) instead of going through the client's
proto-plus encoding; these tests hold it to storing exactly what ``set()`` of the rewritten data
stores (``reference_data`` below is the rewrite it replaced) and to the size formula it replaced.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping

import pytest

from google.cloud.firestore_v1 import GeoPoint, _helpers
from google.cloud.firestore_v1.vector import Vector

from avalo_otel.store import DAY_MS, TELEMETRY_EVENTS, StoreError
from avalo_otel_exporter_firestore import FirestoreStore, _codec
from store_contract import T0, event

if TYPE_CHECKING:
    pass

REFERENCE = "reference"


# -- the path encode_write replaced, kept as the reference ----------------------------------------
def reference_data(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the store handed to ``batch.set()`` before ``encode_write``."""
    data: dict[str, Any] = _reference_value(document)
    expire = data.get("expireAt")
    if isinstance(expire, (int, float)) and not isinstance(expire, bool):
        data["expireAt"] = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(expire))
    return data


def _reference_value(value: Any, in_array: bool = False) -> Any:
    if isinstance(value, Mapping):
        return {_codec.firestore_key(str(k)): _reference_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_reference_value(v, True) for v in value]
        return {"values": items} if in_array else items
    return value


def _string_size(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass")) + 1


def _value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, datetime)):
        return 8
    if isinstance(value, str):
        return _string_size(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_string_size(str(k)) + _value_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) for v in value)
    return _string_size(str(value))


def reference_size(collection: str, key: str, data: Mapping[str, Any]) -> int:
    return _string_size(collection) + _string_size(key) + 16 + _value_size(data) + 32


# -- documents covering every value type and rewrite -------------------------------------------------
LONG_KEY = "k" * 2000
LONG_UNICODE_KEY = "é😀" * 400  # 2400 bytes: clipped on a character boundary
I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1


def documents() -> list[dict[str, Any]]:
    tz = timezone(timedelta(hours=5, minutes=30))
    docs: list[dict[str, Any]] = [
        event("plain", T0),
        {"id": "scalars", "none": None, "t": True, "f": False, "zero": 0, "one": 1, "i64min": I64_MIN,
         "i64max": I64_MAX, "neg": -42, "fzero": 0.0, "negzero": -0.0, "big": 1.7976931348623157e308,
         "tiny": 5e-324, "pi": math.pi, "inf": math.inf, "ninf": -math.inf, "float_int": 3.0,
         "empty": "", "bytes": b"\x00\xff\x10", "nobytes": b""},
        {"id": "unicode", "latin": "café", "cjk": "数据库", "astral": "😀𝄞🀄", "mixed": "a😀b\u0301c",
         "nul": "a\x00b", "rtl": "مرحبا", "zwj": "👩‍👩‍👧", "😀key": "😀value", "ключ": {"вложенный": "да"}},
        {"id": "keys", "metadata": {
            "": 1, "__x__": 2, "__": 3, "___": 4, "____": 5, "a.b": 6, "`q`": 7, "~": 8, "a/b": 9, " ": 10, "*": 11,
            LONG_KEY: 12, LONG_UNICODE_KEY: 13, "__name__": {"__inner__": {"": None}}, 7: "int key", 1.5: "float key"}},
        # Keys that become the same key: the later one wins, even when both hold maps.
        {"id": "collisions", "m": {"": {"a": 1, "b": [1, 2]}, "~": {"c": 3}}, "n": {"~": "first", "": "second"},
         "o": {"1": "str", 1: "int"}, "p": {"__x__": {"x": 1}, "~__x__": 2}},
        {"id": "nesting", "metadata": {"a": {"b": {"c": {"d": [1, {"e": [True, None, "s"]}]}}}},
         "matrix": [[1, 2], [3], [], [[4, [5]]], [{"k": [[6]]}]], "tuple": (1, (2, 3)),
         "empties": {"map": {}, "list": [], "in_list": [{}, [], [[]]]}, "lists": [None, 1, 1.5, "x", b"y", {"z": 0}]},
        {"id": "expire_int", "ts": T0, "expireAt": T0 + 90 * DAY_MS},
        {"id": "expire_float", "expireAt": 1_700_000_000_123.9},
        {"id": "expire_epoch", "expireAt": 0},
        {"id": "expire_before_1970", "expireAt": -1},
        {"id": "expire_bounds", "expireAt": 253402300799999, "nested": {"expireAt": 5}},
        {"id": "expire_not_a_number", "expireAt": "soon"},
        {"id": "expire_bool", "expireAt": True},
        {"id": "datetimes", "utc": datetime(2024, 2, 29, 12, 30, 45, 123456, tzinfo=timezone.utc),
         "naive": datetime(2001, 9, 9, 1, 46, 40), "india": datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=tz),
         "old": datetime(1, 1, 1, tzinfo=timezone.utc), "in_list": [datetime(2020, 1, 1, tzinfo=timezone.utc)]},
        {"id": "client_types", "geo": GeoPoint(52.52, 13.405), "geos": [GeoPoint(-90, 180)],
         "vector": Vector([1.0, 2.5, -3.0])},
        {"id": "x" * 1600},  # keyed by hash, its id field stored as is
        {"id": "a/b", "deep": _deep(18)},
    ]
    return docs


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = {f"l{level}": value} if level % 2 else [value, level]
    return value


# The Firestore suite's fixtures: an emptied project, a plain client on it, a store on it.
from test_store_firestore import project, raw, store  # noqa: E402,F401


def typed(value: Any) -> Any:
    """``value`` with its types spelled out: ``==`` alone says True == 1 == 1.0 and -0.0 == 0.0."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float):
        return ("float", value, math.copysign(1.0, value))
    return (type(value).__name__, value)


# -- tests ----------------------------------------------------------------------------------------
def test_encode_write_builds_what_set_builds(raw: Any) -> None:
    prefix = raw.collection(TELEMETRY_EVENTS).document("-")._document_path[:-1]
    for doc in documents():
        key = _codec.document_key(doc["id"])
        data = reference_data(doc)
        [expected] = _helpers.pbs_for_set_no_merge(prefix + key, data)
        write, size = _codec.encode_write(prefix + key, doc)
        # Deterministic serialisation orders map entries: equal bytes, equal messages.
        ours, theirs = write.SerializeToString(deterministic=True), expected._pb.SerializeToString(deterministic=True)
        assert ours == theirs, doc["id"]
        assert size == reference_size(TELEMETRY_EVENTS, key, data), doc["id"]


def test_encoded_documents_read_back_as_set_ones(store: FirestoreStore, raw: Any) -> None:
    docs = documents()
    store.write(TELEMETRY_EVENTS, docs, prepared=True)
    batch = raw.batch()
    for doc in docs:
        batch.set(raw.collection(REFERENCE).document(_codec.document_key(doc["id"])), reference_data(doc))
    batch.commit()
    for doc in docs:
        key = _codec.document_key(doc["id"])
        ours = raw.collection(TELEMETRY_EVENTS).document(key).get()
        theirs = raw.collection(REFERENCE).document(key).get()
        assert ours.exists and theirs.exists, doc["id"]
        assert typed(ours.to_dict()) == typed(theirs.to_dict()), doc["id"]
    # And the store reads its own writes back as written (expireAt as epoch ms again).
    [plain] = [d for d in store.query_events() if d["id"] == "plain"]
    assert plain == event("plain", T0)


def test_sizes_match_the_formula_at_scale() -> None:
    # Unicode sizes count UTF-8 bytes (astral characters 4), ASCII ones characters.
    for text in ("", "a", "é", "数", "😀", "a" * 1000, "😀" * 1000 + "a"):
        doc = {"id": "s", text or "~": text, "list": [text, [text]]}
        _, size = _codec.encode_write("projects/p/databases/(default)/documents/c/s", doc)
        assert size == reference_size("c", "s", reference_data(doc)), text[:10]


def test_a_long_unicode_key_is_clipped_on_a_character_boundary() -> None:
    [name] = reference_data({LONG_UNICODE_KEY: 1})
    raw = LONG_UNICODE_KEY.encode()
    assert name == raw[:1400].decode("utf-8", "ignore") + "~" + hashlib.sha256(raw).hexdigest()[:16]
    assert len(name.encode()) <= 1500


@pytest.mark.parametrize("value, field, why", [
    ({"n": 2 ** 63}, "metadata.n", "out of range"),
    ({"deep": {"n": -(2 ** 63) - 1}}, "metadata.deep.n", "out of range"),
    ({"o": object()}, "metadata.o", "Cannot convert"),
    ({"d": 1 + 2j}, "metadata.d", "Cannot convert"),
])
def test_values_firestore_cannot_store_fail_the_write_permanently(
    store: FirestoreStore, raw: Any, value: Any, field: str, why: str
) -> None:
    with pytest.raises(StoreError) as info:
        store.write(TELEMETRY_EVENTS, [event("ok", T0), event("bad", T0, metadata=value)], prepared=True)
    assert not info.value.transient
    assert "telemetry_events/bad" in str(info.value) and repr(field) in str(info.value) and why in str(info.value)
    assert list(raw.collection(TELEMETRY_EVENTS).stream()) == []  # nothing half-written


def test_lone_surrogates_are_stored_replaced_not_failing_the_batch(store: FirestoreStore, raw: Any) -> None:
    # A lone surrogate has no UTF-8 form, so Firestore refuses it; one such character in an
    # attribute must not lose the whole batch.
    store.write(TELEMETRY_EVENTS, [event("ok", T0, metadata={"s": "ünï"}),
                                   event("odd", T0, metadata={"s": "lone \ud800 half", "k\udc00": 1})],
                prepared=True)
    got = {s.id: s.to_dict()["metadata"] for s in raw.collection(TELEMETRY_EVENTS).stream()}
    assert got == {"ok": {"s": "ünï"}, "odd": {"s": "lone ? half", "k?": 1}}


@pytest.mark.parametrize("expire", [10 ** 20, -(10 ** 20), math.inf, math.nan])
def test_expire_at_outside_timestamps_fails_permanently(store: FirestoreStore, expire: Any) -> None:
    with pytest.raises(StoreError, match="expireAt .* is not an epoch-ms time") as info:
        store.write(TELEMETRY_EVENTS, [event("e1", T0, expireAt=expire)], prepared=True)
    assert not info.value.transient


def test_bytes_like_values_are_stored_as_bytes(store: FirestoreStore, raw: Any) -> None:
    # (The client's set() refuses these; the size formula always counted them as bytes.)
    store.write(TELEMETRY_EVENTS, [{"id": "b", "ba": bytearray(b"\x01\x02"), "mv": memoryview(b"xyz"),
                                    "set": {3}, "fs": [frozenset({"a"})]}], prepared=True)
    got = raw.collection(TELEMETRY_EVENTS).document("b").get().to_dict()
    assert got == {"id": "b", "ba": b"\x01\x02", "mv": b"xyz", "set": [3], "fs": [{"values": ["a"]}]}


def test_over_limit_documents_are_truncated_or_rejected(store: FirestoreStore, raw: Any) -> None:
    # ~1.8 MB as Firestore counts numbers, in a shrinkable field: stored, truncated.
    store.write(TELEMETRY_EVENTS, [event("fits", T0, metadata={"counts": [7] * 225_000, "keep": "me"})])
    stored = raw.collection(TELEMETRY_EVENTS).document("fits").get().to_dict()
    assert stored["truncated"] is True and stored["metadata"] == {"keep": "me"}
    # The same outside the shrinkable fields: refused, permanently, before anything is sent.
    with pytest.raises(StoreError, match="over") as info:
        store.write(TELEMETRY_EVENTS, [event("ok", T0), event("huge", T0, domain=[7] * 225_000)])
    assert not info.value.transient
    assert [s.id for s in raw.collection(TELEMETRY_EVENTS).stream()] == ["fits"]


# -- commit requests --------------------------------------------------------------------------------
PATH = "projects/p/databases/(default)/documents/telemetry_events/"


def _names(requests: list[Any]) -> list[list[str]]:
    return [[w.update.name.rsplit("/", 1)[-1] for w in request.writes] for request in requests]


def test_commit_requests_hold_at_most_500_writes_each_in_order() -> None:
    docs = {f"e{i:04}": event(f"e{i:04}", T0) for i in range(1200)}
    requests = _codec.commit_requests("projects/p/databases/(default)", PATH, docs, "telemetry_events")
    assert [len(r.writes) for r in requests] == [500, 500, 200]
    assert [key for names in _names(requests) for key in names] == list(docs)
    assert {r.database for r in requests} == {"projects/p/databases/(default)"}
    # Each write is what encode_write makes of its document on its own.
    assert requests[1].writes[7] == _codec.encode_write(PATH + "e0507", docs["e0507"])[0]


def test_commit_requests_split_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = {f"b{i}": event(f"b{i}", T0, metadata={"blob": "x" * 3000}) for i in range(10)}
    size = _codec.encode_write(PATH + "b0", docs["b0"])[1]
    monkeypatch.setattr(_codec, "MAX_BATCH_BYTES", size * 3 + 10)
    requests = _codec.commit_requests("db", PATH, docs, "telemetry_events")
    assert _names(requests) == [["b0", "b1", "b2"], ["b3", "b4", "b5"], ["b6", "b7", "b8"], ["b9"]]


def test_a_document_that_cannot_be_encoded_leaves_no_half_written_write() -> None:
    docs = {"ok": event("ok", T0), "bad": event("bad", T0, metadata={"n": 2 ** 63}), "after": event("after", T0)}
    with pytest.raises(StoreError, match="telemetry_events/bad"):
        _codec.commit_requests("db", PATH, docs, "telemetry_events")
    writes = _codec.commit_requests("db", PATH, {"ok": docs["ok"]}, "telemetry_events")[0].writes
    with pytest.raises(StoreError, match="telemetry_events/bad"):
        _codec._fit("telemetry_events", PATH + "bad", docs["bad"], writes)
    assert len(writes) == 1
    fit = _codec._fit("telemetry_events", PATH + "huge", event("huge", T0, metadata={"counts": [7] * 225_000}), writes)
    assert len(writes) == 2 and fit <= _codec.MAX_DOCUMENT_BYTES  # truncated: one write, not the oversized too
    assert writes[1].update.fields["truncated"].boolean_value is True


def test_halves_split_a_request_without_losing_a_write() -> None:
    docs = {f"h{i}": event(f"h{i}", T0) for i in range(7)}
    (request,) = _codec.commit_requests("db", PATH, docs, "telemetry_events")
    first, second = _codec.halves(request)
    assert _names([first, second]) == [["h0", "h1", "h2"], ["h3", "h4", "h5", "h6"]]
    assert first.database == second.database == "db"
