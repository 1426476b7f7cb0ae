"""Where a person is: coordinate pairs and postal addresses in free text.

Coordinates: a latitude/longitude pair of decimal degrees (``52.229676, 21.012229``,
``(52.2297 21.0122)``, ``geo:52.2297,21.0122``, ``52.2297°N 21.0122°E``) or of degrees, minutes
and seconds (``52°13'47"N 21°00'42"E``). A pair of decimals is also a pair of ratios or amounts,
so a bare pair needs 4 decimals on both sides (about 10 m: what a phone reports; 2 will do with
``geo:``, a degree sign or hemisphere letters), both in range, and not both below 1 in absolute
value (``0.1234, 0.5678`` reads as latencies).

Addresses, only where the pattern is strong: a street with a house number, in the forms of the
app's markets (Polish ``ul. Marszałkowska 10/12``, German ``Hauptstraße 5`` / ``Berliner Str. 5a``,
English ``221B Baker Street``, French ``12 rue de Rivoli``), with the postcode and city that may
follow (``, 00-590 Warszawa``, ``, 10115 Berlin``, ``, London NW1 6XE``, ``, Springfield, IL 62704``);
a UK postcode (``SW1A 1AA``) and a US city, state and ZIP code (``Springfield, IL 62704``) alone.
A postcode alone in other forms (``00-590``, ``10115``) is not taken: it reads as a range or a count.
"""

from __future__ import annotations

import re

_DEC = r"-?[0-9]{1,3}\.[0-9]{2,15}"
_DMS = r"[0-9]{1,3}°[ \t]?[0-9]{1,2}['′][ \t]?(?:[0-9]{1,2}(?:\.[0-9]+)?(?:[\"″]|'')[ \t]?)?"
#: A coordinate pair (validated by :func:`coordinates_ok`).
GEO = (r"(?:geo:)?\(?" + _DEC + r"°?[ \t]?[NSns]?(?:[ \t]*[,;/][ \t]*|[ \t]+)" + _DEC + r"°?[ \t]?[EWew]?\)?"
       r"(?![0-9A-Za-z]|\.[0-9])"
       r"|" + _DMS + r"[NS][ \t,]*" + _DMS + r"[EW](?![A-Za-z])")

_NUMS = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")


def coordinates_ok(text: str) -> bool:
    """The guards of the module docstring, for a :data:`GEO` match."""
    if "°" in text and ("'" in text or "′" in text):
        return True  # degrees, minutes, seconds: nothing else is written so
    decimals = _NUMS.findall(text)
    values = [float(m.group()) for m in _NUMS.finditer(text)]
    if len(values) != 2:
        return False
    lat, lon = values
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (abs(lat) < 1 and abs(lon) < 1):
        return False
    marked = text.startswith("geo:") or "°" in text or any(c in "NSEWnsew" for c in text)
    return min(len(d) for d in decimals) >= (2 if marked else 4)


_UP = "A-ZÀ-ÖØ-ÞĄĆĘŁŃŚŹŻŒŠŽ"
_LO = "a-zß-öø-ÿąćęłńóśźżœšž"
_CAP = rf"[{_UP}][{_LO}'’-]*\.?"  # a capitalised word (Jana, Pawła, St.)
_HOUSE = r"[0-9]{1,4}[A-Za-z]?(?:[ \t]*[/-][ \t]*[0-9]{1,4}[A-Za-z]?|[ \t]+m\.?[ \t]*[0-9]{1,4})?"
_UK_POSTCODE = r"[A-Z]{1,2}[0-9][A-Z0-9]?[ \t][0-9][A-Z]{2}"
_US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|"
              "NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
# The state is any two capitals here (51 alternatives at every capitalised word cost too much) and
# checked in address_ok.
_US_CITY_ZIP = rf"{_CAP}(?:[ \t]{_CAP}){{0,2}},[ \t]*[A-Z]{{2}}[ \t]+[0-9]{{5}}(?:-[0-9]{{4}})?(?![0-9])"
_CITY = rf"(?:,?[ \t]*(?:{_CAP}[ \t]+)?(?:[0-9]{{2}}-[0-9]{{3}}|(?:D-|F-)?[0-9]{{5}})(?:[ \t]+{_CAP}(?:[ \t-]{_CAP})?)?)?"
_EN_TYPES = (r"Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Court|Ct|Boulevard|Blvd|Way|Place|Pl|Terrace|"
             r"Close|Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Gardens|Grove|Row|Mews|Hill")
# German street types end the word: the word is read once (no shorter reading: a letter follows it)
# and its end is checked by look-behinds, so a capitalised word that is no street costs one pass.
# Not "-ring": String 5, Spring 2024, Monitoring 3 would be streets.
_DE_ENDS = "".join(f"|(?<={t})" for t in ("straße", "strasse", "str.", "weg", "allee", "platz", "gasse",
                                           "damm", "ufer", "chaussee", "Straße", "Strasse", "Str.",
                                           "Weg", "Allee", "Platz", "Gasse"))[1:].replace(".", r"\.")
_FR_TYPES = r"rue|avenue|av\.|boulevard|bd|place|allée|allee|impasse|chemin|quai|cours|route"
#: A street with a house number (and what may follow), a UK postcode, a US city/state/ZIP.
ADDRESS = rf"(?=[0-9{_UP}]|(?:ul|al|pl|os)\.)(?:" + "|".join((
    # Polish: ul./al./pl./os. + name (words, numbers, Roman numerals) + house[/flat].
    rf"(?:ul|al|pl|os)\.[ \t]?(?:(?:{_CAP}|[0-9]{{1,2}}|[IVX]{{1,4}})[ \t]+){{1,4}}{_HOUSE}{_CITY}",
    # German: [Berliner ]Hauptstraße 5a, Kurfürstendamm 21.
    rf"(?:[{_UP}][{_LO}-]*(?![{_LO}-])\.?(?<=[egzmr.])(?:{_DE_ENDS})|{_CAP}[ \t-](?:Stra(?:ß|ss)e|Str\.|Weg|Allee|Platz|Gasse))"
    rf"[ \t]+{_HOUSE}{_CITY}",
    # English: 221B Baker Street[, London NW1 6XE | , Springfield, IL 62704].
    rf"[0-9]{{1,5}}[A-Za-z]?[ \t]+(?:(?:N|S|E|W|NE|NW|SE|SW)\.?[ \t]+)?(?:{_CAP}[ \t]+){{1,3}}(?:{_EN_TYPES})\.?"
    rf"(?![A-Za-z])(?:,?[ \t]*(?:{_UK_POSTCODE}|{_US_CITY_ZIP}|{_CAP}(?:[ \t]+{_UK_POSTCODE})?)(?![A-Za-z0-9]))?",
    # French: 12 bis rue de la Paix[, 75002 Paris].
    rf"[0-9]{{1,4}}(?:[ \t]?(?:bis|ter)|[A-Za-z])?,?[ \t]+(?:{_FR_TYPES})[ \t]+(?:(?:de la|de|du|des|d'|l'|la|le)[ \t]*)?{_CAP}"
    rf"(?:[ \t]+(?:(?:de la|de|du|des|la|le)[ \t]+)?{_CAP}){{0,3}}{_CITY}",
    rf"{_UK_POSTCODE}(?![A-Za-z0-9])",
    _US_CITY_ZIP,
)) + rf")(?![0-9A-Za-z{_LO}@])"
# (The look-ahead first: every form starts with a digit, a capital or ul./al./pl./os.: one check.
# The one at the end: a match never stops inside a token, whose rest would escape the detectors.)

_STATES = frozenset(_US_STATES.split("|"))
_US_TAIL = re.compile(r"([A-Z]{2})[ \t]+[0-9]{5}(?:-[0-9]{4})?$")
_CITY_ZIP_ONLY = re.compile(_US_CITY_ZIP)


def address_ok(text: str) -> bool:
    """An :data:`ADDRESS` match is one, unless it is only a city, a bogus state and a ZIP code."""
    tail = _US_TAIL.search(text)
    return tail is None or tail.group(1) in _STATES or not _CITY_ZIP_ONLY.fullmatch(text)
