"""SLO reports over a real SQLite store, from stored delta points shaped as the exporters write
them: status colours, budget statuses, burn rates, zero tolerance, no data, rollups."""

from __future__ import annotations

import json
import math

import pytest

from avalo_otel.slo import CALENDAR_MONTH, SLOEvaluator, load_slos, parse_slos
from avalo_otel.slo.rollup import RollupUpdater, read_rollups
from avalo_otel.store import SQLiteStore

from slo_traffic import DAY, MINUTE, points

NOW = 1_764_000_000_000 - 1_764_000_000_000 % DAY + 12 * 3600_000 + 30_000  # noon and 30 s, UTC
SLOS = {s.id: s for s in load_slos()}


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "t.db") as s:
        yield s


@pytest.fixture(params=["sqlite", "firestore"])
def any_store(request, tmp_path):
    """The embedded store and Firestore (Google's emulator, the real client)."""
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "t.db") as s:
            yield s
        return
    from avalo_otel_exporter_firestore import FirestoreStore

    emulator = request.getfixturevalue("firestore_emulator")
    with FirestoreStore(emulator.client(emulator.project_id())) as s:
        yield s


def report(store, slo_id, now=NOW, **kwargs):
    (result,) = SLOEvaluator(store, [SLOS[slo_id]]).evaluate(now, **kwargs)
    return result


def write(store, docs):
    store.write("metrics", docs)


@pytest.mark.parametrize("fast, mid, slow, errors, latency, availability, overall", [
    (1000, 0, 0, 1, "green", "green", "green"),       # P95 < 300 ms, 99.9% available
    (900, 100, 0, 1, "yellow", "green", "yellow"),    # 10% at 400 ms: P95 < 500 ms only
    (900, 0, 100, 1, "red", "green", "red"),          # 10% at 750 ms: P95 >= 500 ms
    (1000, 0, 0, 7, "green", "yellow", "yellow"),     # 99.3% available: >= 99.0
    (1000, 0, 0, 20, "green", "red", "red"),          # 98% available
])
def test_chat_delivery_colours_follow_the_original_thresholds(store, fast, mid, slow, errors, latency,
                                                              availability, overall):
    total = fast + mid + slow
    write(store, points(NOW - 10 * MINUTE, "chat.send", ok=total - errors, server_errors=errors,
                        latencies_ms=[120] * fast + [400] * mid + [750] * slow))
    result = report(store, "slo_chat_delivery")
    statuses = {i.indicator.id: i.status for i in result.indicators}
    assert statuses == {"latency": latency, "availability": availability}
    assert result.status == overall
    avail = result.indicators[1]
    assert avail.sli == pytest.approx(1 - errors / total)
    assert avail.window.total == total and avail.window.bad == errors


@pytest.mark.parametrize("bad, status, colour", [
    (5, "healthy", "green"), (12, "warning", "yellow"), (18, "critical", "red"), (20, "exhausted", "red"),
    (25, "exhausted", "red"),
])
def test_wallet_budget_statuses_and_the_policy(store, bad, status, colour):
    # 10,000 wallet operations over the window: a 0.2% budget allows 20 bad events.
    for minute in range(100):
        ts = NOW - (minute + 1) * 37 * MINUTE
        write(store, points(ts, "wallet.spend", ok=100 - (1 if minute < bad else 0),
                            server_errors=1 if minute < bad else 0))
    result = report(store, "slo_wallet_operations")
    ind = result.primary
    assert ind.window.total == 10_000
    assert ind.allowed_bad_events == pytest.approx(20)
    assert ind.budget_consumed == pytest.approx(bad / 20)
    assert ind.budget_remaining == pytest.approx(1 - bad / 20)
    assert ind.bad_events_remaining == max(0, 20 - bad)
    assert (ind.budget_status, ind.status, result.budget_status) == (status, colour, status)
    assert result.policy_action.startswith({"healthy": "Continue", "warning": "Monitor", "critical": "Freeze",
                                            "exhausted": "Pause"}[status])


def test_client_class_errors_are_good_events(store):
    write(store, points(NOW - MINUTE, "wallet.spend", ok=500, client_errors=500))
    ind = report(store, "slo_wallet_operations").primary
    assert (ind.window.total, ind.window.bad, ind.sli, ind.budget_status) == (1000, 0, 1.0, "healthy")


def test_burn_rates_per_window(store):
    # Three days at 100 events a minute, all good but the last five minutes: 10 bad a minute.
    for minute in range(3 * 1440):
        ts = NOW - minute * MINUTE
        bad = 10 if minute < 5 else 0
        write(store, points(ts, "wallet.spend", ok=100 - bad, server_errors=bad))
    ind = report(store, "slo_wallet_operations").primary
    rates = ind.burn_rates
    assert rates["5m"] == pytest.approx(0.1 / 0.002)                # 10% bad / 0.2% budget = 50x
    assert rates["30m"] == pytest.approx((50 / 3000) / 0.002)
    assert rates["1h"] == pytest.approx((50 / 6000) / 0.002)
    assert rates["1d"] == pytest.approx((50 / 144_000) / 0.002)
    assert rates["3d"] == pytest.approx((50 / 432_000) / 0.002)
    # 50 bad of an allowance of 0.2% x 432,000 = 864: 94.2% left, gone in (0.942 x 30 d) / 4.17.
    assert ind.budget_remaining == pytest.approx(1 - 50 / 864)
    assert ind.time_to_exhaustion_s == pytest.approx(ind.budget_remaining * 30 * 86400 / rates["1h"])


def test_zero_tolerance_panic_availability_is_exhausted_by_one_bad_event_without_nan(any_store):
    store = any_store
    write(store, points(NOW - 2 * MINUTE, "safety.panic_press", ok=9, server_errors=1, latencies_ms=[800] * 10))
    result = report(store, "slo_panic_safety")
    avail = next(i for i in result.indicators if i.indicator.id == "availability")
    assert avail.budget_status == "exhausted" and avail.status == "red"  # only 10 events: still exhausted
    assert avail.burn_rates["5m"] == math.inf and avail.budget_remaining == -math.inf
    assert avail.time_to_exhaustion_s == 0.0 and avail.bad_events_remaining == 0
    doc = result.to_dict()
    text = json.dumps(doc, allow_nan=False)  # no NaN or Infinity anywhere in the JSON
    assert doc["indicators"][1]["burn_rates"]["5m"] == "inf"
    assert result.budget_status == "exhausted" and "NaN" not in text


def test_zero_tolerance_with_no_bad_event_burns_nothing(store):
    write(store, points(NOW - 2 * MINUTE, "safety.panic_press", ok=200, latencies_ms=[800] * 200))
    avail = next(i for i in report(store, "slo_panic_safety").indicators if i.indicator.id == "availability")
    assert (avail.burn_rates["5m"], avail.budget_consumed, avail.budget_remaining) == (0.0, 0.0, 1.0)
    assert avail.budget_status == "healthy" and avail.status == "green"


def test_no_data_is_never_green_and_never_nan(store):
    result = report(store, "slo_chat_delivery")
    assert result.status == "no_data" and result.budget_status == "no_data"
    for ind in result.indicators:
        assert ind.sli is None and all(rate is None for rate in ind.burn_rates.values())
        assert ind.time_to_exhaustion_s is None and ind.status == "no_data"
    assert result.policy_action.startswith("No events in the window")
    json.dumps(result.to_dict(), allow_nan=False)


def test_too_few_events_is_inconclusive(store):
    write(store, points(NOW - MINUTE, "support.ticket_create", ok=40, server_errors=10))
    result = report(store, "slo_support_system")
    assert result.status == "inconclusive" and result.primary.budget_status == "inconclusive"
    assert result.primary.sli == pytest.approx(0.8)


def test_many_processes_and_restarts_sum_their_delta_points(store):
    for process in range(10):
        for minute in range(30):
            # A restart half-way: the new process instance starts its deltas again.
            instance = f"p{process}-{'b' if minute >= 15 else 'a'}"
            write(store, points(NOW - minute * MINUTE, "chat.send", ok=9, server_errors=1,
                                latencies_ms=[100] * 10, process=instance))
    avail = report(store, "slo_chat_delivery").indicators[1]
    assert (avail.window.total, avail.window.bad) == (3000, 300)


def test_cumulative_points_are_differenced_and_a_reset_counts_from_zero(store):
    # A cumulative producer: 100, 250, then a restart (new start time) at 30, then 80.
    series = [(NOW - 9 * MINUTE, 100, 1), (NOW - 8 * MINUTE, 250, 1), (NOW - 7 * MINUTE, 30, 2),
              (NOW - 6 * MINUTE, 80, 2)]
    for ts, value, start in series:
        write(store, points(ts, "wallet.spend", ok=value, temporality="cumulative", start=start))
    ind = report(store, "slo_wallet_operations").primary
    # The first point is only the baseline; then +150, +30 (reset), +50.
    assert ind.window.total == 230


def test_rollups_are_idempotent_count_late_points_and_serve_a_calendar_month(any_store):
    store = any_store
    write(store, points(NOW - 3 * MINUTE, "chat.send", ok=50, latencies_ms=[100] * 50))
    evaluator = SLOEvaluator(store, [SLOS["slo_chat_delivery"]])
    first = evaluator.evaluate(NOW)[0].indicators[1].window.total
    assert evaluator.evaluate(NOW)[0].indicators[1].window.total == first == 50  # not counted twice
    # A point that arrives late, for a minute already folded in, within the lateness window.
    write(store, points(NOW - 2 * MINUTE, "chat.send", ok=25, process="late", latencies_ms=[100] * 25))
    assert evaluator.evaluate(NOW + MINUTE)[0].indicators[1].window.total == 75
    # A second evaluator on the same store agrees (nothing is incremented, minutes are recomputed).
    assert SLOEvaluator(store, [SLOS["slo_chat_delivery"]]).evaluate(NOW + MINUTE)[0].indicators[1].window.total == 75
    month = evaluator.evaluate(NOW + MINUTE, view=CALENDAR_MONTH)[0]
    assert month.view == "calendar_month" and month.indicators[1].window.total == 75
    import datetime as dt

    start = dt.datetime.fromtimestamp(month.start_ms / 1000, tz=dt.timezone.utc)
    assert (start.day, start.hour, start.minute) == (1, 0, 0)


def test_points_older_than_the_window_do_not_count(store):
    write(store, points(NOW - 31 * DAY, "chat.send", ok=500, latencies_ms=[100] * 500))
    write(store, points(NOW - 29 * DAY, "chat.send", ok=100, latencies_ms=[100] * 100))
    assert report(store, "slo_chat_delivery").indicators[1].window.total == 100


def test_a_histogram_without_the_threshold_boundary_is_left_out_with_a_warning(store, caplog):
    write(store, points(NOW - MINUTE, "chat.send", ok=200, latencies_ms=[100] * 200, bounds=(100, 250, 1000)))
    with caplog.at_level("WARNING", logger="avalo_otel.slo"):
        result = report(store, "slo_chat_delivery")
    latency = result.indicators[0]
    assert latency.status == "no_data" and latency.window.total == 0
    assert "300 ms is not one of its bucket boundaries (100, 250, 1000)" in caplog.text
    assert result.indicators[1].window.total == 200  # availability is still counted


def test_evaluation_reads_a_bounded_number_of_documents(any_store):
    store = any_store
    slos = list(SLOS.values())
    for day in range(30):
        for process in range(3):
            write(store, points(NOW - day * DAY, "chat.send", ok=10, latencies_ms=[100] * 10, process=f"p{process}"))
    evaluator = SLOEvaluator(store, slos)
    evaluator.update(NOW)
    before = store.documents_read
    evaluator.evaluate(NOW, update=False)
    assert store.documents_read - before <= len(slos) * 31
    assert len(read_rollups(store, SLOS["slo_chat_delivery"], NOW - 30 * DAY, NOW)) == 30


def test_a_user_slo_over_a_domain(store):
    (slo,) = parse_slos("""
slos:
  - id: slo_auth
    min_events: 10
    select: {domains: [auth]}
    indicators:
      - {id: availability, kind: availability, objective: 99}
""")
    write(store, points(NOW - MINUTE, "auth.login", ok=90, server_errors=10))
    write(store, points(NOW - MINUTE, "chat.send", ok=90, server_errors=10))
    (result,) = SLOEvaluator(store, [slo]).evaluate(NOW)
    assert result.primary.window.total == 100 and result.status == "red"
    updater = RollupUpdater(store, [slo])
    assert updater.watermark() == NOW


def _stress(store, slo, indicator, consumed, n=100_000):
    """``n`` events of the SLO's first operation over the last hour, with ``consumed`` of
    ``indicator``'s budget spent and every other indicator healthy."""
    operation = slo.select.operations[0] if slo.select.operations else f"{slo.select.domains[0]}.request"
    bad = round(consumed * indicator.budget * n)
    fast = 10.0
    slow = {None: fast}.get(indicator.threshold_ms, (indicator.threshold_ms or 0) * 1.2)
    per_minute, docs = n // 50, []
    for minute in range(50):
        bad_here = bad // 50 + (1 if minute < bad % 50 else 0)
        errors = bad_here if indicator.kind == "availability" else 0
        latencies = [slow] * bad_here + [fast] * (per_minute - bad_here) if indicator.kind == "latency" else \
            [fast] * per_minute
        docs += points(NOW - minute * MINUTE, operation, ok=per_minute - errors, server_errors=errors,
                       latencies_ms=latencies)
    write(store, docs)


CASES = [(slo.id, ind.id) for slo in SLOS.values() for ind in slo.indicators
         if not ind.zero_tolerance and slo.id != "slo_chat_delivery"]


@pytest.mark.parametrize("slo_id, indicator_id", CASES)
@pytest.mark.parametrize("consumed, budget, colour", [
    (0.25, "healthy", "green"), (0.6, "warning", "yellow"), (0.9, "critical", "red"), (1.5, "exhausted", "red"),
])
def test_every_slo_goes_through_every_budget_status_and_colour(tmp_path, slo_id, indicator_id, consumed, budget,
                                                               colour):
    slo = SLOS[slo_id]
    indicator = slo.indicator(indicator_id)
    with SQLiteStore(tmp_path / "t.db") as store:
        _stress(store, slo, indicator, consumed)
        result = report(store, slo_id)
    stressed = next(i for i in result.indicators if i.indicator.id == indicator_id)
    assert stressed.budget_consumed == pytest.approx(consumed, rel=1e-3)
    assert (stressed.budget_status, stressed.status) == (budget, colour)
    assert (result.budget_status, result.status, result.primary.indicator.id) == (budget, colour, indicator_id)
    for other in result.indicators:
        if other is not stressed:
            assert other.budget_status == "healthy", other.to_dict()


@pytest.mark.parametrize("consumed, budget", [(0.25, "healthy"), (0.6, "warning"), (0.9, "critical"),
                                              (1.5, "exhausted")])
def test_chat_delivery_budget_statuses(tmp_path, consumed, budget):
    slo = SLOS["slo_chat_delivery"]
    with SQLiteStore(tmp_path / "t.db") as store:
        _stress(store, slo, slo.indicator("availability"), consumed)
        result = report(store, slo.id)
    assert result.indicators[1].budget_status == budget == result.budget_status
