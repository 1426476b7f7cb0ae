"""Phone numbers written without ``+``: the ``00`` international prefix and national formats.

``0048 600 123 456`` is unambiguous: ``00`` is the international prefix, so it is checked as
``+48 600 123 456``. National formats (``600 123 456``, ``(415) 555-0132``, ``020 7946 0018``,
``030 12345678``, ``06 12 34 56 78``) are only numbers of some region, so they are checked by
``phonenumbers``' matcher (leniency VALID) for each configured home region. A digit run must look
like a written phone number before the matcher runs, because ids, amounts, dates and versions are
digit runs too:

* grouped by spaces, dots, dashes, slashes or parentheses, or one unbroken run that starts with a
  national trunk ``0`` (``02079460018``); a bare ``600123456`` is only taken after a phone word
  (``tel``, ``call me on``: :mod:`.phrases`), as it reads as an id just as well;
* not a date (``2024-05-01``, ``01.05.2024``), a year range, an amount grouped in thousands
  (``1 299 000``; a currency or unit after the run also rules it out, in the expression), a
  decimal number (``03000.00``, ``12 345 678.90``), a three-part dotted number under 10 digits
  (``03.00.000``, ``120.000.000``), a round amount (``120 000 000``), a
  dotted version (``10.0.19041.1``) or an IPv4-shaped run; not glued to an id
  (``ORD-2024-000123``, ``#1234567``).

The matcher is slow (about 0.1 ms per region), so it only sees such candidates, and its answers
are cached per candidate.
"""

from __future__ import annotations

import re
from functools import lru_cache

from phonenumbers import Leniency, PhoneNumberMatcher

from ..settings import DEFAULT_PHONE_REGIONS
from . import detectors as _d  # circular (detectors imports NUMBER): attributes read at call time

#: Regions whose national formats are recognised when none are configured (see settings).
DEFAULT_REGIONS = DEFAULT_PHONE_REGIONS

_SEP = r"(?:[ \t]?[-./][ \t]?|[ \t]{1,2})"
_GROUP = r"(?:\([0-9]{1,5}\)|[0-9]{1,12})"
#: A digit run that could be a written number: at least 7 digits (checked ahead, cheaply), groups
#: joined by one separator each; not after an id's joiner, a "#" or a currency sign; not before a
#: letter, a joined part (``-4a``, ``.5``, ``:30``) or a currency or unit.
NUMBER = (r"(?<![A-Za-z0-9][-_/#.])(?<![#$€£])"
          r"(?=\(?[0-9](?:[ \t().\/-]{0,3}[0-9]){6})"
          + _GROUP + r"(?:" + _SEP + r"?(?<=[ \t./-]|\))" + _GROUP + r"|(?<=[0-9])\([0-9]{1,5}\)){0,7}"
          r"(?![A-Za-z0-9]|[-./:,_][0-9A-Za-z]"
          r"|[ \t]?(?:%|€|\$|£|(?:zł|zl|PLN|EUR|USD|GBP|CHF|UAH|ms|MB|KB|GB|kB|B|s|x)(?![A-Za-z])))")

_GROUPS = re.compile(r"[0-9]+")
_SEPS = re.compile(r"(?<=[0-9])[^0-9]+(?=[0-9])")
_DATE = re.compile(r"[0-9]{4}[-./ ][0-9]{1,2}[-./ ][0-9]{1,2}(?:[ T][0-9]{1,2})?"
                   r"|[0-9]{1,2}[-./ ][0-9]{1,2}[-./ ][0-9]{4}(?:[ T][0-9]{1,2})?")
_YEARS = re.compile(r"(?:19|20)[0-9]{2}[ \t]*[-/][ \t]*(?:19|20)[0-9]{2}")
_TRUNK = re.compile(r"0[1-9][0-9]{8,10}")


def _looks_written(candidate: str, groups: list[str]) -> bool:
    """The guards of the module docstring (the shape, before the matcher)."""
    if len(groups) == 1:
        return _TRUNK.fullmatch(candidate) is not None
    if _DATE.fullmatch(candidate) or _YEARS.fullmatch(candidate):
        return False
    if len(groups[0]) <= 2 and groups[0][0] != "0" and len(groups) >= 3 and all(len(g) == 3 for g in groups[1:]):
        return False  # 1 299 000, 12.345.678: an amount in thousands
    seps = _SEPS.findall(candidate)
    if seps and seps[-1] == "." and (len(groups) == 2 or any(sep != "." for sep in seps[:-1])):
        return False  # 03000.00, 12 345 678.90: a decimal number
    if seps == [".", "."] and (sum(map(len, groups)) < 10 or len(groups[0]) < 3):
        return False  # 03.00.000, 2024.05.01, 120.000.000: a version, a build, an amount
    if len(groups[-1]) >= 3 and not groups[-1].strip("0"):
        return False  # 120 000 000: a round amount
    if "." in candidate and (any(len(g) == 1 for g in groups) or
                             (len(groups) == 4 and all(len(g) <= 3 and int(g) <= 255 for g in groups))):
        return False  # a version, an IPv4-shaped run
    return True


@lru_cache(maxsize=4096)
def _national(candidate: str, regions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    for region in regions:
        found = tuple((m.start, m.end) for m in PhoneNumberMatcher(candidate, region, leniency=Leniency.VALID))
        if found:
            return found
    return ()


def _one_number(candidate: str, regions: tuple[str, ...], keyed: bool) -> tuple[tuple[int, int], ...]:
    """:func:`number_spans` for a run taken as one number."""
    groups = _GROUPS.findall(candidate)
    if not 7 <= sum(map(len, groups)) <= 17:
        return ()
    if candidate.startswith("00") and candidate[2:3].isdigit() and candidate[2] != "0":
        spans = _d.phone_spans("+" + candidate[2:])
        if spans:  # back to the candidate's positions: "00" is one character longer than "+"
            return tuple((0 if s == 0 else s + 1, e + 1) for s, e in spans)
    if not regions or not (keyed or _looks_written(candidate, groups)):
        return ()
    if not keyed and (_DATE.fullmatch(candidate) or _YEARS.fullmatch(candidate)):
        return ()
    return _national(candidate, regions)


@lru_cache(maxsize=4096)
def number_spans(candidate: str, regions: tuple[str, ...], *, keyed: bool = False) -> tuple[tuple[int, int], ...]:
    """Spans of phone numbers in ``candidate`` (a :data:`NUMBER` match): after ``00`` as an
    international number, else as a national number of one of ``regions``. ``keyed``: the run
    follows a phone word, so an unbroken run needs no trunk ``0``. Numbers written one after the
    other (``600 123 456 601 234 567``) are one run: when the whole run is not one number, the
    longest leading runs of groups are tried, then what follows the number found. A number in the
    middle of a longer run (``3704 0044 0532 0130 01``) is not looked for: it reads as an id."""
    whole = _one_number(candidate, regions, keyed)
    digits = _GROUPS.findall(candidate)
    if whole or sum(map(len, digits)) <= 15 or not (keyed or _looks_written(candidate, digits)):
        return whole  # one number, or none: an amount, a date… is not cut into numbers either
    found: list[tuple[int, int]] = []
    groups = [m.span() for m in _GROUPS.finditer(candidate)]
    i = 0
    while i < len(groups):
        for j in range(len(groups) - 1, i - 1, -1):
            start, end = groups[i][0], groups[j][1]
            if start > 0 and candidate[start - 1] == "(":
                start -= 1  # "(22) 123 45 67": the area code's parenthesis
            end += candidate[end:end + 1] == ")"
            spans = _one_number(candidate[start:end], regions, keyed)
            if spans:
                found += [(start + s, start + e) for s, e in spans]
                last = found[-1][1]
                while i < len(groups) and groups[i][0] < last:
                    i += 1
                break
        else:
            break  # no number starts here: the rest is not looked at either
    return tuple(found)
