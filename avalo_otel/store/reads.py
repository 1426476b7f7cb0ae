"""What the stores' bulk reads share: the arguments of ``scan_metrics`` and ``get_documents``
checked alike, and the per-name scans merged into one stream, oldest first.

A scan reads one ordered stream per metric name (each served by the ``(name, timestamp)``
index, in pages) and merges them here: one query over all names would have to sort every
remaining point again for each page.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterable, Iterator, Sequence

from .base import Document, StoreError

#: A scanned point: its ``timestamp``, the key the backend orders ties by, the document.
Scanned = tuple[Any, str, Document]


def scan_names(names: Sequence[str]) -> list[str]:
    """The distinct metric names, in order. A bare string is refused: iterating it would scan
    one "name" per character."""
    if isinstance(names, (str, bytes)):
        raise StoreError(f"names must be a sequence of metric names, not the string {names!r}")
    return list(dict.fromkeys(str(name) for name in names))


def merge_scans(streams: Iterable[Iterator[Scanned]]) -> Iterator[Document]:
    """The documents of ``streams`` (each ordered by timestamp, then key) as one ordered stream.
    Lazy: each stream reads its next page only when the merge gets to it."""
    for _, _, document in heapq.merge(*streams, key=lambda point: (point[0], point[1])):
        yield document


def unique_ids(ids: Sequence[str]) -> list[str]:
    """The distinct ids as text, in order (a repeated id is looked up, and returned, once)."""
    if isinstance(ids, (str, bytes)):
        raise StoreError(f"ids must be a sequence of document ids, not the string {ids!r}")
    return list(dict.fromkeys(str(i) for i in ids))


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def positive(value: int, what: str = "limit and batch_size must be positive integers") -> int:
    """``value`` if it is a positive int (a bool is not), else ``StoreError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StoreError(f"{what}, not {value!r}")
    return value


def page_size(value: int) -> int:
    return positive(value, "scan_page_size must be a positive integer")
