"""The zero-setup store under load: one app thread calling ``time_operation`` flat out into the
embedded SQLite store, with the default buffer, loses nothing, and the buffer stays within its
bound. Bounded in count (a few seconds of work); no timing is asserted."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import avalo_otel
from avalo_otel.settings import Settings

DROPPED = "avalo_otel_export_dropped_total"
# Two documents per call (its span and its event): 20 000 documents, twice the default buffer,
# so the writer must keep up while the loop runs (before the fix about half were dropped).
CALLS = 10_000


def _dropped(reader: InMemoryMetricReader) -> float:
    data = reader.get_metrics_data()
    return sum(point.value
               for rm in (data.resource_metrics if data else ())
               for sm in rm.scope_metrics for metric in sm.metrics if metric.name == DROPPED
               for point in metric.data.data_points)


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])


def test_one_app_thread_flat_out_into_sqlite_loses_nothing(
        configured: Callable[..., avalo_otel.Telemetry], tmp_path: Path) -> None:
    path = tmp_path / "load.db"
    reader = InMemoryMetricReader()
    handle = configured(traces_exporters="sqlite", logs_exporters="sqlite", metrics_exporters="none",
                        store_path=str(path), metric_readers=[reader])
    writer: Any = handle._store_writer
    bound = Settings.load({}).store_buffer
    assert writer.max_buffer == bound  # the default, as a zero-setup app gets it
    peak = 0
    for i in range(CALLS):
        with avalo_otel.time_operation("chat", "chat.send", actor_id="u1", metadata={"seq": i}):
            pass
        if i % 64 == 0:
            peak = max(peak, writer.pending)
    assert handle.force_flush(60)
    assert writer.dropped == 0 and _dropped(reader) == 0
    assert _count(path, "traces") == CALLS
    assert _count(path, "telemetry_events") == CALLS
    # Memory stays bounded: what waits (the buffer, at most the bound) plus the batch being
    # written (at most batch_size for each of the two collections).
    assert 0 < peak <= bound + 2 * writer.batch_size
