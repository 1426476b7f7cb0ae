"""Privacy end to end: personal data never leaves the process through any real exporter.

Property tests (hypothesis) generate personal data of every class (e-mails, phone numbers of many
regions, Luhn-valid cards, valid IBANs, JWTs, bearer tokens, API keys, URLs with credentials or
secret query parameters, storage photo URLs, IPv4 addresses, and names, addresses, message text
and passwords under personal keys), embed it in free text, nested metadata, lists, span names,
events, links, status descriptions, exceptions, stdlib log records and metric labels, push it
through avalo-otel's API, the plain OpenTelemetry API, stdlib ``logging`` and a third-party
instrumentation (``opentelemetry-instrumentation-requests`` against a local ``http.server``),
and then search *everything* the real exporters emitted: the OTLP receiver's payloads, the
Prometheus scrape, the console output and the SQLite store's documents.

``configure()`` is too slow to run per example, so each property test builds ONE pipeline and
keeps it across its examples (function-scoped fixtures, hence the suppressed health check); each
example flushes and checks what it added. Every pipeline is shut down before the test ends, so
``conftest._no_leaked_configuration`` stays happy.
"""

from __future__ import annotations

import base64
import http.server
import io
import itertools
import json
import logging
import re
import string
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

import phonenumbers
import pytest
import requests
from google.protobuf import text_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

import avalo_otel as ao
from avalo_otel.conventions import ERROR_CODES
from avalo_otel.privacy import Pseudonymizer
from console_json import json_objects
from otlp_receiver import OtlpReceiver

NO_TIMER = 3_600_000  # metrics leave only on force_flush
PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
KEY = "privacy-e2e-key"
#: One pipeline per test, many examples: fixtures are shared across examples on purpose.
SHARED = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
    # No shrinking: a shrink step costs a flush and an export; failure messages name every
    # leaked value, where it came from and where it went instead.
    phases=(Phase.explicit, Phase.generate),
)

UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = string.ascii_letters + string.digits


# =================================================================================================
# Generated personal data
# =================================================================================================
@dataclass(frozen=True)
class Pii:
    """One generated personal value and what must never be seen of it."""

    kind: str
    value: str
    forms: tuple[str, ...]  # never anywhere, verbatim
    digit_forms: tuple[str, ...] = ()  # never in any emitted value once its non-digits are dropped
    detectable: bool = True  # a value detector finds it in free text (else: redacted by key only)
    bounded: bool = False  # match only as a whole token (short dotted numbers: IPs)

    def __post_init__(self) -> None:
        # A part of a value is only worth looking for when it could not turn up by chance: the
        # tail of "AKIA0000000000000000" is also every all-zero trace id.
        def distinctive(form: str) -> bool:
            return form == self.value or len(set(form)) >= 4

        object.__setattr__(self, "forms", tuple(f for f in self.forms if distinctive(f)))
        object.__setattr__(self, "digit_forms", tuple(f for f in self.digit_forms if len(set(f)) >= 3))

    def leaks(self, sink: "Sink") -> list[str]:
        found = []
        for form in self.forms:
            where = sink.find(form, bounded=self.bounded)
            if where is not None:
                found.append(f"{form!r} in {sink.name}: …{where}…")
        for digits in self.digit_forms:
            where = sink.find_digits(digits)
            if where is not None:
                found.append(f"digits {digits!r} in {sink.name}: …{where}…")
        return found


@st.composite
def mixed_text(draw: Any, min_size: int = 12, max_size: int = 32, alphabet: str = ALNUM) -> str:
    """Random text with an upper, a lower and a digit: never a word, never a number."""
    body = draw(st.text(alphabet, min_size=min_size - 3, max_size=max_size - 3))
    chars = [*body, draw(st.sampled_from(UPPER)), draw(st.sampled_from(LOWER)), draw(st.sampled_from(DIGITS))]
    return "".join(draw(st.permutations(chars)))


@st.composite
def emails(draw: Any) -> Pii:
    local = draw(st.from_regex(r"[a-z][a-z0-9]{2,9}(?:[._+-][a-z0-9]{2,8})?", fullmatch=True))
    domain = draw(st.from_regex(r"[a-z][a-z0-9]{2,10}(?:-[a-z0-9]{2,6})?", fullmatch=True))
    tld = draw(st.sampled_from(["com", "org", "io", "de", "co.uk", "app", "dev", "fr", "com.br", "info"]))
    email = f"{local}@{domain}.{tld}"
    return Pii("email", email, (email, f"{local}@{domain}"))


def _example_phones() -> list[tuple[str, Any]]:
    found: dict[str, Any] = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (None, phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = (phonenumbers.example_number(region) if kind is None
                      else phonenumbers.example_number_for_type(region, kind))
            if number is not None:
                found.setdefault(f"{number.country_code}:{number.national_number}", number)
    return sorted(found.items())


PHONE_NUMBERS = _example_phones()


@st.composite
def phones(draw: Any) -> Pii:
    _, number = draw(st.sampled_from(PHONE_NUMBERS))
    # Vary the last digits so the same few hundred examples are not all we ever test; keep it valid.
    bump = draw(st.integers(0, 999))
    varied = phonenumbers.PhoneNumber(country_code=number.country_code,
                                      national_number=number.national_number - number.national_number % 1000 + bump,
                                      italian_leading_zero=number.italian_leading_zero)
    if phonenumbers.is_valid_number(varied):
        number = varied
    fmt = draw(st.sampled_from([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]))
    text = phonenumbers.format_number(number, fmt)
    digits = "".join(c for c in text if c.isdigit())
    national = str(number.national_number)
    digit_forms = tuple(d for d in (digits, national) if len(d) >= 9)
    return Pii("phone", text, tuple(dict.fromkeys((text, text.replace(" ", "")))), digit_forms)


def luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


CARD_PREFIXES = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("53", 16), ("55", 16), ("2221", 16),
                 ("2720", 16), ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3530", 16), ("36", 14)]


@st.composite
def cards(draw: Any) -> Pii:
    prefix, length = draw(st.sampled_from(CARD_PREFIXES))
    body = draw(st.text(DIGITS, min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    digits = prefix + body + luhn_digit(prefix + body)
    style = draw(st.sampled_from(["plain", "spaces", "dashes"]))
    if style == "plain":
        text = digits
    else:
        groups = ([digits[:4], digits[4:10], digits[10:]] if length == 15
                  else [digits[i:i + 4] for i in range(0, length, 4)])
        text = (" " if style == "spaces" else "-").join(groups)
    return Pii("card", text, tuple(dict.fromkeys((text, digits))), (digits,))


#: Country → BBAN layout: n = digit, a = upper-case letter, c = either.
IBAN_LAYOUTS = {
    "DE": "18n", "FR": "10n11c2n", "GB": "4a14n", "NL": "4a10n", "ES": "20n", "IT": "1a10n12c",
    "BE": "12n", "CH": "5n12c", "PL": "24n", "AT": "16n", "IE": "4a14n", "PT": "21n", "SE": "20n",
    "NO": "11n", "DK": "14n", "FI": "14n", "LU": "3n13c", "SA": "2n18c",
}


@st.composite
def ibans(draw: Any) -> Pii:
    country = draw(st.sampled_from(sorted(IBAN_LAYOUTS)))
    bban = ""
    for count, kind in re.findall(r"(\d+)([nac])", IBAN_LAYOUTS[country]):
        alphabet = {"n": DIGITS, "a": UPPER, "c": UPPER + DIGITS}[kind]
        bban += draw(st.text(alphabet, min_size=int(count), max_size=int(count)))
    assume(len(set(bban)) >= 5)  # "AT18 0000 0000 …" would match any run of zeros (trace ids)
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    text = " ".join(compact[i:i + 4] for i in range(0, len(compact), 4)) if draw(st.booleans()) else compact
    return Pii("iban", text, tuple(dict.fromkeys((text, compact, compact[4:]))))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@st.composite
def jwts(draw: Any) -> Pii:
    header = _b64url(json.dumps({"alg": draw(st.sampled_from(["HS256", "RS256", "ES256"])), "typ": "JWT"},
                                separators=(",", ":")).encode())
    claims = {"sub": draw(mixed_text(8, 20)), "iat": draw(st.integers(1_500_000_000, 1_900_000_000))}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64url(draw(st.binary(min_size=32, max_size=64)))
    token = f"{header}.{payload}.{signature}"
    return Pii("jwt", token, (token, payload, signature))


@st.composite
def bearer_tokens(draw: Any) -> Pii:
    token = draw(mixed_text(20, 40, ALNUM + "-._~+/")) + draw(st.sampled_from(["", "=", "=="]))
    return Pii("bearer", f"Bearer {token}", (token,))


@st.composite
def api_keys(draw: Any) -> Pii:
    vendor = draw(st.sampled_from(["aws", "github", "stripe", "slack"]))
    if vendor == "aws":
        tail = draw(st.text(UPPER + DIGITS, min_size=16, max_size=16))
        key = "AKIA" + tail
    elif vendor == "github":
        tail = draw(mixed_text(36, 36))
        key = "ghp_" + tail
    elif vendor == "stripe":
        tail = draw(mixed_text(24, 34))
        key = "sk_live_" + tail
    else:
        tail = (f"{draw(st.text(DIGITS, min_size=10, max_size=13))}-{draw(st.text(DIGITS, min_size=10, max_size=13))}"
                f"-{draw(mixed_text(24, 24))}")
        key = "xoxb-" + tail
    return Pii(f"api_key_{vendor}", key, (key, tail))


HOSTS = st.sampled_from(["api.example.com", "hooks.partner.io", "example.org", "cdn.avalo.app", "login.acme.dev"])
PATHS = st.sampled_from(["", "v1/callback", "oauth/return", "api/v2/orders", "webhooks/stripe"])


@st.composite
def credential_urls(draw: Any) -> Pii:
    user = draw(st.from_regex(r"[a-z]{3,8}[0-9]{1,4}", fullmatch=True))
    password = draw(mixed_text(10, 20, ALNUM + "!$*-_.~"))
    url = f"https://{user}:{password}@{draw(HOSTS)}/{draw(PATHS)}"
    return Pii("url_credentials", url, (f"{user}:{password}", password))


SECRET_PARAMS = ["token", "access_token", "api_key", "apikey", "password", "sig", "signature", "code",
                 "secret", "client_secret", "auth", "key", "id_token", "refresh_token"]


@st.composite
def secret_query_urls(draw: Any) -> Pii:
    secret = draw(mixed_text(12, 32))
    param = draw(st.sampled_from(SECRET_PARAMS))
    url = f"https://{draw(HOSTS)}/{draw(PATHS)}?page={draw(st.integers(1, 99))}&{param}={secret}"
    if draw(st.booleans()):
        url += "&lang=en"
    return Pii("url_secret", url, (secret,))


@st.composite
def photo_urls(draw: Any) -> Pii:
    uid = draw(mixed_text(20, 28))
    name = draw(st.sampled_from(["photo.jpg", "avatar.png", "selfie.heic", "IMG_2041.JPG", "profile.webp"]))
    style = draw(st.sampled_from(["firebase", "gcs", "s3", "cdn"]))
    if style == "firebase":
        url = (f"https://firebasestorage.googleapis.com/v0/b/avalo-prod.appspot.com/o/users%2F{uid}%2F{name}"
               f"?alt=media&token={uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))}")
    elif style == "gcs":
        url = f"https://storage.googleapis.com/avalo-media/avatars/{uid}/{name}"
    elif style == "s3":
        url = f"https://avalo-media.s3.eu-west-1.amazonaws.com/photos/{uid}/{name}"
    else:
        url = f"https://cdn.example.com/u/{uid}/{name}"
    return Pii("photo_url", url, (url, uid))


@st.composite
def ipv4s(draw: Any) -> Pii:
    first = draw(st.integers(1, 223).filter(lambda n: n != 127))
    rest = draw(st.lists(st.integers(0, 255), min_size=3, max_size=3))
    ip = ".".join(map(str, [first, *rest]))
    return Pii("ipv4", ip, (ip,), bounded=True)


FIRST_NAMES = ["Aurelia", "Benedikt", "Cosima", "Dmitri", "Evangeline", "Fenella", "Gwendolyn", "Hiroshi",
               "Ingrid", "Joaquim", "Katarzyna", "Leopoldo", "Mirela", "Nikolai", "Oluwaseun", "Priyanka",
               "Radoslav", "Svetlana", "Thandiwe", "Ulrike", "Valentina", "Wojciech", "Xiomara", "Zbigniew",
               "José", "Zoë", "Søren", "Małgorzata"]
LAST_NAMES = ["Abernathy", "Brzęczyszczykiewicz", "Castellanos", "Dimitrova", "Eriksdottir", "Fairweather",
              "Grünewald", "Hakobyan", "Iwanowska", "Jankowski", "Kowalczyk", "Lindqvist", "Montgomery",
              "Nakamura", "Okonkwo", "Papadopoulos", "Quintanilla", "Rasmussen", "Szczepański", "Thorvaldsen"]


@st.composite
def names(draw: Any) -> Pii:
    name = f"{draw(st.sampled_from(FIRST_NAMES))} {draw(st.sampled_from(LAST_NAMES))}"
    return Pii("name", name, (name,), detectable=False)


STREETS = ["Baker Street", "Rue de Rivoli", "Kurfürstendamm", "Calle de Alcalá", "Nowy Świat", "Elm Avenue"]
CITIES = ["London NW1 6XE", "75001 Paris", "10719 Berlin", "28014 Madrid", "00-001 Warszawa", "Springfield IL 62704"]


@st.composite
def addresses(draw: Any) -> Pii:
    street = f"{draw(st.integers(1, 999))}{draw(st.sampled_from(['', 'B', 'a']))} {draw(st.sampled_from(STREETS))}"
    address = f"{street}, {draw(st.sampled_from(CITIES))}"
    return Pii("address", address, (address, street), detectable=False)


MESSAGE_WORDS = ["honestly", "tonight", "dinner", "rooftop", "miss", "you", "call", "later", "secretly",
                 "pizza", "weekend", "forever", "darling", "kisses", "cinema", "tomorrow", "sunset", "café",
                 "привет", "mañana", "❤️", "😘", "こんにちは"]


@st.composite
def contents(draw: Any) -> Pii:
    text = " ".join(draw(st.lists(st.sampled_from(MESSAGE_WORDS), min_size=4, max_size=9)))
    return Pii("content", text, (text,), detectable=False)


@st.composite
def passwords(draw: Any) -> Pii:
    pw = draw(mixed_text(10, 24, ALNUM + "!#$%^&*()-_=+.,?"))
    return Pii("password", pw, (pw,), detectable=False)


DETECTABLE = st.one_of(emails(), phones(), cards(), ibans(), jwts(), bearer_tokens(), api_keys(),
                       credential_urls(), secret_query_urls(), photo_urls(), ipv4s())
KEY_ONLY = st.one_of(names(), addresses(), contents(), passwords())

#: Keys that name what a value is, per kind (plus keys that deny any value).
PII_KEYS = {
    "email": ["recipientEmail", "email", "user.email"],
    "phone": ["user.phone_number", "phoneNumber", "mobile"],
    "name": ["firstName", "lastName", "displayName", "full_name"],
    "address": ["address", "billing_address", "homeAddress"],
    "content": ["message", "content", "text", "chat.message", "bio"],
    "password": ["password", "newPassword"],
    "card": ["card_number", "creditCard"],
    "iban": ["iban", "bank_account"],
    "jwt": ["token", "id_token"],
    "bearer": ["authorization"],
    "photo_url": ["photoUrl", "avatar_url"],
    "ipv4": ["client_ip", "ip_address"],
}
ANY_VALUE_KEYS = ["message", "content", "text", "password"]


def keys_for(kind: str) -> list[str]:
    own = ["api_key", "apiKey"] if kind.startswith("api_key") else PII_KEYS.get(kind, [])
    return [*own, *ANY_VALUE_KEYS]


# =================================================================================================
# Where the data goes in
# =================================================================================================
FILLER = ["payment", "failed", "for", "order", "retry", "later", "user", "said", "see", "note", "sent",
          "to", "from", "via", "request", "upstream", "returned", "lookup", "contact", "the", "and"]
#: How a value sits in text: quotes as %r prints them, parentheses, JSON, key=value, markup…
WRAPPERS = ["{}", "({})", "<{}>", '"{}"', "'{}'", "{}.", "{},", "[{}]", "x={}", "x: {}", "{};", "{}!",
            "\n{}\n", "\t{}", "«{}»", "{}?"]

FREE_CARRIERS = [
    "event.meta.free", "event.meta.nested", "event.meta.list", "event.meta.listdict", "event.meta.dictkey",
    "event.error", "op.metadata",
    "span.name", "span.rename", "span.attr.free", "span.attr.list", "span.attr.dictkey", "span.event.name",
    "span.event.free", "span.link.free", "span.status", "span.exception", "op.exception", "op.keyerror",
    "log.msg", "log.msg.repr", "log.extra.free", "log.dict_body", "log.exception",
    "metric.route", "metric.custom.route", "metric.histogram.route", "metric.gauge.region",
]
KEY_CARRIERS = [
    "event.meta.key", "event.meta.nested.key", "event.meta.listdict.key", "span.attr.key", "span.event.key",
    "span.link.key", "log.extra.key", "metric.key", "metric.key.known", "metric.key.in_span",
]


@dataclass(frozen=True)
class Placement:
    item: Pii
    carrier: str
    text: str  # what is put in (the value itself, or free text around it)
    key: Optional[str] = None

    def describe(self) -> str:
        where = f"key {self.key!r}" if self.key else f"text {self.text!r}"
        return f"{self.item.kind} {self.item.value!r} via {self.carrier} ({where})"


@st.composite
def placements(draw: Any) -> Placement:
    if draw(st.integers(0, 3)) == 0:
        item = draw(KEY_ONLY)
    else:
        item = draw(DETECTABLE)
    if item.detectable and draw(st.booleans()):
        carrier = draw(st.sampled_from(FREE_CARRIERS))
        if carrier in ("event.meta.dictkey", "span.attr.dictkey", "op.keyerror", "log.msg.repr"):
            return Placement(item, carrier, item.value)
        wrapped = draw(st.sampled_from(WRAPPERS)).format(item.value)
        # Up to ~60 words: long texts (over the redactor's 256-character cache limit) take another path.
        before = " ".join(draw(st.lists(st.sampled_from(FILLER), max_size=60)))
        after = " ".join(draw(st.lists(st.sampled_from(FILLER), max_size=4)))
        return Placement(item, carrier, " ".join(p for p in (before, wrapped, after) if p))
    return Placement(item, draw(st.sampled_from(KEY_CARRIERS)), item.value, key=draw(st.sampled_from(keys_for(item.kind))))


def _remote(trace_id: int = 0x5B8EFFF798038103D269B633813FC60C, span_id: int = 0xEEE19B7EC3C1B174) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def emit(p: Placement, tracer: trace.Tracer, log: logging.Logger) -> None:
    """Put one placement through the public API, the OTel API, logging or metrics."""
    c, v, k = p.carrier, p.text, p.key
    event = lambda metadata: ao.log_telemetry("chat", "chat.send", metadata=metadata)  # noqa: E731
    if c == "event.meta.free":
        event({"details": v, "attempt": 2})
    elif c == "event.meta.nested":
        event({"order": {"details": v, "lines": 3}})
    elif c == "event.meta.list":
        event({"participants": [v, "ok"]})
    elif c == "event.meta.listdict":
        event({"items": [{"details": v, "n": 1}, {"n": 2}]})
    elif c == "event.meta.dictkey":
        event({"delivered": {v: True}})
    elif c == "event.error":
        ao.log_error("wallet", "wallet.spend", "PAYMENT_DECLINED", metadata={"details": v})
    elif c == "op.metadata":
        with ao.time_operation("wallet", "wallet.spend") as op:
            op.metadata["details"] = v
    elif c == "event.meta.key":
        event({k: v})
    elif c == "event.meta.nested.key":
        event({"profile": {k: v}})
    elif c == "event.meta.listdict.key":
        event({"recipients": [{k: v, "n": 1}]})
    elif c == "span.name":
        with tracer.start_as_current_span(v):
            pass
    elif c == "span.rename":
        with tracer.start_as_current_span("probe") as span:
            span.update_name(v)
    elif c == "span.attr.dictkey":
        with tracer.start_as_current_span("probe") as span:
            span.set_attribute(v, True)
    elif c in ("span.attr.free", "span.attr.list", "span.attr.key"):
        attrs = {"details": v} if c == "span.attr.free" else {"participants": [v, "ok"]} if c == "span.attr.list" else {k: v}
        with tracer.start_as_current_span("probe", attributes=attrs):
            pass
    elif c == "span.event.name":
        with tracer.start_as_current_span("probe") as span:
            span.add_event(v)
    elif c in ("span.event.free", "span.event.key"):
        with tracer.start_as_current_span("probe") as span:
            span.add_event("note", {"details": v} if c == "span.event.free" else {k: v})
    elif c in ("span.link.free", "span.link.key"):
        with tracer.start_as_current_span("probe", links=[Link(_remote(), {"details": v} if k is None else {k: v})]):
            pass
    elif c == "span.status":
        with tracer.start_as_current_span("probe") as span:
            span.set_status(Status(StatusCode.ERROR, v))
    elif c == "span.exception":
        with tracer.start_as_current_span("probe") as span:
            span.record_exception(ValueError(v))
    elif c in ("op.exception", "op.keyerror"):
        try:
            with ao.time_operation("wallet", "wallet.spend"):
                raise (KeyError(v) if c == "op.keyerror" else ValueError(v))
        except (KeyError, ValueError):
            pass
    elif c == "log.msg":
        log.warning("note: %s", v)
    elif c == "log.msg.repr":
        log.warning("no account for %r", v)
    elif c == "log.extra.free":
        log.warning("webhook received", extra={"details": v})
    elif c == "log.dict_body":
        log.warning({"event": "webhook", "details": v})
    elif c == "log.extra.key":
        # ``message`` is a LogRecord field of its own: logging refuses it as an extra.
        log.warning("profile updated", extra={"user_message" if k == "message" else k: v})
    elif c == "log.exception":
        try:
            raise RuntimeError(v)
        except RuntimeError:
            log.exception("payment failed")
    elif c == "metric.route":
        ao.inc_counter("api_requests_total", {"domain": "chat", "route": v, "method": "GET", "status": "200"})
    elif c == "metric.custom.route":
        ao.inc_counter("privacy_probe_total", {"domain": "chat", "route": v})
    elif c == "metric.histogram.route":
        ao.observe_latency("api_latency_ms", 12.5, {"domain": "chat", "route": v, "method": "GET"})
    elif c == "metric.gauge.region":
        ao.set_gauge("active_users", 3, {"region": v})
    elif c == "metric.key":
        ao.inc_counter("privacy_probe_total", {"domain": "chat", k: v})
    elif c == "metric.key.known":
        ao.inc_counter("api_requests_total", {"domain": "chat", "route": "/v1/x", "method": "GET", k: v})
    elif c == "metric.key.in_span":
        with tracer.start_as_current_span("metered"):  # a sampled span: exemplars are taken here
            ao.inc_counter("privacy_probe_total", {"domain": "chat", k: v})
            ao.observe_latency("privacy_probe_latency_ms", 12.5, {"domain": "chat", k: v})
    else:  # pragma: no cover - a typo in the carrier lists
        raise AssertionError(f"unknown carrier {c}")


# =================================================================================================
# What came out
# =================================================================================================
def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _snippet(text: str, at: int, width: int) -> str:
    return text[max(0, at - 60):at + width + 60].replace("\n", "⏎")


class Sink:
    """What one exporter emitted: whole texts (``blobs``) and the single values inside them
    (``values``: strings, numbers). Digit forms are only looked for inside single values, so two
    numbers next to each other never make up a false match."""

    def __init__(self, name: str, blobs: Iterable[str], values: Iterable[str]) -> None:
        self.name = name
        self.blobs = [b for b in blobs if b]
        self.values = [v for v in values if v]
        self._digit_values: Optional[list[str]] = None

    def find(self, form: str, *, bounded: bool = False) -> Optional[str]:
        pattern = re.compile(r"(?<![0-9.])" + re.escape(form) + r"(?![0-9]|\.[0-9])") if bounded else None
        for text in (*self.blobs, *self.values):
            if pattern is not None:
                m = pattern.search(text)
                if m:
                    return _snippet(text, m.start(), len(form))
            else:
                at = text.find(form)
                if at != -1:
                    return _snippet(text, at, len(form))
        return None

    def find_digits(self, digits: str) -> Optional[str]:
        if self._digit_values is None:
            self._digit_values = [_digits(v) for v in self.values]
        for value, only in zip(self.values, self._digit_values):
            if digits in only:
                return value[:200].replace("\n", "⏎")
        return None


def _walk_json(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            _walk_json(v, out)
    elif isinstance(value, list):
        for v in value:
            _walk_json(v, out)
    elif value is not None and not isinstance(value, bool):
        out.append(str(value))


def _walk_proto(value: Any, out: list[str]) -> None:
    if isinstance(value, Message):
        for _field, v in value.ListFields():
            _walk_proto(v, out)
    elif isinstance(value, str):
        out.append(value)
    elif isinstance(value, bytes):
        out.append(value.hex())
        out.append(value.decode("utf-8", "replace"))
    elif isinstance(value, bool) or isinstance(value, float):
        return
    elif isinstance(value, int):
        out.append(str(value))
    elif hasattr(value, "__iter__"):
        for v in value:
            _walk_proto(v, out)


def otlp_sink(requests_: Iterable[Any]) -> Sink:
    blobs, values = [], []
    for req in requests_:
        blobs.append(text_format.MessageToString(req.request, as_utf8=True))
        _walk_proto(req.request, values)
    return Sink("OTLP", blobs, values)


def console_sink(out: str) -> Sink:
    values: list[str] = []
    _walk_json(json_objects(out, strict=False), values)
    return Sink("console", [out], values)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return response.read().decode("utf-8")


_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def prometheus_sink(text: str) -> Sink:
    values = [v for line in text.splitlines() for _, v in _LABEL.findall(line)]
    return Sink("Prometheus", [text], values)


def store_documents(store: Any, since_ms: Optional[int] = None) -> list[dict[str, Any]]:
    return [*store.query_traces(start_ms=since_ms, limit=1_000_000),
            *store.query_events(start_ms=since_ms, limit=1_000_000),
            *store.query_metrics(start_ms=since_ms, limit=1_000_000)]


def sqlite_sink(docs: list[dict[str, Any]]) -> Sink:
    values: list[str] = []
    _walk_json(docs, values)
    return Sink("SQLite", [json.dumps(docs, ensure_ascii=False)], values)


# =================================================================================================
# One pipeline through every real exporter
# =================================================================================================
@dataclass
class Pipeline:
    handle: ao.Telemetry
    receiver: OtlpReceiver
    console: ConsoleOut
    tracer: trace.Tracer = field(init=False)
    log: logging.Logger = field(init=False)
    received: list[Any] = field(init=False, default_factory=list)
    _since: Optional[int] = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.tracer = self.handle.tracer_provider.get_tracer("privacy_e2e.app")
        self.log = logging.getLogger("privacy_e2e.app")

    def flush(self) -> None:
        assert self.handle.force_flush(10), "an exporter did not flush in time"

    def sinks(self) -> list[Sink]:
        """Flush, then what was emitted since the last call: OTLP requests (kept in ``received``),
        console output and store documents; the Prometheus scrape (which always holds it all)."""
        since = self._since
        self.flush()
        self._since = time.time_ns() // 1_000_000 - 1
        received = self.received = list(self.receiver.received)
        self.receiver.clear()
        out = [otlp_sink(received), console_sink(self.console.take())]
        if self.handle.prometheus_url:
            out.append(prometheus_sink(scrape(self.handle.prometheus_url)))
        if self.handle.store is not None:
            out.append(sqlite_sink(store_documents(self.handle.store, since)))
        return out


def assert_nothing_leaked(sinks: list[Sink], placed: Iterable[tuple[str, Pii]]) -> None:
    leaks = [f"{what}\n      → {leak}" for what, item in placed for sink in sinks for leak in item.leaks(sink)]
    assert not leaks, "personal data reached an exporter:\n  " + "\n  ".join(leaks)


class ConsoleOut(io.StringIO):
    """Stands in for ``sys.stdout`` while configure() builds the console exporters, so what they
    print is read per example (capsys closes its stream when the test body ends, and the pipeline
    lives a little longer: its shutdown still prints)."""

    def take(self) -> str:
        text = self.getvalue()
        self.seek(0)
        self.truncate(0)
        return text


@pytest.fixture
def pipeline(otlp_receiver: OtlpReceiver, configured: Callable[..., ao.Telemetry],
             tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Pipeline]]:
    """``pipeline(**settings)``: OTLP (all signals), console (JSON), SQLite and Prometheus at once,
    stdlib logging bridged. Built on the first call and returned again by later calls (one pipeline
    for all of a property test's examples); shut down here, while the receiver still listens."""
    made: list[Pipeline] = []

    def make(**settings: Any) -> Pipeline:
        if made:
            return made[0]
        base: dict[str, Any] = dict(
            otlp_endpoint=otlp_receiver.grpc_endpoint,
            traces_exporters="otlp,console,sqlite", logs_exporters="otlp,console,sqlite",
            metrics_exporters="otlp,console,sqlite,prometheus", prometheus_port=0,
            console_format="json", store_path=str(tmp_path / f"t{len(made)}.db"), capture_logging=True,
            metric_export_interval_ms=NO_TIMER, pseudonym_key=KEY,
        )
        base.update(settings)
        out = ConsoleOut()
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            handle = configured(**base)
        assert handle.prometheus_url or "prometheus" not in base["metrics_exporters"]
        made.append(Pipeline(handle, otlp_receiver, out))
        return made[-1]

    yield make
    for p in made:
        p.handle.shutdown()


# =================================================================================================
# 1. No personal data anywhere, whatever the carrier
# =================================================================================================
@settings(SHARED, max_examples=400)
@given(batch=st.lists(placements(), min_size=1, max_size=3))
def test_personal_data_never_reaches_any_exporter(pipeline: Callable[..., Pipeline], batch: list[Placement]) -> None:
    p = pipeline()
    for placement in batch:
        emit(placement, p.tracer, p.log)
    sinks = p.sinks()
    assert_nothing_leaked(sinks, [(pl.describe(), pl.item) for pl in batch])
    # The redaction counter names rules only: never a value.
    prom = next(s for s in sinks if s.name == "Prometheus").blobs[0]
    rules = re.findall(r'^avalo_otel_redactions_total\{[^}]*rule="([^"]*)"', prom, re.M)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", r) for r in rules), rules


_TAGS = itertools.count(1)


def next_tag() -> str:
    """A value unique in the whole run: examples of one test share the store, and hypothesis
    repeats its simplest draws (the same UUID) across examples."""
    return f"case-{next(_TAGS):06d}"


# =================================================================================================
# 2. Ids leave pseudonymised; safe fields leave exactly as they were
# =================================================================================================
OPERATIONS = [("chat", "chat.send"), ("wallet", "wallet.spend"), ("ai", "ai.chat_completion"),
              ("support", "support.ticket_create"), ("calendar", "calendar.booking_create")]


@st.composite
def safe_cases(draw: Any) -> dict[str, Any]:
    case = {
        "actor": draw(mixed_text(20, 28)),  # a Firebase-like uid
        "session": "sess_" + draw(mixed_text(16, 32)),
        "tag": next_tag(),
        "order_id": draw(st.integers(0, 10**12 - 1)),
        "snowflake": draw(st.integers(10**18, 2 * 10**18 - 1)),  # 19 digits, never a card network
        "amount": draw(st.floats(0, 1e7, allow_nan=False, allow_infinity=False)),
        "amount_formatted": f"{draw(st.integers(0, 10**6))}.{draw(st.integers(0, 99)):02d}",
        "latency": draw(st.floats(0, 6e5, allow_nan=False, allow_infinity=False)),
        "error_code": draw(st.sampled_from(sorted(ERROR_CODES))),
        "op": draw(st.sampled_from(OPERATIONS)),
        "request_id": str(draw(st.uuids())),
        "trace_hex": f"{draw(st.integers(1, 2**128 - 1)):032x}",
        "span_hex": f"{draw(st.integers(1, 2**64 - 1)):016x}",
        "status": draw(st.sampled_from([200, 201, 204, 400, 404, 409, 429, 500, 503])),
        "failed": draw(st.booleans()),
    }
    return case


def _one(items: list[dict[str, Any]], what: str, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    found = [i for i in items if pred(i)]
    assert len(found) == 1, f"expected one {what}, found {len(found)}"
    return found[0]


@settings(SHARED, max_examples=100)
@given(case=safe_cases())
def test_ids_are_pseudonymised_and_safe_fields_survive(pipeline: Callable[..., Pipeline], case: dict[str, Any]) -> None:
    p = pipeline()
    pseudo = p.handle.pseudonymize
    actor, session, tag = case["actor"], case["session"], case["tag"]
    domain, op_name = case["op"]
    metadata = {
        "case": tag, "order_id": case["order_id"], "tweet_id": case["snowflake"], "amount": case["amount"],
        "amount_formatted": case["amount_formatted"], "error_code": case["error_code"], "operation_name": op_name,
        "request_id": case["request_id"], "trace_ref": case["trace_hex"], "span_ref": case["span_hex"],
        "senderId": actor, "next_path": f"/users/{actor}/settings",
    }
    error = case["error_code"] if case["failed"] else None
    ao.log_telemetry(domain, op_name, actor_id=actor, session_id=session, latency_ms=case["latency"],
                     success=not case["failed"], error_code=error, metadata=metadata)
    with ao.time_operation(domain, op_name, actor_id=actor, session_id=session, metadata={"case": tag}) as op:
        pass
    link = Link(SpanContext(int(case["trace_hex"], 16), int(case["span_hex"], 16), is_remote=True,
                            trace_flags=TraceFlags(TraceFlags.SAMPLED)),
                {"case": tag, "request_id": case["request_id"]})
    probe_attrs = {"case": tag, "order_id": case["order_id"], "amount": case["amount"],
                   "request_id": case["request_id"], "http.response.status_code": case["status"],
                   "user.id": actor, "enduser.id": actor}
    with p.tracer.start_as_current_span("probe.safe", attributes=probe_attrs, links=[link]):
        pass

    sinks = p.sinks()
    received = p.received
    # Raw ids never leave…
    raw = [("actor_id", Pii("actor_id", actor, (actor,))), ("session_id", Pii("session_id", session, (session,)))]
    assert_nothing_leaked(sinks, raw)
    # …their keyed pseudonyms do, the same in every exporter and for the same key elsewhere.
    p_actor, p_session = pseudo(actor), pseudo(session)
    assert PSEUDONYM.fullmatch(p_actor) and PSEUDONYM.fullmatch(p_session)
    assert Pseudonymizer(KEY)(actor) == p_actor, "a pseudonym must be stable for one key"

    sent_logs = [r for r in OtlpReceiver_view(received).log_records()]
    event = _one(sent_logs, "OTLP event", lambda r: r["attributes"].get("avalo.metadata.case") == tag
                 and r["body"] == op_name and "avalo.metadata.order_id" in r["attributes"])
    a = event["attributes"]
    assert (a["avalo.actor.id"], a["session.id"]) == (p_actor, p_session)
    assert a["avalo.metadata.senderId"] == p_actor
    assert a["avalo.metadata.next_path"] == f"/users/{p_actor}/settings"
    expected_meta = {k: v for k, v in metadata.items() if k not in ("senderId", "next_path")}
    got_meta = {k[len("avalo.metadata."):]: v for k, v in a.items()
                if k.startswith("avalo.metadata.") and k[len("avalo.metadata."):] in expected_meta}
    assert got_meta == expected_meta
    assert type(a["avalo.metadata.order_id"]) is int and type(a["avalo.metadata.amount"]) is float
    assert a["avalo.latency_ms"] == case["latency"]
    assert a.get("error.type") == error and a["avalo.operation"] == op_name and a["avalo.domain"] == domain

    timed = _one(sent_logs, "OTLP time_operation event", lambda r: r["attributes"].get("avalo.metadata.case") == tag
                 and "avalo.metadata.order_id" not in r["attributes"])
    assert (timed["attributes"]["avalo.actor.id"], timed["attributes"]["session.id"]) == (p_actor, p_session)
    assert (timed["trace_id"], timed["span_id"]) == (op.trace_id, op.span_id)

    spans = OtlpReceiver_view(received).spans()
    op_span = _one(spans, "operation span", lambda s: s["span_id"] == op.span_id)
    assert (op_span["trace_id"], op_span["name"]) == (op.trace_id, op_name)
    probe = _one(spans, "probe span", lambda s: s["name"] == "probe.safe" and s["attributes"].get("case") == tag)
    pa = probe["attributes"]
    assert {k: pa[k] for k in ("case", "order_id", "amount", "request_id", "http.response.status_code")} == {
        k: probe_attrs[k] for k in ("case", "order_id", "amount", "request_id", "http.response.status_code")}
    assert (pa["user.id"], pa["enduser.id"]) == (p_actor, p_actor)
    raw_link = _one([{"link": ln} for req in received if req.signal == "traces" for rs in req.request.resource_spans
                     for ss in rs.scope_spans for s in ss.spans if s.name == "probe.safe" for ln in s.links
                     if any(kv.key == "case" and kv.value.string_value == tag for kv in ln.attributes)],
                    "link", lambda _: True)["link"]
    assert (raw_link.trace_id.hex(), raw_link.span_id.hex()) == (case["trace_hex"], case["span_hex"])
    assert {kv.key: kv.value.string_value for kv in raw_link.attributes} == {"case": tag, "request_id": case["request_id"]}

    # The store: same pseudonyms, same values.
    docs = p.handle.store.query_events(limit=1_000_000)
    stored = _one(docs, "stored event", lambda d: d["metadata"].get("case") == tag and "order_id" in d["metadata"])
    assert (stored["actorId"], stored["sessionId"]) == (p_actor, p_session)
    assert stored["metadata"]["senderId"] == p_actor
    assert {k: stored["metadata"][k] for k in expected_meta} == expected_meta
    assert stored["latencyMs"] == case["latency"] and stored["errorCode"] == error
    assert stored["operation"] == op_name and stored["domain"] == domain
    stored_timed = _one(docs, "stored timed event", lambda d: d["metadata"].get("case") == tag and "order_id" not in d["metadata"])
    assert (stored_timed["actorId"], stored_timed["traceId"], stored_timed["spanId"]) == (p_actor, op.trace_id, op.span_id)
    traces = p.handle.store.query_traces(trace_id=op.trace_id)
    assert [t["spanId"] for t in traces] == [op.span_id]
    stored_probe = _one(p.handle.store.query_traces(limit=1_000_000), "stored probe span",
                        lambda d: d["name"] == "probe.safe" and d["attributes"].get("case") == tag)
    assert {k: stored_probe["attributes"][k] for k in ("order_id", "amount", "request_id", "http.response.status_code")} == {
        k: probe_attrs[k] for k in ("order_id", "amount", "request_id", "http.response.status_code")}
    assert stored_probe["attributes"]["user.id"] == p_actor


def OtlpReceiver_view(received: list[Any]) -> OtlpReceiver:  # noqa: N802 - reads like the class it borrows
    """The receiver's flattening helpers over a snapshot of requests."""
    view = OtlpReceiver()
    view.received = list(received)
    return view


# =================================================================================================
# 3. A third-party instrumentation: requests → local http.server
# =================================================================================================
class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def instrumented_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[ao.Telemetry], None]]:
    """Instrument ``requests`` with old and new HTTP conventions at once (``http.url`` and
    ``url.full``), uninstrumented at the end."""
    from opentelemetry.instrumentation import _semconv

    stability = _semconv._OpenTelemetrySemanticConventionStability
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http/dup")
    monkeypatch.setattr(stability, "_initialized", False)
    monkeypatch.setattr(stability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {})
    instrumentor = RequestsInstrumentor()

    def instrument(handle: ao.Telemetry) -> None:
        instrumentor.instrument(tracer_provider=handle.tracer_provider, meter_provider=handle.meter_provider)

    yield instrument
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


PATH_WORDS = ["users", "lookup", "contacts", "members", "by-email", "profile"]


@st.composite
def request_cases(draw: Any) -> dict[str, Any]:
    path_pii = draw(st.one_of(st.none(), emails(), phones().filter(lambda p: p.value.startswith("+") and " " not in p.value),
                              cards().filter(lambda c: c.value.isdigit()), ipv4s()))
    query = draw(st.sampled_from(["token", "access_token", "api_key", "email", "phone", "q", "card", "sig", "none"]))
    if query in ("token", "access_token", "api_key", "sig"):
        q_item: Optional[Pii] = draw(st.one_of(jwts(), api_keys(), st.builds(
            lambda s: Pii("secret", s, (s,)), mixed_text(12, 32))))
    elif query == "email":
        q_item = draw(emails())
    elif query == "phone":
        q_item = draw(phones())
    elif query == "card":
        q_item = draw(cards())
    elif query == "q":
        e = draw(emails())
        q_item = Pii("email", f"where is {e.value}", e.forms)
    else:
        q_item = None
    userinfo = draw(st.one_of(st.none(), st.tuples(st.from_regex(r"[a-z]{3,8}[0-9]{1,3}", fullmatch=True),
                                                   mixed_text(10, 16))))
    return {"path_pii": path_pii, "path_word": draw(st.sampled_from(PATH_WORDS)), "query": query,
            "q_item": q_item, "userinfo": userinfo, "order_id": draw(st.integers(1, 10**9)),
            "page": draw(st.integers(1, 500)), "rid": str(draw(st.uuids(version=4)))}


_EMAIL = Pii("email", "jane.roe@example.com", ("jane.roe@example.com", "jane.roe@example"))


@settings(SHARED, max_examples=100)
@given(case=request_cases())
@example(case={"path_pii": _EMAIL, "path_word": "users", "query": "token", "order_id": 7, "page": 2,
               "q_item": Pii("secret", "SECRETtoken123", ("SECRETtoken123",)), "userinfo": None,
               "rid": "7b0e4c1e-0d7a-4f43-9c0e-1d2b3c4d5e6f"})
@example(case={"path_pii": _EMAIL, "path_word": "lookup", "query": "email", "order_id": 8, "page": 3,
               "q_item": Pii("email", "amy.poe@example.org", ("amy.poe@example.org",)),
               "userinfo": ("alice7", "s3cretPassW0rd"), "rid": "0c9d7e7a-5f7b-4a43-8f5e-0a1b2c3d4e5f"})
def test_requests_instrumentation_urls_are_redacted(pipeline: Callable[..., Pipeline], http_server: str,
                                                    instrumented_requests: Callable[[ao.Telemetry], None],
                                                    case: dict[str, Any]) -> None:
    p = pipeline(traces_exporters="otlp,sqlite", logs_exporters="otlp,sqlite",
                metrics_exporters="otlp,sqlite")
    if not RequestsInstrumentor().is_instrumented_by_opentelemetry:
        instrumented_requests(p.handle)
    placed: list[tuple[str, Pii]] = []
    safe_prefix = f"/api/v1/orders/{case['order_id']}/{case['path_word']}"
    path = safe_prefix
    if case["path_pii"] is not None:
        path += "/" + case["path_pii"].value
        placed.append((f"URL path {case['path_pii'].kind}", case["path_pii"]))
    query = f"rid={case['rid']}&page={case['page']}"
    if case["q_item"] is not None:
        query += f"&{case['query']}={urllib.parse.quote(case['q_item'].value, safe='')}"
        placed.append((f"URL query {case['query']}=", case["q_item"]))
    auth = ""
    if case["userinfo"]:
        user, password = case["userinfo"]
        auth = f"{user}:{password}@"
        placed.append(("URL userinfo", Pii("url_credentials", password, (password, f"{user}:{password}"))))
    url = f"http://{auth}{http_server}{path}?{query}"

    assert requests.get(url, timeout=10).status_code == 200
    sinks = p.sinks()
    received = p.received
    assert_nothing_leaked(sinks, [(f"{what} of {url!r}", item) for what, item in placed])

    spans = [s for s in OtlpReceiver_view(received).spans()
             if s["scope"].startswith("opentelemetry.instrumentation.requests")]
    span = _one(spans, "requests span", lambda s: f"rid={case['rid']}" in str(s["attributes"].get("url.full")))
    attrs = span["attributes"]
    assert span["name"] == "GET" and span["kind"] == "client"
    for key in ("url.full", "http.url"):
        redacted = attrs[key]
        # The rest of the URL survives: scheme, host, port, the path up to the personal part, safe params.
        assert redacted.startswith(f"http://{'[REDACTED:credentials]@' if auth else ''}{http_server}{safe_prefix}"), redacted
        assert f"rid={case['rid']}" in redacted and f"page={case['page']}" in redacted, redacted
        if case["q_item"] is not None:
            assert f"&{case['query']}=" in redacted, redacted
    assert attrs.get("http.response.status_code") == 200 and attrs.get("server.address") == "127.0.0.1"
    stored = [d for d in p.handle.store.query_traces(limit=1_000_000) if f"rid={case['rid']}" in str(d["attributes"].get("url.full"))]
    assert len(stored) == 1 and stored[0]["attributes"]["url.full"] == attrs["url.full"]


# =================================================================================================
# 4. Metric labels: allow-list, cardinality cap, one series per redacted label set
# =================================================================================================
def _series(scrape_text: str, metric: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in scrape_text.splitlines():
        m = re.match(rf"^{metric}(?:\{{(.*)\}})? (\S+)$", line)
        if m:
            out.append((dict(_LABEL.findall(m.group(1) or "")), float(m.group(2))))
    return out


def test_metric_labels_allow_list_and_cardinality_cap(otlp_receiver: OtlpReceiver,
                                                      configured: Callable[..., ao.Telemetry]) -> None:
    handle = configured(otlp_endpoint=otlp_receiver.grpc_endpoint, traces_exporters="none", logs_exporters="none",
                        metrics_exporters="prometheus,otlp", prometheus_port=0, metric_cardinality_limit=10,
                        metric_export_interval_ms=NO_TIMER, pseudonym_key=KEY)
    tracer = handle.tracer_provider.get_tracer("privacy_e2e.metrics")
    emails_ = [f"member{i:02d}.x@example.com" for i in range(50)]
    with tracer.start_as_current_span("metered"):  # sampled: the SDK keeps exemplars of these
        for i, email in enumerate(emails_):
            ao.inc_counter("privacy_cardinality_total",
                           {"route": f"/r/{i}", "email": email, "user_note": f"call Dmitri on +44 20 7946 {i:04d}"})
        ao.inc_counter("api_requests_total", {"domain": "chat", "route": "/v1/x", "method": "GET", "status": "200",
                                              "email": emails_[0]})
    text = scrape(handle.prometheus_url)
    assert handle.force_flush(10)
    otlp = otlp_sink(otlp_receiver.received)
    prom = prometheus_sink(text)

    series = _series(text, "privacy_cardinality_total")
    # The exporter gives every series of a family the same label keys ("" where a point has none).
    overflow = [s for s in series if s[0].get("otel_metric_overflow") == "true"]
    normal = [s for s in series if not s[0].get("otel_metric_overflow")]
    assert len(overflow) == 1 and 1 <= len(normal) <= 10, series
    assert sum(v for _, v in series) == 50
    assert all(set(labels) <= {"route", "otel_metric_overflow"} for labels, _ in series), series
    api = _series(text, "api_requests_total")
    assert api and all("email" not in labels for labels, _ in api), api

    points = otlp_receiver.metric_points("privacy_cardinality_total")
    assert points and all(set(pt["attributes"]) <= {"route", "otel.metric.overflow"} for pt in points), points
    assert sum(1 for pt in points if pt["attributes"].get("otel.metric.overflow") is True) == 1
    assert sum(pt["value"] for pt in points) == 50

    # Neither the dropped keys nor their values left, in any part of the payload (exemplars too).
    for sink in (otlp, prom):
        assert sink.find("user_note") is None and sink.find('email="') is None, sink.name
    leaks = [f"{e} → {sink.name}: {sink.find(e)}" for e in emails_ for sink in (otlp, prom) if sink.find(e)]
    leaks += [f"note {i} → {sink.name}: {sink.find(f'7946 {i:04d}')}" for i in range(50) for sink in (otlp, prom)
              if sink.find(f"7946 {i:04d}")]
    assert not leaks, "dropped metric labels reached an exporter:\n" + "\n".join(leaks[:10])


def test_label_values_that_redact_alike_make_one_series(otlp_receiver: OtlpReceiver,
                                                        configured: Callable[..., ao.Telemetry], tmp_path: Any) -> None:
    """Two raw label values that redact to the same text must not become two identical series:
    Prometheus rejects a scrape with duplicate series and OTLP forbids duplicate points of one
    metric; they must be merged (summed) after redaction."""
    handle = configured(otlp_endpoint=otlp_receiver.grpc_endpoint, traces_exporters="none", logs_exporters="none",
                        metrics_exporters="prometheus,otlp,sqlite", prometheus_port=0, store_path=str(tmp_path / "t.db"),
                        metric_export_interval_ms=NO_TIMER, pseudonym_key=KEY)
    for email in ("ana.k@example.com", "bob.t@example.com", "cy.w@example.org"):
        ao.inc_counter("api_requests_total", {"domain": "chat", "route": f"/v1/invite/{email}", "method": "POST",
                                              "status": "201"})
    text = scrape(handle.prometheus_url)
    assert handle.force_flush(10)
    series = _series(text, "api_requests_total")
    assert all("@" not in labels["route"] for labels, _ in series), series
    keys = [tuple(sorted(labels.items())) for labels, _ in series]
    assert len(keys) == len(set(keys)), f"duplicate Prometheus series after redaction: {series}"
    assert sum(v for _, v in series) == 3
    points = otlp_receiver.metric_points("api_requests_total")
    attr_sets = [tuple(sorted(pt["attributes"].items())) for pt in points]
    assert len(attr_sets) == len(set(attr_sets)), f"duplicate OTLP points after redaction: {points}"
    stored = handle.store.query_metrics(name="api_requests_total", limit=1000)
    assert sum(d["value"] for d in stored) == 3, stored


# =================================================================================================
# 5. The redaction counter counts, and names rules only
# =================================================================================================
def _redactions(handle: ao.Telemetry) -> dict[str, float]:
    return {labels["rule"]: value for labels, value in _series(scrape(handle.prometheus_url), "avalo_otel_redactions_total")}


@settings(SHARED, max_examples=25)
@given(found=st.lists(st.one_of(emails(), phones(), cards(), ibans(), jwts()), min_size=1, max_size=6,
                      unique_by=lambda p: p.value))
def test_redaction_counter_counts_by_rule_without_personal_data(pipeline: Callable[..., Pipeline],
                                                                 found: list[Pii]) -> None:
    p = pipeline(traces_exporters="none", logs_exporters="otlp", metrics_exporters="prometheus")
    before = _redactions(p.handle)
    for i, item in enumerate(found):
        ao.log_telemetry("chat", "chat.send", metadata={"details": f"step {i}: {item.value} ."})
    after = _redactions(p.handle)
    expected: dict[str, int] = {}
    for item in found:
        expected[item.kind] = expected.get(item.kind, 0) + 1
    delta = {rule: after.get(rule, 0) - before.get(rule, 0) for rule in after}
    assert {r: d for r, d in delta.items() if d} == expected
    prom = prometheus_sink(scrape(p.handle.prometheus_url))
    assert_nothing_leaked([prom], [("counted value", item) for item in found])


# =================================================================================================
# 6. The user's controls
# =================================================================================================
def _drop_internal(key: str, value: Any) -> Any:
    return None if key.endswith("internal_note") else value


@st.composite
def control_cases(draw: Any) -> dict[str, Any]:
    return {
        "member": draw(st.from_regex(r"AVL-[0-9]{6}", fullmatch=True)),
        "nickname": draw(names()).value,
        "nick_email": draw(emails()),
        "note": draw(contents()).value + " " + draw(mixed_text(8, 12)),
        "ip": draw(ipv4s()).value,
        "tag": next_tag(),
    }


@settings(SHARED, max_examples=25)
@given(case=control_cases())
def test_user_controls(pipeline: Callable[..., Pipeline], case: dict[str, Any]) -> None:
    p = pipeline(redact_patterns={"member_number": r"AVL-\d{6}"},
                safe_keys=("avalo.metadata.nickname", "nickname"), redaction_hook=_drop_internal,
                redact_ip_addresses=False)
    tag, member, ip = case["tag"], case["member"], case["ip"]
    counted = _redactions(p.handle).get("member_number", 0)
    ao.log_telemetry("support", "support.ticket_create", metadata={
        "case": tag, "details": f"member {member} asked", "nickname": case["nickname"],
        "internal_note": case["note"], "client_ip": ip, "origin": f"from {ip} via app"})
    with p.tracer.start_as_current_span(f"lookup {member}", attributes={
            "case": tag, "nickname": case["nickname"], "alias": case["nick_email"].value,
            "internal_note": case["note"], "client_ip": ip}):
        pass
    p.log.warning("member %s logged in from %s", member, ip, extra={"nickname": case["nickname"], "case": tag,
                                                                   "internal_note": case["note"]})
    sinks = p.sinks()
    received = p.received
    # redact_patterns: the member number never leaves; its rule is counted.
    assert_nothing_leaked(sinks, [("member number", Pii("member", member, (member,))),
                                  ("hook-dropped note", Pii("note", case["note"], (case["note"],))),
                                  ("email under a safe key is still scanned", case["nick_email"])])
    assert _redactions(p.handle).get("member_number", 0) - counted == 3  # event, span name, log body
    view = OtlpReceiver_view(received)
    event = _one(view.log_records(), "event", lambda r: r["attributes"].get("avalo.metadata.case") == tag)
    span = _one(view.spans(), "span", lambda s: s["attributes"].get("case") == tag)
    log = _one(view.log_records(), "log", lambda r: r["attributes"].get("case") == tag)
    assert event["attributes"]["avalo.metadata.details"] == "member [REDACTED:member_number] asked"
    assert span["name"] == "lookup [REDACTED:member_number]"
    assert log["body"] == f"member [REDACTED:member_number] logged in from {ip}"
    # safe_keys: kept as they are (a name key would otherwise be redacted); values still scanned.
    assert event["attributes"]["avalo.metadata.nickname"] == case["nickname"]
    assert span["attributes"]["nickname"] == case["nickname"] and log["attributes"]["nickname"] == case["nickname"]
    assert span["attributes"]["alias"] == "[REDACTED:email]"
    # redaction_hook: the key is gone everywhere.
    assert not any(k.endswith("internal_note") for k in (*event["attributes"], *span["attributes"], *log["attributes"]))
    # redact_ip_addresses=False: addresses are kept, by key and in text.
    assert event["attributes"]["avalo.metadata.client_ip"] == ip and span["attributes"]["client_ip"] == ip
    assert event["attributes"]["avalo.metadata.origin"] == f"from {ip} via app"
    stored = _one(p.handle.store.query_events(domain="support", limit=1_000_000), "stored event",
                  lambda d: d["metadata"].get("case") == tag)
    assert stored["metadata"]["nickname"] == case["nickname"] and stored["metadata"]["client_ip"] == ip
    assert "internal_note" not in stored["metadata"]


# =================================================================================================
# 7. No false positives: ordinary operational text leaves exactly as it was
# =================================================================================================
SAFE_WORDS = [
    "INSUFFICIENT_FUNDS", "chat.send", "wallet.spend", "12.5ms", "HTTP 503", "€12.50", "12,50 EUR", "$1,299.99",
    "/v1/orders/123", "api-7d9f8b6c5-x2x9z", "us-east-1", "eu-central-1", "retry 3/5", "+15%", "p99=250ms",
    "GET /v1/chats/{chatId}/messages", "grpc://collector:4317", "https://api.example.com/v1/orders?page=2&limit=50",
    "https://docs.example.com/guide#section-2", "token expired", "session expired", "password reset requested",
    "ERR_CONNECTION_RESET", "0x7fffffff", "v2.3.1-rc.1", "1.45.2", "12:30:45", "2024-05-01T12:30:45Z",
    "CVE-2024-3094", "UTF-8", "order #88231", "timeout after 30000ms", "phone_verified=true", "email_sent=3",
    "token_type=access", "basic plan", "bearer token missing", "aa:bb:cc:dd:ee:ff", "sha256:9f86d081884c7d65",
]


@st.composite
def safe_texts(draw: Any) -> str:
    token = st.one_of(
        st.sampled_from(SAFE_WORDS),
        st.integers(0, 10**12 - 1).map(str),
        st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.2f}"),
        st.uuids().map(str),
        st.integers(1, 2**128 - 1).map(lambda n: f"{n:032x}").filter(lambda h: not h.isdigit()),
        st.sampled_from(sorted(ERROR_CODES)),
        st.sampled_from([op for _, op in OPERATIONS]),
    )
    # Separators a card or phone number never spans (a single space or dash between numbers can).
    sep = draw(st.sampled_from([", ", " | ", "; "]))
    return sep.join(draw(st.lists(token, min_size=1, max_size=8)))


@settings(SHARED, max_examples=150)
@given(text=safe_texts())
def test_ordinary_operational_text_is_not_redacted(pipeline: Callable[..., Pipeline], text: str) -> None:
    p = pipeline(traces_exporters="otlp,sqlite", logs_exporters="otlp,sqlite", metrics_exporters="otlp,sqlite")
    tag = next_tag()
    ao.log_telemetry("chat", "chat.send", metadata={"case": tag, "details": text})
    with p.tracer.start_as_current_span(text, attributes={"case": tag, "details": text}) as span:
        span.add_event("note", {"details": text})
    p.log.warning("processed: %s", text, extra={"case": tag})
    p.sinks()
    view = OtlpReceiver_view(p.received)
    event = _one(view.log_records(), "event", lambda r: r["attributes"].get("avalo.metadata.case") == tag)
    span_ = _one(view.spans(), "span", lambda s: s["attributes"].get("case") == tag)
    log = _one(view.log_records(), "log", lambda r: r["attributes"].get("case") == tag)
    assert event["attributes"]["avalo.metadata.details"] == text
    assert (span_["name"], span_["attributes"]["details"], span_["events"][0]["attributes"]["details"]) == (text, text, text)
    assert log["body"] == f"processed: {text}"
    stored = _one(p.handle.store.query_events(domain="chat", limit=1_000_000), "stored event",
                  lambda d: d["metadata"].get("case") == tag)
    assert stored["metadata"]["details"] == text


# =================================================================================================
# 8. Leaks the property tests found (while avalo_otel.privacy was being written), pinned:
#    deterministic, one pipeline per case; each comment says why the case leaked when found
# =================================================================================================
_NAME = Pii("name", "Katarzyna Lindqvist", ("Katarzyna Lindqvist",), detectable=False)
_MAIL = Pii("email", "k.lindqvist@example.com", ("k.lindqvist@example.com",))
_PHONE = Pii("phone", "+44 20 7946 0018", ("+44 20 7946 0018",), ("442079460018",))
_CARD = Pii("card", "4111 1111 1111 1111", ("4111 1111 1111 1111",), ("4111111111111111",))
_IBAN = Pii("iban", "DE89 3704 0044 0532 0130 00", ("DE89 3704 0044 0532 0130 00", "370400440532013000"))
_AWS = Pii("api_key_aws", "AKIAIOSFODNN7EXAMPLE", ("AKIAIOSFODNN7EXAMPLE",))


@pytest.mark.parametrize("placement", [
    # A list of dicts in metadata is JSON-encoded before the key rules run.
    pytest.param(Placement(_NAME, "event.meta.listdict.key", _NAME.value, key="firstName"), id="metadata-list-of-dicts"),
    # Attribute keys are never scanned: a dict keyed by e-mail puts the e-mail in the key.
    pytest.param(Placement(_MAIL, "event.meta.dictkey", _MAIL.value), id="metadata-dict-key"),
    pytest.param(Placement(_MAIL, "span.attr.dictkey", _MAIL.value), id="span-attribute-key"),
    # Labels dropped by the metric view survive as exemplar filtered_attributes (OTLP, console).
    pytest.param(Placement(_PHONE, "metric.key.in_span", _PHONE.value, key="user.phone_number"), id="exemplar-filtered-attributes"),
    # "/users/<word>" is matched as a route and the e-mail after it is never scanned.
    pytest.param(Placement(_MAIL, "log.msg", f"GET /users/{_MAIL.value} 404"), id="users-path-email"),
    # A list of dicts is JSON-encoded before it is scanned: "\n", "\t", "\u00ab" glue a letter to the
    # value, which then no longer starts a token.
    pytest.param(Placement(_AWS, "event.meta.listdict", f"key «{_AWS.value}»"), id="json-escape-before-api-key"),
    pytest.param(Placement(_CARD, "event.meta.listdict", f"paid with\n{_CARD.value}"), id="json-escape-before-card"),
    pytest.param(Placement(_PHONE, "event.meta.listdict", f"call\t{_PHONE.value}"), id="json-escape-before-phone"),
    # name=value (logfmt) must not end the value at the first space of a grouped number.
    pytest.param(Placement(_CARD, "log.msg", f"charge failed x={_CARD.value}"), id="logfmt-spaced-card"),
    pytest.param(Placement(_IBAN, "span.name", f"payout to={_IBAN.value}"), id="logfmt-spaced-iban"),
    pytest.param(Placement(_PHONE, "event.meta.free", f"callback={_PHONE.value} failed"), id="logfmt-spaced-phone"),
])
def test_pinned_leak(pipeline: Callable[..., Pipeline], placement: Placement) -> None:
    p = pipeline()
    emit(placement, p.tracer, p.log)
    assert_nothing_leaked(p.sinks(), [(placement.describe(), placement.item)])


# =================================================================================================
# 9. The stdlib logging bridge
# =================================================================================================
def test_stdlib_logging_is_bridged_by_the_current_handler_and_redacted(pipeline: Callable[..., Pipeline]) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = pipeline(traces_exporters="none", metrics_exporters="none")
    # The SDK's own LoggingHandler is deprecated: the one from opentelemetry-instrumentation-logging is used.
    assert not [w for w in caught if "LoggingHandler" in str(w.message)], [str(w.message) for w in caught]
    handler = next(h for h in logging.getLogger().handlers if h is p.handle._logging_handler)  # noqa: SLF001
    assert type(handler).__module__ == "opentelemetry.instrumentation.logging.handler"
    tag = next_tag()
    p.log.warning("password reset for %s", _MAIL.value,
                  extra={"contact": _MAIL.value, "details": f"write to {_MAIL.value}", "case": tag})
    sinks = p.sinks()
    assert_nothing_leaked(sinks, [("stdlib logging message and extra", _MAIL)])
    log = _one(OtlpReceiver_view(p.received).log_records(), "log", lambda r: r["attributes"].get("case") == tag)
    assert log["body"] == "password reset for [REDACTED:email]"
    assert log["attributes"]["contact"] == "[REDACTED:name]"  # a contact key: denied whole, whatever it holds
    assert log["attributes"]["details"] == "write to [REDACTED:email]"
    assert log["attributes"]["code.function.name"] == "test_stdlib_logging_is_bridged_by_the_current_handler_and_redacted"
