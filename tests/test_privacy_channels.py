"""The channels the first privacy round missed, unit and property tests (issue #11, "channels").

Bytes values, W3C ``tracestate`` (span, parent and links), ``path?query`` text without a scheme
(``http.target``, relative ``Referer``, free text), ids in paths, raw routes and messaging keys,
and SQL literals. Each class is tested with generated personal data (the generators of
``test_privacy_e2e``) and, the other way round, with safe values that must survive unchanged.
The same classes through the real exporters: ``test_privacy_channels_e2e``.
"""

from __future__ import annotations

import re
import string
import urllib.parse
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags, TraceState, set_span_in_context

from avalo_otel.privacy import Pseudonymizer, Redactor
from avalo_otel.privacy.paths import id_shaped, pseudonymize_ids, template_route
from avalo_otel.privacy.processors import SpanExportPipeline, redact_metrics
from avalo_otel.privacy.sql import sanitize
from test_privacy_e2e import ALNUM, Pii, api_keys, cards, emails, ibans, jwts, mixed_text, phones

PSEUDONYMIZE = Pseudonymizer("channels-key")
PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PERSONAL = st.one_of(emails(), phones(), cards(), ibans(), jwts(), api_keys())


def redactor() -> Redactor:
    return Redactor(pseudonymize=PSEUDONYMIZE)


def assert_gone(out: Any, item: Pii) -> None:
    text = repr(out)
    leaked = [form for form in item.forms if form in text]
    assert not leaked, f"{item.kind} {item.value!r} survived in {text[:300]}"


# -- ids -----------------------------------------------------------------------------------------
@st.composite
def firebase_uids(draw: Any) -> str:
    return draw(mixed_text(28, 28))


USER_IDS = st.one_of(firebase_uids(), st.uuids().map(str),
                     st.integers(16**23, 16**24 - 1).map(lambda n: f"{n:024x}")  # ObjectId
                     .filter(lambda h: 2 <= sum(c.isalpha() for c in h) <= 22),
                     mixed_text(16, 40))
COLLECTIONS = ["users", "profiles", "matches", "likes", "chats", "conversations", "photos", "devices",
               "blocks", "u", "people", "followers", "inbox"]
NON_PERSON = ["orders", "tickets", "invoices", "payments", "products", "jobs"]


def test_id_shapes() -> None:
    for uid in ("8fK2hQ9xL1mN3pR5tV7wY0zB2cD4", "5f2b3c4d5e6f7a8b9c0d1e2f", str(uuid.uuid4()), "cus_NffrFeUfNV2Hib",
                "-NqX3bC9dE1fG2hI3jK4", "aBcDeFgHiJkLmNoPqRsTuVwX"):
        assert id_shaped(uid), uid
    for word in ("settings", "notification-settings", "release-2024-05-01", "oauth2", "getUserNotificationSettings",
                 "12345678901234", "v1", "2fa", "p_0123456789abcdef01234567", "index.html", "{id}"):
        assert not id_shaped(word), word


@PROPS
@given(uid=USER_IDS, collection=st.sampled_from(COLLECTIONS), prefix=st.sampled_from(["", "/api/v1", "/v2"]),
       tail=st.sampled_from(["", "/messages", "/photos/3", "/settings"]))
def test_ids_in_paths_are_pseudonymised_on_every_path_key(uid: str, collection: str, prefix: str, tail: str) -> None:
    r = redactor()
    path = f"{prefix}/{collection}/{uid}{tail}"
    expected = f"{prefix}/{collection}/{PSEUDONYMIZE(uid)}{tail}"
    attrs = {"url.path": path, "http.target": path + "?page=2", "http.route": path, "route": path,
             "http.request.header.referer": (f"https://avalo.app{path}",), "referer": path,
             "url.full": f"https://api.avalo.app{path}?lang=pl", "details": f"GET {path} 200"}
    out = r.redact_attributes(attrs)
    assert out is not None
    assert uid not in repr(out)
    assert out["url.path"] == out["http.route"] == out["route"] == out["referer"] == expected
    assert out["http.target"] == expected + "?page=2"
    assert out["http.request.header.referer"] == (f"https://avalo.app{expected}",)
    assert out["url.full"] == f"https://api.avalo.app{expected}?lang=pl"
    assert out["details"] == f"GET {expected} 200"  # the same in free text


@PROPS
@given(uid=USER_IDS, collection=st.sampled_from(NON_PERSON), number=st.integers(1, 10**12))
def test_ids_of_things_and_templates_survive(uid: str, collection: str, number: int) -> None:
    r = redactor()
    attrs = {"url.path": f"/v1/{collection}/{uid}", "http.route": "/users/{id}/photos/{photoId}",
             "route": f"/v1/{collection}/{number}", "http.target": f"/v1/{collection}/{number}?page=2&limit=50",
             "url.full": f"https://api.avalo.app/v1/{collection}/{uid}", "status": 200,
             "request.id": str(uuid.uuid4()), "version": "1.45.2", "at": "2024-05-01T12:30:45Z"}
    assert r.redact_attributes(attrs) is None


@PROPS
@given(uids=st.lists(USER_IDS, min_size=2, max_size=5, unique=True), collection=st.sampled_from(COLLECTIONS + NON_PERSON),
       number=st.integers(0, 10**9))
def test_metric_route_labels_become_one_templated_series(uids: list[str], collection: str, number: int) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("t").create_counter("api_requests_total")
    for uid in uids:
        counter.add(1, {"route": f"/v1/{collection}/{uid}/photos?size=large", "method": "GET"})
        counter.add(1, {"route": f"/v1/{collection}/{number}/photos", "method": "GET"})
    counter.add(1, {"route": "/v1/other/{id}/photos", "method": "GET"})
    data = redact_metrics(redactor(), reader.get_metrics_data())
    points = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    provider.shutdown()
    assert [(dict(p.attributes), p.value) for p in points] == [
        ({"route": f"/v1/{collection}/{{id}}/photos", "method": "GET"}, 2 * len(uids)),
        ({"route": "/v1/other/{id}/photos", "method": "GET"}, 1)]


def test_template_route_keeps_words_versions_and_templates() -> None:
    for route in ("/v1/users/{id}", "/api/v2/oauth2/callback", "/health", "/users/me/settings", "/download/1.4.2",
                  "/users/:userId/photos", "/2fa/verify", "chat.send"):
        assert template_route(route) is route, route
    assert template_route("/users/janedoe/photos") == "/users/{id}/photos"
    assert template_route("/invite/jane@example.com") == "/invite/{id}"
    assert template_route("/orders/123?x=1#top") == "/orders/{id}"


@PROPS
@given(uid=USER_IDS, order=st.integers(1, 10**9))
def test_messaging_keys(uid: str, order: int) -> None:
    r = redactor()
    p = PSEUDONYMIZE(uid)
    out = r.redact_attributes({"messaging.kafka.message.key": uid, "messaging.rabbitmq.destination.routing_key":
                               f"chat.{uid}.created", "messaging.gcp_pubsub.message.ordering_key": f"user:{uid}",
                               "messaging.message.key": f"order-{order}"})
    assert out == {"messaging.kafka.message.key": p, "messaging.rabbitmq.destination.routing_key": f"chat.{p}.created",
                   "messaging.gcp_pubsub.message.ordering_key": f"user:{p}", "messaging.message.key": f"order-{order}"}


# -- path?query without a scheme -------------------------------------------------------------------
SECRET_NAMES = ["code", "sig", "signature", "otp", "state", "nonce", "code_verifier", "token", "access_token",
                "RelayState", "SAMLResponse", "csrf_token", "oauth_verifier", "X-Amz-Signature", "passcode",
                "magic_token", "reset_token"]


@st.composite
def encoded(draw: Any, value: str) -> str:
    """``value`` percent-encoded zero, one or two times."""
    times = draw(st.integers(0, 2))
    for _ in range(times):
        value = urllib.parse.quote(value, safe="")
    return value


@PROPS
@given(name=st.sampled_from(SECRET_NAMES), secret=mixed_text(12, 40), mail=emails(), data=st.data(),
       path=st.sampled_from(["/oauth/callback", "/cb", "/", "/api/v1/auth/return"]))
def test_path_query_without_scheme(name: str, secret: str, mail: Pii, data: Any, path: str) -> None:
    r = redactor()
    rid = str(uuid.uuid4())
    target = f"{path}?page=2&{name}={secret}&email_hint={data.draw(encoded(mail.value))}&rid={rid}"
    out = r.redact_attributes({"http.target": target, "referer": target, "details": f"GET {target} 302",
                               "log": f"redirect to {target}."})
    assert out is not None
    for key, value in out.items():
        assert secret not in value and mail.value not in value and urllib.parse.quote(mail.value, safe="") not in value, (key, value)
        assert f"{name}=[REDACTED:secret]" in value and f"rid={rid}" in value and "page=2" in value, (key, value)


@PROPS
@given(item=PERSONAL, before=st.sampled_from(["", "ok? ", "GET /v1/x?page=2 ", "why?", "/cb?x=1&note="]),
       key=st.sampled_from(["url.path", "http.target", "http.route", "route", "referer", "messaging.kafka.message.key"]))
def test_path_keys_holding_other_text_are_still_scanned(item: Pii, before: str, key: str) -> None:
    out = redactor().redact_value(f"{before}{item.value} now", key)
    assert_gone(out, item)


def test_safe_path_queries_survive() -> None:
    r = redactor()
    attrs = {"http.target": "/v1/orders?page=2&limit=50&sort=-created", "details": "GET /search?lang=pl&page=3 200",
             "sql": "WHERE a=? AND b=?", "url.query": "page=2&code_type=sms"}
    assert r.redact_attributes(attrs) is None


# -- bytes --------------------------------------------------------------------------------------------
@PROPS
@given(item=PERSONAL, before=st.text(string.ascii_letters + " ", max_size=20),
       key=st.sampled_from(["payload", "details", "avalo.metadata.raw", "messaging.message.body.size_hint"]))
def test_bytes_are_decoded_and_scanned(item: Pii, before: str, key: str) -> None:
    r = redactor()
    raw = f"{before} {item.value} .".encode()
    out = r.redact_attributes({key: raw, "list": (raw, b"ok"), "nested": {"inner": raw}})
    assert out is not None
    assert_gone(out, item)
    assert "[REDACTED:" in out[key] and "[REDACTED:" in out["list"][0] and out["list"][1] == "ok"
    assert "[REDACTED:" in out["nested"]["inner"]
    assert r.redact_value(raw) != raw and "[REDACTED:" in r.redact_value(raw)


@PROPS
@given(data=st.binary(min_size=1, max_size=64))
def test_bytes_that_are_not_text_are_replaced_whole(data: bytes) -> None:
    try:
        data.decode("utf-8")
        assume(False)
    except UnicodeDecodeError:
        pass
    r = redactor()
    assert r.redact_attributes({"blob": data}) == {"blob": "[REDACTED:binary]"}
    assert r.redaction_counts() == {"binary": 1}


def test_clean_bytes_leave_as_text_and_ids_as_bytes_get_the_same_pseudonym() -> None:
    r = redactor()
    attrs = {"blob": b"chat.send ok", "user.id": b"8fK2hQ9xL1mN3pR5tV7wY0zB2cD4", "url.path": b"/v1/orders/7"}
    out = r.redact_attributes(attrs)
    assert out == {"blob": "chat.send ok", "user.id": PSEUDONYMIZE("8fK2hQ9xL1mN3pR5tV7wY0zB2cD4"),
                   "url.path": "/v1/orders/7"}
    assert r.redaction_counts() == {}


# -- tracestate ------------------------------------------------------------------------------------
def _spans(state: TraceState, link_state: TraceState) -> list[Any]:
    exporter = InMemorySpanExporter()
    pipeline = SpanExportPipeline(redactor())
    pipeline.add(SimpleSpanProcessor(exporter))
    provider = TracerProvider()
    provider.add_span_processor(pipeline)
    tracer = provider.get_tracer("t")
    parent = SpanContext(0x5B8EFFF798038103D269B633813FC60C, 0xEEE19B7EC3C1B174, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=state)
    linked = SpanContext(0x1B8EFFF798038103D269B633813FC60C, 0x1EE19B7EC3C1B174, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=link_state)
    with tracer.start_as_current_span("server", context=set_span_in_context(NonRecordingSpan(parent)),
                                      links=[Link(linked, {"n": 1})]):
        with tracer.start_as_current_span("child"):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


@PROPS
@given(mail=emails(), uid=firebase_uids(), where=st.sampled_from(["value", "field", "uid_key", "bare"]))
def test_tracestate_is_redacted_on_spans_parents_and_links(mail: Pii, uid: str, where: str) -> None:
    vendor = [("dd", "s:1;o:rum;p:00f067aa0ba902b7"), ("ot", "th:8;rv:a1b2c3d4e5f601")]
    personal = {"value": ("acme", f"mail:{mail.value}"), "field": ("dd2", f"s:1;t.usr.id:{uid};m:{mail.value}"),
                "uid_key": ("uid", uid), "bare": ("rojo", uid)}[where]
    state = TraceState([personal, *vendor])
    spans = _spans(state, TraceState([("congo", mail.value.replace("@", "-at-")), personal]))
    contexts = [ctx for s in spans for ctx in (s.context, s.parent, *(link.context for link in s.links)) if ctx]
    assert len(contexts) == 5
    for ctx in contexts:
        ts = ctx.trace_state
        text = ts.to_header()
        assert mail.value not in text and uid not in text, text
        assert ts.get("dd") in (None, "s:1;o:rum;p:00f067aa0ba902b7") and ts.get(personal[0]) is not None, text
    assert spans[0].context.trace_state.get("ot") == "th:8;rv:a1b2c3d4e5f601"


def test_clean_tracestate_is_the_same_object() -> None:
    state = TraceState([("dd", "s:1;o:rum;p:00f067aa0ba902b7"), ("es", "s:0.5")])
    for span in _spans(state, state):
        assert span.context.trace_state is state


# -- SQL ---------------------------------------------------------------------------------------------
def _sql_string(value: str, style: str) -> str:
    if style == "standard":
        return "'" + value.replace("'", "''") + "'"
    if style == "backslash":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if style == "national":
        return "N'" + value.replace("'", "''") + "'"
    tag = "$q$" if "$q$" not in value else "$zz$"
    return f"{tag}{value}{tag}"


LITERAL_TEXT = st.one_of(emails().map(lambda p: p.value), phones().map(lambda p: p.value), cards().map(lambda p: p.value),
                         mixed_text(4, 30, ALNUM + " '\"\\;-/*@.%_$#\n"), st.text(min_size=1, max_size=20))
TEMPLATES = [
    "SELECT id, email FROM users WHERE email = {} AND age > {}",
    "INSERT INTO messages (sender_id, body, sent_at) VALUES ({}, {}, NOW()), ($1, $2, NOW())",
    'UPDATE "users" SET "bio" = {} WHERE "users"."id" = {} RETURNING "id"',
    "SELECT * FROM t WHERE name IN ({}, {}) /* app=web */ ORDER BY name",
    "DELETE FROM sessions WHERE token = {} OR expires_at < {} -- cleanup",
    "SELECT count(*) FROM likes l JOIN users u ON u.id = l.uid WHERE u.phone LIKE {} AND l.score >= {}",
    "WITH x AS (SELECT {} AS v) SELECT v::text, :name, ?, %s, %(k)s, @p1 FROM x WHERE v <> {}",
]


@PROPS
@given(template=st.sampled_from(TEMPLATES), values=st.lists(st.one_of(
           st.tuples(LITERAL_TEXT, st.sampled_from(["standard", "backslash", "national", "dollar"])),
           st.one_of(st.integers(-10**18, 10**18), st.floats(allow_nan=False, allow_infinity=False))), min_size=3, max_size=3))
def test_sql_literals_become_placeholders(template: str, values: list[Any]) -> None:
    literals = []
    for v in values:
        if isinstance(v, tuple):
            text, style = v
            if style == "backslash":
                assume("''" not in text)  # '' reads as an escaped quote in both dialects
            if style == "dollar":
                assume("$" not in text)
            literals.append(_sql_string(text, style))
        else:
            literals.append(repr(v) if isinstance(v, float) else str(v))
    n = template.count("{}")
    statement = template.format(*literals[:n])
    # Comments are dropped; a negative number keeps its sign (-?).
    expected = re.sub(r" ?(/\*.*?\*/|-- .*$)", "", template.format(*["?"] * n))
    out = sanitize(statement)
    assert out is not None, statement
    assert re.sub(r"\s+", " ", out.replace("-?", "?")).strip() == expected, (statement, out)
    red = redactor().redact_attributes({"db.statement": statement, "db.query.text": statement})
    assert red is not None and red["db.statement"] == red["db.query.text"]
    for v in values[:n]:
        if isinstance(v, tuple) and len(v[0].strip()) >= 4 and v[0].strip() not in expected:
            assert v[0].strip() not in red["db.statement"], (statement, red)


@settings(PROPS, max_examples=400)
@given(text=st.text(alphabet=string.printable + "ąść€", max_size=80))
def test_sql_never_raises_and_leaves_no_literal(text: str) -> None:
    """Whatever the text: a quote only ever opens a literal (replaced) or sits in a comment
    (dropped) or a quoted name that is no name (replaced), so none is left; a digit is left only
    inside a name or a placeholder (t1, $1, @p1)."""
    out = sanitize(text)
    if out is None:
        return
    assert "'" not in out, (text, out)
    assert not re.search(r"(?<![\w$?@#])[0-9]", out), (text, out)


def test_sql_fails_closed_and_keeps_safe_statements() -> None:
    r = redactor()
    for bad in ("SELECT 'unterminated", "SELECT /* open", "SELECT $x$ jane", "GET user:jane", 'SELECT "a'):
        assert r.redact_value(bad, "db.statement") == "[REDACTED:db_statement]", bad
    for safe in ("SELECT id FROM users WHERE id = $1", "GET ?", "SET ? ?", "chat.send", "BEGIN", "COMMIT",
                 'SELECT "users"."email" FROM "users" WHERE "users"."id" = ?'):
        assert r.redact_value(safe, "db.statement") is safe, safe
    assert r.redact_value('{"find": "users", "filter": {"email": "jane@example.com", "age": 31}}', "db.statement") == \
        '{"find":"?","filter":{"email":"?","age":"?"}}'
    assert r.redact_value('INSERT INTO t ("name") VALUES ("Jane Doe")', "db.statement") == 'INSERT INTO t ("name") VALUES (?)'
    assert r.redact_value("SELECT a FROM t WHERE b = jane@example.com", "db.statement") == \
        "SELECT a FROM t WHERE b = [REDACTED:email]"


def test_bound_query_parameters_are_denied() -> None:
    r = redactor()
    out = r.redact_attributes({"db.query.parameter.0": "8fK2hQ9xL1mN3pR5tV7wY0zB2cD4", "db.operation.parameter.email": 42,
                               "db.query.text": "SELECT * FROM users WHERE uid = $1"})
    assert out == {"db.query.parameter.0": "[REDACTED:db_parameter]", "db.operation.parameter.email": "[REDACTED:db_parameter]",
                   "db.query.text": "SELECT * FROM users WHERE uid = $1"}


@pytest.mark.parametrize("key", ["db.statement", "db.query.text"])
def test_sql_literals_are_counted(key: str) -> None:
    r = redactor()
    r.redact_attributes({key: "SELECT 1"})
    r.redact_attributes({key: "SELECT 1"})
    assert r.redaction_counts() == {"sql_literal": 2}


def test_pseudonymize_ids_leaves_paths_without_ids() -> None:
    for path in ("/v1/orders/123", "/users/me", "/users/{id}", "/chats", "", "/a/b/c"):
        assert pseudonymize_ids(path, PSEUDONYMIZE) is path
