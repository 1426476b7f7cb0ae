"""A real OTLP receiver (gRPC + HTTP/protobuf) on loopback, for tests.

Built on opentelemetry-proto's generated classes so exporters talk to it exactly
as they would to a collector. Flattening helpers turn the protos into plain
dicts so assertions stay readable.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator, Literal

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

Signal = Literal["traces", "metrics", "logs"]
Transport = Literal["grpc", "http"]

# (request class, response class) per signal; shared by both transports.
_MESSAGES: dict[Signal, tuple[type[Message], type[Message]]] = {
    "traces": (trace_svc.ExportTraceServiceRequest, trace_svc.ExportTraceServiceResponse),
    "metrics": (metrics_svc.ExportMetricsServiceRequest, metrics_svc.ExportMetricsServiceResponse),
    "logs": (logs_svc.ExportLogsServiceRequest, logs_svc.ExportLogsServiceResponse),
}
_HTTP_PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}


@dataclass(frozen=True)
class ReceivedRequest:
    """One export call as it arrived: signal, transport, parsed proto, headers."""

    signal: Signal
    transport: Transport
    request: Any  # Export{Trace,Metrics,Logs}ServiceRequest
    headers: dict[str, str] = field(default_factory=dict)


def any_value(value: AnyValue) -> Any:
    """Convert an OTLP AnyValue into the equivalent plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)  # string/bool/int/double/bytes map 1:1


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """Convert repeated KeyValue into a dict."""
    return {kv.key: any_value(kv.value) for kv in kvs}


def _resource(res: Resource) -> dict[str, Any]:
    return attributes(res.attributes)


def _enum_suffix(name: str, prefix: str) -> str:
    # "SPAN_KIND_SERVER" -> "server": short names read better in assertions.
    return name.removeprefix(prefix).lower()


class _Servicer(trace_grpc.TraceServiceServicer, metrics_grpc.MetricsServiceServicer, logs_grpc.LogsServiceServicer):
    """One servicer for all three services; they all share the `Export` name."""

    def __init__(self, receiver: OtlpReceiver, signal: Signal) -> None:
        self._receiver = receiver
        self._signal = signal

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:  # noqa: N802
        # "-bin" metadata arrives as bytes; keep one str-typed dict for assertions.
        metadata = context.invocation_metadata()
        headers = {k.lower(): v if isinstance(v, str) else v.decode("latin-1") for k, v in metadata}
        code = self._receiver.fail_with
        self._receiver._record(ReceivedRequest(self._signal, "grpc", request, headers), rejected=code is not None)
        if code is not None:
            context.abort(code, f"otlp_receiver: injected {code.name}")
        return _MESSAGES[self._signal][1]()


def _make_http_handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            signal = _HTTP_PATHS.get(self.path.split("?", 1)[0])
            if signal is None:
                self._reply(404, b"unknown path", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            try:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = _MESSAGES[signal][0]()
                request.ParseFromString(body)
            except (OSError, zlib.error, DecodeError) as exc:
                self._reply(400, f"bad request: {exc}".encode(), "text/plain")
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.http_status
            failing = status is not None and status >= 300
            receiver._record(ReceivedRequest(signal, "http", request, headers), rejected=failing)
            if failing:
                self._reply(status or 500, b"otlp_receiver: injected failure", "text/plain")
            else:
                self._reply(status or 200, _MESSAGES[signal][1]().SerializeToString(), "application/x-protobuf")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep pytest output clean

    return Handler


class OtlpReceiver:
    """OTLP gRPC + HTTP receiver bound to 127.0.0.1 on OS-chosen ports.

    Set `fail_with` (gRPC status) or `http_status` (>= 300) to reject exports;
    rejected calls land in `rejected`, not in the per-signal request lists.
    Stock exporters retry UNAVAILABLE/429/502/503/504 with ~1s+ backoff, so use
    e.g. PERMISSION_DENIED / 400 when a test only needs a fast failure.
    """

    def __init__(self) -> None:
        self.fail_with: grpc.StatusCode | None = None
        self.http_status: int | None = None
        self.received: list[ReceivedRequest] = []
        self.rejected: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self._grpc_port = 0
        self._http_port = 0

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> OtlpReceiver:
        """Start both servers; returns self for chaining. After ``stop()`` it listens on the same
        ports again: a backend restart, as exporters see it."""
        server = grpc.server(ThreadPoolExecutor(max_workers=8))
        trace_grpc.add_TraceServiceServicer_to_server(_Servicer(self, "traces"), server)
        metrics_grpc.add_MetricsServiceServicer_to_server(_Servicer(self, "metrics"), server)
        logs_grpc.add_LogsServiceServicer_to_server(_Servicer(self, "logs"), server)
        port = server.add_insecure_port(f"127.0.0.1:{self._grpc_port}")
        if not port or (self._grpc_port and port != self._grpc_port):
            raise RuntimeError(f"otlp_receiver: cannot listen on gRPC port {self._grpc_port} again")
        self._grpc_port = port
        server.start()
        self._grpc_server = server
        http = ThreadingHTTPServer(("127.0.0.1", self._http_port), _make_http_handler(self))
        self._http_port = http.server_address[1]
        http.daemon_threads = True  # never let a stuck client block stop()
        # Short poll interval: shutdown() waits up to one interval, per test.
        threading.Thread(target=http.serve_forever, args=(0.05,), name="otlp-receiver-http", daemon=True).start()
        self._http_server = http
        return self

    def stop(self, grace: float | None = None) -> None:
        """Shut both servers down; safe to call twice. ``grace``: seconds gRPC calls in flight
        may take to finish (by default they are cancelled; HTTP requests in flight always finish)."""
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=grace).wait(5 + (grace or 0))
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        """Forget everything received so far (fault settings are kept)."""
        with self._lock:
            self.received.clear()
            self.rejected.clear()

    def _record(self, item: ReceivedRequest, rejected: bool = False) -> None:
        with self._lock:
            (self.rejected if rejected else self.received).append(item)

    # -- raw access --------------------------------------------------------------
    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        assert self._http_port, "receiver not started"
        return f"http://127.0.0.1:{self._http_port}"

    def requests(self, signal: Signal | None = None) -> list[ReceivedRequest]:
        """Accepted requests, optionally for one signal, in arrival order."""
        with self._lock:
            return [r for r in self.received if signal is None or r.signal == signal]

    @property
    def trace_requests(self) -> list[trace_svc.ExportTraceServiceRequest]:
        return [r.request for r in self.requests("traces")]

    @property
    def metrics_requests(self) -> list[metrics_svc.ExportMetricsServiceRequest]:
        return [r.request for r in self.requests("metrics")]

    @property
    def logs_requests(self) -> list[logs_svc.ExportLogsServiceRequest]:
        return [r.request for r in self.requests("logs")]

    def headers(self, signal: Signal | None = None) -> list[dict[str, str]]:
        """Lower-cased headers/metadata of each accepted request."""
        return [r.headers for r in self.requests(signal)]

    def last_headers(self, signal: Signal | None = None) -> dict[str, str]:
        """Headers of the most recent accepted request ({} if none)."""
        all_headers = self.headers(signal)
        return all_headers[-1] if all_headers else {}

    # -- flattened views ---------------------------------------------------------
    def spans(self) -> list[dict[str, Any]]:
        """Every received span as a plain dict."""
        out = []
        for req in self.trace_requests:
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append({
                            "name": s.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                            "kind": _enum_suffix(s.SpanKind.Name(s.kind), "SPAN_KIND_"),
                            "status_code": _enum_suffix(s.status.StatusCode.Name(s.status.code), "STATUS_CODE_"),
                            "status_message": s.status.message,
                            "attributes": attributes(s.attributes),
                            "events": [{"name": e.name, "attributes": attributes(e.attributes)} for e in s.events],
                            "scope": ss.scope.name,
                            "resource": _resource(rs.resource),
                        })
        return out

    def log_records(self) -> list[dict[str, Any]]:
        """Every received log record as a plain dict."""
        out = []
        for req in self.logs_requests:
            for rl in req.resource_logs:
                for sl in rl.scope_logs:
                    for lr in sl.log_records:
                        out.append({
                            "body": any_value(lr.body),
                            "severity_number": int(lr.severity_number),
                            "severity_text": lr.severity_text,
                            "event_name": lr.event_name,
                            "attributes": attributes(lr.attributes),
                            "trace_id": lr.trace_id.hex(),
                            "span_id": lr.span_id.hex(),
                            "scope": sl.scope.name,
                            "resource": _resource(rl.resource),
                        })
        return out

    def metrics(self) -> list[dict[str, Any]]:
        """Every received metric (one entry per metric per export) as a plain dict."""
        out = []
        for req in self.metrics_requests:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        out.append(_metric(m) | {"scope": sm.scope.name, "resource": _resource(rm.resource)})
        return out

    def metric_points(self, name: str) -> list[dict[str, Any]]:
        """All points of metric `name` across every export, oldest first."""
        return [p for m in self.metrics() if m["name"] == name for p in m["points"]]

    # -- waiting -----------------------------------------------------------------
    def wait_for(self, predicate: Callable[[OtlpReceiver], Any], timeout: float = 10.0) -> Any:
        """Poll until predicate(self) is truthy and return it; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"otlp_receiver: condition not met within {timeout}s; {self.summary()}")
            time.sleep(0.02)

    def summary(self) -> str:
        """Short human-readable account of what arrived, for failure messages."""
        return (
            f"received={len(self.received)} rejected={len(self.rejected)} "
            f"spans={[s['name'] for s in self.spans()]} "
            f"logs={[r['body'] for r in self.log_records()]} "
            f"metrics={sorted({m['name'] for m in self.metrics()})}"
        )


def _metric(m: Metric) -> dict[str, Any]:
    kind = m.WhichOneof("data")
    data = getattr(m, kind) if kind else None
    temporality = getattr(data, "aggregation_temporality", 0)
    points: list[dict[str, Any]] = []
    for p in getattr(data, "data_points", []):
        point: dict[str, Any] = {"attributes": attributes(p.attributes)}
        if kind in ("sum", "gauge"):
            point["value"] = getattr(p, p.WhichOneof("value")) if p.WhichOneof("value") else None
        else:
            point |= {"count": p.count, "sum": p.sum if p.HasField("sum") else None}
        if kind == "histogram":
            point |= {"bucket_counts": list(p.bucket_counts), "explicit_bounds": list(p.explicit_bounds)}
        if kind in ("histogram", "exponential_histogram"):
            point |= {"min": p.min if p.HasField("min") else None, "max": p.max if p.HasField("max") else None}
        if kind == "exponential_histogram":
            point |= {
                "scale": p.scale,
                "zero_count": p.zero_count,
                "positive": {"offset": p.positive.offset, "bucket_counts": list(p.positive.bucket_counts)},
                "negative": {"offset": p.negative.offset, "bucket_counts": list(p.negative.bucket_counts)},
            }
        if kind == "summary":
            point["quantiles"] = {q.quantile: q.value for q in p.quantile_values}
        points.append(point)
    return {
        "name": m.name,
        "unit": m.unit,
        "description": m.description,
        "type": kind,
        "temporality": {
            AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: "delta",
            AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative",
        }.get(temporality),
        "is_monotonic": m.sum.is_monotonic if kind == "sum" else None,
        "points": points,
    }


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A started OtlpReceiver, stopped after the test."""
    with OtlpReceiver() as receiver:
        yield receiver
