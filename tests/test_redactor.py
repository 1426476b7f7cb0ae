"""The Redactor: personal data never survives it, and safe values survive it untouched.

Property tests generate PII of every class (e-mails, phone numbers of every region phonenumbers
knows, Luhn-valid cards, IBANs with computed check digits, JWTs, API keys, URLs with credentials
or secret parameters, storage/photo URLs, IPs), embed it in random free text, in lists and
nested mappings and under random keys, and check that neither the PII nor (for cards and phones)
its digits come out, and that a marker does. False-positive properties check that ids, numbers,
error codes, operation names, timestamps, versions, routes and durations come out as the very same
object.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import string
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from avalo_otel.conventions import ERROR_CODES, KNOWN_OPERATIONS, OPERATION_PATTERN
from avalo_otel.privacy.detectors import IBAN_LENGTHS
from avalo_otel.privacy.pseudonym import Pseudonymizer
from avalo_otel.privacy.redactor import Redactor

PSEUDONYMIZE = Pseudonymizer("test-key")
REDACTOR = Redactor(pseudonymize=PSEUDONYMIZE)
MARKER = "[REDACTED:"
PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")

settings.register_profile("redactor", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROPS = settings(settings.get_profile("redactor"))


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# -- PII strategies: each draws (text, forbidden substrings, forbidden digit runs, rule) ----------
_word = st.text(alphabet=string.ascii_letters, min_size=1, max_size=8)
#: Free text around the PII: letters and punctuation, no digits (so digit checks are exact).
filler = st.lists(_word, max_size=6).map(" ".join)
separator = st.sampled_from([" ", "\n", " (", ", ", ": ", " - ", "\t"])

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_tld = st.from_regex(r"[a-z]{2,6}", fullmatch=True)
#: Local parts, sometimes with the rarer RFC 5322 characters (a^b, x|y, o'neil).
_local = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._%+-]{0,18}[A-Za-z0-9])?([!#$&'*=?^`{|}~][A-Za-z0-9]{1,6})?",
                       fullmatch=True)


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    domain = ".".join(draw(st.lists(_label, min_size=1, max_size=3))) + "." + draw(_tld)
    email = f"{draw(_local)}@{domain}"
    return email, [email], [], "email"


def _phone_forms() -> list[tuple[str, str]]:
    forms = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number in (phonenumbers.example_number(region),
                       phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)):
            if number is None:
                continue
            nsn = phonenumbers.national_significant_number(number)
            forms.append((phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL), nsn))
            forms.append((phonenumbers.format_number(number, PhoneNumberFormat.E164), nsn))
            forms.append((f"+{number.country_code} "
                          + phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL), nsn))
    return forms


PHONES = _phone_forms()


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    text, nsn = draw(st.sampled_from(PHONES))
    return text, [text], [nsn], "phone"


def luhn_complete(body: str) -> str:
    """``body`` + the check digit that makes it Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


CARD_NETWORKS = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
                 ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("62", 19), ("3528", 16), ("36", 14),
                 ("30", 14), ("50", 18), ("6304", 16)]


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from(CARD_NETWORKS))
    body = prefix + "".join(draw(st.lists(st.sampled_from(string.digits), min_size=length - len(prefix) - 1,
                                          max_size=length - len(prefix) - 1)))
    return luhn_complete(body)


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    number = draw(card_numbers())
    out, i = [], 0
    while i < len(number):
        size = draw(st.integers(1, 6))
        out.append(number[i:i + size])
        i += size
    seps = [draw(st.sampled_from([" ", "-", ""])) for _ in out[1:]]
    text = out[0] + "".join(s + g for s, g in zip(seps, out[1:]))
    return text, [text], [number], "card"


def iban_check_digits(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


@st.composite
def ibans(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    n = IBAN_LENGTHS[country] - 4
    bban = "".join(draw(st.lists(st.sampled_from(string.digits + string.ascii_uppercase), min_size=n, max_size=n)))
    compact = country + iban_check_digits(country, bban) + bban
    text = " ".join(compact[i:i + 4] for i in range(0, len(compact), 4)) if draw(st.booleans()) else compact
    return text, [text, compact[4:]], [], "iban"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@st.composite
def jwts(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    header = _b64url(json.dumps({"alg": draw(st.sampled_from(["HS256", "RS256", "ES256"])), "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": draw(st.text(min_size=1, max_size=20)),
                                  "iat": draw(st.integers(0, 2**31))}).encode())
    signature = _b64url(draw(st.binary(min_size=16, max_size=64)))
    token = f"{header}.{payload}.{signature}"
    return token, [token, payload], [], "jwt"


#: A secret: has a digit, so it can never occur in the digit-free filler.
_secret = st.from_regex(r"[A-Za-z0-9]{4,20}[0-9][A-Za-z0-9]{3,12}", fullmatch=True)
API_KEY_SHAPES = [r"AKIA[0-9A-Z]{16}", r"gh[pousr]_[A-Za-z0-9]{36}", r"xox[baprs]-[0-9]{10,12}-[A-Za-z0-9]{10,24}",
                  r"(sk|rk)_live_[A-Za-z0-9]{24,32}", r"AIza[0-9A-Za-z_-]{35}", r"NRAK-[A-Z0-9]{27}"]


@st.composite
def api_keys(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    shape = draw(st.sampled_from(API_KEY_SHAPES + ["generic"]))
    if shape == "generic":
        value = draw(_secret)
        name = draw(st.sampled_from(["api_key", "apikey", "API-KEY", "password", "secret", "access_token"]))
        sep = draw(st.sampled_from(["=", ": ", " = ", '": "']))
        return f"{name}{sep}{value}", [value], [], "secret"
    key = draw(st.from_regex(shape, fullmatch=True))
    return key, [key], [], "api_key"


@st.composite
def auth_headers(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    if draw(st.booleans()):
        token = draw(_secret)
        return f"Bearer {token}", [token], [], "auth_header"
    creds = base64.b64encode(f"{draw(_word)}:{draw(_secret)}".encode()).decode()
    return f"Basic {creds}", [creds.rstrip("=")], [], "auth_header"


_host = st.builds(lambda labels, tld: ".".join(labels) + "." + tld,
                  st.lists(st.from_regex(r"[a-z]{2,10}", fullmatch=True), min_size=1, max_size=3), _tld)
_path = st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=3).map(lambda s: "/" + "/".join(s))


@st.composite
def credential_urls(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    user, password = draw(st.from_regex(r"[a-z]{3,10}", fullmatch=True)), draw(_secret)
    scheme = draw(st.sampled_from(["https", "http", "postgres", "redis", "amqp"]))
    url = f"{scheme}://{user}:{password}@{draw(_host)}{draw(_path)}"
    return url, [f"{user}:{password}", password], [], "credentials"


@st.composite
def secret_param_urls(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    name = draw(st.sampled_from(["token", "access_token", "key", "api_key", "apikey", "secret", "password",
                                 "sig", "signature", "code", "auth", "session", "X-Amz-Signature"]))
    value = draw(_secret)
    url = f"https://{draw(_host)}{draw(_path)}?page=2&{name}={value}&lang=en"
    if draw(st.booleans()):
        url = f"https://{draw(_host)}/cb#{name}={value}&state_kept=no"
    return url, [value], [], "secret"


STORAGE_URLS = [
    "https://firebasestorage.googleapis.com/v0/b/avalo-prod.appspot.com/o/users%2F{a}%2F{b}?alt=media&token={c}",
    "https://storage.googleapis.com/avalo-media/{a}/{b}",
    "https://avalo-media.s3.amazonaws.com/{a}/{b}",
    "https://s3.eu-west-1.amazonaws.com/avalo-media/{a}/{b}",
    "https://d1x2y3z4.cloudfront.net/{a}/{b}",
    "https://avalo.blob.core.windows.net/photos/{a}/{b}",
    "https://cdn.example.com/{a}/{b}.jpg",
    "https://img.avalo.app/{a}/{b}.webp?w=640",
    "s3://avalo-media/{a}/{b}",
]


@st.composite
def photo_urls(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    a, b = draw(st.from_regex(r"[a-z]{3,8}[0-9]{2,6}", fullmatch=True)), draw(_secret)
    url = draw(st.sampled_from(STORAGE_URLS)).format(a=a, b=b, c=draw(_secret))
    return url, [url, b], [], "photo_url"


@st.composite
def ips(draw: st.DrawFn) -> tuple[str, list[str], list[str], str]:
    ip = draw(st.ip_addresses().filter(lambda i: not (i.is_loopback or i.is_unspecified)))
    text = str(ip)
    if ip.version == 6:
        assume(text.count(":") >= 3 or any(c.isdigit() for c in text))  # `ab::cd` reads as code: kept
    return text, [text], [], "ip"


PII = st.one_of(emails(), phones(), cards(), ibans(), jwts(), api_keys(), auth_headers(), credential_urls(),
                secret_param_urls(), photo_urls(), ips())


def assert_clean(out: Any, forbidden: list[str], forbidden_digits: list[str]) -> None:
    text = repr(out) if not isinstance(out, str) else out
    for item in forbidden:
        assert item not in text, f"{item!r} leaked in {text!r}"
    for run in forbidden_digits:
        assert run not in digits(text), f"digits {run!r} leaked in {text!r}"
    assert MARKER in text, f"no marker in {text!r}"


# -- no PII out ----------------------------------------------------------------------------------
@PROPS
@given(pii=PII, before=filler, after=filler, sep1=separator, sep2=separator)
def test_pii_in_free_text_never_leaves(pii, before, after, sep1, sep2) -> None:
    value, forbidden, forbidden_digits, rule = pii
    rules: list[str] = []
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, on_redact=rules.append)
    out = redactor.redact_text(f"{before}{sep1}{value}{sep2}{after}")
    assert_clean(out, forbidden, forbidden_digits)
    assert redactor.redact_text(out) == out  # markers are never redacted again
    rules.clear()
    assert_clean(redactor.redact_text(value), forbidden, forbidden_digits)
    assert rule in rules  # alone, the PII is found by its own rule (in text a key word may be first)


@PROPS
@given(pii=PII, before=filler, after=filler)
def test_pii_alone_as_an_attribute_value_never_leaves(pii, before, after) -> None:
    value, forbidden, forbidden_digits, _ = pii
    out = REDACTOR.redact_attributes({"avalo.metadata.info": value, "http.url": f"{before} {value} {after}"})
    assert out is not None
    assert_clean(out["avalo.metadata.info"], forbidden, forbidden_digits)
    assert_clean(out["http.url"], forbidden, forbidden_digits)


@PROPS
@given(pii=PII, before=filler)
def test_pii_nested_in_lists_and_mappings_never_leaves(pii, before) -> None:
    value, forbidden, forbidden_digits, _ = pii
    attrs = {
        "avalo.metadata.tags": ["ok", f"{before} {value}", "fine"],
        "avalo.metadata.pair": ("x", value),
        "avalo.metadata.ctx": {"outer": {"inner": [value]}, "kept": "chat.send"},
    }
    out = REDACTOR.redact_attributes(attrs)
    assert out is not None
    for key in attrs:
        assert_clean(out[key], forbidden, forbidden_digits)
    assert out["avalo.metadata.tags"][0] == "ok" and isinstance(out["avalo.metadata.pair"], tuple)
    assert out["avalo.metadata.ctx"]["kept"] == "chat.send"
    body = REDACTOR.redact_value({"event": "x", "detail": value})  # a log body that is a mapping
    assert_clean(body, forbidden, forbidden_digits)


_random_key = st.from_regex(r"[a-z]{1,10}([._-][a-zA-Z]{1,10}){0,3}", fullmatch=True)


@PROPS
@given(pii=PII, key=_random_key)
def test_pii_under_random_keys_never_leaves(pii, key) -> None:
    value, forbidden, forbidden_digits, _ = pii
    out = REDACTOR.redact_attributes({key: value})
    assert out is not None
    if PSEUDONYM.fullmatch(str(out[key])):
        return  # a person-id key: the value left pseudonymised, which is also fine
    assert_clean(out[key], forbidden, forbidden_digits)


@PROPS
@given(number=card_numbers())
def test_card_number_as_int_is_redacted(number) -> None:
    assert REDACTOR.redact_value(int(number)) == "[REDACTED:card]"
    assert REDACTOR.redact_attributes({"avalo.metadata.n": int(number)}) == {"avalo.metadata.n": "[REDACTED:card]"}
    safe = Redactor(pseudonymize=PSEUDONYMIZE, safe_keys=["payment.reference"])
    assert safe.redact_value(int(number), key="payment.reference") == int(number)


# -- nothing safe is touched ----------------------------------------------------------------------
def assert_untouched(value: Any) -> None:
    assert REDACTOR.redact_value(value) is value
    assert REDACTOR.redact_attributes({"avalo.metadata.v": value, "error.type": value}) is None
    if isinstance(value, str):
        assert REDACTOR.redact_text(value) is value
        text = f"request {value} done"
        assert REDACTOR.redact_text(text) is text


hex_id = st.one_of(st.from_regex(r"[0-9a-f]{32}", fullmatch=True), st.from_regex(r"[0-9a-f]{16}", fullmatch=True))
iso_timestamps = st.builds(
    lambda dt, fmt: fmt(dt),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.sampled_from([lambda d: d.isoformat(), lambda d: d.isoformat(timespec="milliseconds"),
                     lambda d: d.replace(tzinfo=None).isoformat() + "Z", lambda d: d.isoformat(sep=" ")]),
)
SAFE_VALUES = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    hex_id.filter(lambda s: not s.isdigit()),  # an all-digit id can be a card number
    st.integers(-(10**12) + 1, 10**12 - 1),
    st.integers(10**12, 2 * 10**12),  # epoch milliseconds
    st.integers(10**18, 2 * 10**18),  # snowflake-style ids start with 1
    st.floats(allow_nan=False),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?[0-9]{1,9}\.[0-9]{2}", fullmatch=True),
    st.from_regex(r"(EUR|USD|PLN) [0-9]{1,6}\.[0-9]{2}", fullmatch=True),
    st.from_regex(r"[A-Z]{2,12}(_[A-Z]{2,12}){0,3}", fullmatch=True),
    st.sampled_from(sorted(ERROR_CODES)),
    st.from_regex(OPERATION_PATTERN, fullmatch=True),
    st.sampled_from(sorted(KNOWN_OPERATIONS)),
    iso_timestamps,
    st.from_regex(r"v?[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-(rc|beta|alpha)\.[0-9]{1,2})?(\+[a-z0-9]{1,8})?",
                  fullmatch=True),
    st.builds(lambda method, segs: f"{method} /v1/" + "/".join(segs),
              st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
              st.lists(st.one_of(st.from_regex(r"[a-z]{2,12}", fullmatch=True),
                                 st.from_regex(r"\{[a-z_]{2,10}\}", fullmatch=True)), min_size=1, max_size=5)),
    st.sampled_from(["/v1/users/{id}", "/v1/users/{userId}/photos/{photoId}", "/v1/wallet/spend",
                     "/v1/chats/{chat_id}/messages", "/v1/users/me", "GET /v1/users/{id}"]),
    st.from_regex(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?", fullmatch=True),
    st.booleans(),
    st.none(),
)


@PROPS
@given(value=SAFE_VALUES)
def test_safe_values_survive_as_the_same_object(value) -> None:
    assert_untouched(value)


@pytest.mark.parametrize("value", [
    "INSUFFICIENT_FUNDS", "wallet.spend", "chat.send", "auth.token_refresh", "123e4567-e89b-12d3-a456-426614174000",
    "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "2024-05-01T12:30:45.123Z", "2024-05-01T12:30:45+05:30",
    "12:30:45", "1.45.2", "1.2.3", "v0.66b1", "100.50", "-3.25", "1700000000000", "/v1/users/{id}", "GET",
    "Bearer token expired", "Basic authentication failed", "std::vector<int>", "Foo::bar", "127.0.0.1", "::1",
    "0.0.0.0:4317", "token_count=12", "max_tokens: 512", "https://api.avalo.app/v1/users/{id}?page=2",
    "p_0123456789abcdef01234567", "5 messages in 12 ms", "ratio 0.95 at 99.9%", "build 2024.05.01.3",
    "user@localhost", "pkg@1.2.3", "x = 4111 1111 1111 1112",  # not Luhn-valid
    "DE89 3704 0044 0532 0130 01",  # wrong IBAN check digits
    "+100.50", "+12345", "1.2.3.4.5", "10.256.0.1", "shape 2x3, 4x5", "",
])
def test_known_safe_values_survive(value) -> None:
    assert_untouched(value)


def test_fast_paths_return_the_same_objects() -> None:
    value = "".join(["chat", ".send"])  # not interned: identity is meaningful
    assert REDACTOR.redact_value(value) is value
    assert REDACTOR.redact_value(value) is value  # cached
    other = "".join(["chat", ".send"])
    assert REDACTOR.redact_value(other) is other  # equal but distinct string: still itself
    items = ["a", "b", 3]
    assert REDACTOR.redact_value(items) is items
    pair = ("a", 1.5)
    assert REDACTOR.redact_value(pair) is pair
    assert REDACTOR.redact_attributes({"avalo.domain": "chat", "avalo.latency_ms": 1.5}) is None
    assert REDACTOR.redact_attributes({}) is None and REDACTOR.redact_attributes(None) is None
    assert REDACTOR.redact_value(b"bytes") == "bytes"  # bytes leave as the text they hold (issue #11)


def test_redact_attributes_copies_only_when_something_changed() -> None:
    attrs = {"avalo.domain": "chat", "user.email": "jane@example.com"}
    out = REDACTOR.redact_attributes(attrs)
    assert out == {"avalo.domain": "chat", "user.email": "[REDACTED:email]"}
    assert attrs["user.email"] == "jane@example.com" and out is not attrs


def test_bounded_attributes_are_read_and_copied() -> None:
    from opentelemetry.attributes import BoundedAttributes

    attrs = BoundedAttributes(10, {"avalo.domain": "chat", "avalo.metadata.email": "a@b.io"}, immutable=False)
    assert REDACTOR.redact_attributes(attrs) == {"avalo.domain": "chat", "avalo.metadata.email": "[REDACTED:email]"}
    clean = BoundedAttributes(10, {"avalo.domain": "chat"}, immutable=True)
    assert REDACTOR.redact_attributes(clean) is None


# -- key rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key, rule", [
    ("email", "email"), ("recipientEmail", "email"), ("user.email", "email"), ("e-mail", "email"),
    ("email_address", "email"), ("avalo.metadata.email.raw", "email"),
    ("phone", "phone"), ("user.phone_number", "phone"), ("phoneNumber", "phone"), ("mobile", "phone"),
    ("msisdn", "phone"),
    ("name", "name"), ("first_name", "name"), ("last_name", "name"), ("full_name", "name"),
    ("display_name", "name"), ("displayName", "name"), ("avalo.metadata.firstName", "name"),
    ("username", "name"), ("userName", "name"), ("user.name", "name"), ("avalo.metadata.name", "name"),
    ("address", "address"), ("street", "address"), ("city", "address"), ("zip", "address"),
    ("postcode", "address"), ("postal_code", "address"), ("billing_address", "address"),
    ("addressLine2", "address"),
    ("message", "content"), ("content", "content"), ("text", "content"), ("body", "content"),
    ("message_text", "content"), ("caption", "content"), ("bio", "content"), ("chat.message", "content"),
    ("gen_ai.prompt", "content"), ("http.request.body", "content"),
    ("photo_url", "photo"), ("avatar", "photo"), ("image_url", "photo"), ("picture", "photo"),
    ("profilePictureUrl", "photo"), ("avalo.metadata.avatarUrl", "photo"),
    ("password", "secret"), ("passwd", "secret"), ("pwd", "secret"), ("secret", "secret"), ("token", "secret"),
    ("api_key", "secret"), ("apikey", "secret"), ("apiKey", "secret"), ("access_token", "secret"),
    ("accessToken", "secret"), ("refresh_token", "secret"), ("authorization", "secret"), ("cookie", "secret"),
    ("set-cookie", "secret"), ("session_token", "secret"), ("private_key", "secret"),
    ("http.request.header.authorization", "secret"), ("X-Api-Key", "secret"),
    ("http.request.header.x-api-key", "secret"), ("http.response.header.set-cookie", "secret"),
    ("credit_card", "card"), ("card_number", "card"), ("cvv", "card"), ("iban", "bank"),
    ("ssn", "government_id"), ("date_of_birth", "birthdate"), ("dob", "birthdate"), ("birthDate", "birthdate"),
    ("geo.location.lat", "location"), ("client_ip", "ip"), ("sexual_orientation", "sensitive"),
])
def test_key_rules_deny_personal_keys(key, rule) -> None:
    assert REDACTOR.key_rule(key) == rule
    assert REDACTOR.redact_value("anything at all", key=key) == f"[REDACTED:{rule}]"
    assert REDACTOR.redact_value(["a", "b"], key=key) == f"[REDACTED:{rule}]"
    assert REDACTOR.redact_value(12345, key=key) == f"[REDACTED:{rule}]"


@pytest.mark.parametrize("key", [
    "operation", "domain", "message_count", "messageLength", "message_id", "name_length", "messageType",
    "span.name", "service.name", "host.name", "db.name", "event.name", "messaging.destination.name",
    "k8s.pod.name", "container.image.name", "http.route", "rpc.method", "exception.type",
    "exception.message", "exception.stacktrace", "error.message", "code.function", "server.address",
    "client.address", "network.peer.address", "url.full", "db.query.text", "http.request.header.content-type",
    "http.request.body.size", "token_type", "gen_ai.usage.input_tokens", "gen_ai.token.type", "photo_id",
    "imageCount", "has_email", "is_mobile", "email_verified", "errorCode", "error_code", "route", "method",
    "status", "model", "category", "region", "outcome", "reason", "rule", "exporter",
    "avalo.metadata.template_name", "avalo.domain", "avalo.operation", "avalo.latency_ms",
])
def test_key_rules_leave_descriptive_and_semconv_keys(key) -> None:
    assert REDACTOR.key_rule(key) is None
    value = "".join(["chat", ".send"])
    assert REDACTOR.redact_value(value, key=key) is value


def test_free_text_keys_are_scanned_not_dropped() -> None:
    out = REDACTOR.redact_attributes({
        "exception.message": "no wallet for jane@example.com",
        "exception.stacktrace": 'File "x.py", line 3\nValueError: card 4111 1111 1111 1111',
    })
    assert out == {"exception.message": "no wallet for [REDACTED:email]",
                   "exception.stacktrace": 'File "x.py", line 3\nValueError: card [REDACTED:card]'}


def test_key_rule_is_cached() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE)
    assert redactor.key_rule("recipientEmail") == "email"
    assert redactor._actions["recipientEmail"][1] == "email"  # noqa: SLF001 - the cache itself


# -- pseudonymisation ---------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["avalo.actor.id", "session.id", "enduser.id", "user.id", "user_id", "userId",
                                 "actor_id", "actorId", "session_id", "sessionId", "avalo.metadata.sender_id",
                                 "recipientId", "avalo.metadata.user_id"])
def test_person_ids_leave_pseudonymised(key) -> None:
    assert REDACTOR.redact_value("u-123", key=key) == PSEUDONYMIZE("u-123")
    assert REDACTOR.redact_value(123, key=key) == PSEUDONYMIZE("123")
    assert REDACTOR.redact_value(["u1", "u2"], key=key) == [PSEUDONYMIZE("u1"), PSEUDONYMIZE("u2")]
    already = PSEUDONYMIZE("u-123")
    assert REDACTOR.redact_value(already, key=key) is already
    assert REDACTOR.key_rule(key) is None


def test_pseudonymise_without_a_function_uses_a_random_key() -> None:
    a, b = Redactor(), Redactor()
    pa = a.redact_value("u1", key="user_id")
    assert PSEUDONYM.fullmatch(pa) and pa == a.redact_value("u1", key="user_id")
    assert pa != b.redact_value("u1", key="user_id")


def test_custom_pseudonymize_keys() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, pseudonymize_keys=["avalo.metadata.match"])
    assert redactor.redact_value("m1", key="avalo.metadata.match") == PSEUDONYMIZE("m1")


def test_user_ids_in_urls_and_paths_are_pseudonymised() -> None:
    out = REDACTOR.redact_text("GET https://api.avalo.app/v1/users/12345/photos?user_id=777&page=2")
    assert out == f"GET https://api.avalo.app/v1/users/{PSEUDONYMIZE('12345')}/photos?user_id={PSEUDONYMIZE('777')}&page=2"
    assert REDACTOR.redact_text("/v1/users/me") == "/v1/users/me"


# -- URLs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("https://bob:pw1@db.example.com:5432/app?sslmode=require",
     "https://[REDACTED:credentials]@db.example.com:5432/app?sslmode=require"),
    ("redirect to https://api.example.com/cb?code=abc&state=xyz&page=2.",
     "redirect to https://api.example.com/cb?code=[REDACTED:secret]&state=[REDACTED:secret]&page=2."),
    ("https://app.example.com/#access_token=tok1&x=1", "https://app.example.com/#access_token=[REDACTED:secret]&x=1"),
    ("https://x.example.com/u?email=jane%40example.com&q=hello+there",
     "https://x.example.com/u?email=[REDACTED:email]&q=[REDACTED:content]"),
    ("https://x.example.com/find/jane%40example.com", "https://x.example.com/find/[REDACTED:email]"),
    ("(see https://cdn.example.com/a/b.PNG)", "(see [REDACTED:photo_url])"),
    ("https://firebasestorage.googleapis.com/v0/b/a.appspot.com/o/u%2Fp?alt=media", "[REDACTED:photo_url]"),
    ("http://203.0.113.9:8080/health", "http://[REDACTED:ip]:8080/health"),
    ("http://[2001:db8::5]:8080/x", "http://[REDACTED:ip]:8080/x"),
    ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==", "[REDACTED:photo_url]"),
    ("https://api.example.com/v1/chats?limit=20", "https://api.example.com/v1/chats?limit=20"),
])
def test_urls(text, expected) -> None:
    assert REDACTOR.redact_text(text) == expected


def test_markers_never_echo_the_value() -> None:
    for text in ["4111 1111 1111 1111", "jane@example.com", "+44 20 7946 0018", "GB82WEST12345698765432"]:
        out = REDACTOR.redact_text(text)
        assert re.fullmatch(r"\[REDACTED:[a-z_]+\]", out), out


def test_ip_redaction_can_be_switched_off() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, redact_ip_addresses=False)
    text = "from 203.0.113.9 and 2001:db8::1"
    assert redactor.redact_text(text) is text
    assert redactor.key_rule("client_ip") is None
    assert REDACTOR.redact_text(text) == "from [REDACTED:ip] and [REDACTED:ip]"


# -- hooks and configuration --------------------------------------------------------------------
def test_on_redact_gets_each_rule_each_time() -> None:
    rules: list[str] = []
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, on_redact=rules.append)
    attrs = {"user.email": "x", "avalo.metadata.note": "hi", "avalo.metadata.info": "ring +44 20 7946 0018",
             "avalo.domain": "chat"}
    redactor.redact_attributes(attrs)
    assert sorted(rules) == ["content", "email", "phone"]
    redactor.redact_attributes(attrs)  # cached scan results still count
    assert sorted(rules) == ["content", "content", "email", "email", "phone", "phone"]
    rules.clear()
    redactor.redact_text("a@b.io and c@d.io")
    assert rules == ["email", "email"]


def test_on_redact_failure_does_not_break_redaction() -> None:
    def boom(rule: str) -> None:
        raise RuntimeError(rule)

    redactor = Redactor(pseudonymize=PSEUDONYMIZE, on_redact=boom)
    assert redactor.redact_text("a@b.io") == "[REDACTED:email]"


def test_callback_runs_after_the_built_in_rules() -> None:
    calls: list[tuple[str, Any]] = []

    def hook(key: str, value: Any) -> Any:
        calls.append((key, value))
        if key == "avalo.metadata.ticket":
            return "T-***"
        if key == "avalo.metadata.drop":
            return None
        return value

    rules: list[str] = []
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, callback=hook, on_redact=rules.append)
    out = redactor.redact_attributes({"avalo.metadata.ticket": "T-1234", "user.email": "a@b.io",
                                      "avalo.metadata.drop": "x", "avalo.domain": "chat"})
    assert out == {"avalo.metadata.ticket": "T-***", "user.email": "[REDACTED:email]", "avalo.domain": "chat"}
    assert ("user.email", "[REDACTED:email]") in calls  # the hook sees the redacted value
    assert rules.count("callback") == 2
    assert redactor.redact_attributes({"avalo.domain": "chat"}) is None
    assert redactor.redact_value("T-1", key="avalo.metadata.ticket") == "T-***"


def test_failing_callback_redacts() -> None:
    def hook(key: str, value: Any) -> Any:
        raise ValueError("bad hook")

    redactor = Redactor(pseudonymize=PSEUDONYMIZE, callback=hook)
    assert redactor.redact_attributes({"a": "b"}) == {"a": "[REDACTED:callback_error]"}


def test_extra_value_patterns() -> None:
    rules: list[str] = []
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, on_redact=rules.append, extra_value_patterns={
        "ticket": r"TCK-[0-9]{6}",
        "codename": r"(?i)project-(falcon|eagle)",  # global flag: scoped when embedded
        "twice": r"(zz)\1",  # a back-reference: runs on its own
        "empty": r"q*",  # can match nothing: never inserts markers
    })
    out = redactor.redact_text("see TCK-123456 on Project-Falcon, zzzz and a@b.io")
    assert out == "see [REDACTED:ticket] on [REDACTED:codename], [REDACTED:twice] and [REDACTED:email]"
    assert sorted(rules) == ["codename", "email", "ticket", "twice"]
    plain = "nothing here"
    assert redactor.redact_text(plain) is plain


def test_extra_deny_keys() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, extra_deny_keys=["promo_code", "avalo.metadata.service.name"])
    assert redactor.key_rule("promo_code") == "custom"
    assert redactor.key_rule("avalo.metadata.promoCode") == "custom"
    assert redactor.key_rule("avalo.metadata.service.name") == "custom"
    assert redactor.redact_attributes({"avalo.metadata.promoCode": "SPRING"}) == {
        "avalo.metadata.promoCode": "[REDACTED:custom]"}
    assert redactor.key_rule("promo") is None


def test_safe_keys_exempt_a_key_but_values_are_still_scanned() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, safe_keys=["avalo.metadata.companion_name"])
    assert REDACTOR.key_rule("avalo.metadata.companion_name") == "name"
    assert redactor.key_rule("avalo.metadata.companion_name") is None
    value = "Luna"
    assert redactor.redact_value(value, key="avalo.metadata.companion_name") is value
    assert redactor.redact_value("Luna <luna@example.com>", key="avalo.metadata.companion_name") == \
        "Luna <[REDACTED:email]>"


@pytest.mark.parametrize("key", ["display_name", "user.display_name", "displayName", "avalo.metadata.displayName",
                                 "profile.display_name.raw"])
def test_safe_keys_match_like_deny_keys(key) -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, safe_keys=["display_name"])
    assert REDACTOR.key_rule(key) == "name"
    assert redactor.key_rule(key) is None
    value = "Luna"
    assert redactor.redact_value(value, key=key) is value
    assert redactor.redact_attributes({key: value}) is None
    assert redactor.redact_value("Luna <luna@example.com>", key=key) == "Luna <[REDACTED:email]>"


def test_safe_and_deny_keys_the_more_specific_entry_wins() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, safe_keys=["display_name", "bot.name"],
                        extra_deny_keys=["user.display_name", "name"])
    assert redactor.key_rule("user.display_name") == "custom"  # exact deny beats a safe suffix
    assert redactor.key_rule("member.displayName") is None  # safe suffix (2 tokens) beats deny "name" (1)
    assert redactor.key_rule("avalo.metadata.bot.name") is None
    assert redactor.key_rule("avalo.metadata.name") == "custom"
    both = Redactor(pseudonymize=PSEUDONYMIZE, safe_keys=["nickname"], extra_deny_keys=["nickname"])
    assert both.key_rule("nickname") is None  # the same entry in both: safe, the narrower instruction


def test_a_safe_suffix_does_not_turn_pseudonymisation_off() -> None:
    loose = Redactor(pseudonymize=PSEUDONYMIZE, safe_keys=["id"])
    assert PSEUDONYM.fullmatch(loose.redact_value("u-1", key="user_id"))
    assert loose.redact_value("ord-1", key="order.id") == "ord-1"
    exact = Redactor(pseudonymize=PSEUDONYMIZE, safe_keys=["avalo.metadata.sender_id"])
    assert exact.redact_value("u-1", key="avalo.metadata.sender_id") == "u-1"


@pytest.mark.parametrize("email", ["a^b@example.com", "x|y@example.org", "o'neil@example.com",
                                   "first+tag@sub.example.co.uk", "a!b#c$d&e*f=g?h`i{j}k~l@example.com"])
@pytest.mark.parametrize("before, after", [("", ""), ("mail ", " now"), ("to: ", "."), ("(", ")"), ("<", ">")])
def test_emails_with_rare_local_part_characters(email, before, after) -> None:
    rules: list[str] = []
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, on_redact=rules.append)
    assert redactor.redact_text(f"{before}{email}{after}") == f"{before}[REDACTED:email]{after}"
    assert rules == ["email"]
    assert redactor.redact_attributes({"avalo.metadata.info": email}) == {"avalo.metadata.info": "[REDACTED:email]"}


def test_emails_side_by_side_and_paths_keep_their_separators() -> None:
    assert REDACTOR.redact_text("jane@example.com|bob@example.org") == "[REDACTED:email]|[REDACTED:email]"
    assert REDACTOR.redact_text("'jane@example.com'") == "'[REDACTED:email]'"
    assert REDACTOR.redact_text("GET /find/jane@example.com") == "GET /find/[REDACTED:email]"
    kept = "{user}@example.com"  # a template, not an address
    assert REDACTOR.redact_text(kept) is kept


def test_rare_local_part_characters_stay_linear() -> None:
    import time

    for text in ["a|" * 20000 + " @x.io", "a^" * 20000 + "@", "x'" * 20000 + "@example.com"]:
        start = time.perf_counter()
        REDACTOR.redact_text(text)
        assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("text", ["version 1.2.3.4", "build 10.0.19041.1", "v1.2.3.4", "Version: 1.2.3.4",
                                  "firmware v2.1.0.3 ok", "release 4.3.2.1", "BUILD=10.0.19041.1",
                                  "version=1.2.3.4", '{"version": "1.2.3.4"}', "app build 10.1.2.3"])
def test_versions_are_not_ip_addresses(text) -> None:
    assert REDACTOR.redact_text(text) == text


@pytest.mark.parametrize("text, expected", [
    ("client 10.1.2.3", "client [REDACTED:ip]"),
    ("192.168.0.1", "[REDACTED:ip]"),
    ("server 10.1.2.3", "server [REDACTED:ip]"),  # "ver" inside a word is no version
    ("v 10.1.2.3", "v [REDACTED:ip]"),
    ("version 1.2.3.4 from 10.1.2.3", "version 1.2.3.4 from [REDACTED:ip]"),
    ("client=10.1.2.3 build=10.1.2.3", "client=[REDACTED:ip] build=10.1.2.3"),
    ('{"version": "from 10.1.2.3"}', '{"version": "from [REDACTED:ip]"}'),
])
def test_ips_next_to_versions_are_still_redacted(text, expected) -> None:
    assert REDACTOR.redact_text(text) == expected


def test_version_keys_keep_dotted_versions() -> None:
    attrs = {"service.version": "1.2.3.4", "app.build": "10.0.19041.1", "avalo.metadata.release": "v4.3.2.1",
             "net.peer.ip": "10.1.2.3", "app.version": "from 10.1.2.3", "avalo.metadata.host": "10.1.2.3"}
    assert REDACTOR.redact_attributes(attrs) == {**attrs, "net.peer.ip": "[REDACTED:ip]",
                                                 "app.version": "from [REDACTED:ip]",
                                                 "avalo.metadata.host": "[REDACTED:ip]"}


def test_denied_flags_and_nothing_are_kept() -> None:
    assert REDACTOR.redact_value(True, key="password") is True
    assert REDACTOR.redact_value(None, key="email") is None


def test_flags_under_denied_keys_are_kept_in_attributes() -> None:
    rules: list[str] = []
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, on_redact=rules.append)
    keys = ("user.email", "password", "avalo.domain")
    assert redactor.redact_attributes(dict(zip(keys, ("a@b.io", "pw", "chat")))) == {
        "user.email": "[REDACTED:email]", "password": "[REDACTED:secret]", "avalo.domain": "chat"}
    assert rules == ["email", "secret"]
    rules.clear()  # the same keys again, now with a flag: kept, and not counted
    assert redactor.redact_attributes(dict(zip(keys, (True, "pw", "chat")))) == {
        "user.email": True, "password": "[REDACTED:secret]", "avalo.domain": "chat"}
    assert rules == ["secret"]
    flags = dict(zip(keys, (False, True, "chat")))
    assert redactor.redact_attributes(flags) is None
    assert rules == ["secret"]


def test_the_same_keys_with_other_value_types() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE)
    keys = ("avalo.metadata.a", "avalo.metadata.b", "user_id")
    assert redactor.redact_attributes(dict(zip(keys, ("ok", 1.5, "u-1"))))["user_id"] == PSEUDONYMIZE("u-1")
    card = 4111111111111111
    out = redactor.redact_attributes(dict(zip(keys, (card, ["x", "a@b.io"], 7))))
    assert out == {"avalo.metadata.a": "[REDACTED:card]", "avalo.metadata.b": ["x", "[REDACTED:email]"],
                   "user_id": PSEUDONYMIZE("7")}
    assert redactor.redact_attributes(dict(zip(keys, (None, True, PSEUDONYMIZE("u-1"))))) is None


def test_many_key_sets_are_remembered_within_a_bound() -> None:
    from avalo_otel.privacy import redactor as module

    redactor = Redactor(pseudonymize=PSEUDONYMIZE)
    for i in range(module._MAX_PLANS + 10):  # noqa: SLF001 - the bound itself
        out = redactor.redact_attributes({f"avalo.metadata.k{i}": "ok", "user.email": f"u{i}@example.com"})
        assert out == {f"avalo.metadata.k{i}": "ok", "user.email": "[REDACTED:email]"}
    assert len(redactor._plans) <= module._MAX_PLANS  # noqa: SLF001


def test_without_on_redact_the_redactor_counts_by_itself() -> None:
    import threading

    redactor = Redactor(pseudonymize=PSEUDONYMIZE)
    attrs = {"user.email": "x", "avalo.metadata.info": "ring +44 20 7946 0018", "avalo.domain": "chat"}
    redactor.redact_attributes(attrs)
    redactor.redact_attributes(attrs)  # cached results count again
    worker = threading.Thread(target=redactor.redact_text, args=("a@b.io and c@d.io",))
    worker.start()
    worker.join()
    assert redactor.redaction_counts() == {"email": 4, "phone": 2}
    rules: list[str] = []
    assert Redactor(pseudonymize=PSEUDONYMIZE, on_redact=rules.append).redaction_counts() == {}


def test_cache_is_bounded() -> None:
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, cache_size=8)
    for i in range(50):
        assert redactor.redact_text(f"mail user{i}@example.com") == "mail [REDACTED:email]"
    assert len(redactor._clean) + len(redactor._dirty) <= 8  # noqa: SLF001 - the bound itself
    for i in range(50):
        assert redactor.redact_text(f"plain text {i}") == f"plain text {i}"
    assert len(redactor._clean) + len(redactor._dirty) <= 8  # noqa: SLF001
    long_text = "x" * 1000 + " a@b.io"
    assert redactor.redact_text(long_text).endswith("[REDACTED:email]")


def test_ipv4_and_ipv6_forms() -> None:
    for ip in ["8.8.8.8", "192.168.1.20", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "::ffff:192.0.2.128"]:
        assert REDACTOR.redact_text(f"peer {ip} ok") == "peer [REDACTED:ip] ok", ip
        assert ipaddress.ip_address(ip)


@pytest.mark.parametrize("text, expected", [
    ("peer 2001:db8::1: connection refused", "peer [REDACTED:ip]: connection refused"),
    ("addr:2001:db8::7", "addr:[REDACTED:ip]"),
    ("peer ::ffff:192.0.2.128.", "peer [REDACTED:ip]."),
    ("+203.0.113.9", "+[REDACTED:ip]"),
    ("x.s3://bucket/key", "[REDACTED:photo_url]"),
    ("Basic dXNlcjpwYXNzd29yZA==", "[REDACTED:auth_header]"),
    ("Authorization: Bearer abc.DEF-123", "Authorization: [REDACTED:secret]"),
    ('{"password": "hunter2", "user": "x"}', '{"password": "[REDACTED:secret]", "user": "x"}'),
    ("Set-Cookie: sid=abc123; Path=/; HttpOnly", "Set-Cookie: [REDACTED:secret]"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "[REDACTED:secret]"),
    ("IBAN DE89 3704 0044 0532 0130 00 EUR", "IBAN [REDACTED:iban] EUR"),
    ("pay 12 4111 1111 1111 1111 99", "pay 12 [REDACTED:card] 99"),
    ("+1 415 555 0132 12 items", "[REDACTED:phone] 12 items"),
])
def test_edge_forms(text, expected) -> None:
    assert REDACTOR.redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "1 " * 20000, "1:" * 20000, "a." * 20000 + "@", "+1 " * 20000, "https://x.io/?" + "a=b&" * 10000,
    "x@" + "a." * 20000 + "1", "/users/" * 10000, "-----BEGIN RSA PRIVATE KEY-----" + "A" * 40000,
])
def test_pathological_inputs_stay_linear(text) -> None:
    import time

    start = time.perf_counter()
    REDACTOR.redact_text(text)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("text, expected", [
    ('[{"firstName": "Katarzyna Lindqvist", "n": 1}]', '[{"firstName": "[REDACTED:name]", "n": 1}]'),
    ("{'email': 'a@b.io', 'phone': 4155550123, 'ok': 'x'}",
     "{'email': '[REDACTED:email]', 'phone': '[REDACTED:phone]', 'ok': 'x'}"),
    ('{"details": "call +44 20 7946 0018", "n": 2}', '{"details": "call [REDACTED:phone]", "n": 2}'),
    ('{"user_id": "u-1", "status": "ok"}', f'{{"user_id": "{PSEUDONYMIZE("u-1")}", "status": "ok"}}'),
    ('user_id=42 name="Jane Doe" status=ok token_count=12',
     f'user_id={PSEUDONYMIZE("42")} name="[REDACTED:name]" status=ok token_count=12'),
    ("/path?email=a%40b.io&x=1", "/path?email=[REDACTED:email]&x=1"),
    ("GET /users/k.lindqvist@example.com 404", "GET /users/[REDACTED:email] 404"),
    ("PASSWORD: +41 79 123 45 67 ok", "PASSWORD: [REDACTED:secret] ok"),
])
def test_key_rules_apply_inside_text(text, expected) -> None:
    assert REDACTOR.redact_text(text) == expected


def test_keys_that_are_personal_data_are_redacted_too() -> None:
    rules: list[str] = []
    redactor = Redactor(pseudonymize=PSEUDONYMIZE, on_redact=rules.append)
    attrs = {"avalo.metadata.delivered.jane@example.com": True, "avalo.domain": "chat"}
    assert redactor.redact_attributes(attrs) == {"[REDACTED:email]": True, "avalo.domain": "chat"}
    assert rules == ["email"]
    assert redactor.redact_value({"seen": {"+44 20 7946 0018": 1}}) == {"seen": {"[REDACTED:phone]": 1}}
    assert redactor.key_rule("avalo.metadata.delivered.jane@example.com") is None


@pytest.mark.parametrize("value, ensure_ascii", [
    ([{"details": "key «AKIAIOSFODNN7EXAMPLE»", "n": 1}], True),
    ([{"details": "paid with\n4111 1111 1111 1111"}, {"n": 2}], False),
    (["call\t+44 20 7946 0018", 1], True),
    ({"note": "mail:\njane@example.com", "firstName": "Zoë"}, True),
])
def test_escapes_in_json_text_do_not_hide_pii(value, ensure_ascii) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    out = REDACTOR.redact_text(text)
    for pii in ["AKIAIOSFODNN7EXAMPLE", "4111 1111 1111 1111", "7946 0018", "jane@example.com", "Zoë", "Zo\\u00eb"]:
        assert pii not in out
    assert MARKER in out
    json.loads(out)  # still valid JSON
    python_repr = repr(value)
    assert MARKER in REDACTOR.redact_text(python_repr)


@pytest.mark.parametrize("key", ["amount_text", "status_text", "button_text", "release_notes", "docker_image",
                                 "method_signature", "client.mobile"])
def test_keys_naming_things_are_not_personal(key: str) -> None:
    redactor = Redactor(pseudonymize=lambda value: "p_" + "0" * 24)
    assert redactor.key_rule(key) is None
    assert redactor.redact_attributes({key: "Pay 10 EUR"}) is None


@pytest.mark.parametrize("key, rule", [("message_text", "content"), ("notes", "content"), ("avatar_image", "photo"),
                                       ("signature", "secret"), ("mobile", "phone")])
def test_the_same_words_alone_stay_personal(key: str, rule: str) -> None:
    assert Redactor(pseudonymize=lambda value: "p_" + "0" * 24).key_rule(key) == rule


# -- the span stage --------------------------------------------------------------------------------
def test_span_pipeline_redacts_in_place_and_keeps_the_dropped_counts() -> None:
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from avalo_otel.privacy.processors import SpanExportPipeline

    exporter = InMemorySpanExporter()
    pipeline = SpanExportPipeline(REDACTOR)
    pipeline.add(SimpleSpanProcessor(exporter))
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=2, max_event_attributes=1))
    provider.add_span_processor(pipeline)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("mail a@b.io", attributes={"a": 1, "b": 2, "user.email": "a@b.io"}) as span:
        span.add_event("sent", {"n": 1, "to": "c@d.io"})
    with tracer.start_as_current_span("chat.send", attributes={"avalo.domain": "chat"}):
        pass
    redacted, clean = exporter.get_finished_spans()
    assert redacted.name == "mail [REDACTED:email]"
    assert dict(redacted.attributes) == {"b": 2, "user.email": "[REDACTED:email]"}
    assert redacted.dropped_attributes == 1  # what the SDK dropped is still reported
    assert dict(redacted.events[0].attributes) == {"to": "[REDACTED:name]"}  # a bare "to" is a party
    assert redacted.events[0].dropped_attributes == 1
    assert dict(clean.attributes) == {"avalo.domain": "chat"} and clean.dropped_attributes == 0
    provider.shutdown()
