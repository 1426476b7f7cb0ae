"""National identity numbers found by their shape and check digits (``python-stdnum``).

A number's shape alone would catch ids and amounts, so every candidate is validated: a Polish
PESEL (11 digits) by its check digit and an encoded birth date from 1900 up to today, a Polish NIP
in its dashed forms (``123-456-32-18``, ``123-45-67-819``) or with the ``PL`` VAT prefix by its
mod-11 sum, a US SSN in its dashed form (``123-45-6789``) by its area, group and serial rules.
A bare 10- or 9-digit number is only a NIP or an SSN after its name (``NIP 1234563218``, see
:mod:`.phrases`): a random 10-digit id passes the NIP sum one time in eleven.
"""

from __future__ import annotations

import datetime
import re

from stdnum.exceptions import ValidationError
from stdnum.pl import nip, pesel
from stdnum.us import ssn

_SSN = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")
_NIP = re.compile(r"[0-9]{3}-[0-9]{3}-[0-9]{2}-[0-9]{2}|[0-9]{3}-[0-9]{2}-[0-9]{2}-[0-9]{3}")
#: The Polish VAT form of a NIP: its own detector alternative (letters first).
PL_VAT = r"PL[ \t]?[0-9]{10}(?![A-Za-z0-9])"


def pesel_ok(digits: str) -> bool:
    """An 11-digit PESEL with a valid check digit and a birth date from 1900 up to today."""
    if len(digits) != 11 or not digits.isdigit():
        return False
    try:
        pesel.validate(digits)
        born = pesel.get_birth_date(digits)
    except ValidationError:
        return False
    return datetime.date(1900, 1, 1) <= born <= datetime.date.today()


#: Check digits and number ranges, as python-stdnum validates them (format separators allowed).
nip_ok = nip.is_valid
ssn_ok = ssn.is_valid


def identity_rule(candidate: str) -> str | None:
    """``"government_id"`` when ``candidate`` (a digit run as written) is a PESEL, a dashed NIP or
    a dashed SSN, else None."""
    if len(candidate) == 11 and pesel_ok(candidate):
        return "government_id"
    if _SSN.fullmatch(candidate):
        return "government_id" if ssn_ok(candidate) else None
    if _NIP.fullmatch(candidate) and nip_ok(candidate):
        return "government_id"
    return None


def id_value_ok(value: str) -> bool:
    """A value after an identity document's name (``passport AB1234567``): enough digits to be a
    number, not a word."""
    return sum(c.isdigit() for c in value) >= 4
