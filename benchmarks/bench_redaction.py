"""Cost of the privacy stage per span, as a RATIO to the same span without redaction, in one run.

    python benchmarks/bench_redaction.py [--repeats 7] [--spans 20000]

Both arms build the same span (start, 5 or 20 attributes, end) on their own TracerProvider and
export it through a BatchSpanProcessor into a no-op exporter. "raw" has the batch processor
attached directly; "redacted" has avalo-otel's SpanExportPipeline (keep-errors check, one
redaction pass, fan-out) in front of the same batch processor. Half of the attributes carry
personal data (emails, phone numbers, tokens, names under personal keys), half are safe
(ids, amounts, latencies, error codes, operation names).

Two value mixes are measured: "repeating" draws values from a pool of 500 users (real traffic
repeats users, routes and codes; the redactor caches per value) and "all new" makes every PII
value unique (no cache hits: the worst case). Arms are interleaved in chunks, medians over
repeats. Targets (repeating mix): <= 1.15 at 5 attributes, <= 1.4 at 20.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import time
from typing import Any, Callable, Sequence

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from avalo_otel.privacy import Pseudonymizer, Redactor
from avalo_otel.privacy.processors import SpanExportPipeline


class NoopExporter(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def attribute_sets(n_attrs: int, unique: bool, count: int, offset: int = 0) -> list[dict[str, Any]]:
    users = 500
    out = []
    for i in range(count):
        u = offset + i if unique else i % users
        pii = [
            ("recipientEmail", f"user{u}@example.com"),
            ("note", f"call me on +44 20 7946 {u % 10000:04d}"),
            ("http.request.header.authorization", f"Bearer tok{u:08d}abcdefghijklmnop"),
            ("firstName", f"Name{u}"),
            ("callback_url", f"https://api.avalo.app/cb?token=secret{u:06d}&page=2"),
        ]
        safe = [
            ("avalo.operation", "chat.send"), ("amount", 100 + u % 7), ("avalo.latency_ms", 12.5 + u % 3),
            ("error.type", "TIMEOUT"), ("request.id", f"9f1c2b7e-{u % 10000:04d}-4a5b-8c9d-0e1f2a3b4c5d"),
        ]
        attrs: dict[str, Any] = {}
        for k in range(n_attrs):
            key, value = (pii if k % 2 == 0 else safe)[(k // 2) % 5]
            attrs[f"{key}.{k // 10}" if k >= 10 else key] = value
        out.append(attrs)
    return out


def make_arm(redacted: bool) -> tuple[Callable[[list[dict[str, Any]]], None], TracerProvider, NoopExporter]:
    exporter = NoopExporter()
    batch = BatchSpanProcessor(exporter, max_queue_size=1 << 20, max_export_batch_size=512)
    provider = TracerProvider()
    if redacted:
        counts: dict[str, int] = {}

        def count(rule: str) -> None:  # as configure() counts redactions (a per-thread dict)
            counts[rule] = counts.get(rule, 0) + 1

        pipeline = SpanExportPipeline(Redactor(pseudonymize=Pseudonymizer("bench-key"), on_redact=count))
        pipeline.add(batch)
        provider.add_span_processor(pipeline)
    else:
        provider.add_span_processor(batch)
    tracer = provider.get_tracer("bench")

    def run(sets: list[dict[str, Any]]) -> None:
        for attrs in sets:
            tracer.start_span("chat.send", attributes=attrs).end()

    return run, provider, exporter


def measure(n_attrs: int, unique: bool, repeats: int, spans: int) -> tuple[float, float, float]:
    chunks = 20
    per_chunk = spans // chunks
    raw, raw_provider, raw_exp = make_arm(False)
    red, red_provider, red_exp = make_arm(True)
    raw_times, red_times = [], []
    fresh = itertools.count()
    for _ in range(repeats):
        t_raw = t_red = 0
        for chunk in range(chunks):
            # All-new values: each arm gets its own, so neither profits from the other's cache.
            sets_raw = attribute_sets(n_attrs, unique, per_chunk, next(fresh) * per_chunk)
            sets_red = attribute_sets(n_attrs, unique, per_chunk, next(fresh) * per_chunk) if unique else sets_raw
            order = [(raw, sets_raw, "raw"), (red, sets_red, "red")]
            if chunk % 2:
                order.reverse()
            gc.disable()
            for fn, data, name in order:
                t0 = time.perf_counter_ns()
                fn(data)
                elapsed = time.perf_counter_ns() - t0
                if name == "raw":
                    t_raw += elapsed
                else:
                    t_red += elapsed
            gc.enable()
        raw_times.append(t_raw / (per_chunk * chunks))
        red_times.append(t_red / (per_chunk * chunks))
        raw_provider.force_flush()
        red_provider.force_flush()
    raw_provider.shutdown()
    red_provider.shutdown()
    assert raw_exp.count == red_exp.count, "both arms must export every span"
    ratio = statistics.median(red_times) / statistics.median(raw_times)
    return statistics.median(raw_times), statistics.median(red_times), ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--spans", type=int, default=20000)
    args = parser.parse_args()
    print(f"{args.spans} spans per arm and repeat, {args.repeats} repeats, Python {sys.version.split()[0]}\n")
    print(f"{'case':<34}{'raw ns/span':>12}{'redacted':>12}{'ratio':>8}{'target':>9}")
    failed = False
    for n_attrs, target in ((5, 1.15), (20, 1.4)):
        for unique in (False, True):
            raw_ns, red_ns, ratio = measure(n_attrs, unique, args.repeats, args.spans)
            mix = "all new" if unique else "repeating"
            verdict = ""
            if not unique:
                ok = ratio <= target
                failed |= not ok
                verdict = f"<= {target} {'ok' if ok else 'MISS'}"
            print(f"{n_attrs:>2} attributes, {mix:<20}{raw_ns:>12,.0f}{red_ns:>12,.0f}{ratio:>8.2f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
