"""``promtool test rules`` cases for the generated SLO rules, with independently computed expectations.

Each scenario is synthetic Avalo traffic (per-minute events of one operation: outcome and latency)
turned into the classic series our /metrics serves (``avalo_operations_total``,
``avalo_operation_latency_ms_bucket``/``_count``; 2.42's promtool cannot express native
histograms). The expected alerts are not read from the rules: ``promrules_model``, a small model
of Prometheus 2.42, evaluates the *policy* over the same series. A wrong factor, a lost guard or a wrong bucket in the rules then fails the test file.

Per burn-rate indicator: a fast burn pages (and records the expected SLI/burn/events values), a
slow burn opens a ticket only, a burn that stopped 35 minutes ago keeps the ticket but not the
page, and fewer than ``alert_min_events`` events stay silent at a page-level error ratio. Per SLO:
healthy traffic (half the budget rate, client errors included) fires nothing. Per zero-tolerance
indicator: one bad event pages, as the first sample of a new series and as an increase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..conventions import OUTCOME_CLIENT_ERROR, OUTCOME_SERVER_ERROR, OUTCOME_SUCCESS
from .definitions import AVAILABILITY, LATENCY_METRIC, OPERATIONS_METRIC, SLO, Indicator
from .policy import TIERS, BurnRateAlert
from . import promrules as pr
from .promrules_model import EVAL_STEP_MIN, Model, ScenarioError, Series, go_printf, prom_round

JOB, INSTANCE = "avalo", "app:9464"
Event = tuple[str, str, float, int]          # outcome, error_code, latency_ms, count per minute
Phase = tuple[int, dict[str, list[Event]]]   # minutes, operation → events


# -- scenarios ---------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    phases: list[Phase]
    evals: list[int]
    lazy: bool = False                      # series appear with their first event (as on /metrics)
    slos: tuple[str, ...] = ()              # SLOs whose every alert is asserted at each eval
    records: list[tuple[str, str, str, str]] = field(default_factory=list)  # slo, indicator, prefix, window
    check: Optional["Check"] = None

    @property
    def minutes(self) -> int:
        return sum(m for m, _ in self.phases)


def _series(scenario: Scenario, slos: Sequence[SLO], buckets: Sequence[float]) -> list[Series]:
    ops = sorted({op for _, traffic in scenario.phases for op in traffic})
    bounds = _bounds(slos, buckets)
    out: list[Series] = []
    for op in ops:
        domain = op.split(".", 1)[0]
        base = {"job": JOB, "instance": INSTANCE, "domain": domain, "operation": op}
        keys = sorted({(o, c) for _, traffic in scenario.phases for o, c, _, _ in traffic.get(op, [])})
        hist_labels = [(f"{LATENCY_METRIC}_bucket", {"le": f"{b}"}, b) for b in bounds]
        hist_labels += [(f"{LATENCY_METRIC}_bucket", {"le": "+Inf"}, math.inf), (f"{LATENCY_METRIC}_count", {}, math.inf)]
        counters: list[tuple[dict[str, str], Callable[[Event], int]]] = []
        for outcome, code in keys:
            labels = {"__name__": OPERATIONS_METRIC, **base, "outcome": outcome, **({"error_code": code} if code else {})}
            counters.append((labels, lambda e, o=outcome, c=code: e[3] if (e[0], e[1]) == (o, c) else 0))
        for name, extra, bound in hist_labels:
            counters.append(({"__name__": name, **base, **extra}, lambda e, b=bound: e[3] if e[2] <= b else 0))
        hist_start = _first_minute(scenario, op, lambda e: e[3])
        for labels, counted in counters:
            values, total, minute = [0.0], 0.0, 0
            for minutes, traffic in scenario.phases:
                for _ in range(minutes):
                    minute += 1
                    total += sum(counted(e) for e in traffic.get(op, []))
                    values.append(total)
            if scenario.lazy:
                first = hist_start if labels["__name__"] != OPERATIONS_METRIC else next(
                    (i for i, v in enumerate(values) if v > 0), None)
                values = [None if first is None or i < first else v for i, v in enumerate(values)]  # type: ignore[misc]
            out.append(Series(labels, values))  # type: ignore[arg-type]
    return out


def _first_minute(scenario: Scenario, op: str, counted: Callable[[Event], int]) -> Optional[int]:
    minute = 0
    for minutes, traffic in scenario.phases:
        for _ in range(minutes):
            minute += 1
            if any(counted(e) for e in traffic.get(op, [])):
                return minute
    return None


def _bounds(slos: Sequence[SLO], buckets: Sequence[float]) -> list[float]:
    """The boundaries the test series carry: the fastest, every threshold and its neighbours
    (a rule reading the wrong bucket then sees a different count)."""
    ordered = sorted(buckets)
    chosen = {ordered[0]}
    for slo in slos:
        for ind in slo.indicators:
            if ind.threshold_ms is not None:
                i = ordered.index(next(b for b in ordered if float(b) == ind.threshold_ms))
                chosen.update(ordered[max(0, i - 1):i + 2])
    return sorted(chosen)


def _op(slo: SLO) -> str:
    return slo.select.operations[0] if slo.select.operations else f"{slo.select.domains[0]}.request"


def _slower(ind: Indicator, buckets: Sequence[float]) -> float:
    """A latency just over the indicator's threshold: the next boundary (or twice the threshold)."""
    above = [b for b in sorted(buckets) if b > ind.threshold_ms]  # type: ignore[operator]
    return float(above[0]) if above else 2.0 * ind.threshold_ms  # type: ignore[operator]


def _per_minute(budget: float) -> int:
    n = 1000
    while n * budget < 10:
        n *= 10
    return n


def _mix(ind: Indicator, n: int, bad: int, fast: float, buckets: Sequence[float], client: int = 0) -> list[Event]:
    bad, client = min(bad, n), min(client, n - min(bad, n))
    good = n - bad - client
    events: list[Event] = [(OUTCOME_SUCCESS, "", fast, good)] if good else []
    if client:
        events.append((OUTCOME_CLIENT_ERROR, "VALIDATION_FAILED", fast, client))
    if bad:
        events.append((OUTCOME_SERVER_ERROR, "INTERNAL", fast, bad) if ind.kind == AVAILABILITY
                      else (OUTCOME_SUCCESS, "", _slower(ind, buckets), bad))
    return events


def _healthy_mix(slo: SLO, buckets: Sequence[float], fast: float) -> list[Event]:
    """Every indicator at half its budget rate (at most); 20% client errors, which are good."""
    n = max(_per_minute(i.budget) if i.budget else 1000 for i in slo.indicators)
    bad = min([math.floor(n * 0.5 * i.budget) for i in slo.indicators if i.kind == AVAILABILITY] or [0])
    latency = sorted((i for i in slo.indicators if i.kind != AVAILABILITY), key=lambda i: i.threshold_ms)
    slow, cap = [], n
    for ind in latency:  # events slower than each threshold: non-increasing with the threshold
        cap = min(cap, math.floor(n * 0.5 * ind.budget))
        slow.append(cap)
    events: list[Event] = [(OUTCOME_SERVER_ERROR, "INTERNAL", fast, bad), (OUTCOME_CLIENT_ERROR, "RATE_LIMITED", fast, n // 5)]
    for k, ind in enumerate(latency):
        count = slow[k] - (slow[k + 1] if k + 1 < len(slow) else 0)
        events.append((OUTCOME_SUCCESS, "", _slower(ind, buckets), count))
    events.append((OUTCOME_SUCCESS, "", fast, n - sum(e[3] for e in events)))
    return [e for e in events if e[3] > 0]


def scenarios(slos: Sequence[SLO], buckets: Sequence[float], policy: Sequence[BurnRateAlert]) -> list[list[Scenario]]:
    """Each entry: alternatives of one case (a bad count nudged off rounding edges); the first
    whose expectations compute and meet its intent is used."""
    fast = float(min(buckets))
    factors = sorted({p.factor for p in policy})
    page = [p.factor for p in pr.tier_alerts(TIERS[0], policy)]
    ticket = [p.factor for p in pr.tier_alerts(TIERS[-1], policy)]
    out: list[list[Scenario]] = []
    for slo in slos:
        op, own = _op(slo), (slo.id,)
        out.append([Scenario(f"{slo.id}: healthy traffic (half the budget rate, client errors) fires nothing",
                             [(10, {op: _healthy_mix(slo, buckets, fast)})], [10], slos=own, check=_silent(slo))])
        for ind in slo.indicators:
            where = f"{slo.id}/{ind.id}"
            if ind.zero_tolerance:
                out.extend(_zero_tolerance(slo, ind, op, fast, buckets))
                continue
            n = _per_minute(ind.budget)
            if page and min(page) * ind.budget < 1:
                bad = math.ceil(n * min(1.0, ind.budget * max(page) * 1.25))
                recs = [(slo.id, ind.id, pr.SLI_ERROR, "5m"), (slo.id, ind.id, pr.SLI_ERROR, pr.slo_window(slo)),
                        (slo.id, ind.id, pr.BURN_RATE, "1h"), (slo.id, ind.id, pr.EVENTS, "1h")]
                fast_cases, stopped = [], []
                for b in _nudged(bad, n):
                    traffic = {op: _mix(ind, n, b, fast, buckets, client=n // 20)}
                    fast_cases.append(Scenario(f"{where}: fast burn ({b}/{n} bad a minute) pages", [(10, traffic)],
                                               [10], slos=own, records=recs, check=_fires(slo, ind, TIERS[0], True)))
                    stopped.append(Scenario(
                        f"{where}: a fast burn that stopped 35m ago keeps the ticket, not the page",
                        [(20, traffic), (35, {op: _mix(ind, n, 0, fast, buckets)})], [55], slos=own,
                        check=_both(_fires(slo, ind, TIERS[0], False), _fires(slo, ind, TIERS[-1], True))))
                out += [fast_cases, stopped]
            if len(TIERS) > 1 and ticket:
                above = [f for f in factors if f > min(ticket)]
                x = (min(ticket) + above[0]) / 2 if above else min(ticket) * 1.5
                out.append([Scenario(f"{where}: slow burn ({b}/{n} bad a minute) opens a ticket, no page",
                                     [(10, {op: _mix(ind, n, b, fast, buckets)})], [10], slos=own,
                                     check=_both(_fires(slo, ind, TIERS[0], False), _fires(slo, ind, TIERS[-1], True)))
                            for b in _nudged(round(n * ind.budget * x), n)])
            guard = _guard(slo, ind, op, fast, buckets, policy)
            if guard is not None:
                out.append([guard])
    return out


def _nudged(bad: int, n: int) -> list[int]:
    return [b for b in (bad, bad + 1, bad - 1, bad + 2) if 0 < b <= n]


def _guard(slo: SLO, ind: Indicator, op: str, fast: float, buckets: Sequence[float],
           policy: Sequence[BurnRateAlert]) -> Optional[Scenario]:
    """Fewer than alert_min_events events, the last ``b`` of them bad: the smallest ``b`` that would
    page (else open a ticket) without the guard."""
    m = slo.alert_min_events - 1
    if m < 1:
        return None
    end = -(-m // EVAL_STEP_MIN) * EVAL_STEP_MIN
    for tier in TIERS:
        for b in range(1, m + 1):
            phases: list[Phase] = [(end - m, {op: []})] if end > m else []
            phases += [(m - b, {op: _mix(ind, 1, 0, fast, buckets)})] if m > b else []
            phases.append((b, {op: _mix(ind, 1, 1, fast, buckets)}))
            scenario = Scenario(f"{slo.id}/{ind.id}: {m} events (< alert_min_events {slo.alert_min_events}), {b} bad: "
                                f"the guard keeps a {tier}-level ratio silent", phases, [end], slos=(slo.id,))
            model = Model(_series(scenario, [slo], buckets), buckets)
            try:
                would_fire = model.burn_alert(slo, ind, pr.tier_alerts(tier, policy), end, min_events=0) is not None
            except ScenarioError:  # on a factor's edge: try another count
                continue
            if would_fire:
                scenario.check = _silent(slo)
                return scenario
    return None


def _zero_tolerance(slo: SLO, ind: Indicator, op: str, fast: float, buckets: Sequence[float]) -> list[list[Scenario]]:
    page, ticket = _fires(slo, ind, TIERS[0], True), _fires(slo, ind, TIERS[-1], True)
    no_page = _fires(slo, ind, TIERS[0], False)
    held = pr.zero_tolerance_spans()[TIERS[0]]
    first, counted = [], []
    for n in (10, 7, 13):  # events a minute; another count if one puts a sibling indicator on an edge
        good, bad = _mix(ind, n, 0, fast, buckets), _mix(ind, n, 1, fast, buckets)
        first.append(Scenario(
            f"{slo.id}/{ind.id}: zero tolerance: one bad event (the first sample of a new series) pages at once, "
            f"for {held} (keep_firing_for), then a ticket holds",
            [(7, {op: good}), (1, {op: bad}), (37, {op: good})], [5, 10, 30, 45], lazy=True, slos=(slo.id,),
            check=_at({5: _silent(slo), 10: _both(page, ticket), 30: page, 45: _both(no_page, ticket)})))
        counted.append(Scenario(
            f"{slo.id}/{ind.id}: zero tolerance: one bad event on a counter that exists pages",
            [(11, {op: good}), (1, {op: bad}), (33, {op: good})], [10, 15, 45], slos=(slo.id,),
            check=_at({10: _silent(slo), 15: page, 45: _both(no_page, ticket)})))
    return [first, counted]


# -- intent checks -----------------------------------------------------------------------------
Check = Callable[[dict[tuple[str, str, str], Optional[float]], int], None]


def _fires(slo: SLO, ind: Indicator, tier: str, expected: bool) -> Check:
    def check(state: dict[tuple[str, str, str], Optional[float]], t: int) -> None:
        if (state[(slo.id, ind.id, tier)] is not None) != expected:
            raise ScenarioError(f"{slo.id}/{ind.id}: the {tier} is {'silent' if expected else 'firing'} at {t}m")
    return check


def _silent(slo: SLO) -> Check:
    def check(state: dict[tuple[str, str, str], Optional[float]], t: int) -> None:
        firing = [k for k, v in state.items() if k[0] == slo.id and v is not None]
        if firing:
            raise ScenarioError(f"{slo.id}: {firing} fire at {t}m")
    return check


def _both(*checks: Check) -> Check:
    def check(state: dict[tuple[str, str, str], Optional[float]], t: int) -> None:
        for c in checks:
            c(state, t)
    return check


def _at(by_time: dict[int, Check]) -> Check:
    def check(state: dict[tuple[str, str, str], Optional[float]], t: int) -> None:
        by_time[t](state, t)
    return check


# -- the promtool file -------------------------------------------------------------------------
def _values(values: Sequence[Optional[float]]) -> str:
    """promtool's expanding notation: ``0+950x19 19000+0x9``, ``_x7``."""
    tokens, i = [], 0
    while i < len(values):
        v = values[i]
        if v is None:
            j = i
            while j < len(values) and values[j] is None:
                j += 1
            tokens.append(f"_x{j - i}")
            i = j
            continue
        j = i + 1
        step = values[j] - v if j < len(values) and values[j] is not None else 0.0  # type: ignore[operator]
        while j < len(values) and values[j] is not None and values[j] - values[j - 1] == step:  # type: ignore[operator]
            j += 1
        tokens.append(f"{_num(v)}+{_num(step)}x{j - i - 1}")
        i = j
    return " ".join(tokens)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def _series_text(labels: dict[str, str]) -> str:
    body = ", ".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__")
    return f"{labels['__name__']}{{{body}}}"


def _alert_tests(slos: Sequence[SLO], model: Model, scenario: Scenario, policy: Sequence[BurnRateAlert],
                 t: int) -> list[dict[str, Any]]:
    state: dict[tuple[str, str, str], Optional[float]] = {}
    expected: dict[str, list[dict[str, Any]]] = {}
    for slo in slos:
        for ind in slo.indicators:
            for tier in TIERS:
                pairs = pr.tier_alerts(tier, policy)
                if not pairs:
                    continue
                name, labels = pr.alert_identity(slo, ind, tier)
                if ind.zero_tolerance:
                    value = model.zero_tolerance_alert(slo, ind, tier, t)
                    annotations = None if value is None else pr.zero_tolerance_annotations(slo, ind, tier, go_printf(value, ".0f"))
                else:
                    value = model.burn_alert(slo, ind, pairs, t)
                    annotations = None if value is None else pr.burn_annotations(
                        slo, ind, tier, pairs,
                        lambda prefix, window: go_printf(value if prefix is None else model.burn(slo, ind, window, t)))
                state[(slo.id, ind.id, tier)] = value
                if value is not None or slo.id in scenario.slos:
                    alerts = expected.setdefault(name, [])
                    if value is not None:
                        alerts.append({"exp_labels": labels, "exp_annotations": annotations})
    if scenario.check is not None:
        scenario.check(state, t)
    return [{"eval_time": f"{t}m", "alertname": name, "exp_alerts": alerts} for name, alerts in expected.items()]


def _record_tests(slos: Sequence[SLO], model: Model, scenario: Scenario, t: int) -> list[dict[str, Any]]:
    out = []
    by_id = {s.id: s for s in slos}
    for slo_id, ind_id, prefix, window in scenario.records:
        slo = by_id[slo_id]
        ind = slo.indicator(ind_id)
        labels = f'{{indicator="{ind_id}", slo="{slo_id}"}}'
        if prefix == pr.EVENTS:
            value = model.events(slo, ind, window, t)
            expr, shown = pr.recorded(prefix, window, slo, ind), f"{prefix}{window}{labels}"
        else:
            value = (model.sli_error if prefix == pr.SLI_ERROR else model.burn)(slo, ind, window, t)
            value = None if value is None else prom_round(value)
            expr, shown = f"round({pr.recorded(prefix, window, slo, ind)}, 0.000001)", labels
        if value is None:
            raise ScenarioError(f"{scenario.name}: no {prefix}{window} value to check")
        out.append({"expr": expr, "eval_time": f"{t}m", "exp_samples": [{"labels": shown, "value": value}]})
    return out


def _group(scenario: Scenario, slos: Sequence[SLO], buckets: Sequence[float],
           policy: Sequence[BurnRateAlert]) -> dict[str, Any]:
    if any(t % EVAL_STEP_MIN for t in scenario.evals):
        raise ScenarioError(f"{scenario.name}: eval times {scenario.evals} off the {EVAL_STEP_MIN}m grid")
    series = _series(scenario, slos, buckets)
    model = Model(series, buckets)
    group: dict[str, Any] = {
        "name": scenario.name, "interval": "1m",
        "input_series": [{"series": _series_text(s.labels), "values": _values(s.values)} for s in series],
        "alert_rule_test": [a for t in scenario.evals for a in _alert_tests(slos, model, scenario, policy, t)],
    }
    records = [r for t in scenario.evals for r in _record_tests(slos, model, scenario, t)]
    if records:
        group["promql_expr_test"] = records
    return group


def unit_tests(slos: Sequence[SLO], buckets: Sequence[float], policy: Sequence[BurnRateAlert],
               rule_file: str) -> dict[str, Any]:
    groups = []
    for alternatives in scenarios(slos, buckets, policy):
        problem: Optional[ScenarioError] = None
        for scenario in alternatives:
            try:
                groups.append(_group(scenario, slos, buckets, policy))
                break
            except ScenarioError as exc:
                problem = exc
        else:
            raise problem or ScenarioError("no scenario")
    return {"rule_files": [rule_file], "evaluation_interval": f"{EVAL_STEP_MIN}m", "tests": groups}
