"""URLs taken apart: credentials, secret parameters, media locations, ids in paths.

:class:`UrlRules` is the URL half of :class:`~avalo_otel.privacy.scanner.ValueScanner`: a URL
found by the combined expression comes here whole. Storage hosts, ``s3://``-like schemes and media
file extensions replace the whole URL (``[REDACTED:photo_url]``); otherwise userinfo becomes
``[REDACTED:credentials]``, an IP host ``[REDACTED:ip]``, the values of sensitive query/fragment
parameters are replaced (by name: ``token``, ``code``, ``sig``… and every name the key rules deny;
person-id names are pseudonymised) and the rest of the path, query and fragment is decoded and
scanned again, so ``/find/jane%40example.com`` is caught too. Everything else is kept as it was.
"""

from __future__ import annotations

import re
from typing import Callable, Optional
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from . import detectors as d
from .detectors import marker
from .paths import pseudonymize_ids

_IPV4 = re.compile(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}")
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
_PATH_SAFE = "/:@[]!$'()*,;=-._~"
_VALUE_SAFE = ":@[]!$'()*,;/-._~"


class UrlRules:
    """URL handling for the scanner (which provides ``scan``, ``_ips``, ``_param_action`` and
    ``_pseudonymize``)."""

    _ips: bool
    _param_action: Callable[[str], Optional[tuple]]
    _pseudonymize: Callable[[str], str]

    def scan(self, text: str, rules: list[str]) -> str:  # pragma: no cover - provided by the scanner
        raise NotImplementedError

    def _url(self, text: str, rules: list[str]) -> str | None:
        core = text.rstrip(".,;:!?")
        while core and core[-1] in ")]" and core.count(core[-1]) > core.count("(" if core[-1] == ")" else "["):
            core = core[:-1].rstrip(".,;:!?")
        tail = text[len(core):]
        scheme, rest = core.split("://", 1)
        if re.split(r"[.+-]", scheme)[-1].lower() in d.STORAGE_SCHEMES:  # also "x.s3://"
            rules.append("photo_url")
            return marker("photo_url") + tail
        cut = len(rest)
        for ch in "/?#":
            i = rest.find(ch)
            if i != -1 and i < cut:
                cut = i
        authority, after = rest[:cut], rest[cut:]
        userinfo, at, hostport = authority.rpartition("@")
        host, port = _split_host(hostport)
        if d.is_storage_host(host.lower()) or d.has_media_extension(unquote(re.split("[?#]", after, 1)[0])):
            rules.append("photo_url")
            return marker("photo_url") + tail
        found: list[str] = []
        if at:
            found.append("credentials")
            authority = marker("credentials") + "@" + hostport
        if self._ips and (d.ipv6_ok(host) if ":" in host else bool(_IPV4.fullmatch(host) and d.ipv4_ok(host))):
            found.append("ip")
            authority = authority[:len(authority) - len(hostport)] + marker("ip") + port
        new_after = self._rest(after, found)
        if new_after is None:
            if not found:
                return None
            new_after = after
        rules.extend(found)
        return f"{scheme}://{authority}{new_after}{tail}"

    def target(self, text: str, rules: list[str]) -> str:
        """A ``path?query#fragment`` without scheme and host (``http.target``, ``url.path``, a
        relative ``Referer``): the URL rules for what follows the host; ``text`` when clean."""
        if "://" in text or " " in text or "\t" in text or "\n" in text:
            return self.scan(text, rules)  # a URL, or no path at all (a label that holds text)
        found: list[str] = []
        out = self._rest(text, found)
        if out is None:
            return text
        rules.extend(found)
        return out

    def _rest(self, after: str, found: list[str]) -> str | None:
        """Path, query and fragment of a URL taken apart and put back (None: nothing changed). A
        media path replaces the whole (``photo_url``), ids in the path are pseudonymised (see
        :mod:`.paths`), secret parameters replaced and the rest decoded and scanned."""
        before = len(found)
        rest, hash_sign, fragment = after.partition("#")
        path, has_query, query = rest.partition("?")
        if d.has_media_extension(unquote(path)):
            found.append("photo_url")
            return marker("photo_url")
        new_path = pseudonymize_ids(path, self._pseudonymize) if path else path
        new_path = self._scan_part(new_path, found, plus=False)
        new_query = self._params(query, found) if query else query
        if "=" in fragment:
            new_fragment = self._params(fragment, found)
        else:
            new_fragment = self._scan_part(fragment, found, plus=False)
        if len(found) == before and new_path is path and new_query is query and new_fragment is fragment:
            return None
        out = new_path
        if has_query:
            out += "?" + new_query
        if hash_sign:
            out += "#" + new_fragment
        return out

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
        if plus and "+" in part:
            # "+" is a space in a query, but a raw "+4420…" is more often a phone number that was
            # never encoded: read it both ways, and keep the reading that finds something.
            kept_plus = self._scan_part(part.replace("+", "%2B"), found, plus=True)
            if "%5BREDACTED" in kept_plus or "[REDACTED" in kept_plus:
                return kept_plus
        if "%" in part or (plus and "+" in part):
            decoded = unquote_plus(part) if plus else unquote(part)
            for _ in range(2):  # double-encoded (%2540): decode until it stays the same
                if "%" not in decoded or (again := unquote(decoded)) == decoded:
                    break
                decoded = again
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
