"""The data classes of issue #11 that the value detectors did not know, and the safe values they
must not take: unit and property tests on the redactor.

Each class is generated (valid numbers only: check digits, real regions' formats), put in free text
among filler words and wrappers, and must leave with no trace (its forms and its digits); each has
near misses that must leave exactly as they came (amounts, dates, ISO timestamps, versions,
order/ticket ids, UUIDs, trace ids, durations, ports, status codes, user agents). The generators
are used again by ``test_privacy_classes_e2e`` (the real exporters and stores).
"""

from __future__ import annotations

import datetime
import re
import string
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum.pl import nip as stdnum_nip
from stdnum.pl import pesel as stdnum_pesel

from avalo_otel.conventions import ERROR_CODES
from avalo_otel.privacy import Redactor
from avalo_otel.privacy.identity import pesel_ok, ssn_ok
from avalo_otel.privacy.detectors import is_card_number
from avalo_otel.settings import DEFAULT_PHONE_REGIONS
from test_privacy_e2e import FILLER, OPERATIONS, Pii

DIGITS, UPPER = string.digits, string.ascii_uppercase
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_redactor(**kwargs: Any) -> Redactor:
    return Redactor(pseudonymize=lambda v: "p_" + "0" * 24, **kwargs)


REDACTOR = new_redactor()


# =================================================================================================
# Generated personal data of the new classes (each a Pii: what must never be seen)
# =================================================================================================
def _digit_forms(text: str) -> tuple[str, ...]:
    digits = re.sub(r"\D", "", text)
    return (digits,) if len(digits) >= 7 else ()


def _example_numbers() -> list[phonenumbers.PhoneNumber]:
    found = []
    for region in DEFAULT_PHONE_REGIONS:
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append(number)
    return found


EXAMPLE_NUMBERS = _example_numbers()


def _vary(draw: Any, number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    # Not ending in 000: "512 345 000" is taken for a round amount (a documented blind spot).
    bump = draw(st.integers(1, 999))
    varied = phonenumbers.PhoneNumber(country_code=number.country_code,
                                      national_number=number.national_number - number.national_number % 1000 + bump)
    return varied if phonenumbers.is_valid_number(varied) else number


@st.composite
def national_phones(draw: Any) -> Pii:
    """A number of a home region as written there: with spaces, dashes, dots, parentheses, or
    one run after the trunk 0."""
    number = _vary(draw, draw(st.sampled_from(EXAMPLE_NUMBERS)))
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    styles = [national, national.replace(" ", "-")]
    if national.count(" ") >= 2 and len(re.sub(r"\D", "", national)) >= 10:
        # (Nine digits in dotted threes, 512.345.678, read as an amount: a documented blind spot.)
        styles.append(national.replace(" ", "."))
    digits = re.sub(r"\D", "", national)
    if digits.startswith("0") and 10 <= len(digits) <= 12:
        styles.append(digits)
    text = draw(st.sampled_from(styles))
    return Pii("phone", text, (text,), _digit_forms(text))


@st.composite
def intl00_phones(draw: Any) -> Pii:
    """Any region's number after the ``00`` international prefix."""
    number = _vary(draw, draw(st.sampled_from(EXAMPLE_NUMBERS)))
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    text = "00" + (intl[1:] if draw(st.booleans()) else intl[1:].replace(" ", ""))
    return Pii("phone", text, (text,), _digit_forms(text))


@st.composite
def pesel_numbers(draw: Any) -> str:
    born = draw(st.dates(datetime.date(1900, 1, 1), datetime.date.today()))
    month = born.month + (20 if born.year >= 2000 else 0)
    body = f"{born.year % 100:02d}{month:02d}{born.day:02d}{draw(st.integers(0, 9999)):04d}"
    return body + stdnum_pesel.calc_check_digit(body)


@st.composite
def pesels(draw: Any) -> Pii:
    number = draw(pesel_numbers())
    text = draw(st.sampled_from([number, f"PESEL {number}", f"pesel: {number}", f"nr PESEL {number}"]))
    return Pii("government_id", text, (number,), (number,))


@st.composite
def nips(draw: Any) -> Pii:
    body = draw(st.text(DIGITS, min_size=9, max_size=9))
    number = next((body + c for c in DIGITS if stdnum_nip.is_valid(body + c)), None)
    if number is None:  # this body's sum is 10: no check digit makes a NIP
        number = "1234563218"
    a, b, c, d = number[:3], number[3:6], number[6:8], number[8:]
    text = draw(st.sampled_from([f"{a}-{b}-{c}-{d}", f"{a}-{number[3:5]}-{number[5:7]}-{number[7:]}",
                                 f"PL{number}", f"PL {number}", f"NIP {number}", f"NIP: {number}"]))
    return Pii("government_id", text, (number, text), (number,))


@st.composite
def ssns(draw: Any) -> Pii:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    number = f"{area:03d}-{draw(st.integers(1, 99)):02d}-{draw(st.integers(1, 9999)):04d}"
    if not ssn_ok(number):
        number = "536-90-4399"
    text = draw(st.sampled_from([number, f"SSN {number}", f"ssn: {number.replace('-', '')}"]))
    return Pii("government_id", text, (number, number.replace("-", "")), (number.replace("-", ""),))


@st.composite
def documents(draw: Any) -> Pii:
    """Passport / ID card numbers and dates of birth after the words that name them."""
    doc = draw(st.text(UPPER, min_size=2, max_size=3)) + draw(st.text(DIGITS, min_size=6, max_size=7))
    born = draw(st.dates(datetime.date(1930, 1, 1), datetime.date(2008, 12, 31)))
    kind = draw(st.sampled_from(["passport", "id", "dob"]))
    if kind == "passport":
        text = draw(st.sampled_from(["passport {}", "Passport No: {}", "paszport {}", "Reisepass {}"])).format(doc)
        return Pii("government_id", text, (doc,))
    if kind == "id":
        text = draw(st.sampled_from(["ID card: {}", "dowód osobisty {}", "Personalausweis {}"])).format(doc)
        return Pii("government_id", text, (doc,))
    date = draw(st.sampled_from([born.isoformat(), born.strftime("%d.%m.%Y"), born.strftime("%d %B %Y"),
                                 born.strftime("%B %d, %Y")]))
    text = draw(st.sampled_from(["born {}", "DOB: {}", "date of birth {}", "urodzony {}", "geb. {}"])).format(date)
    return Pii("birthdate", text, (date,), _digit_forms(date))


@st.composite
def coordinates(draw: Any) -> Pii:
    places = 4 if draw(st.booleans()) else draw(st.integers(5, 7))
    lat = draw(st.floats(-89.9, 89.9, allow_nan=False))
    lon = draw(st.floats(-179.9, 179.9, allow_nan=False).filter(lambda x: abs(lat) >= 1 or abs(x) >= 1))
    a, b = f"{lat:.{places}f}", f"{lon:.{places}f}"
    text = draw(st.sampled_from([f"{a}, {b}", f"{a},{b}", f"({a} {b})", f"geo:{a},{b}", f"lat {a} lng {b}",
                                 f"{abs(lat):.{places}f}°{'N' if lat >= 0 else 'S'} {abs(lon):.{places}f}°{'E' if lon >= 0 else 'W'}"]))
    digits = tuple(re.sub(r"\D", "", x) for x in (a, b))
    return Pii("location", text, (text, a.lstrip("-"), b.lstrip("-")), tuple(d for d in digits if len(d) >= 7))


@st.composite
def geohashes(draw: Any) -> Pii:
    gh = draw(st.text("0123456789bcdefghjkmnpqrstuvwxyz", min_size=7, max_size=10).filter(lambda s: any(c.isdigit() for c in s)))
    return Pii("location", f"geohash {gh}", (gh,))


PL_STREETS = ["Marszałkowska", "Jana Pawła II", "Armii Krajowej", "Piotrkowska", "Świętokrzyska", "3 Maja"]
DE_STREETS = ["Hauptstraße", "Kurfürstendamm", "Berliner Straße", "Lindenstr.", "Goetheweg", "Schillerplatz"]
EN_STREETS = ["Baker Street", "Elm Avenue", "Downing St", "Oak Road", "Maple Drive", "Sunset Blvd"]
FR_STREETS = ["rue de Rivoli", "avenue des Champs", "boulevard Saint Germain", "place de la Concorde"]


@st.composite
def addresses(draw: Any) -> Pii:
    house = f"{draw(st.integers(1, 299))}{draw(st.sampled_from(['', 'a', 'B']))}"
    market = draw(st.sampled_from(["pl", "de", "en", "fr", "uk_postcode", "us_zip"]))
    if market == "pl":
        street = f"{draw(st.sampled_from(['ul.', 'al.', 'ul. ']))} {draw(st.sampled_from(PL_STREETS))} {house}".replace("  ", " ")
        tail = draw(st.sampled_from(["", f"/{draw(st.integers(1, 99))}", f", {draw(st.integers(0, 99)):02d}-{draw(st.integers(0, 999)):03d} Warszawa"]))
    elif market == "de":
        street, tail = f"{draw(st.sampled_from(DE_STREETS))} {house}", draw(st.sampled_from(["", ", 10115 Berlin"]))
    elif market == "en":
        street = f"{house} {draw(st.sampled_from(EN_STREETS))}"
        tail = draw(st.sampled_from(["", ", London NW1 6XE", ", Springfield, IL 62704"]))
    elif market == "fr":
        street, tail = f"{house} {draw(st.sampled_from(FR_STREETS))}", draw(st.sampled_from(["", ", 75001 Paris"]))
    elif market == "uk_postcode":
        code = draw(st.sampled_from(["SW1A 1AA", "NW1 6XE", "M1 1AE", "EC1A 1BB", "W1A 0AX", "B33 8TH"]))
        return Pii("address", code, (code,))
    else:
        code = f"{draw(st.sampled_from(['Springfield', 'Los Angeles', 'Austin']))}, {draw(st.sampled_from(['IL', 'CA', 'TX']))} {draw(st.integers(10000, 99999))}"
        return Pii("address", code, (code, code[-5:]))
    text = street + tail
    return Pii("address", text, (street, text))


FIRST = ["Anna", "Katarzyna", "Małgorzata", "Jürgen", "Søren", "Oluwaseun", "Priyanka", "Zbigniew", "Marie", "José"]
LAST = ["Kowalska", "Nowak", "Brzęczyszczykiewicz", "Müller", "Lindqvist", "Okonkwo", "Dubois", "Szczepański"]


@st.composite
def greeted_names(draw: Any) -> Pii:
    first, last = draw(st.sampled_from(FIRST)), draw(st.sampled_from(LAST))
    name = draw(st.sampled_from([first, f"{first} {last}"]))
    greeting = draw(st.sampled_from(["Hi {},", "Hello {}!", "Dear {},", "Cześć {}", "Dzień dobry {}", "Hallo {}",
                                     "Bonjour {}", "Thanks, {}", "Dear Mr. {}", "Pani {}", "Herr {}", "Mrs {}"]))
    return Pii("name", greeting.format(name), (name, first, *(() if name == first else (last,))))


@st.composite
def secrets_in_text(draw: Any) -> Pii:
    token = draw(st.text(string.ascii_letters + DIGITS, min_size=24, max_size=40).filter(
        lambda s: any(c.isdigit() for c in s) and any(c.isupper() for c in s) and any(c.islower() for c in s)))
    hexsig = draw(st.text("0123456789abcdef", min_size=32, max_size=64).filter(lambda s: len(set(s)) > 4))
    code = f"{draw(st.integers(100000, 999999))}"
    kind = draw(st.sampled_from(["whsec", "kv", "sig", "otp"]))
    if kind == "whsec":
        return Pii("api_key", f"whsec_{token}", (token,))
    if kind == "kv":
        name = draw(st.sampled_from(["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "STRIPE_WEBHOOK_SECRET",
                                     "webhook_secret", "client_secret", "signing_secret", "x-api-key"]))
        sep = draw(st.sampled_from([": ", "=", " = ", ":"]))
        return Pii("secret", f"{name}{sep}{token}", (token,))
    if kind == "sig":
        name = draw(st.sampled_from(["sig", "signature", "X-Hub-Signature-256", "hmac"]))
        return Pii("secret", f"{name}={hexsig}" if name != "X-Hub-Signature-256" else f"{name}: sha256={hexsig}", (hexsig,))
    phrase = draw(st.sampled_from(["Your code is {}", "verification code: {}", "Twój kod to {}", "kod weryfikacyjny: {}",
                                   "Ihr Code lautet {}", "votre code est {}", "OTP {}", "one-time password {}"]))
    return Pii("secret", phrase.format(code), (code,))


#: Every new class that a value detector finds in free text, by name.
CLASSES = {
    "national_phone": national_phones(), "intl00_phone": intl00_phones(), "pesel": pesels(), "nip": nips(),
    "ssn": ssns(), "document_or_birthdate": documents(), "coordinates": coordinates(), "geohash": geohashes(),
    "address": addresses(), "greeted_name": greeted_names(), "secret": secrets_in_text(),
}
NEW_CLASSES = st.one_of(*CLASSES.values())


# =================================================================================================
# Safe values: what must leave exactly as it came
# =================================================================================================
USER_AGENTS = st.builds(
    lambda major, build, patch, os_: (f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) "
                                      f"Chrome/{major}.0.{build}.{patch} Safari/537.36 Edg/{major}.0.0.0"),
    st.integers(100, 140), st.integers(0, 9999), st.integers(0, 999),
    st.sampled_from(["Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "Linux; Android 14; Pixel 8",
                     "X11; Linux x86_64"]),
) | st.builds(lambda v, s: f"avalo-ios/{v} (iPhone; iOS 17.{s}; Scale/3.00)",
              st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,3}", fullmatch=True), st.integers(0, 9)) \
  | st.sampled_from(["okhttp/4.12.0", "python-requests/2.32.3", "Dart/3.5 (dart:io)", "curl/8.5.0"])
_NUMBERS = st.integers(0, 10**18).filter(lambda n: not pesel_ok(str(n)) and not is_card_number(str(n)))
SAFE_TOKENS = st.one_of(
    st.uuids().map(str),                                                             # request ids
    st.integers(1, 2**128 - 1).map(lambda n: f"{n:032x}"),                          # trace ids
    st.integers(1, 2**64 - 1).map(lambda n: f"{n:016x}"),                           # span ids
    st.builds(lambda t, s: f"00-{t:032x}-{s:016x}-01", st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1)),
    st.sampled_from(sorted(ERROR_CODES)),                                            # error codes
    st.sampled_from([op for _, op in OPERATIONS]),                                   # operation names
    st.builds(lambda a, c, cur: f"{a}.{c:02d} {cur}", st.integers(0, 10**7), st.integers(0, 99),
              st.sampled_from(["PLN", "EUR", "USD", "GBP", "zł"])),                 # amounts
    st.builds(lambda a, c: f"{a:,}.{c:02d}".replace(",", " "), st.integers(0, 10**9), st.integers(0, 99)),
    st.builds(lambda a, c: f"€{a:,}.{c:02d}", st.integers(0, 10**7), st.integers(0, 99)),
    st.builds(lambda a, sep, cur: f"{a:,}".replace(",", sep) + cur, st.integers(10**6, 10**10),
              st.sampled_from([" ", ".", ","]), st.sampled_from([" PLN", " zł", " EUR", "€", " USD"])),
    st.builds(lambda a, sep: f"{a * 1000:,}".replace(",", sep), st.integers(1000, 10**7), st.sampled_from([" ", "."])),
    st.sampled_from(["/v1/orders/{orderId}", "GET /v1/chats/{chatId}/messages", "/api/v2/tickets/{id}",
                     "POST /v1/wallet/spend", "/v1/users/{userId}/photos/{photoId}"]),  # route templates
    st.sampled_from(["200", "201", "204", "301", "400", "401", "403", "404", "409", "429", "500", "502", "503"]),
    # Versions (a bare 201.200.1000 is also a US number written with dots: major versions here stay < 100).
    st.from_regex(r"v?(0|[1-9][0-9]?)\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,4})(-rc\.[0-9])?", fullmatch=True),
    st.builds(lambda p, a, b, c: f"{p}/{a}.0.{b}.{c}", st.sampled_from(["Chrome", "Edg", "OPR", "CriOS", "Version"]),
              st.integers(100, 140), st.integers(0, 9999), st.integers(0, 999)),
    st.from_regex(r"(v|version |build )[0-9]{1,3}(\.[0-9]{1,5}){3}", fullmatch=True),  # (a bare a.b.c.d is an IP)
    st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2030, 1, 1)).map(
        lambda d: d.isoformat(timespec="milliseconds") + "Z"),                       # ISO timestamps
    st.dates(datetime.date(2000, 1, 1), datetime.date(2030, 1, 1)).map(lambda d: d.strftime("%d.%m.%Y")),
    st.builds(lambda y, n: f"ORD-{y}-{n:06d}", st.integers(2000, 2030), st.integers(0, 999999)),  # order ids
    st.builds(lambda n: f"TCK-{n}", st.integers(1, 10**8)),                          # ticket ids
    st.builds(lambda n: f"order #{n}", st.integers(1, 10**10)),
    _NUMBERS.map(str),                                                               # bare ids and counts
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10**7), st.sampled_from(["ms", "s", "µs", "ns"])),  # durations
    st.builds(lambda n: f"port {n}", st.integers(1, 65535)),                         # ports
    st.builds(lambda a, b: f"{a}.{b:04d}", st.integers(0, 0), st.integers(0, 9999)),  # ratios / latencies
    USER_AGENTS,
)


@st.composite
def safe_texts(draw: Any) -> str:
    sep = draw(st.sampled_from([", ", " | ", "; "]))
    return sep.join(draw(st.lists(SAFE_TOKENS, min_size=1, max_size=6)))


# =================================================================================================
# Unit and property tests
# =================================================================================================
def assert_gone(out: str, item: Pii) -> None:
    for form in item.forms:
        assert form not in out, f"{form!r} of {item.value!r} left: {out!r}"
    digits = re.sub(r"\D", "", out)
    for form in item.digit_forms:
        assert form not in digits, f"digits {form!r} of {item.value!r} left: {out!r}"


@pytest.mark.parametrize("name", sorted(CLASSES))
@PROPS
@given(data=st.data(), before=st.lists(st.sampled_from(FILLER), max_size=8),
       after=st.lists(st.sampled_from(FILLER), max_size=3), wrap=st.sampled_from(["{}", "({})", "{}.", "«{}»", "\n{}\n"]))
def test_each_new_class_is_redacted_in_free_text(name: str, data: st.DataObject, before: list[str], after: list[str],
                                                 wrap: str) -> None:
    item = data.draw(CLASSES[name])
    text = " ".join([*before, wrap.format(item.value), *after])
    redactor = new_redactor()
    out = redactor.redact_text(text)
    assert_gone(out, item)
    # An unbroken 11-digit number can be a UK number and a valid PESEL at once: either rule will do.
    kinds = {item.kind} | ({"government_id"} if item.kind == "phone" else set())
    assert any(f"[REDACTED:{k}]" in out for k in kinds), (text, out)
    assert sum(redactor.redaction_counts().get(k, 0) for k in kinds) >= 1


@pytest.mark.parametrize("text, expected", [
    ("zadzwoń 600 123 456", "zadzwoń [REDACTED:phone]"),
    ("call (415) 555-0132 now", "call [REDACTED:phone] now"),
    ("0044 20 7946 0018", "[REDACTED:phone]"),
    ("numbers: 600 123 456 601 234 567", "numbers: [REDACTED:phone] [REDACTED:phone]"),  # one run, two numbers
    ("tel. 600123456", "tel. [REDACTED:phone]"),        # unbroken, but after a phone word
    ("PESEL 44051401359", "PESEL [REDACTED:government_id]"),
    ("NIP 123-456-32-18", "NIP [REDACTED:government_id]"),
    ("SSN 536-90-4399", "SSN [REDACTED:government_id]"),
    ("passport no. XK1234567 expires", "passport no. [REDACTED:government_id] expires"),
    ("born 12.03.1988 in Łódź", "born [REDACTED:birthdate] in Łódź"),
    ("at 52.229676, 21.012229 now", "at [REDACTED:location] now"),
    ("geohash u3qcnhzch", "geohash [REDACTED:location]"),
    ("ul. Marszałkowska 10/12, 00-590 Warszawa", "[REDACTED:address]"),
    ("ship to 221B Baker Street, London NW1 6XE today", "ship to [REDACTED:address] today"),
    ("Hi Anna, see you", "Hi [REDACTED:name], see you"),
    ("Dear Mr. Kowalski", "Dear Mr. [REDACTED:name]"),
    ("aws_secret_access_key: wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key: [REDACTED:secret]"),
    ("sig=9f86d081884c7d659a2feaa0c55ad015&x=1", "sig=[REDACTED:secret]&x=1"),
    ("Your code is 482913.", "Your code is [REDACTED:secret]."),
    ("error code 4012 for jane@example.com", "error code 4012 for [REDACTED:email]"),  # not a one-time code
])
def test_examples(text: str, expected: str) -> None:
    assert REDACTOR.redact_text(text) == expected


NEAR_MISSES = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Safari/605.1.15",
    "order ORD-2024-000123 shipped", "ticket #88231 closed", "ticket TCK-2024-00042", "invoice FV/2024/05/00123",
    "charged 1299.99 PLN", "amount 12 345,67 zł", "total €1 299,00", "paid $1,299.99", "1 299 000", "03000.00",
    "12 345 678.90", "2024-05-01T12:30:45.123Z", "2024-05-01 12:30:45", "01.05.2024 12:30", "range 2019-2024",
    "took 1234567 ns", "timeout 30000ms", "port 4317", "HTTP 503", "status code 503", "error code 4012",
    "exit code 137", "zip code 10115", "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "request 9f1c2b7e-0042-4a5b-8c9d-0e1f2a3b4c5d", "version 10.0.19041.1", "10.0.19041.1", "v2.3.1-rc.1",
    "INSUFFICIENT_FUNDS", "wallet.spend", "Hello World", "Hi there", "Dear Customer", "location us-east-1",
    "position 3 in queue", "p50 0.1234, p99 0.5678", "12.50, 3.75", "order 123456789 refunded", "epoch 1733500000",
    "ids 1234567, 2345678", "batch 2024-05-01/00123", "screen 1920 1080", "Room 101", "code: ERR_TIMEOUT",
    "pin the version", "token_type: access", "sha256:9f86d081884c7d65", "GBP 1 234 567", "Retry 3 Times",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_survive(text: str) -> None:
    assert REDACTOR.redact_text(text) is text


@settings(max_examples=500, deadline=None)
@given(text=safe_texts())
@example(text="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
def test_safe_values_survive_property(text: str) -> None:
    assert REDACTOR.redact_text(text) is text
    assert REDACTOR.redact_attributes({"details": text, "user_agent.original": text}) is None


def test_a_path_that_holds_an_ip_is_still_redacted() -> None:
    # The user-agent product token (Chrome/131.0.0.0) is kept; a path segment is not a product.
    assert REDACTOR.redact_text("GET /hosts/10.1.2.3") == "GET /hosts/[REDACTED:ip]"
    assert REDACTOR.redact_text("by-email/21.199.9.138") == "by-email/[REDACTED:ip]"
    assert REDACTOR.redact_text("x Edg/131.0.0.0") == "x Edg/131.0.0.0"


# -- the home regions ------------------------------------------------------------------------------
def test_phone_regions_decide_which_national_formats_are_known() -> None:
    italian = "347 123 4567"  # an Italian mobile: no number of the default regions
    assert REDACTOR.redact_text(f"call {italian}") == f"call {italian}"
    assert new_redactor(phone_regions=("IT",)).redact_text(f"call {italian}") == "call [REDACTED:phone]"
    off = new_redactor(phone_regions=())
    assert off.redact_text("call 600 123 456") == "call 600 123 456"
    # 00 and + are international: found whatever the regions.
    assert off.redact_text("call 0048 600 123 456") == "call [REDACTED:phone]"


def test_build_redactor_passes_the_phone_regions_setting() -> None:
    from avalo_otel.privacy import build_redactor
    from avalo_otel.settings import Settings

    settings_ = Settings.load(environ={"AVALO_OTEL_PHONE_REGIONS": "IT"})
    redactor = build_redactor(settings_, lambda v: "p_" + "0" * 24)
    assert redactor.redact_text("call 347 123 4567") == "call [REDACTED:phone]"
    assert redactor.redact_text("call 600 123 456") == "call 600 123 456"


# -- keys ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, rule", [
    ("to", "name"), ("from", "name"), ("email.to", "name"), ("reply_to", "name"), ("recipient", "name"),
    ("sender", "name"), ("buyer", "name"), ("card_holder", "name"), ("guests", "name"), ("author", "name"),
    ("customer", "name"), ("avalo.metadata.attendees", "name"), ("http.request.header.from", "name"),
    ("preview", "content"), ("caption", "content"), ("bio", "content"), ("answer", "content"),
    ("message_preview", "content"), ("location", "location"), ("user.position", "location"), ("geo", "location"),
    ("geohash", "location"), ("lat", "location"), ("lng", "location"), ("coordinates", "location"),
    ("passport", "government_id"), ("passport_no", "government_id"), ("id_card_number", "government_id"),
    ("pesel", "government_id"), ("nip", "government_id"), ("document_number", "government_id"),
    ("dob", "birthdate"), ("date_of_birth", "birthdate"), ("born_on", "birthdate"), ("birthYear", "birthdate"),
])
def test_new_deny_keys(key: str, rule: str) -> None:
    assert REDACTOR.key_rule(key) == rule
    assert REDACTOR.redact_attributes({key: "Anna Kowalska 52.2297"}) == {key: f"[REDACTED:{rule}]"}


@pytest.mark.parametrize("key", [
    "messaging.destination.name", "date_from", "valid_to", "redirect_to", "page_from", "price_from", "time_to",
    "http.response.header.location", "queue_position", "scroll_position", "file_location", "recipient_count",
    "guest_mode", "preview_url", "answer_count", "customer_type", "author_count", "placeholder", "document_id",
])
def test_keys_that_only_look_alike_are_not_denied(key: str) -> None:
    assert REDACTOR.key_rule(key) is None
    assert REDACTOR.redact_attributes({key: "2024-05-01"}) is None
