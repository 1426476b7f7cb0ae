"""The channels of issue #11 end to end: through every real exporter and both stores.

Third-party-style spans (HTTP server and client, database, messaging, with the attributes the
OTel instrumentations set), a remote parent and links carrying an upstream's ``tracestate``,
bytes values on spans, events and stdlib ``logging`` ``extra=`` fields, ``path?query`` text in
log lines and raw route labels on metrics are pushed through one pipeline per property test:
OTLP (the real receiver), console (JSON), Prometheus (scraped), the SQLite store and the
Firestore store (the real emulator). Then everything they emitted is searched, as in
``test_privacy_e2e`` (whose pipeline, sinks and generators are used here).
"""

from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState, set_span_in_context

import avalo_otel as ao
from firestore_emulator import ENV, FirestoreEmulator
from test_privacy_e2e import (  # noqa: F401 - pipeline is a fixture
    SHARED, OtlpReceiver_view, Pii, Pipeline, Sink, _one, _series, assert_nothing_leaked, cards, emails, mixed_text,
    next_tag, phones, pipeline, scrape, sqlite_sink, store_documents,
)


@dataclass
class Channels:
    """One pipeline with the Firestore store as a sixth exporter."""

    p: Pipeline
    firestore: Any
    _since: Optional[int] = None

    def sinks(self) -> list[Sink]:
        since = self._since
        out = self.p.sinks()  # flushes every exporter, the Firestore ones included
        self._since = self.p._since  # noqa: SLF001 - the same window as the SQLite sink
        docs = store_documents(self.firestore, since)
        firestore = sqlite_sink(docs)
        firestore.name = "Firestore"
        return [*out, firestore]


@pytest.fixture
def channels(pipeline: Callable[..., Pipeline], firestore_emulator: FirestoreEmulator,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Channels]]:
    from avalo_otel_exporter_firestore import otel

    project = firestore_emulator.project_id()
    made: list[Channels] = []

    def make() -> Channels:
        if made:
            return made[0]
        monkeypatch.setenv(ENV, firestore_emulator.host)
        monkeypatch.setenv("AVALO_OTEL_FIRESTORE_PROJECT", project)
        monkeypatch.setattr(otel, "_shared", None)
        p = pipeline(traces_exporters="otlp,console,sqlite,firestore", logs_exporters="otlp,console,sqlite,firestore",
                     metrics_exporters="otlp,console,sqlite,prometheus,firestore")
        made.append(Channels(p, otel.shared_store()))
        return made[0]

    yield make
    if made:
        made[0].p.handle.shutdown()
        made[0].firestore.close()
        if firestore_emulator.running:
            firestore_emulator.wipe(project)


# =================================================================================================
# What goes in
# =================================================================================================
@st.composite
def uids(draw: Any) -> Pii:
    uid = draw(st.one_of(mixed_text(28, 28), st.uuids().map(str)))
    return Pii("user_id", uid, (uid,))


@st.composite
def secrets_(draw: Any) -> Pii:
    secret = draw(mixed_text(16, 40))
    return Pii("secret", secret, (secret,))


SECRET_PARAMS = ["code", "sig", "signature", "otp", "state", "nonce", "token", "code_verifier", "RelayState"]
COLLECTIONS = ["users", "matches", "chats", "likes", "profiles", "devices", "u"]
PERSONAL = st.one_of(emails(), phones(), cards())


@dataclass(frozen=True)
class Case:
    uid: Pii
    other_uid: Pii
    secret: Pii
    personal: Pii
    mail: Pii
    param: str
    collection: str
    encodings: int
    order: int
    tag: str


@st.composite
def cases(draw: Any) -> Case:
    return Case(draw(uids()), draw(uids()), draw(secrets_()), draw(PERSONAL), draw(emails()),
                draw(st.sampled_from(SECRET_PARAMS)), draw(st.sampled_from(COLLECTIONS)), draw(st.integers(1, 2)),
                draw(st.integers(1, 10**9)), next_tag())


def _encoded(value: str, times: int) -> str:
    for _ in range(times):
        value = urllib.parse.quote(value, safe="")
    return value


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def emit(c: Case, p: Pipeline) -> None:
    """Every channel once, each carrying the case's personal data."""
    tracer, log = p.tracer, p.log
    uid, other, secret = c.uid.value, c.other_uid.value, c.secret.value
    path = f"/api/v1/{c.collection}/{uid}/photos"
    target = f"{path}?page=2&{c.param}={secret}&hint={_encoded(c.mail.value, c.encodings)}&rid={c.tag}"
    state = TraceState([("acme", f"mail:{c.mail.value}"), ("rojo", uid),
                        ("dd", f"s:1;t.usr.id:{other};p:00f067aa0ba902b7")])
    parent = NonRecordingSpan(SpanContext(uuid.uuid4().int, 0xEEE19B7EC3C1B174, is_remote=True,
                                          trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=state))
    linked = SpanContext(uuid.uuid4().int, 0x1EE19B7EC3C1B174, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED),
                         trace_state=TraceState([("usr", other), ("vendor", "x:1")]))
    # An HTTP server span as an ASGI/WSGI instrumentation writes it, under the upstream's context.
    with tracer.start_as_current_span(f"GET {path}", kind=SpanKind.SERVER, context=set_span_in_context(parent),
                                      links=[Link(linked, {"case": c.tag})], attributes={
            "case": c.tag, "http.method": "GET", "http.request.method": "GET", "http.target": target,
            "url.path": path, "url.query": target.split("?", 1)[1], "http.route": path,
            "http.request.header.referer": (f"https://avalo.app/{c.collection}/{other}?{c.param}={secret}",),
            "http.response.status_code": 200, "payload": f"from {c.personal.value} .".encode()}) as server:
        server.add_event("body", {"case": c.tag, "raw": f"{c.mail.value}".encode()})
        # A database client span with literals in the statement.
        statement = (f"SELECT id FROM users WHERE email = {_sql_literal(c.mail.value)} AND uid = {_sql_literal(uid)} "
                     f"AND phone = {_sql_literal(c.personal.value)} AND order_id = {c.order}")
        with tracer.start_as_current_span("SELECT users", kind=SpanKind.CLIENT, attributes={
                "case": c.tag, "db.system": "postgresql", "db.statement": statement, "db.query.text": statement,
                "db.operation.name": "SELECT"}):
            pass
        # A messaging producer span keyed by the user.
        with tracer.start_as_current_span("send likes", kind=SpanKind.PRODUCER, attributes={
                "case": c.tag, "messaging.system": "kafka", "messaging.destination.name": "likes",
                "messaging.kafka.message.key": uid, "messaging.rabbitmq.destination.routing_key": f"user.{other}.like"}):
            pass
        log.warning("redirect %s", target, extra={"case": c.tag, "blob": f"to {c.personal.value}".encode(),
                                                  "referer": f"/{c.collection}/{uid}"})
    for route_uid in (uid, other):
        ao.inc_counter("api_requests_total", {"domain": "chat", "route": f"/v1/{c.collection}/{route_uid}/photos",
                                              "method": "GET", "status": "200"})


# =================================================================================================
# 1. Nothing of it reaches any exporter or store
# =================================================================================================
@hsettings(SHARED, max_examples=60)
@given(case=cases())
def test_channels_never_reach_any_exporter(channels: Callable[[], Channels], case: Case) -> None:
    ch = channels()
    emit(case, ch.p)
    sinks = ch.sinks()
    assert {s.name for s in sinks} == {"OTLP", "console", "Prometheus", "SQLite", "Firestore"}
    placed = [("user id in paths, routes, keys, tracestate, statements", case.uid),
              ("user id in referer, link tracestate, routing key", case.other_uid),
              (f"secret query parameter {case.param}", case.secret),
              ("personal data in bytes and SQL", case.personal),
              ("e-mail in tracestate, SQL, encoded query value, bytes", case.mail)]
    assert_nothing_leaked(sinks, placed)

    view = OtlpReceiver_view(ch.p.received)
    spans = [s for s in view.spans() if s["attributes"].get("case") == case.tag]
    server = _one(spans, "server span", lambda s: s["kind"] == "server")
    attrs = server["attributes"]
    p = ch.p.handle.pseudonymize
    expected_path = f"/api/v1/{case.collection}/{p(case.uid.value)}/photos"
    assert attrs["url.path"] == attrs["http.route"] == expected_path
    assert attrs["http.target"].startswith(f"{expected_path}?page=2&{case.param}=[REDACTED:secret]&hint=")
    assert attrs["http.target"].endswith(f"&rid={case.tag}") and attrs["http.response.status_code"] == 200
    db = _one(spans, "db span", lambda s: s["kind"] == "client")["attributes"]
    assert db["db.statement"] == db["db.query.text"] == \
        "SELECT id FROM users WHERE email = ? AND uid = ? AND phone = ? AND order_id = ?"
    producer = _one(spans, "producer span", lambda s: s["kind"] == "producer")["attributes"]
    assert producer["messaging.kafka.message.key"] == p(case.uid.value)
    assert producer["messaging.rabbitmq.destination.routing_key"] == f"user.{p(case.other_uid.value)}.like"
    # Prometheus: the two users' raw routes are one templated series.
    series = [labels for labels, _ in _series(scrape(ch.p.handle.prometheus_url), "api_requests_total")
              if labels.get("route", "").startswith(f"/v1/{case.collection}/")]
    assert {s["route"] for s in series} == {f"/v1/{case.collection}/{{id}}/photos"}
    # …and in both stores (documents of this example only: the routes carry its users' ids).
    for store in (ch.p.handle.store, ch.firestore):
        stored = [d["labels"]["route"] for d in store.query_metrics(name="api_requests_total", limit=1_000_000)
                  if d["labels"].get("route", "").startswith(f"/v1/{case.collection}/")]
        assert stored and set(stored) == {f"/v1/{case.collection}/{{id}}/photos"}, stored


# =================================================================================================
# 2. Safe values in the same channels come out as they went in
# =================================================================================================
@hsettings(SHARED, max_examples=30)
@given(order=st.integers(1, 10**12), ticket=st.uuids().map(str), status=st.sampled_from([200, 201, 404, 503]))
def test_safe_values_in_these_channels_survive(channels: Callable[[], Channels], order: int, ticket: str,
                                               status: int) -> None:
    ch = channels()
    tag = next_tag()
    tracer = ch.p.tracer
    state = TraceState([("dd", "s:1;o:rum;p:00f067aa0ba902b7"), ("ot", "th:8")])
    parent = NonRecordingSpan(SpanContext(uuid.uuid4().int, 0xEEE19B7EC3C1B174, is_remote=True,
                                          trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=state))
    statement = "SELECT id, amount FROM orders WHERE id = $1 AND status = ? LIMIT $2"
    attrs = {"case": tag, "http.target": f"/v1/orders/{order}?page=2&limit=50", "url.path": f"/v1/tickets/{ticket}",
             "http.route": "/v1/users/{id}/orders/{orderId}", "http.response.status_code": status,
             "db.statement": statement, "messaging.kafka.message.key": f"order-{order}", "blob": b"chat.send ok",
             "request.id": ticket, "service.version": "1.45.2", "at": "2024-05-01T12:30:45Z",
             "url.full": f"https://tempo.example.com/traces/{uuid.UUID(ticket).hex}?orgId=1",
             "error.type": "INSUFFICIENT_FUNDS", "avalo.operation": "wallet.spend", "amount": 12.5}
    with tracer.start_as_current_span("GET /v1/orders/{id}", kind=SpanKind.SERVER,
                                      context=set_span_in_context(parent), attributes=attrs):
        pass
    ao.inc_counter("api_requests_total", {"domain": "wallet", "route": "/v1/users/{id}/orders", "method": "GET",
                                          "status": str(status)})
    ch.sinks()
    view = OtlpReceiver_view(ch.p.received)
    span = _one(view.spans(), "span", lambda s: s["attributes"].get("case") == tag)
    assert span["attributes"] == {**attrs, "blob": "chat.send ok"}  # bytes leave as the text they hold
    raw = [s for req in ch.p.received if req.signal == "traces" for rs in req.request.resource_spans
           for ss in rs.scope_spans for s in ss.spans
           if any(kv.key == "case" and kv.value.string_value == tag for kv in s.attributes)]
    assert [s.trace_state for s in raw] == ["dd=s:1;o:rum;p:00f067aa0ba902b7,ot=th:8"]
    stored = [d for d in ch.firestore.query_traces(limit=1_000_000) if d["attributes"].get("case") == tag]
    assert len(stored) == 1 and stored[0]["attributes"]["http.target"] == attrs["http.target"]
    assert stored[0]["attributes"]["db.statement"] == statement
    routes = {labels["route"] for labels, _ in _series(scrape(ch.p.handle.prometheus_url), "api_requests_total")}
    assert "/v1/users/{id}/orders" in routes


# =================================================================================================
# 3. The stdlib logging bridge: bytes in extra= fields
# =================================================================================================
def test_logging_extra_bytes_are_scanned(channels: Callable[[], Channels]) -> None:
    ch = channels()
    tag = next_tag()
    ch.p.log.warning("upload", extra={"case": tag, "payload": b"mail jane.roe@example.com now", "ok": b"fine",
                                      "binary": b"\xff\xfe\x00jane.roe@example.com"})
    mail = Pii("email", "jane.roe@example.com", ("jane.roe@example.com",))
    assert_nothing_leaked(ch.sinks(), [("bytes in logging extra", mail)])
    log = _one(OtlpReceiver_view(ch.p.received).log_records(), "log", lambda r: r["attributes"].get("case") == tag)
    assert log["attributes"]["payload"] == "mail [REDACTED:email] now"
    assert log["attributes"]["binary"] == "[REDACTED:binary]"
    assert log["attributes"]["ok"] == "fine"
