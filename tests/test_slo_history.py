"""budget_history: the remaining error budget through an SLO's window, from the rollups only."""

from __future__ import annotations

import pytest

from avalo_otel.slo import CALENDAR_MONTH, SLOEvaluator, load_slos
from avalo_otel.slo.history import budget_history
from avalo_otel.store import SQLiteStore

from slo_traffic import DAY, MINUTE, points

NOW = 1_764_000_000_000 - 1_764_000_000_000 % DAY + 12 * 3600_000 + 30_000
SLOS = {s.id: s for s in load_slos()}


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "h.db") as s:
        yield s


class Counting:
    """Counts the store's document reads by collection."""

    def __init__(self, store):
        self.store, self.reads = store, []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get_documents(self, collection, ids):
        self.reads.append((collection, len(ids)))
        return self.store.get_documents(collection, ids)


def test_the_history_ends_at_the_reports_remaining_budget_and_starts_untouched(store):
    slo = SLOS["slo_wallet_operations"]
    # 10 days ago 1 bad in 1000; 2 days ago 2 bad in 1000: 3 bad of 2000 allowed 4 (0.2%).
    store.write("metrics", points(NOW - 10 * DAY, "wallet.spend", ok=999, server_errors=1))
    store.write("metrics", points(NOW - 2 * DAY, "wallet.spend", ok=998, server_errors=2))
    (report,) = SLOEvaluator(store, [slo]).evaluate(NOW)
    counting = Counting(store)
    history = budget_history(counting, slo, NOW, step_minutes=60)
    assert counting.reads == [("slo_rollups", 31)]  # one read of the window's day documents
    (ind,) = history.indicators
    assert ind.events == 2000 and ind.bad_events == 3
    assert ind.points[0] == (history.start_ms, 1.0)
    assert ind.points[-1][0] == history.end_ms
    assert ind.points[-1][1] == pytest.approx(report.indicators[0].budget_remaining)
    assert ind.points[-1][1] == pytest.approx(0.25)
    middle = [v for t, v in ind.points if NOW - 10 * DAY < t < NOW - 2 * DAY]
    assert middle and all(v == pytest.approx(0.75) for v in middle)  # one of four allowed spent
    values = [v for _, v in ind.points]
    assert values == sorted(values, reverse=True)  # remaining budget never grows within a window
    assert history.ideal(history.start_ms) == 1.0 and history.ideal(history.period_end_ms) == 0.0
    steps = {b[0] - a[0] for a, b in zip(ind.points, ind.points[1:-1])}
    assert steps == {60 * MINUTE}


def test_no_events_is_none_and_zero_tolerance_is_all_or_nothing(store):
    panic = SLOS["slo_panic_safety"]
    empty = budget_history(store, panic, NOW)
    assert all(v is None for ind in empty.indicators for _, v in ind.points)
    store.write("metrics", points(NOW - 3 * DAY, "safety.panic_press", ok=200, latencies_ms=[100] * 200))
    store.write("metrics", points(NOW - DAY, "safety.panic_press", ok=99, server_errors=1))
    SLOEvaluator(store, [panic]).update(NOW)
    history = budget_history(store, panic, NOW, step_minutes=360)
    availability = next(i for i in history.indicators if i.indicator == "availability")
    assert availability.zero_tolerance
    before = [v for t, v in availability.points if t <= NOW - DAY - MINUTE]
    after = [v for t, v in availability.points if t > NOW - DAY + 360 * MINUTE]
    assert set(before) == {1.0} and set(after) == {0.0}


def test_the_calendar_month_view_burns_towards_the_months_end(store):
    slo = SLOS["slo_api_overall"]
    store.write("metrics", points(NOW - 60 * MINUTE, "api.request", ok=990, server_errors=10))
    SLOEvaluator(store, [slo]).update(NOW)
    history = budget_history(store, slo, NOW, view=CALENDAR_MONTH, step_minutes=1440)
    assert history.period_end_ms > history.end_ms  # the ideal line runs to the month's end
    assert (history.period_end_ms - history.start_ms) % DAY == 0
    assert history.indicators[0].points[-1][1] == pytest.approx(0.0)  # 1% bad of a 1% budget
    assert history.to_dict()["ideal"] == [[history.start_ms, 1.0], [history.period_end_ms, 0.0]]


def test_the_step_must_be_a_positive_whole_number(store):
    with pytest.raises(ValueError, match="step_minutes"):
        budget_history(store, SLOS["slo_api_overall"], NOW, step_minutes=0)
