"""Ids in URL paths, routes and keys: which segments are ids, pseudonymised or templated.

A path segment is *id-shaped* when it is a UUID or a random-looking token: 10–128 characters of
``[A-Za-z0-9_-]`` with a part that mixes at least two letters and two digits (or has 16+
characters, letters and a digit among them) (Firebase UIDs,
Firestore auto-ids, Mongo ObjectIds, long hex, ``cus_NffrFeUfNV2Hib``), or a digit-less part of
20+ characters whose case flips like random text (a digit-less Firebase UID, never a camelCase
word). Words, numbers and compounds of them (``release-2024-05-01``, ``oauth2``) are not.

* :func:`pseudonymize_ids` (spans, logs, stores): an id-shaped segment becomes a pseudonym unless
  the segment before it names a non-person entity (``/orders/<id>``, ``/tickets/<id>``: those ids
  survive); after ``users``/``profiles``/``members``/``accounts`` any segment with a digit, or of
  16+ characters, is an id too (the older rule, kept). Numbers after other words survive.
* :func:`template_route` (metric labels): every id-like segment, numbers included, becomes
  ``{id}`` and the query is cut, so ``/users/8fK2…/photos?x=1`` and ``/users/42/photos`` are one
  series, ``/users/{id}/photos``.
"""

from __future__ import annotations

import re
from typing import Callable
from urllib.parse import unquote

from .detectors import ROUTE_WORDS

_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{10,128}")
_PARTS = re.compile(r"[-_]")
_PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
_KEY_SEPARATORS = re.compile(r"([/:.|#, ]+)")
#: Digits that are not ids: versions (v2, 1.4.2), a word with one digit (oauth2, s3, 2fa, e2e).
_VERSIONISH = re.compile(r"[vV][0-9]{1,4}(?:\.[0-9]{1,6}){0,3}|[0-9]{1,4}(?:\.[0-9]{1,6}){1,3}"
                         r"|[A-Za-z]{1,8}[0-9][A-Za-z]{0,8}|[0-9][A-Za-z]{1,8}")
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}|:[A-Za-z_]\w*|<[^<>/]*>|\*{1,2}|\[[A-Za-z_]\w*\]")

#: Segments whose next id belongs to a person.
PERSON_WORDS = frozenset({"user", "users", "profile", "profiles", "member", "members", "account", "accounts"})
#: Collections of things, not people: the id after them survives (in spans; metrics template it).
NON_PERSON_WORDS = frozenset("""
order orders ticket tickets invoice invoices payment payments transaction transactions refund
refunds charge charges payout payouts product products item items sku skus plan plans price prices
coupon coupons gift gifts job jobs task tasks build builds release releases deployment deployments
request requests trace traces span spans incident incidents alert alerts webhook webhooks batch
batches commit commits version versions
""".split())


def _random_run(run: str) -> bool:
    letters = sum(c.isalpha() for c in run)
    digits = len(run) - letters
    if digits >= 2 and letters >= 2 and len(run) >= 10:
        return True
    if digits and letters and len(run) >= 16:
        return True
    if len(run) < (12 if digits and letters else 20) or not letters:
        return False
    # Random text flips case about every other character, camelCase words every few.
    flips = sum(1 for a, b in zip(run, run[1:]) if a.isupper() != b.isupper())
    return flips * 5 >= (len(run) - 1) * 2


def id_shaped(segment: str) -> bool:
    """Whether ``segment`` (decoded) is a UUID or a random-looking token (see the module docstring)."""
    if len(segment) == 36 and _UUID.fullmatch(segment):
        return True
    if not _TOKEN.fullmatch(segment) or _PSEUDONYM.fullmatch(segment):
        return False
    return any(_random_run(run) for run in _PARTS.split(segment))


def _person_id(segment: str) -> bool:
    """After a person word: the older ``user_path`` rule (a digit, or 16+ characters, not a route word)."""
    if not segment or segment.lower() in ROUTE_WORDS or _PSEUDONYM.fullmatch(segment) or _PLACEHOLDER.fullmatch(segment):
        return False
    return len(segment) >= 16 or any(c.isdigit() for c in segment)


def pseudonymize_ids(path: str, pseudonymize: Callable[[str], str]) -> str:
    """``path`` (no query) with id segments pseudonymised; ``path`` itself when there are none."""
    if "/" not in path:
        return pseudonymize(unquote(path)) if id_shaped(unquote(path)) else path
    segments = path.split("/")
    changed = False
    prev = ""
    for i, raw in enumerate(segments):
        segment = unquote(raw) if "%" in raw else raw
        if "@" not in segment and (
                (id_shaped(segment) and prev not in NON_PERSON_WORDS)
                or (prev in PERSON_WORDS and _person_id(segment))):
            segments[i] = pseudonymize(segment)
            changed = True
        prev = segment.lower()
    return "/".join(segments) if changed else path


def key_ids(text: str, pseudonymize: Callable[[str], str]) -> str:
    """A messaging key or routing key (``user:8fK2…``, ``chat.<uid>.<uid>``, a bare uid): the same
    rules as a path, with ``/ : . | # ,`` and spaces all separating."""
    pieces = _KEY_SEPARATORS.split(text)
    if len(pieces) == 1:
        return pseudonymize(text) if id_shaped(text) else text
    changed = False
    prev = ""
    for i in range(0, len(pieces), 2):
        piece = pieces[i]
        if (id_shaped(piece) and prev not in NON_PERSON_WORDS) or (prev in PERSON_WORDS and _person_id(piece)):
            pieces[i] = pseudonymize(piece)
            changed = True
        if piece:
            prev = piece.lower()
    return "".join(pieces) if changed else text


def _templated(segment: str, prev: str) -> bool:
    if not segment or _PLACEHOLDER.fullmatch(segment):
        return False
    if prev in PERSON_WORDS and segment.lower() not in ROUTE_WORDS:
        return True  # /users/janedoe: a person's handle is one series per person
    if id_shaped(segment) or "@" in segment or "%" in segment:
        return True
    digits = sum(c.isdigit() for c in segment)
    return digits > 0 and not _VERSIONISH.fullmatch(segment)


def template_route(value: str) -> str:
    """A route label in templated form: id-like segments become ``{id}``, the query and fragment
    are cut; ``value`` itself when it is a template already (or no path)."""
    if "/" not in value:
        return value
    path = value
    cut = min((i for i in (value.find("?"), value.find("#")) if i != -1), default=-1)
    if cut != -1:
        path = value[:cut]
    segments = path.split("/")
    changed = cut != -1
    prev = ""
    for i, segment in enumerate(segments):
        if _templated(segment, prev):
            segments[i] = "{id}"
            changed = True
        prev = segment.lower()
    return "/".join(segments) if changed else value
