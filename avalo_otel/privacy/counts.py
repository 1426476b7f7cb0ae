"""Counting redactions by rule on the span path: no lock, and without a callback no Python call."""

from __future__ import annotations

import threading
from typing import Callable, Iterable

try:  # Counter.update's C loop
    from _collections import _count_elements
except ImportError:  # pragma: no cover - other interpreters
    def _count_elements(mapping: dict[str, int], iterable: Iterable[str]) -> None:
        for item in iterable:
            mapping[item] = mapping.get(item, 0) + 1


class RuleCounts:
    """``add(rules)`` counts each rule once per occurrence in one dict per thread (so adding takes
    no lock); :meth:`totals` sums them."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[dict[str, int]] = []
        self._lock = threading.Lock()
        self._discounted: dict[str, int] = {}  # redactions that were not of real data (the self-check's)

    def add(self, rules: Iterable[str]) -> None:
        try:
            counts = self._local.counts
        except AttributeError:
            counts = self._local.counts = {}
            with self._lock:
                self._all.append(counts)
        _count_elements(counts, rules)

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        with self._lock:
            every = list(self._all)
        for counts in every:
            for rule, count in list(counts.items()):
                totals[rule] = totals.get(rule, 0) + count
        for rule, count in self._discounted.items():
            left = totals.get(rule, 0) - count
            if left > 0:
                totals[rule] = left
            else:
                totals.pop(rule, None)
        return totals

    def discount(self, before: dict[str, int]) -> None:
        """Leave out of :meth:`totals` what was counted since ``before`` (an earlier ``totals()``)."""
        after = self.totals()
        with self._lock:
            for rule, count in after.items():
                delta = count - before.get(rule, 0)
                if delta > 0:
                    self._discounted[rule] = self._discounted.get(rule, 0) + delta


def call_each(callback: Callable[[str], None]) -> Callable[[Iterable[str]], None]:
    """``rules -> None`` calling ``callback(rule)`` for each (a plain loop: in CPython 3.11+ a
    Python-to-Python call is cheaper than one made from C through ``map``); a failing callback is
    ignored, counting must never break export."""
    def add(rules: Iterable[str]) -> None:
        for rule in rules:
            try:
                callback(rule)
            except Exception:  # noqa: BLE001
                pass
    return add
