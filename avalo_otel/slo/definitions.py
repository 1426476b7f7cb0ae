"""SLO definitions: the data file format, its typed objects and their validation.

One definition feeds both evaluators: the in-process one over the store (``rollup``, ``report``)
and Prometheus (``promrules``). Every check here exists because one of them would otherwise give
a wrong or undefined answer: a latency threshold that is not a bucket boundary (both would have
to interpolate), an objective of 0 or over 100, two indicators sharing an id (their rollups and
recording rules would collide).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import yaml

from ..conventions import LATENCY_BUCKETS_MS, OPERATION_PATTERN, OUTCOME_SERVER_ERROR

#: The two metrics every SLO is computed from (recorded for every event, never sampled).
OPERATIONS_METRIC = "avalo_operations_total"
LATENCY_METRIC = "avalo_operation_latency_ms"

AVAILABILITY = "availability"
LATENCY = "latency"
KINDS = (AVAILABILITY, LATENCY)

_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DOMAIN = re.compile(r"^[a-z][a-z0-9_]*$")
_SLO_KEYS = {"id", "name", "description", "select", "indicators", "window_days", "min_events", "alert_min_events"}
_INDICATOR_KEYS = {"id", "kind", "objective", "threshold_ms", "warn", "description"}
MAX_WINDOW_DAYS = 90


class SLODefinitionError(ValueError):
    """An SLO file or definition is invalid; the message names the file, the path and the fix."""


@dataclass(frozen=True)
class Selector:
    """Which events an SLO counts: any of ``operations``, or any operation of ``domains``."""

    operations: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        return labels.get("operation") in self.operations or labels.get("domain") in self.domains

    def promql(self) -> str:
        """The label matchers selecting the same series in PromQL (``operation=~"a|b"``)."""
        parts = []
        if self.operations and self.domains:
            # PromQL has no OR between matchers; our conventions make the operation's prefix
            # its domain, so the domain list folds into the operation regex.
            alternatives = [re.escape(op) for op in self.operations] + [re.escape(d) + r"\..+" for d in self.domains]
            parts.append(f'operation=~"{_promql_escape("|".join(alternatives))}"')
        elif self.operations:
            parts.append(f'operation=~"{_promql_escape("|".join(re.escape(op) for op in self.operations))}"')
        else:
            parts.append(f'domain=~"{_promql_escape("|".join(re.escape(d) for d in self.domains))}"')
        return ", ".join(parts)


def _promql_escape(regex: str) -> str:
    return regex.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class Indicator:
    """One SLI of an SLO: good events / all events, with its objective (percent)."""

    id: str
    kind: str
    objective: float
    threshold_ms: Optional[float] = None
    warn_objective: Optional[float] = None
    warn_threshold_ms: Optional[float] = None
    description: str = ""

    @property
    def target(self) -> float:
        """The objective as a fraction (99.5 → 0.995)."""
        return self.objective / 100.0

    @property
    def budget(self) -> float:
        """The error budget: the fraction of events allowed to be bad (0 for zero tolerance)."""
        return max(0.0, round((100.0 - self.objective) / 100.0, 12))

    @property
    def zero_tolerance(self) -> bool:
        return self.objective >= 100.0

    @property
    def series(self) -> tuple[str, ...]:
        """The counts a rollup keeps for this indicator, per minute."""
        names = ("total", "bad")
        return names + (("warn_bad",) if self.warn_threshold_ms is not None else ())

    def short_label(self) -> str:
        return f"{self.id} <= {_fmt(self.threshold_ms)} ms" if self.kind == LATENCY else self.id

    def label(self) -> str:
        if self.kind == LATENCY:
            return f"latency <= {_fmt(self.threshold_ms)} ms for {_fmt(self.objective)}% of events"
        return f"availability >= {_fmt(self.objective)}%"


@dataclass(frozen=True)
class SLO:
    id: str
    name: str
    description: str
    select: Selector
    indicators: tuple[Indicator, ...]
    window_days: int = 30
    #: Fewer events than this in the window: the status is "inconclusive", never a colour.
    min_events: int = 100
    #: Fewer events than this in a burn-rate alert's long window: the alert stays silent.
    alert_min_events: int = 20
    source: str = field(default="", compare=False)

    def indicator(self, indicator_id: str) -> Indicator:
        for indicator in self.indicators:
            if indicator.id == indicator_id:
                return indicator
        raise KeyError(f"SLO {self.id} has no indicator {indicator_id!r}")

    @property
    def metrics(self) -> tuple[str, ...]:
        """The stored metrics this SLO reads."""
        kinds = {i.kind for i in self.indicators}
        return tuple(m for m, k in ((OPERATIONS_METRIC, AVAILABILITY), (LATENCY_METRIC, LATENCY)) if k in kinds)


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:g}"


def is_bad_outcome(labels: Mapping[str, Any]) -> bool:
    """Only server-class failures burn budget; client-class outcomes are good events."""
    return labels.get("outcome") == OUTCOME_SERVER_ERROR


# -- loading -----------------------------------------------------------------------------------
def builtin_path() -> Path:
    return Path(str(resources.files("avalo_otel.slo").joinpath("slos.yaml")))


def load_slos(
    paths: Iterable[Union[str, Path]] = (), *, builtin: bool = True,
    buckets: Sequence[float] = LATENCY_BUCKETS_MS,
) -> list["SLO"]:
    """The built-in SLOs (unless ``builtin=False``) plus those of each file in ``paths``; a later
    SLO with the id of an earlier one replaces it. Raises ``SLODefinitionError``."""
    slos: dict[str, SLO] = {}
    sources = ([builtin_path()] if builtin else []) + [Path(p) for p in paths]
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SLODefinitionError(f"cannot read the SLO file {path}: {exc.strerror or exc}") from None
        for slo in parse_slos(text, source=str(path), buckets=buckets):
            slos[slo.id] = slo
    return list(slos.values())


def parse_slos(
    text_or_data: Union[str, Mapping[str, Any]], *, source: str = "<slos>",
    buckets: Sequence[float] = LATENCY_BUCKETS_MS,
) -> list[SLO]:
    """SLOs from YAML text (or the parsed mapping); every problem raises ``SLODefinitionError``."""
    data: Any = text_or_data
    if isinstance(text_or_data, str):
        try:
            data = yaml.safe_load(text_or_data)
        except yaml.YAMLError as exc:
            raise SLODefinitionError(f"{source}: not valid YAML: {exc}") from None
    check = _Checker(source, tuple(float(b) for b in buckets))
    if not isinstance(data, Mapping) or "slos" not in data:
        check.fail("", "the file must be a mapping with a 'slos' list")
    unknown = set(data) - {"version", "slos"}
    if unknown:
        check.fail("", f"unknown key(s) {sorted(unknown)}; expected 'version' and 'slos'")
    if data.get("version", 1) != 1:
        check.fail("version", f"unsupported version {data.get('version')!r}; this avalo-otel reads version 1")
    return check.unique("slos", data["slos"], check.slo, "SLO")


class _Checker:
    def __init__(self, source: str, buckets: tuple[float, ...]) -> None:
        self.source, self.buckets = source, buckets

    def fail(self, where: str, message: str) -> "NoReturn":  # type: ignore[name-defined]
        raise SLODefinitionError(f"{self.source}: {where + ': ' if where else ''}{message}")

    def unique(self, where: str, items: Any, parse: Any, what: str) -> list[Any]:
        """A non-empty list parsed item by item, ids unique within it."""
        if not isinstance(items, list) or not items:
            self.fail(where, f"must be a non-empty list of {what}s")
        parsed: list[Any] = []
        for i, item in enumerate(items):
            value = parse(f"{where}[{i}]", item)
            if any(p.id == value.id for p in parsed):
                self.fail(f"{where}[{i}].id", f"duplicate {what} id {value.id!r}")
            parsed.append(value)
        return parsed

    def mapping(self, where: str, value: Any, allowed: set[str], required: Iterable[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, f"must be a mapping, not {type(value).__name__}")
        unknown = set(value) - allowed
        if unknown:
            self.fail(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        for key in required:
            if key not in value:
                self.fail(where, f"missing required key {key!r}")
        return value

    def ident(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not _ID.match(value):
            self.fail(where, f"{value!r} is not a valid id (lower-case letters, digits and '_', starting with a letter)")
        return value

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str):
            self.fail(where, f"must be text, not {type(value).__name__}")
        return value

    def number(self, where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(where, f"must be a finite number, not {value!r}")
        return float(value)

    def integer(self, where: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"must be a whole number from {low} to {high}, not {value!r}")
        return value

    def objective(self, where: str, value: Any) -> float:
        objective = self.number(where, value)
        if not 0 < objective <= 100:
            self.fail(where, f"objective is a percentage in (0, 100], not {value!r}")
        return objective

    def threshold(self, where: str, value: Any) -> float:
        threshold = self.number(where, value)
        if threshold not in self.buckets:
            bounds = ", ".join(f"{b:g}" for b in self.buckets)
            self.fail(where, f"{threshold:g} ms is not a bucket boundary of {LATENCY_METRIC} (boundaries: {bounds}); "
                             "a latency SLI is a ratio of bucket counts at the exact threshold, so pick a boundary "
                             "or add it to the histogram's buckets (AVALO_OTEL_LATENCY_BUCKETS_MS)")
        return threshold

    def selector(self, where: str, value: Any) -> Selector:
        value = self.mapping(where, value, {"operations", "domains"}, ())
        operations = tuple(self.names(f"{where}.operations", value.get("operations", []), OPERATION_PATTERN, "operation"))
        domains = tuple(self.names(f"{where}.domains", value.get("domains", []), _DOMAIN, "domain"))
        if not operations and not domains:
            self.fail(where, "select needs at least one of 'operations' or 'domains'")
        return Selector(operations, domains)

    def names(self, where: str, value: Any, pattern: "re.Pattern[str]", what: str) -> list[str]:
        if not isinstance(value, list):
            self.fail(where, f"must be a list of {what} names")
        for i, name in enumerate(value):
            if not isinstance(name, str) or not pattern.match(name):
                self.fail(f"{where}[{i}]", f"{name!r} is not a valid {what} name")
        return value

    def slo(self, where: str, item: Any) -> SLO:
        item = self.mapping(where, item, _SLO_KEYS, ("id", "select", "indicators"))
        slo_id = self.ident(f"{where}.id", item["id"])
        where = f"{where} ({slo_id})"
        indicators = self.unique(f"{where}.indicators", item["indicators"], self.indicator, "indicator")
        return SLO(
            id=slo_id,
            name=self.text(f"{where}.name", item.get("name", slo_id)),
            description=self.text(f"{where}.description", item.get("description", "")),
            select=self.selector(f"{where}.select", item["select"]),
            indicators=tuple(indicators),
            window_days=self.integer(f"{where}.window_days", item.get("window_days", 30), 1, MAX_WINDOW_DAYS),
            min_events=self.integer(f"{where}.min_events", item.get("min_events", 100), 1, 10**9),
            alert_min_events=self.integer(f"{where}.alert_min_events", item.get("alert_min_events", 20), 1, 10**9),
            source=self.source,
        )

    def indicator(self, where: str, entry: Any) -> Indicator:
        entry = self.mapping(where, entry, _INDICATOR_KEYS, ("id", "kind", "objective"))
        indicator_id = self.ident(f"{where}.id", entry["id"])
        kind = entry["kind"]
        if kind not in KINDS:
            self.fail(f"{where}.kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        objective = self.objective(f"{where}.objective", entry["objective"])
        threshold = None
        if kind == LATENCY:
            if "threshold_ms" not in entry:
                self.fail(where, "a latency indicator needs threshold_ms")
            threshold = self.threshold(f"{where}.threshold_ms", entry["threshold_ms"])
        elif "threshold_ms" in entry:
            self.fail(f"{where}.threshold_ms", "only latency indicators have a threshold")
        warn_objective = warn_threshold = None
        if "warn" in entry:
            warn = self.mapping(f"{where}.warn", entry["warn"], {"objective", "threshold_ms"}, ())
            if len(warn) != 1:
                self.fail(f"{where}.warn", "give exactly one of 'objective' or 'threshold_ms'")
            if "objective" in warn:
                warn_objective = self.objective(f"{where}.warn.objective", warn["objective"])
                if warn_objective >= objective:
                    self.fail(f"{where}.warn.objective", f"the warning level must be below the objective {objective:g}")
            else:
                if kind != LATENCY:
                    self.fail(f"{where}.warn.threshold_ms", "only latency indicators have a threshold")
                warn_threshold = self.threshold(f"{where}.warn.threshold_ms", warn["threshold_ms"])
                if warn_threshold <= (threshold or 0):
                    self.fail(f"{where}.warn.threshold_ms", f"the warning threshold must be above {threshold:g} ms")
        return Indicator(indicator_id, kind, objective, threshold, warn_objective, warn_threshold,
                         self.text(f"{where}.description", entry.get("description", "")))
