"""One pass over a string: every value detector in one compiled expression, then per-match rules.

:class:`ValueScanner` joins :data:`~avalo_otel.privacy.detectors.DETECTORS` (and the custom
patterns) into a single regular expression with one named group per detector, so a string costs
one ``finditer`` pass; ``match.lastgroup`` says which detector matched and its handler validates
the candidate and returns the replacement (or None to keep it). URLs are taken apart: userinfo,
secret query values, media URLs, and the path/query/fragment scanned again (decoded) for the rest.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Mapping, Optional
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from . import detectors as d
from .detectors import marker

#: ``(name) -> ("deny", rule) | ("pseudo", None) | None``: how a query-parameter name is treated.
ParamAction = Callable[[str], Optional[tuple]]

_KV_SEP = re.compile(r"[\"']?[ \t]*[:=][ \t]*[\"']?")
_AUTH_SEP = re.compile(r"[ \t]+")
_GROUPS = re.compile(r"[0-9]+")
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
_IPV4 = re.compile(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}")
_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_PATH_SAFE = "/:@[]!$'()*,;=-._~"
_VALUE_SAFE = ":@[]!$'()*,;/-._~"


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


def _fixed(rule: str) -> Callable[[str, list], str]:
    """A handler that always redacts with ``rule``."""
    mark = marker(rule)

    def handler(text: str, rules: list[str]) -> str:
        rules.append(rule)
        return mark
    return handler


class ValueScanner:
    """Finds and replaces personal data in strings. ``scan(text, rules)`` returns ``text`` itself
    when nothing was found, else the redacted copy; each redaction appends its rule to ``rules``."""

    def __init__(self, *, redact_ips: bool = True, extra_patterns: Mapping[str, str] | None = None,
                 param_action: ParamAction = lambda name: None,
                 pseudonymize: Callable[[str], str] = lambda value: value) -> None:
        self._ips = redact_ips
        self._param_action = param_action
        self._pseudonymize = pseudonymize
        self._detectors = [(g, needs, p) for g, needs, p in d.DETECTORS
                           if redact_ips or g not in ("ipv4", "ipv6")]
        self._handlers: dict[str, Callable[[str, list], Optional[str]]] = {
            g: getattr(self, "_" + g) for g, _, _ in self._detectors}
        self._custom: list[tuple[str, str]] = []  # (group, pattern): in the combined expression
        self._separate: list[tuple[str, re.Pattern[str]]] = []  # run on their own
        for i, (rule, pattern) in enumerate((extra_patterns or {}).items()):
            embedded = _embeddable(pattern)
            if embedded is None:
                self._separate.append((rule, re.compile(pattern)))
            else:
                self._custom.append((f"x{i}", embedded))
                self._handlers[f"x{i}"] = _fixed(rule)
        self._variants: dict[int, Callable[[str], Iterator[re.Match[str]]] | None] = {}
        self._safe_shape = d.SAFE_SHAPE.fullmatch
        try:
            self._variant(-1)  # everything at once: a custom pattern that does not combine runs alone
        except re.error:
            self._separate += [(self._handler_rule(g), re.compile(p)) for g, p in self._custom]
            self._custom = []
        for f in (0, d.DIGIT, d.KEYWORD, d.DIGIT | d.SLASH, d.DIGIT | d.COLON):
            self._variant(f)  # the common ones up front; the rest on first use

    def _variant(self, feature_bits: int) -> Callable[[str], Iterator[re.Match[str]]] | None:
        """The combined expression of the detectors a string with these features could match
        (None: no detector can): one compiled expression per feature set, at most 256."""
        alternatives = "|".join(f"(?P<{g}>{p})" for g, needs, p in self._detectors if needs & feature_bits)
        parts = [f"{d.TOKEN_START}(?:{alternatives})"] if alternatives else []
        parts += [f"(?P<{g}>{p})" for g, p in self._custom]
        finditer = re.compile("|".join(parts)).finditer if parts else None
        if feature_bits >= 0:
            self._variants[feature_bits] = finditer
        return finditer

    def scan(self, text: str, rules: list[str]) -> str:
        out = text
        f = d.features(text)
        finditer = self._variants[f] if f in self._variants else self._variant(f)
        if finditer is not None and (self._custom or not self._safe_shape(text)):
            out = self._scan(text, finditer, rules)
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

    def _handler_rule(self, group: str) -> str:
        rules: list[str] = []
        self._handlers[group]("", rules)
        return rules[0]

    def _scan(self, text: str, finditer: Callable[[str], Iterator[re.Match[str]]], rules: list[str]) -> str:
        pieces: list[str] | None = None
        last = 0
        handlers = self._handlers
        for m in finditer(text):
            if m.end() == m.start():  # a custom pattern that matched nothing
                continue
            replacement = handlers[m.lastgroup](m.group(), rules)  # type: ignore[index]
            if replacement is None:
                continue
            if pieces is None:
                pieces = []
            pieces.append(text[last:m.start()])
            pieces.append(replacement)
            last = m.end()
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
        ok = d.basic_ok(token) if scheme.lower() == "basic" else d.bearer_ok(token)
        if not ok:
            return None
        rules.append("auth_header")
        return marker("auth_header")

    def _kv(self, text: str, rules: list[str]) -> str:
        sep = _KV_SEP.search(text)
        assert sep is not None  # the expression guarantees a separator
        rules.append("secret")
        return text[:sep.end()] + marker("secret")

    _cookie = _kv

    def _iban(self, text: str, rules: list[str]) -> str | None:
        n = d.iban_length_in(text)
        if not n:
            return None
        rules.append("iban")
        return marker("iban") + self.scan(text[n:], rules)

    def _user_path(self, text: str, rules: list[str]) -> str | None:
        word, segment = text.split("/", 1)
        if _PSEUDONYM.fullmatch(segment) or segment.lower() in d.ROUTE_WORDS:
            return None
        if len(segment) < 16 and not any(c.isdigit() for c in segment):
            return None  # a route word (``/users/settings``), not an id
        return f"{word}/{self._pseudonymize(segment)}"

    def _phone(self, text: str, rules: list[str]) -> str | None:
        if sum(c.isdigit() for c in text) < 7:
            return None
        spans = d.phone_spans(text)
        if not spans:
            digits = "".join(c for c in text if c.isdigit())
            if d.is_card_number(digits):
                rules.append("card")
                return marker("card")
            return None
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
            return None
        # A card inside a longer grouped run ("12 4111 1111 1111 1111"): try each run of groups.
        out, last, i = [], 0, 0
        while i < len(groups):
            for j in range(len(groups) - 1, i - 1, -1):
                digits = "".join(text[s:e] for s, e in groups[i:j + 1])
                if d.is_card_number(digits):
                    out.append(text[last:groups[i][0]])
                    out.append(marker("card"))
                    rules.append("card")
                    last = groups[j][1]
                    i = j
                    break
            i += 1
        if not out:
            return None
        out.append(text[last:])
        return "".join(out)

    def _ipv4(self, text: str, rules: list[str]) -> str | None:
        if not d.ipv4_ok(text):
            return None
        rules.append("ip")
        return marker("ip")

    def _ipv6(self, text: str, rules: list[str]) -> str | None:
        if d.ipv6_ok(text):
            rules.append("ip")
            return marker("ip")
        if text.endswith(":") and d.ipv6_ok(text[:-1]):  # "…::1: refused"
            rules.append("ip")
            return marker("ip") + ":"
        return None

    # -- URLs -----------------------------------------------------------------------------------
    def _url(self, text: str, rules: list[str]) -> str | None:
        core = text.rstrip(".,;:!?")
        while core and core[-1] in ")]" and core.count(core[-1]) > core.count("(" if core[-1] == ")" else "["):
            core = core[:-1].rstrip(".,;:!?")
        tail = text[len(core):]
        scheme, rest = core.split("://", 1)
        if scheme.lower() in d.STORAGE_SCHEMES:
            rules.append("photo_url")
            return marker("photo_url") + tail
        cut = len(rest)
        for ch in "/?#":
            i = rest.find(ch)
            if i != -1 and i < cut:
                cut = i
        authority, after = rest[:cut], rest[cut:]
        after, hash_sign, fragment = after.partition("#")
        path, has_query, query = after.partition("?")
        userinfo, at, hostport = authority.rpartition("@")
        host, port = _split_host(hostport)
        if d.is_storage_host(host.lower()) or d.has_media_extension(unquote(path)):
            rules.append("photo_url")
            return marker("photo_url") + tail
        found: list[str] = []
        if at:
            found.append("credentials")
            authority = marker("credentials") + "@" + hostport
        if self._ips and (d.ipv6_ok(host) if ":" in host else bool(_IPV4.fullmatch(host) and d.ipv4_ok(host))):
            found.append("ip")
            authority = authority[:len(authority) - len(hostport)] + marker("ip") + port
        new_path = self._scan_part(path, found, plus=False)
        new_query = self._params(query, found) if query else query
        if "=" in fragment:
            new_fragment = self._params(fragment, found)
        else:
            new_fragment = self._scan_part(fragment, found, plus=False)
        if not found and new_path is path and new_query is query and new_fragment is fragment:
            return None
        rules.extend(found)
        out = f"{scheme}://{authority}{new_path}"
        if has_query:
            out += "?" + new_query
        if hash_sign:
            out += "#" + new_fragment
        return out + tail

    def _params(self, query: str, found: list[str]) -> str:
        pieces = query.split("&")
        changed = False
        for i, piece in enumerate(pieces):
            name, eq, value = piece.partition("=")
            if not eq:
                new = self._scan_part(piece, found, plus=True)
            elif not value or value.startswith(d.MARKER_PREFIX) or value.startswith("%5BREDACTED"):
                continue
            else:
                action = self._query_action(unquote_plus(name))
                if action is None:
                    new_value = self._scan_part(value, found, plus=True)
                elif action[0] == "pseudo":
                    raw = unquote_plus(value)
                    new_value = value if _PSEUDONYM.fullmatch(raw) else self._pseudonymize(raw)
                else:
                    found.append(action[1])
                    new_value = marker(action[1])
                new = piece if new_value is value else f"{name}={new_value}"
            if new is not piece:
                pieces[i] = new
                changed = True
        return "&".join(pieces) if changed else query

    def _query_action(self, name: str) -> tuple | None:
        low = name.lower()
        if low in d.URL_SECRET_PARAMS:
            return ("deny", "secret")
        if low in d.URL_CONTENT_PARAMS:
            return ("deny", "content")
        action = self._param_action(name)
        return action if action and action[0] in ("deny", "pseudo") else None

    def _scan_part(self, part: str, found: list[str], *, plus: bool) -> str:
        """Scan a URL component; percent-encoded text is decoded first and re-encoded if changed."""
        if not part:
            return part
        if "%" in part or (plus and "+" in part):
            decoded = unquote_plus(part) if plus else unquote(part)
            if decoded != part:
                out = self.scan(decoded, found)
                if out is decoded:
                    return part
                return quote_plus(out, safe=_VALUE_SAFE) if plus else quote(out, safe=_PATH_SAFE)
        return self.scan(part, found)


def _split_host(hostport: str) -> tuple[str, str]:
    """``"[::1]:80"`` → ``("::1", ":80")``; ``"example.com:443"`` → ``("example.com", ":443")``."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            return hostport[1:], ""
        return hostport[1:end], hostport[end + 1:]
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, ":" + port
    return hostport, ""
