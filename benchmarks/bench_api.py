"""Per-call cost of avalo-otel's API as RATIOS against raw OpenTelemetry measured in the same run.

    python benchmarks/bench_api.py [--repeats 7] [--calls 20000]

How to read it. Absolute ns/call drift a lot on shared CPUs, so only the ratios are meant to be
compared across runs. The arms being compared run in one process, interleaved in chunks of
calls/20 (raw, ours, ours, raw, … order rotated each chunk) so drift hits all of them alike, with
gc disabled. Per repeat each arm gets one ns/call figure; the table shows the median (and min/max)
over the repeats. "paired", the median of the per-repeat ratios, is held to the target (the arms
of one repeat ran interleaved, so the machine's drift between repeats cancels out of it); "of
medians", the ratio of the arms' medians (taken from different repeats), is printed as a check:
a run where the two disagree by more than a few hundredths was disturbed.
Lower is better; a ratio above its target prints MISS and the exit status is 1.

(a) ``with time_operation("chat", "chat.send", actor_id="u1"): pass`` (and the decorator form),
    configured with sampling 1.0, divided by raw OTel doing the same work on its own providers:
    a span (``start_as_current_span``), ``counter.add``, ``histogram.record`` and ``logger.emit``
    of a log record with the same attributes. Both sides export through BatchSpanProcessor /
    BatchLogRecordProcessor into no-op exporters and aggregate metrics into an InMemoryMetricReader.
    Our exporters are added with ``handle.add_span_exporter``/``add_log_exporter``: behind our
    privacy stage, exactly where ``traces_exporters=("otlp",)`` would put them.      target <= 1.15
(b) ``time_operation`` before anything is configured (the API must be a no-op) divided by the OTel
    no-op API ``NoOpTracer().start_as_current_span("x")`` context manager.           target <= 1.10
    The "(info)" line repeats (b) after configure()/shutdown() have run (no target).
(c) ``time_operation`` configured with ``sampling_rate=0.1`` divided by raw (a) (always on). target <= 0.70

Queues are sized above what one phase can queue and flushed after it (untimed); any "Queue full"
drop or exported-count mismatch is reported. Ours is configured afresh for each phase of each
repeat (``configure`` … ``shutdown``), as only one configuration can be active at a time.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import time

import avalo_otel
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
parser.add_argument("--repeats", type=int, default=7)
parser.add_argument("--calls", type=int, default=20_000)
ARGS = parser.parse_args()
# Read when each Batch*Processor is built (ours and raw alike): no drops for lack of room.
os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = os.environ["OTEL_BLRP_MAX_QUEUE_SIZE"] = str(ARGS.calls * 3 + 4096)
perf = time.perf_counter_ns


class NoopSpanExporter(SpanExporter):
    count = 0  # items exported, to detect drops

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.count += len(spans)
        return SpanExportResult.SUCCESS


class NoopLogExporter(LogRecordExporter):
    count = 0

    def export(self, batch):  # type: ignore[no-untyped-def]
        self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class DropCounter(logging.Handler):
    """Counts the SDK's "Queue full, dropping …" warnings."""

    drops = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Queue full" in record.getMessage():
            DropCounter.drops += 1


logging.getLogger("opentelemetry").addHandler(DropCounter())
logging.getLogger("avalo_otel").setLevel(logging.ERROR)


# -- raw OpenTelemetry: its own providers, never the globals ------------------------------------
class Raw:
    def __init__(self) -> None:
        resource = Resource.create({"service.name": "bench-raw"})
        self.spans, self.logs = NoopSpanExporter(), NoopLogExporter()
        self.tp = TracerProvider(resource=resource)
        self.tp.add_span_processor(BatchSpanProcessor(self.spans))
        self.mp = MeterProvider(resource=resource, metric_readers=[InMemoryMetricReader()])
        self.lp = LoggerProvider(resource=resource)
        self.lp.add_log_record_processor(BatchLogRecordProcessor(self.logs))
        self.tracer = self.tp.get_tracer("bench")
        meter = self.mp.get_meter("bench")
        self.counter = meter.create_counter("avalo_operations_total")
        self.hist = meter.create_histogram("avalo_operation_latency_ms",
                                           explicit_bucket_boundaries_advisory=avalo_otel.LATENCY_BUCKETS_MS)
        self.logger = self.lp.get_logger("bench")

    def loop(self, n: int) -> None:
        tracer, counter, hist, logger = self.tracer, self.counter, self.hist, self.logger
        op_attrs = {"domain": "chat", "operation": "chat.send", "outcome": "success", "error_code": ""}
        lat_attrs = {"domain": "chat", "operation": "chat.send"}
        for _ in range(n):
            with tracer.start_as_current_span("chat.send", attributes={
                    "avalo.operation": "chat.send", "avalo.domain": "chat"}) as span:
                t0 = perf()
                latency_ms = (perf() - t0) / 1e6
                span.set_attribute("avalo.success", True)
                counter.add(1, op_attrs)
                hist.record(latency_ms, lat_attrs)
                logger.emit(severity_number=SeverityNumber.INFO, severity_text="INFO", body="chat.send",
                            attributes={"avalo.domain": "chat", "avalo.operation": "chat.send",
                                        "avalo.success": True, "avalo.latency_ms": latency_ms,
                                        "avalo.actor.id": "p_5f1c0de4a3b2c1d0e9f8a7b6"})

    def flush(self) -> None:
        self.tp.force_flush()
        self.lp.force_flush()


# -- the arms -----------------------------------------------------------------------------------
def ours_cm(n: int) -> None:
    time_operation = avalo_otel.time_operation
    for _ in range(n):
        with time_operation("chat", "chat.send", actor_id="u1"):
            pass


@avalo_otel.time_operation("chat", "chat.send", actor_id="u1")
def _decorated() -> None:
    pass


def ours_deco(n: int) -> None:
    for _ in range(n):
        _decorated()


def noop_api(n: int) -> None:
    tracer = trace.NoOpTracer()
    for _ in range(n):
        with tracer.start_as_current_span("x"):
            pass


def interleaved(arms: dict, n: int, chunk: int) -> dict:  # type: ignore[type-arg]
    """ns per call of each arm: ``n`` calls each, run in alternating chunks (order rotated per
    chunk) so that drift in machine speed hits every arm alike; gc off, after a warm-up."""
    for loop in arms.values():
        loop(max(n // 20, 50))
    names, totals = list(arms), dict.fromkeys(arms, 0)
    gc.collect()
    gc.disable()
    try:
        for block in range(max(n // chunk, 1)):
            for name in names[block % len(names):] + names[:block % len(names)]:
                t0 = perf()
                arms[name](chunk)
                totals[name] += perf() - t0
    finally:
        gc.enable()
    return {name: total / (max(n // chunk, 1) * chunk) for name, total in totals.items()}


def configure(rate: float):  # type: ignore[no-untyped-def]
    handle = avalo_otel.configure(
        environ={}, sampling_rate=rate, traces_exporters=(), logs_exporters=(), metrics_exporters=(),
        pseudonym_key="bench-key", metric_readers=[InMemoryMetricReader()],
    )
    handle.spans, handle.logs = NoopSpanExporter(), NoopLogExporter()
    handle.add_span_exporter(handle.spans)
    handle.add_log_exporter(handle.logs)
    return handle


LABELS = {
    "noop_api": "OTel no-op API span (NoOpTracer, context manager)",
    "ours_noconf": "time_operation, not configured (with)",
    "raw_a": "raw OTel SDK: span+counter+histogram+log [phase a]",
    "ours_cm": "time_operation, sampling 1.0 (with)",
    "ours_deco": "time_operation, sampling 1.0 (decorator)",
    "raw_c": "raw OTel SDK, as above [phase c]",
    "ours_sampled": "time_operation, sampling 0.1 (with)",
}
RATIOS = [  # label, numerator, denominator, target
    ("(a) configured (with) / raw OTel", "ours_cm", "raw_a", 1.15),
    ("(a') configured (decorator) / raw OTel", "ours_deco", "raw_a", 1.15),
    ("(b) not configured / OTel no-op API", "ours_noconf", "noop_api", 1.10),
    ("(c) sampling 0.1 / raw OTel (always on)", "ours_sampled", "raw_c", 0.70),
]


def main() -> int:
    n, reps = ARGS.calls, ARGS.repeats
    chunk = max(n // 20, 100)
    per_arm = max(n // 20, 50) + max(n // chunk, 1) * chunk  # warm-up + timed calls in one phase
    problems: list[str] = []
    started = time.monotonic()
    assert avalo_otel._runtime.current() is None, "avalo_otel is configured already"  # noqa: SLF001
    # (b) first, for every repeat: nothing of ours has been configured in this process yet.
    runs = [interleaved({"noop_api": noop_api, "ours_noconf": ours_cm}, n * 5, chunk * 5) for _ in range(reps)]
    raw = Raw()
    for run in runs:
        for rate, arms in ((1.0, {"raw_a": raw.loop, "ours_cm": ours_cm, "ours_deco": ours_deco}),
                           (0.1, {"raw_c": raw.loop, "ours_sampled": ours_cm})):
            handle = configure(rate)
            run.update(interleaved(arms, n, chunk))
            handle.force_flush()
            raw.flush()
            calls = (len(arms) - 1) * per_arm
            if rate == 1.0 and (handle.spans.count, handle.logs.count) != (calls, calls):
                problems.append(f"ours: exported {handle.spans.count} spans, {handle.logs.count} logs of {calls}")
            handle.shutdown()
        # Not a target: the no-op path again, now that configure()/shutdown() have run.
        after = interleaved({"noop_api": noop_api, "ours_noconf": ours_cm}, n * 5, chunk * 5)
        run["after_shutdown"] = after["ours_noconf"] / after["noop_api"]
    raw_calls = 2 * reps * per_arm
    if (raw.spans.count, raw.logs.count) != (raw_calls, raw_calls):
        problems.append(f"raw: exported {raw.spans.count} spans, {raw.logs.count} logs of {raw_calls}")
    if DropCounter.drops:
        problems.append(f"{DropCounter.drops} 'Queue full' drop warnings from the batch processors")
    after = statistics.median(r["after_shutdown"] for r in runs)

    med = {k: statistics.median(r[k] for r in runs) for k in LABELS}
    print(f"\n{n} calls per arm and repeat ({n * 5} for the no-op arms) in chunks of {chunk}, {reps} repeats, "
          f"{time.monotonic() - started:.0f}s, Python {sys.version.split()[0]}\n")
    print(f"{'arm':<54}{'median ns/call':>15}{'min':>10}{'max':>10}")
    for key, label in LABELS.items():
        values = [r[key] for r in runs]
        print(f"{label:<54}{med[key]:>15,.0f}{min(values):>10,.0f}{max(values):>10,.0f}")

    print(f"\n{'ratio':<54}{'of medians':>11}{'paired':>8}{'target':>10}")
    missed = 0
    for label, num, den, target in RATIOS:
        value = med[num] / med[den]
        paired = statistics.median(r[num] / r[den] for r in runs)  # the held figure
        missed += paired > target
        print(f"{label:<54}{value:>11.2f}{paired:>8.2f}{'<= ' + str(target):>10}  "
              f"{'ok' if paired <= target else 'MISS'}")
    print(f"{'(info) not configured after shutdown() / no-op API':<54}{'':>11}{after:>8.2f}")
    print("\nno drops: every span and log record reached the exporters" if not problems
          else "\nPROBLEMS:\n  " + "\n  ".join(problems))
    return 1 if missed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
