"""Personal data known by the words before it: ``PESEL 44051401359``, ``born 12.03.1988``,
``tel. 600123456``, ``your code is 482913``, ``geohash u3qcnhzch``, ``Hi Anna,``, ``Mr. Smith``.

:data:`LABEL` is a word that names a class of personal data, a separator (``:``, ``=``, ``no.``,
``is``…) and what follows; :func:`label_value` says which rule the word stands for and how much
of what follows is the value (its shape per class: an id with 4+ digits, a date, a phone number
checked like any other, coordinates, a geohash, a 4–8 digit code). A code word after ``error``,
``status``, ``zip``, ``country``… is not a one-time code (``error code 4012`` survives).

:data:`GREETING` is a greeting or an honorific and the capitalised words after it: those words are
a name (``Hi [REDACTED:name],``). Words that follow a greeting without being names
(``Hello World``, ``Dear Customer``) are kept. A first name with no key and no greeting
(``Anna said…``) cannot be told from any other word: that is out of scope (see the README).
"""

from __future__ import annotations

import re

_ID = (r"pesel|nip|ssn|social[ \t]security(?:[ \t]number)?|passport|paszport|reisepass|passeport|"
       r"personalausweis|ausweis(?:nummer)?|id[ \t]card|identity[ \t]card|dow[oó]d(?:[ \t]osobisty)?|"
       r"document[ \t](?:no|nr|number)|national[ \t]id|tax[ \t]id|nino|national[ \t]insurance(?:[ \t]number)?|"
       r"driver'?s?[ \t]licen[cs]e|driving[ \t]licen[cs]e|prawo[ \t]jazdy|f[üu]hrerschein")
_DOB = (r"dob|d\.o\.b\.?|date[ \t]of[ \t]birth|birth[ \t]?date|birthday|born(?:[ \t]on)?|urodzon[ya]|"
        r"data[ \t]urodzenia|ur\.|geb\.|geboren(?:[ \t]am)?|geburtsdatum|n[ée]e?[ \t]le|date[ \t]de[ \t]naissance")
_PHONE = (r"tel\.?|tele?fon|phone(?:[ \t]number)?|mobile|mob\.|kom\.|kom[oó]rka|handy|cell|sms|whatsapp|"
          r"call[ \t]me(?:[ \t](?:on|at))?|text[ \t]me(?:[ \t](?:on|at))?|zadzwo[nń](?:[ \t]pod)?|rufnummer")
_GEO = r"geohash|lat(?:itude)?|lng|lon(?:gitude)?|coords?|coordinates|gps|location|position|geo"
_NOT_OTP = (r"error|status|exit|response|http|return|reason|result|country|currency|language|lang|area|"
            r"iso|zip|postal|post|promo|discount|coupon|voucher|source|product|station|dial|region|bank|sort|swift")
_OTP = (r"(?:(?:" + _NOT_OTP + r")[ \t_-]*)?(?:code|kod(?:[ \t]+(?:weryfikacyjny|sms|jednorazowy|dost[eę]pu))?|pin)"
        r"(?:[ \t]+(?:is|to|lautet|est|wynosi))?|otp|passcode|"
        r"one[ \t-]time[ \t](?:code|password)")


def trie(words: str, *, whole: bool = True) -> str:
    """An expression matching any of ``words`` (case-insensitively), as a trie: the regular
    expression engine tries alternatives one by one, so a flat list of 150 words costs a check of
    each at every word of every text; a trie costs a check of the first letters. Not ``whole``:
    any of them as a prefix (the shortest is enough for a look-ahead). ``~`` in a word: a space
    or a tab."""
    root: dict = {}
    for word in words.split():
        node = root
        for ch in word.lower():
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict, first: bool = False) -> str:
        # The first letter as two plain literals (the engine skips a literal alternative with one
        # compare); the rest case-insensitive.
        alts = [_char(c) + emit(child) for ch, child in sorted(node.items()) if ch
                for c in (dict.fromkeys((ch, ch.upper())) if first else (ch,))]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:
            return f"(?:{body})?" if whole else ""
        return body
    return "(?:" + "|".join(_char(c) + "(?i:" + emit(child) + ")" for ch, child in sorted(root.items())
                            for c in dict.fromkeys((ch, ch.upper()))) + ")"


def _char(c: str) -> str:
    return r"[ \t]" if c == "~" else re.escape(c)


#: How every label phrase above starts, as a trie; common words (``status``, ``date``, ``id``) only
#: with the word that makes them a label (``status code``, ``date of birth``, ``id card``).
_FIRST = trie("""
pesel nip ssn social~security passport paszport reisepass passeport personalausweis ausweis ausweisnummer
id~card identity~card dowód dowod document~no document~nr document~number document~num national~id
national~insurance tax~id nino driver driver's drivers driving prawo~jazdy führerschein fuhrerschein
dob d.o.b date~of~birth date~de~naissance birth~date birthdate birthday born urodzony urodzona
data~urodzenia ur geb geboren geburtsdatum né née
tel telefon telfon phone mobile mob kom komórka komorka handy cell sms whatsapp call~me text~me zadzwoń
zadzwon rufnummer geohash lat latitude lng lon longitude coord coords coordinates gps location position geo
code kod pin otp passcode one~time one-time
""" + " ".join(f"{q}{sep}code" for q in _NOT_OTP.split("|") for sep in ("~", "_", "-", "")))
#: Name, separator, then up to six tokens of what follows (the handler takes the value's part).
LABEL = (r"(?=" + _FIRST + r"(?![A-Za-z0-9]))"  # the first word, as a trie: cheap where no label word starts
         r"(?i:(?P<l_id>" + _ID + r")|(?P<l_dob>" + _DOB + r")|(?P<l_phone>" + _PHONE + r")|(?P<l_geo>" + _GEO +
         r")|(?P<l_otp>" + _OTP + r"))(?![A-Za-z0-9_])"
         r"(?:[ \t]*(?i:(?:no|nr|number|num)(?![A-Za-z])\.?|#))?[ \t]*(?:[:=#]|(?i:is|to)(?=[ \t]))?[ \t]*"
         # Tokens end where a token ends: a match never stops inside one (what it cut would
         # escape the other detectors).
         r"(?=[0-9A-Za-z(+-])(?:[^\s,;\"'<>]|,(?=[0-9-])){1,40}(?![^\s,;\"'<>])"
         r"(?:,?[ \t][^\s,;\"'<>]{1,20}(?![^\s,;\"'<>])){0,5}")
_GROUPS = ("l_id", "l_dob", "l_phone", "l_geo", "l_otp")

_LABEL_RE = re.compile(LABEL)
_SEP = re.compile(r"(?:[ \t]*(?i:(?:no|nr|number|num)(?![A-Za-z])\.?|#))?[ \t]*(?:[:=#]|(?i:is|to)(?=[ \t]))?[ \t]*")
_MONTHS = (r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sty|lut|kwi|maj|cze|lip|sie|wrz|paź|paz|lis|gru|"
           r"mär|mai|okt|dez|janv|févr|avr|juil|août|déc)[a-zäéóżśł]*\.?")
_VALUES = {
    "l_id": (re.compile(r"(?i:[A-Z]{0,3}[ -]?[0-9][0-9A-Z]*(?:[ -][0-9][0-9A-Z]*){0,6}(?:[ -][A-Z])?)(?![0-9A-Za-z])"),
             "government_id"),
    "l_dob": (re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}[./-][0-9]{1,2}[./-](?:[0-9]{4}|[0-9]{2})(?![0-9])"
                         r"|[0-9]{1,2}\.?[ \t]" + _MONTHS + r"[ \t][0-9]{4}|" + _MONTHS + r"[ \t][0-9]{1,2},?[ \t][0-9]{4}"),
              "birthdate"),
    "l_phone": (re.compile(r"\+?[0-9(][0-9 \t().\/-]{5,22}[0-9](?![0-9A-Za-z])"), "phone"),
    "l_geo": (re.compile(r"-?[0-9]{1,3}\.[0-9]{2,15}(?:°?[ \t]?[NSEWnsew]?(?:[ \t]*[,;/][ \t]*|[ \t]+)-?[0-9]{1,3}"
                         r"\.[0-9]{2,15})?(?![0-9A-Za-z]|\.[0-9])"), "location"),
    "l_otp": (re.compile(r"[0-9]{4,8}(?![0-9A-Za-z.,-]?[0-9])|[0-9]{3}[ -][0-9]{3}(?![0-9])"), "secret"),
}
_GEOHASH = re.compile(r"[0-9b-hjkmnp-z]{5,12}(?![0-9A-Za-z])")
_NOT_OTP_RE = re.compile(r"(?i:" + _NOT_OTP + r")")


def label_value(text: str) -> tuple[str, int, int] | None:
    """``(rule, start, end)`` of the value in a :data:`LABEL` match, or None (not this class);
    rule ``""``: kept as it is."""
    m = _LABEL_RE.match(text)
    if m is None:
        return None
    group = next(g for g in _GROUPS if m.group(g) is not None)
    word = m.group(group)
    start = _SEP.match(text, m.end(group)).end()
    if group == "l_otp" and _NOT_OTP_RE.match(word):
        return "", start, start  # "error code 4012": no rule, and the code word is not looked at again
    if group == "l_geo" and word.lower() == "geohash":
        value = _GEOHASH.match(text, start)
        return ("location", start, value.end()) if value else None
    pattern, rule = _VALUES[group]
    value = pattern.match(text, start)
    if value is None:
        return None
    if group == "l_id" and sum(c.isdigit() for c in value.group()) < 4:
        return None
    if group == "l_geo" and "." not in value.group():
        return None
    return rule, start, value.end()


_GREET = (r"hi|hello|hey|hiya|dear|hallo|hola|ciao|bonjour|bonsoir|salut|servus|moin|liebe[rs]?|"
          r"sehr[ \t]geehrte[rs]?|cze[sś][cć]|witaj|witam|hej|siema|drog[ia]|dzie[nń][ \t]dobry|"
          r"thanks|thank[ \t]you|dzi[eę]ki|dzi[eę]kuj[eę]|danke|merci|cheers|gratulacje|congrats|congratulations")
_HONORIFIC = r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Pan|Pani|Panie|Mme|Mlle|Monsieur|Madame"
# A whole word (never a part of a token); ' and - only inside it (O'Neil, Anna-Maria).
_NAME = r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_])){0,30}(?!\w)"
_GREET_FIRST = trie("""
hi hello hey hiya dear hallo hola ciao bonjour bonsoir salut servus moin liebe lieber liebes sehr cześć czesc
cześc czesć witaj witam hej siema drogi droga dzień dzien thanks thank dzięki dzieki dziękuję dziekuje dziękuje
dziekuję danke merci cheers gratulacje congrats congratulations mr mrs ms miss mx dr prof herr frau pan pani
panie mme mlle monsieur madame
""")
#: A greeting or an honorific, then up to three words (capitalised ones are checked in the handler).
#: The trie look-ahead first: one check of the first letters at a word that starts no greeting.
GREETING = (r"(?=" + _GREET_FIRST + r"(?![^\W\d_]))(?:(?i:" + _GREET + r")(?![^\W\d_])[ \t]*,?[ \t]+(?:(?:" + _HONORIFIC + r")\.?[ \t]+)?"
            r"|(?:" + _HONORIFIC + r")\.?[ \t]+)" + _NAME + r"(?:[ \t]+" + _NAME + r"){0,2}")
_NOT_NAMES = frozenset("""
world all there everyone everybody team support admin user users customer customers sir madam guys folks
friends friend again back you dear mr mrs ms dr the a an and or for from to in on at of with by is are
wszystkim wszystkim państwo panstwo zespole zespół leute zusammen tous everyone team
""".split())
_WORDS = re.compile(r"[^\W\d_][^\W\d_'’-]*")


def greeting_names(text: str) -> tuple[int, int] | None:
    """Span of the name in a :data:`GREETING` match (its capitalised words after the greeting and
    honorific), or None."""
    words = [(m.start(), m.end(), m.group()) for m in _WORDS.finditer(text)]
    # Skip the greeting's own words and the honorific: the name starts at the first capitalised
    # word after them that is not one of them.
    greeting = re.match(r"(?i:" + _GREET + r")(?![^\W\d_])", text)
    skip_to = greeting.end() if greeting else 0
    honorific = re.compile(r"(?:" + _HONORIFIC + r")\.?[ \t]+").match(text, _skip_space(text, skip_to))
    if honorific:
        skip_to = honorific.end()
    start = end = None
    for s, e, word in words:
        if s < skip_to:
            continue
        if not word[0].isupper() or word.lower() in _NOT_NAMES:
            break
        start = s if start is None else start
        end = e
    return None if start is None else (start, end)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t,":
        at += 1
    return at


__all__ = ["GREETING", "LABEL", "greeting_names", "label_value"]
