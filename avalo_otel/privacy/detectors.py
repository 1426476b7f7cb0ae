"""Value detectors: the regular-expression pieces and the validators behind them.

Each detector is one alternative of the single combined expression that
:class:`~avalo_otel.privacy.scanner.ValueScanner` runs once per string (``DETECTORS``, in priority
order: at one position the first alternative that matches wins). A regex only finds *candidates*;
where a shape alone would catch safe values the candidate is validated here: Luhn and card-network
prefixes for cards, mod-97 and the country's length for IBANs, the ``phonenumbers`` library for
phone numbers, octet ranges and :mod:`ipaddress` for IPs. The detectors of national numbers
(:mod:`.phones`, :mod:`.identity`), places (:mod:`.places`) and of values named by the words
before them (:mod:`.phrases`) live in modules of their own.

Every alternative can only begin at the start of a token (one shared look-behind), so the middle
of a word costs one check, and only the detectors a string's cheap :func:`features` allow are
compiled into the expression run on it.
"""

from __future__ import annotations

import ast
import base64
import binascii
import ipaddress
import json
import re
from functools import lru_cache

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

from . import identity, phones, phrases, places


def marker(rule: str) -> str:
    """What replaces a redacted value: names the rule, never echoes any part of the value."""
    return f"[REDACTED:{rule}]"


MARKER_PREFIX = "[REDACTED:"

# -- the combined expression's alternatives, in priority order ------------------------------------
#: Sensitive names in ``name=value`` / ``name: value`` free text (also JSON ``"name": "value"``).
_KV_NAMES = (r"password|passwd|pwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|"
             r"access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|session[_-]?token|"
             r"private[_-]?key|token|authorization|proxy-authorization|"
             # Well-known secret names (aws_secret_access_key, STRIPE_WEBHOOK_SECRET, sig=<hex>).
             r"secret[_-]?access[_-]?key|access[_-]?key|secret[_-]?key|signing[_-]?(?:key|secret)|"
             r"webhook[_-]?secret|account[_-]?key|master[_-]?key|encryption[_-]?key|sig|signature(?:-256)?|hmac")
#: The names' first words as a trie (see phrases): a word that starts none costs one check, not 35.
#: A name may follow other words of its identifier: aws_|secret_access_key, X-Hub-|Signature-256.
_KV_FIRST = phrases.trie("""
password passwd pwd passphrase secret client api apikey access refresh id auth session private token
authorization proxy signing webhook account master encryption sig signature hmac
""", whole=False)
_API_KEYS = "|".join((
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",                      # AWS access key id
    r"gh[pousr]_[A-Za-z0-9]{36,255}",                  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{22,255}",                # GitHub fine-grained PAT
    r"xox[baprs]-[A-Za-z0-9-]{10,}",                   # Slack
    r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",    # Stripe
    r"AIza[0-9A-Za-z_-]{35}",                          # Google API key
    r"NRAK-[A-Z0-9]{27}",                              # New Relic user key
    r"[0-9a-f]{36}NRAL",                               # New Relic license key
    r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",       # SendGrid
    r"sk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic
    r"whsec_[A-Za-z0-9+/=]{20,}",                      # Stripe / Svix webhook signing secrets
    r"glpat-[A-Za-z0-9_-]{20,}",                       # GitLab
    r"npm_[A-Za-z0-9]{36}",                            # npm
    r"shp(?:at|ss|ca|pa)_[A-Fa-f0-9]{32}",             # Shopify
    r"sq0(?:atp|csp)-[A-Za-z0-9_-]{22,}",              # Square
    r"SK[0-9a-f]{32}",                                 # Twilio API key
    r"key-[0-9a-f]{32}",                               # Mailgun
))

# Pieces of the key/value detectors: a quoted string (with escapes), a number, a key name.
_DQ = r'"(?:[^"\\\n]|\\.){0,4096}"'
_SQ = r"'(?:[^'\\\n]|\\.){0,4096}'"
_NUM = r"-?[0-9][0-9.eE+-]{0,30}"
_NAME = r"[A-Za-z_$@][\w.$@-]{0,63}"
_COLON = r"[ \t]*:[ \t]*"
#: After a key's value: the rest of a grouped number or IBAN (``+41 79 123 45 67``, ``DE89 3704 …``).
_MORE = r"(?:[ \t](?:[0-9(+][^\s\"'&,;]*|[A-Z0-9]{1,4}(?![A-Za-z0-9])))*"

# Features of a string, cheap to test (substring checks and two tiny searches). A detector is
# only part of the expression run on a string that has one of the features it needs, so a plain
# word costs nothing and a plain number costs the digit detectors only.
URL, AT, COLON, EQ, SLASH, PLUS, DIGIT, KEYWORD, ESCAPE, GREETING = (1 << i for i in range(10))
_DIGIT = re.compile(r"[0-9]").search
_KEYWORD = re.compile(
    r"eyJ|AKIA|ASIA|gh[pousr]_|github_pat_|xox[baprs]-|_live_|_test_|AIza|NRA[KL]|SG\.|sk-|-----BEGIN|"
    r"whsec_|glpat-|npm_|shp[a-z]{2}_|sq0|SK[0-9a-f]{32}|key-[0-9a-f]|"
    r"Bearer|bearer|BEARER|Basic|basic|BASIC|Token|token|TOKEN"
).search


def features(text: str) -> int:
    f = 0
    if ":" in text:
        f |= COLON | (URL if "://" in text else 0)
    if "@" in text:
        f |= AT
    if "=" in text:
        f |= EQ
    if "/" in text:
        f |= SLASH
    if "+" in text:
        f |= PLUS
    if _DIGIT(text):
        f |= DIGIT
    if _KEYWORD(text):
        f |= KEYWORD
    if "\\" in text:
        f |= ESCAPE
    if not text.islower():  # a capital somewhere: a name may follow a greeting (C-level, no scan)
        f |= GREETING
    return f


#: (name, features any of which it needs, expression), in priority order. Every expression can
#: only start where no ASCII letter or digit precedes (the combined expression checks that once).
DETECTORS: tuple[tuple[str, int, str], ...] = (
    # Any URL with a scheme: userinfo, secret query values, media URLs (see scanner).
    ("url", URL, r"[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s<>\"'`{}|\\^]+"),
    # A path?query without scheme ("GET /cb?code=…"): taken apart like a URL (see urls). It
    # starts only where a run of path characters starts, so a long path is read once (linear).
    ("path_query", SLASH, r"(?<![\w.~%@+!$()*,;:/-])/[\w.~%@+!$()*,;:/-]{0,2048}\?[\w.~%+-]{1,64}="
                          r"[^\s<>\"'`{}|\\^]{0,4096}"),
    ("data_uri", COLON, r"data:(?:image|video|audio)/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=]+"),
    ("private_key", KEYWORD, r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    ("jwt", KEYWORD, r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,3}"),
    ("auth_header", KEYWORD, r"(?i:bearer|token)[ \t]+[A-Za-z0-9._~+/-]{6,}=*|(?i:basic)[ \t]+[A-Za-z0-9+/]{6,}=*"),
    ("kv", COLON | EQ, r"(?=" + _KV_FIRST + r")(?i:" + _KV_NAMES + r")(?![A-Za-z0-9_])[\"']?[ \t]*[:=][ \t]*[\"']?"
                       r"(?!\[REDACTED)(?:(?i:bearer|basic|token)[ \t]+)?[^\s\"'&,;]+"
                       + _MORE),
    ("cookie", COLON | EQ, r"(?i:set-cookie|cookie)[\"']?[ \t]*[:=][ \t]*(?!\[REDACTED)[^\r\n]+"),
    ("api_key", KEYWORD, r"(?:" + _API_KEYS + r")(?![A-Za-z0-9])"),
    # "name": "value" (JSON, Python reprs) and name=value (logfmt, query strings): the key rules
    # apply to the name, so {"firstName": "…"} in a log line is dropped like the attribute would be.
    ("json_kv", COLON, '"' + _NAME + '"' + _COLON + "(?:" + _DQ + "|" + _NUM + ")"
                       "|'" + _NAME + "'" + _COLON + "(?:" + _SQ + "|" + _NUM + ")"),
    # A quoted string with escapes ("paid with\\n4111…"): the escape would glue a letter to the value.
    ("quoted", ESCAPE, r'"(?=[^"\n]{0,4096}\\)(?:[^"\\\n]|\\.){0,4096}"'
                       r"|'(?=[^'\n]{0,4096}\\)(?:[^'\\\n]|\\.){0,4096}'"),
    ("logfmt_kv", EQ, r"[A-Za-z_][\w.-]{0,63}=(?:" + _DQ +
                      r"|[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s<>\"'`{}|\\^]+"  # a URL, & and all
                      # A comma before a digit stays in the value: x=52.2297,21.0122 is one pair.
                      r"|(?:(?i:bearer|basic|token)[ \t]+)?(?:[^\s\"'&,;=]|,(?=-?[0-9])){1,4096}=*" + _MORE + ")"),
    # A word naming personal data, then its value: "PESEL 44051401359", "born 12.03.1988",
    # "tel. 600123456", "your code is 482913", "geohash u3qcnhzch" (see phrases).
    ("label", DIGIT, phrases.LABEL),
    # A greeting or an honorific and the name after it: "Hi Anna,", "Dear Mr. Smith".
    ("greeting", GREETING, phrases.GREETING),
    # The local part may join runs of the usual characters with the other RFC 5322 ones (a^b,
    # x|y, o'neil), so a match leaves no part of the address behind; "/" is left out: in paths
    # it separates. A match starts after none of the usual characters and follows at most 16
    # joins, so each run is read a bounded number of times (linear).
    ("email", AT, r"(?<![\w.%+-])[\w.%+-]+(?:[!#$&'*=?^`{|}~]+[\w.%+-]+){0,16}"
                  r"@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}"),
    ("iban", DIGIT, r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"),
    ("pl_vat", DIGIT, identity.PL_VAT),
    ("user_path", SLASH, r"(?<=/)(?i:users?|profiles?|members?|accounts?)/[\w.%+@-]{1,128}(?![\w.%+@-])"),
    # /<collection>/<id-shaped segment> (see paths.id_shaped): the id is pseudonymised.
    ("id_path", SLASH, r"(?<=/)[A-Za-z][A-Za-z_-]{0,40}/[\w-]{10,128}(?![\w.%+@-])"),
    ("phone", PLUS, r"\+[ \t]?\(?[0-9][0-9 \t().\/-]{4,24}[0-9]"),
    # Before the digit runs below: "52.229676, 21.012229", "ul. Marszałkowska 10/12" (see places).
    ("geo", DIGIT, places.GEO),
    ("address", DIGIT, places.ADDRESS),
    # Not the decimals of a number (3.14159…) nor the digit groups of a UUID (…-1234-567890123456).
    ("card", DIGIT, r"(?<![0-9]\.)(?<![0-9A-Fa-f]{4}-)[0-9](?:[ -]?[0-9]){12,18}(?![A-Za-z0-9]|[.-][0-9])"),
    # A dotted number that is clearly a version (version 1.2.3.4, build 10.0.19041.1, v1.2.3.4):
    # matched first so that the IP rule below does not take it. Only with IP redaction on.
    # A user agent's product token (a capitalised Chrome/131.0.0.0 after a space, "(", ";", "," or
    # at the start) is one too; a path segment is not (/hosts/10.1.2.3, by-email/10.1.2.3).
    ("version", DIGIT, r"(?:(?i:version|ver|build|release)[ \t]*[:=]?[ \t]*[vV]?|[vV]|(?:(?<=[\s(;,])|^)[A-Z][A-Za-z0-9_.-]{0,30}/[vV]?)"
                       r"[0-9]{1,9}(?:\.[0-9]{1,9}){1,5}(?![A-Za-z0-9]|\.[0-9])"),
    # Not a part of a longer dotted run (1.2.3.4.5), nor an amount (6.151.117.100 PLN, €1.299.000.000).
    ("ipv4", DIGIT, r"(?<![0-9]\.)(?<![€$£])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![A-Za-z0-9]|\.[0-9])"
                    r"(?![ \t]?(?:zł|PLN|EUR|USD|GBP|CHF|UAH|€|\$|£))"),
    ("ipv6", COLON, r"(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,9}"
                    r"(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?![A-Za-z0-9]|\.[0-9])"),
    # Digit runs: PESEL, dashed NIP/SSN, 00-prefixed and national phone numbers (identity, phones).
    ("number", DIGIT, phones.NUMBER),
)
#: The look-behind shared by every detector (each may add a stricter one of its own).
TOKEN_START = r"(?<![A-Za-z0-9])"

#: Values that are safe by shape alone (ids, numbers): skip the scan. Lower-case hex needs a letter
#: (an all-digit string could be a card number); upper-case hex is not here (an IBAN can be hex).
SAFE_SHAPE = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"  # UUID
    r"|(?=[0-9]*[a-f])[0-9a-f]{8,64}"                                             # hex ids
    r"|p_[0-9a-f]{24}"                                                            # pseudonyms
    # Numbers; not an 11-digit one (a PESEL) nor a 10-12 digit one with a leading 0 (a phone number).
    r"|-?(?:[0-9]{1,9}|[1-9][0-9]{9}|[1-9][0-9]{11})(?:\.[0-9]+)?"
)

#: A value that is only a dotted version number (1.2.3.4, v10.0.19041.1).
VERSION_SHAPE = re.compile(r"[vV]?[0-9]{1,9}(?:\.[0-9]{1,9}){1,5}")

# -- validators ---------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_network_ok(digits: str) -> bool:
    """Issuer prefix and length of a real card network (so epoch-ms timestamps, 1…, never match)."""
    n = len(digits)
    first = digits[0]
    two = int(digits[:2])
    four = int(digits[:4])
    if first == "4":
        return n in (13, 16, 19)                                   # Visa
    if first == "5":
        return n == 16 if 51 <= two <= 55 else True                # Mastercard / Maestro
    if first == "2":
        return (2221 <= four <= 2720 and n == 16) or (2200 <= four <= 2204 and n >= 16)  # MC / Mir
    if first == "3":
        if two in (34, 37):
            return n == 15                                         # Amex
        if 3528 <= four <= 3589:
            return n >= 16                                         # JCB
        return two in (30, 36, 38, 39) and n >= 14                 # Diners
    if first == "6":
        return True                                                # Discover, UnionPay, Maestro
    if first == "8":
        return two in (81, 82) and n == 16                         # RuPay
    return False


def is_card_number(digits: str) -> bool:
    """``digits`` (digits only) is a 13–19 digit number of a card network with a valid Luhn sum."""
    return 13 <= len(digits) <= 19 and digits.isdigit() and _card_network_ok(digits) and luhn_ok(digits)


#: IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = dict(
    (cc, int(n)) for cc, n in (item.split(":") for item in """
AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BI:27 BR:29 BY:28 CH:21 CR:22 CY:28 CZ:24
DE:22 DJ:27 DK:18 DO:28 EE:20 EG:29 ES:24 FI:18 FK:18 FO:18 FR:27 GB:22 GE:22 GI:23 GL:18 GR:27
GT:28 HN:28 HR:21 HU:28 IE:22 IL:23 IQ:23 IS:26 IT:27 JO:30 KW:30 KZ:20 LB:28 LC:32 LI:21 LT:20
LU:20 LV:21 LY:25 MC:27 MD:24 ME:22 MK:19 MN:20 MR:27 MT:31 MU:30 NI:28 NL:18 NO:15 OM:23 PK:24
PL:28 PS:29 PT:25 QA:29 RO:24 RS:22 RU:33 SA:24 SC:31 SD:18 SE:24 SI:19 SK:24 SM:27 SO:23 ST:25
SV:28 TL:23 TN:24 TR:26 UA:29 VA:22 VG:24 XK:20 YE:30""".split())
)


def iban_ok(compact: str) -> bool:
    """``compact`` (no spaces) has its country's IBAN length and a valid mod-97 check."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def iban_length_in(candidate: str) -> int:
    """Length, in characters of ``candidate``, of the IBAN it starts with (0 if none). The IBAN must
    end where a space-separated group ends, so a longer run of characters is not cut."""
    want = IBAN_LENGTHS.get(candidate[:2])
    if want is None:
        return 0
    count = 0
    for i, ch in enumerate(candidate):
        if ch != " ":
            count += 1
            if count == want:
                end = i + 1
                if end < len(candidate) and candidate[end] != " ":
                    return 0
                return end if iban_ok(candidate[:end].replace(" ", "")) else 0
    return 0


def ipv4_ok(text: str) -> bool:
    """Four octets 0–255 without leading zeros; loopback and 0.0.0.0 are not personal: kept."""
    parts = text.split(".")
    for p in parts:
        if int(p) > 255 or (len(p) > 1 and p[0] == "0"):
            return False
    return parts[0] != "127" and text != "0.0.0.0"


def ipv6_ok(text: str) -> bool:
    """A valid IPv6 address; loopback and ``::`` are kept, and so is a digit-less form with one
    ``::`` and nothing else (``ab::cd``, ``Cafe::add``), which reads as a C++/Rust path."""
    if text.count(":") < 3 and not any(c.isdigit() for c in text):
        return False
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_unspecified)


@lru_cache(maxsize=2048)
def phone_spans(candidate: str) -> tuple[tuple[int, int], ...]:
    """Spans of valid international phone numbers in ``candidate`` (a ``+digits…`` run), found by
    ``phonenumbers`` (region None, leniency VALID). Trailing groups are dropped one by one when
    the whole run is not a number (``+1 415 555 0132 12`` → ``+1 415 555 0132``)."""
    text = candidate
    for _ in range(4):
        found = tuple((m.start, m.end) for m in PhoneNumberMatcher(text, None, leniency=Leniency.VALID))
        if found:
            return found
        cut = max(text.rfind(" "), text.rfind("\t"), text.rfind("-"), text.rfind("."))
        if cut <= 0:
            return ()
        text = text[:cut].rstrip(" \t().-/")
        if sum(c.isdigit() for c in text) < 7:
            return ()
    return ()


def bearer_ok(token: str) -> bool:
    """Looks like a credential, not an English word: has a digit, a symbol or mixed case."""
    if len(token) < 8:
        return False
    if any(c.isdigit() or c in "._~+/=-" for c in token):
        return True
    return token.lower() != token and token.upper() != token


def basic_ok(token: str) -> bool:
    """Base64 of ``user:password``."""
    try:
        token = token.rstrip("=")
        return b":" in base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


def unescape_literal(inner: str, quote_char: str) -> str:
    """The text of a JSON / Python string literal body (``inner`` as is when it has no escapes
    or is not a valid literal)."""
    if "\\" not in inner:
        return inner
    try:
        if quote_char == '"':
            return json.loads(f'"{inner}"')
        value = ast.literal_eval(f"'{inner}'")
        return value if isinstance(value, str) else inner
    except (ValueError, SyntaxError):
        return inner


def escape_literal(text: str, quote_char: str, like: str) -> str:
    """``text`` as a literal body in the style of ``like`` (the body it replaces)."""
    if quote_char == '"':
        return json.dumps(text, ensure_ascii="\\u" in like)[1:-1]
    body = repr(text)[1:-1]
    return body if repr(text)[0] == "'" else body.replace("'", "\\'").replace('\\"', '"')


_STORAGE_HOST = re.compile(
    r"(?:^|\.)(?:firebasestorage\.googleapis\.com|storage\.googleapis\.com|firebasestorage\.app|"
    r"s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com|cloudfront\.net|blob\.core\.windows\.net|"
    r"r2\.cloudflarestorage\.com|r2\.dev|res\.cloudinary\.com|imgix\.net|digitaloceanspaces\.com)$"
)
_MEDIA_EXT = re.compile(
    r"\.(?:jpe?g|png|gif|webp|heic|heif|avif|bmp|tiff?|svg|mp4|mov|m4v|webm|3gp|m4a|aac|ogg|opus|"
    r"mp3|wav|amr)(?![A-Za-z0-9])", re.IGNORECASE)
#: URL schemes that always name stored objects.
STORAGE_SCHEMES = frozenset({"s3", "gs", "wasb", "wasbs", "abfs", "abfss"})


def is_storage_host(host: str) -> bool:
    return bool(_STORAGE_HOST.search(host))


def has_media_extension(path: str) -> bool:
    """A media file extension anywhere in the path (``/a/b.jpg``, ``/a/b.JPG/thumb``)."""
    return bool(_MEDIA_EXT.search(path))


#: Query/fragment parameter names whose values are secrets even where a key named so would not be
#: denied (``key``, ``code``, ``sig``…); other names go through the key rules.
URL_SECRET_PARAMS = frozenset({
    "token", "access_token", "refresh_token", "id_token", "auth_token", "key", "api_key", "apikey",
    "api-key", "secret", "client_secret", "password", "passwd", "pwd", "pass", "sig", "signature",
    "code", "auth", "authorization", "session", "sessionid", "session_id", "sid", "jwt", "otp",
    "state", "ticket", "credential", "credentials", "access_key", "secret_key", "oauth_token",
    "oauth_verifier", "private_token", "x-amz-signature", "x-amz-credential",
    "x-amz-security-token", "x-goog-signature", "x-goog-credential", "awsaccesskeyid", "hash",
    # OAuth / OIDC / SAML / magic links: one-time codes and state-like tokens.
    "nonce", "code_verifier", "code_challenge", "oauth_state", "session_state", "relaystate",
    "relay_state", "samlrequest", "samlresponse", "saml_response", "id_token_hint", "assertion",
    "client_assertion", "login_hint", "csrf", "csrf_token", "_csrf", "xsrf", "xsrf_token",
    "authenticity_token", "verification_code", "verify_code", "confirmation_code", "confirmation_token",
    "reset_token", "reset_code", "invite_token", "magic_token", "magic_link", "login_token", "pin",
    "passcode", "one_time_code", "otp_code", "mfa_code", "totp", "sms_code", "auth_code",
    "authorization_code", "device_code", "user_code", "api_token", "apitoken", "access-token",
    "accesstoken", "authtoken", "token_hash", "hmac",
})
#: Query parameters whose values are user-typed text.
URL_CONTENT_PARAMS = frozenset({"q", "query", "search", "text", "message", "msg"})
#: ``/users/<segment>`` words that are routes, not ids.
ROUTE_WORDS = frozenset({"me", "self", "current", "search", "new", "list", "all", "count", "batch",
                         "bulk", "lookup", "settings", "profile", "info", "id", "uid",
                         # after /users/ in routes (metric labels keep them, see paths.template_route)
                         "login", "logout", "register", "signup", "signin", "verify", "password",
                         "export", "import", "stats", "online", "nearby", "recommended", "suggestions",
                         "blocked", "reports", "notifications", "preferences", "invites", "status",
                         "activity", "feed", "balance", "wallet", "delete", "exists", "check"})

__all__ = [
    "DETECTORS", "IBAN_LENGTHS", "MARKER_PREFIX", "ROUTE_WORDS", "SAFE_SHAPE", "STORAGE_SCHEMES",
    "TOKEN_START", "URL_CONTENT_PARAMS", "URL_SECRET_PARAMS", "VERSION_SHAPE", "basic_ok", "bearer_ok", "escape_literal",
    "features", "has_media_extension", "iban_length_in", "iban_ok", "ipv4_ok", "ipv6_ok",
    "is_card_number", "is_storage_host", "luhn_ok", "marker", "phone_spans", "unescape_literal",
]

# phonenumbers loads region metadata lazily; touch it once at import so the first span does not pay.
phonenumbers.is_valid_number(phonenumbers.example_number("US"))
