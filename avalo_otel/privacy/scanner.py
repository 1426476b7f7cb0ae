"""One pass over a string: every value detector in one compiled expression, then per-match rules.

:class:`ValueScanner` joins :data:`~avalo_otel.privacy.detectors.DETECTORS` (and the custom
patterns) into a single regular expression with one named group per detector, so a string costs
one ``finditer`` pass; ``match.lastgroup`` says which detector matched and its handler validates
the candidate and returns the replacement (or None to keep it). URLs are taken apart: userinfo,
secret query values, media URLs, and the path/query/fragment scanned again (decoded) for the rest
(:mod:`.urls`).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, Optional

from . import detectors as d
from .detectors import escape_literal as _escape
from .detectors import marker
from .detectors import unescape_literal as _unescape
from .identity import identity_rule, nip_ok
from .paths import NON_PERSON_WORDS, id_shaped
from .phones import DEFAULT_REGIONS, number_spans
from .phrases import greeting_names, label_value
from .places import address_ok, coordinates_ok
from .urls import UrlRules

#: ``(name) -> ("deny", rule) | ("pseudo", None) | ("version", None) | None``: how a key or
#: query-parameter name is treated.
ParamAction = Callable[[str], Optional[tuple]]

_KV_SEP = re.compile(r"[\"']?[ \t]*[:=][ \t]*[\"']?")
_JSON_SEP = re.compile(r"[ \t]*:[ \t]*")
_AUTH_SEP = re.compile(r"[ \t]+")
_GROUPS = re.compile(r"[0-9]+")
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
#: A handler's "not this, but look inside again" (see ``ValueScanner._scan``).
_RETRY = "\0retry"


def _embeddable(pattern: str) -> str | None:
    """``pattern`` made safe to embed in the combined expression, or None (then it runs alone)."""
    if _BACKREF.search(pattern):
        return None
    flags = _GLOBAL_FLAGS.match(pattern)
    if flags:  # a leading (?i) is global; inside an alternation it must be scoped
        pattern = f"(?{flags.group(1)}:{pattern[flags.end():]})"
    try:
        re.compile(f"(?P<_probe>{pattern})")
    except re.error:
        return None
    return pattern


def _kept_version(action: Optional[tuple], value: str) -> bool:
    """A dotted version under a version key: kept, and not looked into again (the IP rule would
    take 1.2.3.4 on a second look)."""
    return action is not None and action[0] == "version" and d.VERSION_SHAPE.fullmatch(value) is not None


def _replace(text: str, spans: tuple[tuple[int, int], ...], rule: str, rules: list[str]) -> str | None:
    """``text`` with each span replaced by ``rule``'s marker (None: no spans)."""
    if not spans:
        return None
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], marker(rule)]
        rules.append(rule)
        last = end
    out.append(text[last:])
    return "".join(out)


def _fixed(rule: str) -> Callable[[str, list], str]:
    """A handler that always redacts with ``rule``."""
    mark = marker(rule)

    def handler(text: str, rules: list[str]) -> str:
        rules.append(rule)
        return mark
    return handler


class ValueScanner(UrlRules):
    """Finds and replaces personal data in strings. ``scan(text, rules)`` returns ``text`` itself
    when nothing was found, else the redacted copy; each redaction appends its rule to ``rules``."""

    def __init__(self, *, redact_ips: bool = True, extra_patterns: Mapping[str, str] | None = None,
                 param_action: ParamAction = lambda name: None,
                 pseudonymize: Callable[[str], str] = lambda value: value,
                 phone_regions: tuple[str, ...] = DEFAULT_REGIONS) -> None:
        self._ips = redact_ips
        self._regions = tuple(phone_regions)
        self._param_action = param_action
        self._pseudonymize = pseudonymize
        self._detectors = [(g, needs, p) for g, needs, p in d.DETECTORS
                           if redact_ips or g not in ("version", "ipv4", "ipv6")]
        self._handlers: dict[str, Callable[[str, list], Optional[str]]] = {
            g: getattr(self, "_" + g) for g, _, _ in self._detectors}
        self._custom: list[tuple[str, str, str]] = []  # (group, rule, pattern): in the combined expression
        self._separate: list[tuple[str, re.Pattern[str]]] = []  # (rule, expression): run on their own
        for i, (rule, pattern) in enumerate((extra_patterns or {}).items()):
            embedded = _embeddable(pattern)
            if embedded is None:
                self._separate.append((rule, re.compile(pattern)))
            else:
                self._custom.append((f"x{i}", rule, embedded))
                self._handlers[f"x{i}"] = _fixed(rule)
        self._variants: dict[int, Callable[[str, int], Optional[re.Match[str]]] | None] = {}
        try:
            self._variant(-1)  # everything at once: a custom pattern that does not combine runs alone
        except re.error:
            self._separate += [(rule, re.compile(p)) for _, rule, p in self._custom]
            self._custom = []
        # (GREETING: the text has a capital, as most log lines do.)
        for f in (0, d.DIGIT, d.KEYWORD, d.DIGIT | d.SLASH, d.DIGIT | d.COLON, d.GREETING, d.DIGIT | d.GREETING,
                  d.DIGIT | d.SLASH | d.GREETING, d.DIGIT | d.COLON | d.GREETING):
            self._variant(f)  # the common ones up front; the rest on first use

    def _variant(self, feature_bits: int) -> Callable[[str, int], Optional[re.Match[str]]] | None:
        """The combined expression of the detectors a string with these features could match
        (None: no detector can): one compiled expression per feature set, at most 256."""
        alternatives = "|".join(f"(?P<{g}>{p})" for g, needs, p in self._detectors if needs & feature_bits)
        parts = [f"{d.TOKEN_START}(?:{alternatives})"] if alternatives else []
        parts += [f"(?P<{g}>{p})" for g, _, p in self._custom]
        search = re.compile("|".join(parts)).search if parts else None
        if feature_bits >= 0:
            self._variants[feature_bits] = search
        return search

    def scan(self, text: str, rules: list[str]) -> str:
        out = text
        f = d.features(text)
        search = self._variants[f] if f in self._variants else self._variant(f)
        if search is not None:
            out = self._scan(text, search, rules)
        for rule, regex in self._separate:
            spans = [m.span() for m in regex.finditer(out) if m.end() > m.start()]
            if spans:
                pieces, last = [], 0
                for start, end in spans:
                    pieces += [out[last:start], marker(rule)]
                    last = end
                rules.extend([rule] * len(spans))
                out = "".join(pieces) + out[last:]
        return out

    def _scan(self, text: str, search: Callable[[str, int], Optional[re.Match[str]]], rules: list[str]) -> str:
        pieces: list[str] | None = None
        last = pos = 0
        retry_until = -1  # inside a rejected container match: no second retry (keeps it linear)
        handlers = self._handlers
        n = len(text)
        while pos <= n:
            m = search(text, pos)
            if m is None:
                break
            start, end = m.span()
            if end == start:  # a custom pattern that matched nothing
                pos = end + 1
                continue
            replacement = handlers[m.lastgroup](m.group(), rules)  # type: ignore[index]
            if replacement is None:
                pos = end
                continue
            if replacement is _RETRY:
                # Rejected as a whole (a key=value whose value runs into the next pair, an IBAN-
                # shaped run): what it covered is scanned again from its second character.
                if start >= retry_until:
                    retry_until = end
                    pos = start + 1
                else:
                    pos = end
                continue
            if pieces is None:
                pieces = []
            pieces.append(text[last:start])
            pieces.append(replacement)
            last = pos = end
        if pieces is None:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    # -- handlers: (matched text, rules) -> replacement or None ---------------------------------
    _data_uri = staticmethod(_fixed("photo_url"))
    _private_key = staticmethod(_fixed("secret"))
    _jwt = staticmethod(_fixed("jwt"))
    _api_key = staticmethod(_fixed("api_key"))
    _email = staticmethod(_fixed("email"))

    def _auth_header(self, text: str, rules: list[str]) -> str | None:
        scheme, token = _AUTH_SEP.split(text, 1)
        # Basic: base64 of user:password, or at least a credential-looking token.
        if not (d.bearer_ok(token) or (scheme.lower() == "basic" and d.basic_ok(token))):
            return _RETRY
        rules.append("auth_header")
        return marker("auth_header")

    def _kv(self, text: str, rules: list[str]) -> str:
        sep = _KV_SEP.search(text)
        assert sep is not None  # the expression guarantees a separator
        rules.append("secret")
        return text[:sep.end()] + marker("secret")

    _cookie = _kv

    def _json_kv(self, text: str, rules: list[str]) -> str | None:
        quote_char = text[0]
        end = text.index(quote_char, 1)
        name = text[1:end]
        sep = _JSON_SEP.match(text, end + 1)
        assert sep is not None  # the expression guarantees a separator
        value = text[sep.end():]
        quoted = value[:1] in ("\"", "'")
        inner = value[1:-1] if quoted else value
        new_name = self.scan(name, rules)  # a key can be personal data too ({"jane@x.io": true})
        q = value[0] if quoted else quote_char
        decoded = _unescape(inner, q) if quoted else inner  # "paid with\n4111…": scan the text
        new = self._keyed(name, decoded, rules)
        if new is None and new_name is name:
            return _RETRY if decoded is inner and not _kept_version(self._param_action(name), decoded) else None
        if new is not None and decoded is not inner:
            new = _escape(new, q, inner)
        value = value if new is None else f"{q}{new}{q}"
        return f"{quote_char}{new_name}{quote_char}{sep.group()}{value}"

    def _quoted(self, text: str, rules: list[str]) -> str | None:
        q, inner = text[0], text[1:-1]
        decoded = _unescape(inner, q)
        new = self.scan(decoded, rules)
        if new is decoded:
            return None if decoded is not inner else _RETRY
        return q + (_escape(new, q, inner) if decoded is not inner else new) + q

    def _logfmt_kv(self, text: str, rules: list[str]) -> str | None:
        name, _, value = text.partition("=")
        quoted = value[:1] == '"'
        inner = value[1:-1] if quoted else value
        decoded = _unescape(inner, '"') if quoted else inner
        new_name = self.scan(name, rules)
        new = self._keyed(name, decoded, rules)
        if new is None and new_name is name:
            return _RETRY if decoded is inner and not _kept_version(self._param_action(name), decoded) else None
        if new is not None and decoded is not inner:
            new = _escape(new, '"', inner)
        value = value if new is None else f'"{new}"' if quoted else new
        return f"{new_name}={value}"

    def _keyed(self, name: str, value: str, rules: list[str]) -> str | None:
        """``value`` found under ``name`` in text: the key rules for ``name`` first, then the value
        detectors. None when nothing changes."""
        action = self._param_action(name)
        if action is None or action[0] == "version":
            if _kept_version(action, value):
                return None
            new = self.scan(value, rules)
            return None if new is value else new
        if action[0] == "pseudo":
            return None if _PSEUDONYM.fullmatch(value) else self._pseudonymize(value)
        if not value or value.startswith(d.MARKER_PREFIX):
            return None
        rules.append(action[1])
        return marker(action[1])

    def _iban(self, text: str, rules: list[str]) -> str | None:
        n = d.iban_length_in(text)
        if not n:
            return _RETRY
        rules.append("iban")
        return marker("iban") + self.scan(text[n:], rules)

    def _user_path(self, text: str, rules: list[str]) -> str | None:
        word, segment = text.split("/", 1)
        if "@" in segment:  # /users/jane@example.com: the e-mail rule, not an id
            new = self.scan(segment, rules)
            return _RETRY if new is segment else f"{word}/{new}"
        if _PSEUDONYM.fullmatch(segment) or segment.lower() in d.ROUTE_WORDS:
            return _RETRY
        if len(segment) < 16 and not any(c.isdigit() for c in segment):
            return _RETRY  # a route word (``/users/settings``), not an id
        return f"{word}/{self._pseudonymize(segment)}"

    def _id_path(self, text: str, rules: list[str]) -> str | None:
        word, segment = text.split("/", 1)
        if word.lower() in NON_PERSON_WORDS or not id_shaped(segment):
            return _RETRY
        return f"{word}/{self._pseudonymize(segment)}"

    def _path_query(self, text: str, rules: list[str]) -> str | None:
        core = text.rstrip(".,;:!?)")
        while core.count("(") > core.count(")") and text[len(core):len(core) + 1] == ")":
            core += ")"
        new = self._rest(core, rules)
        return None if new is None else new + text[len(core):]

    def _phone(self, text: str, rules: list[str]) -> str | None:
        spans = d.phone_spans(text) if sum(c.isdigit() for c in text) >= 7 else ()
        if not spans:  # not a phone number: what follows the "+" may still be a card or an IP
            tail = text[1:]
            rest = self.scan(tail, rules)
            return None if rest is tail else "+" + rest
        out, last = [], 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(marker("phone"))
            rules.append("phone")
            last = end
        out.append(text[last:])
        return "".join(out)

    def _card(self, text: str, rules: list[str]) -> str | None:
        if d.is_card_number(text.replace(" ", "").replace("-", "")):
            rules.append("card")
            return marker("card")
        groups = [(m.start(), m.end()) for m in _GROUPS.finditer(text)]
        if len(groups) < 2:
            return self._number(text, rules)
        # A card inside a longer grouped run ("12 4111 1111 1111 1111"): try each run of groups
        # that has 13-19 digits, longest first.
        digits_all = "".join(text[s:e] for s, e in groups)
        offsets = [0]
        for s, e in groups:
            offsets.append(offsets[-1] + e - s)
        out, last, i = [], 0, 0
        while i < len(groups):
            for j in range(len(groups) - 1, i - 1, -1):
                if not 13 <= offsets[j + 1] - offsets[i] <= 19:
                    continue
                if d.is_card_number(digits_all[offsets[i]:offsets[j + 1]]):
                    out.append(text[last:groups[i][0]])
                    out.append(marker("card"))
                    rules.append("card")
                    last = groups[j][1]
                    i = j
                    break
            i += 1
        if not out:
            return self._number(text, rules)  # not a card: maybe a PESEL or a 00-prefixed phone number
        out.append(text[last:])
        return "".join(out)

    def _number(self, text: str, rules: list[str]) -> str | None:
        rule = identity_rule(text)
        if rule is not None:
            rules.append(rule)
            return marker(rule)
        return _replace(text, number_spans(text, self._regions), "phone", rules)

    def _label(self, text: str, rules: list[str]) -> str | None:
        found = label_value(text)
        if found is None:
            return _RETRY  # a word like "location" or "code" with no such value after it
        rule, start, end = found
        value = text[start:end]
        if not rule:
            tail = text[end:]
            rest = self.scan(tail, rules)
            return None if rest is tail else text[:end] + rest
        if rule == "phone":
            spans = d.phone_spans(value) if value[0] == "+" else number_spans(value, self._regions, keyed=True)
            if not spans:
                return _RETRY
            rest = self.scan(text[end:], rules)
            return text[:start] + _replace(value, spans, "phone", rules) + rest
        rules.append(rule)
        return text[:start] + marker(rule) + self.scan(text[end:], rules)

    def _greeting(self, text: str, rules: list[str]) -> str | None:
        span = greeting_names(text)
        if span is None:
            return _RETRY
        rules.append("name")
        return text[:span[0]] + marker("name") + self.scan(text[span[1]:], rules)

    def _geo(self, text: str, rules: list[str]) -> str | None:
        if not coordinates_ok(text):
            return _RETRY
        rules.append("location")
        return marker("location")

    def _address(self, text: str, rules: list[str]) -> str | None:
        if not address_ok(text):
            return _RETRY
        rules.append("address")
        return marker("address")

    def _pl_vat(self, text: str, rules: list[str]) -> str | None:
        if not nip_ok(text[2:].strip(" \t")):
            return None
        rules.append("government_id")
        return marker("government_id")

    @staticmethod
    def _version(text: str, rules: list[str]) -> None:
        return None  # kept: the IP rule must not take a version number

    def _ipv4(self, text: str, rules: list[str]) -> str | None:
        if not d.ipv4_ok(text):
            return self._number(text, rules)  # 12.345.67.89: a Polish number written with dots
        rules.append("ip")
        return marker("ip")

    def _ipv6(self, text: str, rules: list[str]) -> str | None:
        # The candidate may have taken a neighbour along: a separator colon or a hex word
        # ("addr:2001:db8::1: refused", "be:2001:db8::1"). Try without the first/last group.
        first, last = text.find(":"), text.rfind(":")
        for start in (0, first + 1):
            for end in (len(text), last):
                if end - start >= 2 and d.ipv6_ok(text[start:end]):
                    rules.append("ip")
                    return text[:start] + marker("ip") + text[end:]
        return None
