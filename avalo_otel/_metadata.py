"""An event's ``metadata`` as log record attributes, bounded in keys, nesting and size.

``{"a": {"b": 1}}`` becomes ``avalo.metadata.a.b = 1`` down to ``MAX_DEPTH`` levels; deeper
mappings and mixed lists become one JSON string, itself cut at ``JSON_DEPTH`` levels of nesting
and ``JSON_CHARS`` characters. At most ``cap`` keys are kept: the SDK would evict the oldest
attribute for every key past its count limit, with a warning each, and the event's own fields,
added after the metadata, must be the ones that survive. Nothing here raises for a bad value:
it is repaired, counted through ``invalid(reason, message)`` and recorded.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping

from .conventions import Attr

#: Levels of nested mappings flattened into dotted keys.
MAX_DEPTH = 4
#: Levels of nesting kept inside one value serialised as JSON; deeper ones become ``TOO_DEEP``.
JSON_DEPTH = 8
#: Characters of such a value kept.
JSON_CHARS = 4096
#: Items copied out of one such value: every item takes at least two characters of JSON, so
#: past this many the text is longer than ``JSON_CHARS`` anyway (the cut is invisible).
JSON_ITEMS = JSON_CHARS // 2
TOO_DEEP = "[too deep]"
#: Attributes an event adds after its metadata (domain, operation, success, error type and
#: class, latency, actor type and id, session id).
EVENT_FIELDS = 9
#: The SDK's attribute count limit when none is configured (``OTEL_ATTRIBUTE_COUNT_LIMIT``).
SDK_COUNT_LIMIT = 128

Invalid = Callable[[str, str], None]


def key_cap(attribute_count_limit: int | None) -> int:
    """How many metadata keys an event keeps so its own fields fit under the count limit."""
    return max(0, (attribute_count_limit or SDK_COUNT_LIMIT) - EVENT_FIELDS)


def flatten(metadata: Mapping[str, Any], cap: int, invalid: Invalid) -> dict[str, Any]:
    """The attributes for ``metadata`` (see the module docstring)."""
    out: dict[str, Any] = {}
    if not _walk(metadata, Attr.METADATA_PREFIX, out, 0, cap, invalid):
        invalid("too_many_metadata_keys",
                f"metadata with more than {cap} keys: the first {cap} are kept, the rest dropped "
                "(raise OTEL_ATTRIBUTE_COUNT_LIMIT to keep more)")
    return out


def _walk(data: Mapping[str, Any], prefix: str, out: dict[str, Any], depth: int, cap: int,
          invalid: Invalid) -> bool:
    """Flatten ``data`` into ``out``; False when the cap cut it short."""
    for key, value in data.items():
        if len(out) >= cap:
            return False
        name = f"{prefix}{key}"
        if isinstance(value, (str, bool, int)):
            out[name] = value
        elif isinstance(value, float):
            out[name] = value if math.isfinite(value) else str(value)
        elif value is None:
            continue
        elif isinstance(value, Mapping) and depth < MAX_DEPTH:
            if not _walk(value, name + ".", out, depth + 1, cap, invalid):
                return False
        elif isinstance(value, (list, tuple)) and _homogeneous(value):
            out[name] = list(value)
        else:
            out[name] = _json(value, name, invalid)
    return True


def _json(value: Any, name: str, invalid: Invalid) -> str:
    copy = _Bounded()
    try:
        text = json.dumps(copy.of(value, 0), default=unserialisable, sort_keys=True)
    except (TypeError, ValueError, RecursionError):  # mixed key types, a repr that recurses…
        invalid("unserialisable_metadata", f"metadata {name!r} could not be serialised")
        return unserialisable(value)
    if copy.too_deep:
        invalid("metadata_too_deep", f"metadata {name!r} is nested too deep: below {JSON_DEPTH} levels in one "
                                     f"value, values are recorded as {TOO_DEEP!r}")
    return text[:JSON_CHARS]


class _Bounded:
    """A JSON-ready copy of a value, at most ``JSON_DEPTH`` levels and ``JSON_ITEMS`` items:
    ``json.dumps`` of a value nested ~1000 levels raises ``RecursionError``, and of a huge one
    costs far more than the ``JSON_CHARS`` characters kept. A cycle raises ``ValueError``, as
    ``json.dumps`` would."""

    def __init__(self) -> None:
        self.items = JSON_ITEMS
        self.too_deep = False
        self._path: set[int] = set()  # ids of the containers being copied, to find cycles

    def of(self, value: Any, depth: int) -> Any:
        is_mapping = isinstance(value, Mapping)
        if not is_mapping and not isinstance(value, (list, tuple)):
            return value  # scalars as they are; anything else goes to json's default
        if id(value) in self._path:
            raise ValueError("circular reference")
        if depth >= JSON_DEPTH:
            self.too_deep = True
            return TOO_DEEP
        self._path.add(id(value))
        out: Any = {} if is_mapping else []
        for item in value.items() if is_mapping else value:
            self.items -= 1
            if self.items < 0:
                break
            if is_mapping:
                out[item[0]] = self.of(item[1], depth + 1)
            else:
                out.append(self.of(item, depth + 1))
        self._path.discard(id(value))
        return out


def _homogeneous(values: Any) -> bool:
    kinds = {type(v) for v in values}
    return len(kinds) == 1 and kinds.pop() in (str, bool, int, float)


def unserialisable(value: Any) -> str:
    # The type name only: str(value) of an arbitrary object could carry personal data.
    return f"<unserialisable {type(value).__name__}>"
