"""Caches keyed by values the app supplies stay bounded: unique names cannot grow memory forever."""

from __future__ import annotations

import gc
import logging
import tracemalloc

import avalo_otel as ao
from avalo_otel import _runtime
from avalo_otel._runtime import CACHE_LIMIT
from avalo_otel.conventions import METRICS


def _invalid(cap, reason: str) -> int:
    return cap.count("avalo_otel_invalid_input_total", reason=reason)


def test_unique_operation_names_and_codes_are_bounded_with_one_warning_and_a_count(captured, caplog):
    cap = captured()
    caplog.set_level(logging.WARNING, logger="avalo_otel")
    n = CACHE_LIMIT * 2
    for i in range(n):
        ao.log_error("chat", f"chat.send_{i}", f"E_{i}")
    runtime = _runtime.current()
    assert len(_runtime._seen_names) <= CACHE_LIMIT and len(_runtime._seen_codes) <= CACHE_LIMIT
    assert len(runtime._op_attrs) <= CACHE_LIMIT and len(runtime._lat_attrs) <= CACHE_LIMIT
    # every call past the limit is counted; the limit itself is said once
    assert _invalid(cap, "too_many_distinct_values") >= n - CACHE_LIMIT
    limit_lines = [r for r in caplog.records if "distinct" in r.getMessage()]
    assert len(limit_lines) == 1 and "built from data" in limit_lines[0].getMessage()
    # unknown-name warnings are capped too (not one per name, 4k lines)
    assert len(caplog.records) <= _runtime._MAX_UNKNOWN_WARNINGS + 3
    # nothing was lost: every operation is still counted, the event still emitted
    total = sum(p.value for p in cap.points("avalo_operations_total"))
    assert total == n
    assert len(cap.logs()) == n


def test_unique_metric_names_past_the_limit_are_dropped_and_counted(captured):
    cap = captured()
    for i in range(CACHE_LIMIT + 50):
        ao.inc_counter(f"custom_metric_{i}_total")
    runtime = _runtime.current()
    assert len(runtime._instruments) <= CACHE_LIMIT + len(METRICS)
    assert _invalid(cap, "too_many_distinct_values") >= 50
    ao.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})  # known, still works
    assert cap.count("chat_messages_sent_total") == 1


def test_memory_stays_flat_under_unique_names(configured):
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    # A metric reader, so the SDK aggregates (its series are capped by the cardinality limit).
    configured(metric_readers=[InMemoryMetricReader()], logs_exporters="none", traces_exporters="none")
    for i in range(CACHE_LIMIT * 2):  # fill every cache first
        ao.log_error("chat", f"chat.warm_{i}", f"W_{i}")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(20_000):
            ao.log_error("chat", f"chat.op_{i}", f"C_{i}")
        gc.collect()
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    # unbounded, 20k names and codes cost several MiB here; bounded, next to nothing stays
    assert grown < 1 << 20, f"{grown / 2**20:.1f} MiB kept after 20k unique names"
