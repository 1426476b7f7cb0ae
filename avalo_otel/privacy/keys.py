"""Attribute-key rules: which keys hold personal data by their name alone.

A key is cut into lower-case tokens (``.``, ``_``, ``-``, spaces and camelCase boundaries; digits
dropped: ``addressLine2`` → ``address line``), trailing filler tokens are ignored
(``email.raw`` → ``email``), and the key is denied when its *last* tokens name personal data:
``recipientEmail``, ``user.phone_number``, ``avalo.metadata.firstName``, ``X-Api-Key``. Keys whose
last token only describes a value (``message_count``, ``messageLength``, ``message_id``,
``name_length``, ``token_type``) are not denied: they describe, they do not contain.

``name``, ``address`` and ``message`` are ambiguous, so the token before them decides:
``service.name``, ``server.address`` and ``exception.message`` are things, not people;
``first_name``, ``billing_address`` and ``chat.message`` are personal. An unknown qualifier
(``avalo.metadata.name``, ``gift_name``) is denied: a wrong guess there costs a label, the other
wrong guess leaks a name. OTel semantic-convention keys that carry no personal data by their name
are listed in :data:`OTEL_SAFE_KEYS`; their values are still scanned for personal data.

The key lists of the settings (``safe_keys``, ``redact_keys``, ``pseudonymize_keys``) match the
same way, exactly or by last tokens (:class:`KeyList`); :class:`KeyPolicy` puts the lists and the
built-in rules together and decides what a key's value gets.
"""

from __future__ import annotations

import re
from typing import Iterable

_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

#: Trailing tokens that say how a value is stored, not what it is: skipped before matching.
_FILLER = frozenset({
    "value", "values", "raw", "original", "str", "string", "plain", "plaintext", "input", "new",
    "old", "current", "list", "array", "primary", "secondary", "normalized", "lower", "full",
})
#: Leading tokens that make a key a flag about the data (``is_mobile``, ``has_email``).
_FLAG_PREFIX = frozenset({"is", "has", "was", "should", "can", "needs"})

# Token suffixes (longest match wins) → rule. ``name``, ``address`` and ``message`` are decided by
# their qualifier in ``_qualified`` and so are missing here as single tokens.
_SUFFIX_RULES: dict[tuple[str, ...], str] = {}


def _add(rule: str, *suffixes: str) -> None:
    for suffix in suffixes:
        _SUFFIX_RULES[tuple(suffix.split())] = rule


_add("email", "email", "emails", "e mail", "mail", "email address", "mail address", "email addresses")
_add("phone", "phone", "phones", "phone number", "phone numbers", "phone no", "phone num", "telephone",
     "tel", "mobile", "mobile number", "mobile phone", "msisdn", "cellphone", "fax")
_add("name", "username", "usernames", "firstname", "lastname", "fullname", "surname", "nickname",
     "displayname", "givenname", "familyname", "middlename", "realname", "screenname",
     # Keys of contacts and parties: they hold a name (or an address) more often than an id.
     "recipient", "recipients", "sender", "buyer", "seller", "holder", "card holder", "cardholder",
     "account holder", "guest", "guests", "author", "customer", "payer", "payee", "attendee",
     "attendees", "invitee", "invitees", "beneficiary", "addressee", "contact", "contacts", "cc",
     "bcc", "reply to", "owner", "participant", "participants", "passenger", "patient")
_add("address", "addresses", "street", "street address", "city", "zip", "zip code", "zipcode",
     "postcode", "postal code", "postalcode", "address line", "home address")
_add("content", "messages", "content", "contents", "text", "body", "caption", "captions", "bio",
     "biography", "about me", "prompt", "prompts", "completion", "completions", "comment",
     "comments", "note", "notes", "subject", "transcript", "search query", "search term",
     "search terms", "message text", "message body", "voice note", "preview", "previews",
     "message preview", "answer", "answers", "reply", "replies", "headline", "tagline", "about",
     "intro", "icebreaker", "opener")
_add("photo", "photo", "photos", "avatar", "avatars", "image", "images", "picture", "pictures",
     "pic", "selfie", "selfies", "thumbnail", "profile pic", "profile photo")
_add("secret", "password", "passwords", "passwd", "pwd", "passphrase", "secret", "secrets",
     "token", "api key", "apikey", "private key", "secret key", "access key", "signing key",
     "encryption key", "license key", "ssh key", "session key", "authorization", "cookie",
     "cookies", "credential", "credentials", "signature", "otp", "pin", "jwt", "bearer",
     "mnemonic", "seed phrase", "csrf", "verification code", "otp code", "auth code", "sms code",
     "recovery code", "reset code", "totp")
_add("card", "credit card", "debit card", "card number", "card no", "card num", "pan", "cvv", "cvc",
     "ccn", "card expiry", "card exp", "card cvv")
_add("bank", "iban", "bank account", "account number", "routing number", "sort code")
_add("government_id", "ssn", "social security number", "passport", "passport number", "national id",
     "tax id", "driver license", "drivers license", "id number", "passport no", "pesel", "nip", "tin",
     "nino", "national insurance", "national insurance number", "id card", "id card number",
     "identity card", "identity number", "document number", "id document", "personal number",
     "personal id", "personalausweis", "ausweis", "ausweisnummer", "steuer id", "dowod",
     "dowod osobisty", "driving licence", "driver licence", "drivers licence", "license number",
     "licence number", "social security")
_add("birthdate", "date of birth", "dob", "birthday", "birth date", "birthdate", "born", "birth",
     "born on", "birth year", "year of birth", "geburtsdatum", "data urodzenia", "naissance")
_add("location", "latitude", "longitude", "lat", "lng", "lon", "coordinates", "coords", "gps",
     "geo location", "geo point", "user location", "current location", "last location", "geo",
     "geohash", "geo hash", "geolocation", "latlng", "lat lng", "lat lon", "lat long", "geopoint",
     "locations", "home location", "gps position", "geo position", "coordinate")
_add("sensitive", "sexual orientation", "sexuality", "religion", "ethnicity")

_IP_SUFFIXES = {("ip",), ("ip", "address"), ("ip", "addr"), ("forwarded", "for"), ("ips",)}

#: Qualifiers before ``name`` that make it the name of a thing (``service.name``).
_THING = frozenset("""
service host db span event destination pod node namespace container deployment statefulset
daemonset replicaset job cronjob cluster process executable os sdk scope library function thread
collection table queue topic bucket file metric instrument operation route model domain task schema
index feature flag experiment region zone provider system app application package module class
method field column attribute header param parameter step stage tool agent browser image cloud
platform env environment cache key type variant plan product item category tag state source
target exporter processor span instance resource distro telemetry otel code test suite bundle
gift tier template campaign channel font locale language currency country network interface
server peer faas webengine k8s cronjob secret stream consumer producer broker
partition role permission scheme command script pipeline workflow rule policy
enum status error exception level logger log span_kind lock dataset view
""".split())
#: Qualifiers before ``address`` that make it a network address (values still scanned for IPs).
_NETWORK = frozenset("""
server client peer local source destination network net host socket remote listen bind mac
broker proxy upstream gateway endpoint node pod service smtp dns bridge loopback multicast
""".split())
#: Qualifiers before ``message`` that make it free-form diagnostic text (scanned, not dropped).
_DIAGNOSTIC = frozenset({"exception", "error", "err", "status", "failure", "warning", "validation",
                         "exit", "commit", "log", "grpc", "rpc", "otel", "assertion"})
#: Qualifiers before ``location``/``position`` that make it a place in a thing, not on Earth.
_PLACE_THING = frozenset("""
header file code source storage bucket log config redirect cloud data resource server region install
backup cache image schema module service endpoint db table class function method error queue scroll
cursor list page stream offset read write partition consumer index sort rank job seek playback caret
element item slot record line column byte char token buffer window tab menu widget layout
""".split())
#: Qualifiers before ``from``/``to`` that make them the ends of a range.
_RANGE = frozenset("""
date time timestamp ts valid period range effective start end version ver page index idx offset
step state status stage phase currency lang language locale port year month week day hour minute
block height redirect route path url migrate migration upgrade downgrade transition copy map mapped
convert converted scale zoom sort move moved rate price amount size count value limit min max level
tier plan region zone node shard seq sequence id key row line col column cursor snapshot epoch
""".split())
#: Qualifiers before ``url``/``uri``/``link``/``path`` that make it a (user) media location.
_MEDIA = frozenset({"photo", "photos", "avatar", "image", "images", "picture", "pic", "media",
                    "thumbnail", "profile", "selfie", "video", "audio", "voice", "attachment",
                    "file", "download", "upload", "cover"})
_URLISH = frozenset({"url", "urls", "uri", "link", "path", "src", "href"})

#: OTel semantic-convention (and Avalo) keys that never hold personal data by their name.
OTEL_SAFE_KEYS = frozenset("""
service.name service.namespace service.version service.instance.id host.name host.id host.type
host.arch os.name os.type os.version os.description process.executable.name process.command
process.runtime.name process.runtime.version process.pid telemetry.sdk.name telemetry.sdk.language
telemetry.sdk.version telemetry.distro.name telemetry.distro.version otel.scope.name
otel.scope.version otel.library.name otel.library.version otel.status_code otel.status_description
span.name event.name db.name db.namespace db.system db.system.name db.collection.name db.operation
db.operation.name db.query.text db.statement messaging.destination.name messaging.system
messaging.operation messaging.message.id exception.type exception.message exception.stacktrace
exception.escaped error.type error.message code.function code.function.name code.namespace
code.filepath code.file.path code.lineno code.line.number thread.name thread.id http.route
http.method http.request.method http.target http.url http.scheme http.status_code
http.response.status_code url.full url.path url.query url.scheme url.template server.address
server.port client.address client.port network.peer.address network.local.address
network.protocol.name net.peer.name net.host.name net.sock.peer.addr rpc.method rpc.service
rpc.system k8s.pod.name k8s.namespace.name k8s.node.name k8s.deployment.name k8s.container.name
container.name container.image.name cloud.region cloud.provider deployment.environment
deployment.environment.name faas.name gen_ai.system gen_ai.request.model gen_ai.response.model
gen_ai.operation.name gen_ai.agent.name gen_ai.tool.name user_agent.original http.user_agent
feature_flag.key feature_flag.provider_name feature_flag.variant log.file.name log.file.path
log.iostream avalo.domain avalo.operation avalo.level avalo.actor.type avalo.success
avalo.error.class avalo.latency_ms
""".split())

#: Token suffixes of keys that hold a person's id (pseudonymised), on top of ``pseudonymize_keys``.
PERSON_ID_SUFFIXES = frozenset(tuple(s.split()) for s in (
    "user id", "user ids", "actor id", "enduser id", "session id", "sender id", "recipient id",
    "receiver id", "reporter id", "author id", "owner id", "member id", "customer id", "profile id",
    "payer id", "payee id", "creator id", "viewer id", "follower id", "partner id", "uid",
    "firebase uid", "user uid", "usr id",
))


def tokens(key: str) -> tuple[str, ...]:
    """``"avalo.metadata.firstName"`` → ``("avalo", "metadata", "first", "name")``; digits dropped."""
    return tuple(p.lower() for p in _PARTS.findall(key) if not p.isdigit())


def _meaningful(toks: tuple[str, ...]) -> tuple[str, ...]:
    end = len(toks)
    while end > 1 and toks[end - 1] in _FILLER:
        end -= 1
    return toks[:end]


def _qualified(toks: tuple[str, ...]) -> str | None:
    """The rule for keys ending in an ambiguous token, decided by the token before it."""
    last = toks[-1]
    qualifier = toks[-2] if len(toks) > 1 else ""
    if last in ("name", "names"):
        return None if qualifier in _THING else "name"
    if last == "address":
        return None if qualifier in _NETWORK else "address"
    if last == "message":
        return None if qualifier in _DIAGNOSTIC else "content"
    if last in _URLISH:
        return "photo" if qualifier in _MEDIA else None
    if last in ("location", "position"):
        return None if qualifier in _PLACE_THING else "location"
    if last in ("to", "from"):
        # Bare ``from``/``to`` are taken for parties (mail, transfers, chats): denied. A range's
        # ends (date_from, valid_to, page_from, redirect_to) are not.
        return None if qualifier in _RANGE else "name"
    return None


#: ``qualifier last`` pairs that name a thing, not personal data (``status_text``, ``docker_image``).
_SAFE_PAIRS = frozenset(tuple(pair.split()) for pair in """
status text|amount text|button text|error text|label text|alt text|placeholder text|tooltip text
display text|link text|title text|release notes|docker image|container image|base image|vm image
method signature|function signature|type signature|client mobile|is mobile|app mobile|place holder
""".replace("\n", "|").split("|") if pair.strip())


def suffix_rule(toks: tuple[str, ...], *, ips: bool) -> str | None:
    """Rule for a tokenised key by its meaningful last tokens, or None."""
    toks = _meaningful(toks)
    if not toks or toks[0] in _FLAG_PREFIX:
        return None
    if len(toks) > 1 and toks[-2:] in _SAFE_PAIRS:
        return None
    for n in (4, 3, 2, 1):
        if len(toks) >= n:
            tail = toks[-n:]
            rule = _SUFFIX_RULES.get(tail)
            if rule is not None:
                return rule
            if ips and tail in _IP_SUFFIXES:
                return "ip"
    return _qualified(toks)


_VERSION_WORDS = frozenset({"version", "versions", "ver", "build", "release"})


def names_version(toks: tuple[str, ...]) -> bool:
    """Whether a tokenised key names a version (``service.version``, ``app.build``)."""
    toks = _meaningful(toks)
    return bool(toks) and toks[-1] in _VERSION_WORDS


class KeyList:
    """Keys listed in settings (``safe_keys``, ``redact_keys``), matched like the built-in rules:
    exactly, or as the meaningful last tokens of a key (``display_name`` matches
    ``user.display_name``, ``displayName`` and ``avalo.metadata.displayName``)."""

    #: What :meth:`match` returns for an exact match: more specific than any suffix.
    EXACT = 1 << 16

    def __init__(self, keys: Iterable[str], suffixes: Iterable[tuple[str, ...]] = ()) -> None:
        keys = tuple(keys)
        self._exact = frozenset(keys)
        self._suffixes = frozenset(t for t in map(tokens, keys) if t) | frozenset(suffixes)

    def match(self, key: str, toks: tuple[str, ...]) -> int:
        """How specifically ``key`` (cut into ``toks``) is listed: :attr:`EXACT`, the number of
        tokens of the longest listed suffix it ends with, or 0."""
        if key in self._exact:
            return self.EXACT
        toks = _meaningful(toks)
        return max((len(s) for s in self._suffixes if toks[-len(s):] == s), default=0)


#: What a key's value gets: scanned; scanned without the card check of ints (a safe key);
#: replaced whole (denied); pseudonymised; parsed as a URL query; scanned, a dotted version kept;
#: parsed as a ``path?query`` (ids in the path pseudonymised); sanitised as SQL (literals → ``?``);
#: a messaging key (ids pseudonymised).
SCAN, SAFE, DENY, PSEUDO, QUERY, VERSION, PATH, SQL, MSG_KEY = range(9)
#: Keys whose values are URL query strings without the ``?``.
_QUERY_KEYS = frozenset({"url.query", "http.query", "http.query_string"})
#: Keys of values parsed for what they are, whatever the key lists say (except an exact entry).
_PARSED_KEYS = {
    **dict.fromkeys(_QUERY_KEYS, QUERY),
    **dict.fromkeys(("url.path", "http.target", "http.route", "route", "url.template", "http.path",
                     "request.path", "http.request.path"), PATH),
    **dict.fromkeys(("db.statement", "db.query.text", "db.cassandra.statement"), SQL),
    **dict.fromkeys(("messaging.kafka.message.key", "messaging.kafka.message_key", "messaging.message.key",
                     "messaging.rabbitmq.destination.routing_key", "messaging.rabbitmq.routing_key",
                     "messaging.gcp_pubsub.message.ordering_key", "messaging.message.ordering_key"), MSG_KEY),
}
_REFERER = frozenset({"referer", "referrer"})
_DB_PARAMETERS = ("db.query.parameter.", "db.operation.parameter.")
DEFAULT_PSEUDONYMIZE_KEYS = ("avalo.actor.id", "session.id", "enduser.id", "user.id", "user_id", "userId",
                             "actor_id", "actorId", "session_id", "sessionId")


class KeyPolicy:
    """``decide(key)`` → ``(kind, deny rule or None)``, from the settings' key lists and the
    built-in rules, in this order: ``pseudonymize_keys`` exactly; the more specific of a
    ``safe_keys`` and a ``redact_keys`` (rule ``custom``) entry, an exact key being more specific
    than any suffix and safe winning a tie; OTel keys known to be safe; person-id suffixes
    (``sender_id``); a safe entry matched by suffix; the built-in deny rules; else scanned."""

    def __init__(self, *, safe_keys: Iterable[str] = (), deny_keys: Iterable[str] = (),
                 pseudonymize_keys: Iterable[str] = DEFAULT_PSEUDONYMIZE_KEYS, ips: bool = True) -> None:
        self._safe = KeyList(safe_keys)
        self._deny = KeyList(deny_keys)
        self._pseudo = KeyList(pseudonymize_keys, PERSON_ID_SUFFIXES)
        self._ips = ips

    def decide(self, key: str) -> tuple[int, str | None]:
        toks = tokens(key)
        pseudo = self._pseudo.match(key, toks)
        if pseudo == KeyList.EXACT:
            return PSEUDO, None
        safe, deny = self._safe.match(key, toks), self._deny.match(key, toks)
        if deny > safe:
            return DENY, "custom"
        if safe == KeyList.EXACT:
            return SAFE, None
        parsed = _PARSED_KEYS.get(key)
        if parsed is not None:
            return parsed, None
        if key.startswith(_DB_PARAMETERS):  # a query's bound values: literals by another name
            return DENY, "db_parameter"
        if key in OTEL_SAFE_KEYS:
            return self._scan(toks)
        if toks and toks[-1] in _REFERER:  # http.request.header.referer: a URL or a path
            return PATH, None
        # After the person-id suffixes: safe_keys=["id"] must not let raw user ids out (an exact
        # entry does, for one key).
        if pseudo:
            return PSEUDO, None
        if safe:
            return SAFE, None
        rule = suffix_rule(toks, ips=self._ips)
        return (DENY, rule) if rule is not None else self._scan(toks)

    def _scan(self, toks: tuple[str, ...]) -> tuple[int, None]:
        # A version under a version key (service.version: 1.2.3.4) is not an IP address.
        return (VERSION if self._ips and names_version(toks) else SCAN), None
