"""The slot a question asks to fill, and whether a sentence fills it with the right kind of thing.

``offers`` (in ``features``) asks whether a sentence holds *some* new number, date or name. An
on-topic question the article does not answer usually passes that test: "How many employees does Argo
AI have?" meets "…a company it invested $1 billion in back in 2017", which holds two numbers, neither
a count of employees. A slot is stricter: a count must count the asked noun ("How many flights…?"
wants a number in a sentence that speaks of flights; a year or a percentage is no count), a measure
must carry a unit of its kind ("How fast…?" wants mph, not miles), "what year" a year, "what date" a
day, "what time" a clock time, "who" a person's name (two to four capitalised words, not a weekday, a
place or an institution), "how much did it cost" an amount of money. Items the question already states
do not fill it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from qa.index.terms import words_of
from qa.retrieve.features import focus, names_in

_AUX = r"(?:did|does|do|were|was|have|has|are|is|will|had|can|could|would|should|remain|remained|[a-z]+ed)\b"
_HOW_MANY = re.compile(r"\bhow many\s+(?:of (?:the|those|these)\s+)?((?:[\w’'-]+\s+){0,3}?)(?=" + _AUX + r"|[?,]|$)",
                       re.IGNORECASE)
#: Without a verb the phrase can be told to end at ("How many people live near it?"): the next word.
_HOW_MANY_WORD = re.compile(r"\bhow many\s+(?:of (?:the|those|these)\s+)?([\w’'-]+)", re.IGNORECASE)
_NOT_A_UNIT = frozenset(
    "the a an of in at on to for by from with them those these it they us you we that away more less fewer apart total"
    " exactly altogether".split()
)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|sixty|seventy|eighty|ninety|hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen"
    r"|dozens)\b",
    re.IGNORECASE,
)
#: A year as prose writes one (1500–2099): a number that is no count, and a year a question may name.
YEAR = re.compile(r"\b(?:1[5-9]|20)\d\d\b")
_ANY_YEAR = re.compile(r"\b(?:1\d|20)\d\d\b")  # "In April 1191" answers "What year…?"
_PERCENT_AFTER = re.compile(r"^\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)
_AMOUNT = r"(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|half a|a|hundreds of|thousands of)"
#: A measure: the asking phrase, then what a sentence must write (a number and a unit of that kind).
_MEASURES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (re.compile(ask, re.IGNORECASE), re.compile(r"\b" + _AMOUNT + r"\s?-?\s?" + unit, re.IGNORECASE))
    for ask, unit in (
        (r"\bhow fast\b|\bwhat speed\b|\bat what speed\b",
         r"(?:mph|km/h|kph|knots|(?:miles|yards|feet|meters|metres|kilometers|kilometres|km) (?:per|an|a) "
         r"(?:hour|minute|second|day))"),
        (r"\bhow (?:tall|high|deep|wide|far)\b|\bwhat (?:total )?(?:distance|height|depth|length|width)\b",
         r"(?:feet|foot|ft|meters?|metres?|m|km|kilometers?|kilometres?|miles?|inches|inch|cm|yards?)\b"),
        (r"\bhow heavy\b|\bwhat weight\b", r"(?:pounds?|lbs?|kilograms?|kg|tons?|tonnes?|grams?|ounces?)\b"),
        (r"\bhow old\b|\b(?:at )?what age\b", r"(?:-(?:year|month|week|day)-old|(?:years?|months?) old|aged?\b)"),
    )
)
#: "How much" with a word of money: an amount ("How much did Ford lose in China?", not "How much rain fell?").
_ASKS_MONEY = re.compile(
    r"\bhow much\b.*\b(?:pay|paid|pays|cost|costs|lose|lost|loses|raise|raised|raises|spend|spent|earn|earned|worth"
    r"|price|fine|fined|debt|money|revenue|budget|salary|fund|funds|funding|invest|invested|charge|charged|sell|sold"
    r"|buy|bought|owe|owed|award|awarded|jackpot|prize|deal|donate|donated|profit|loss|income|damages?|bail|bond)\b"
    r"|\bwhat (?:was|is|were|are|will be) the (?:cost|price|value|amount|fine|salary|budget|bail|bond|reward|jackpot"
    r"|prize)\b",
    re.IGNORECASE,
)
_MONEY = re.compile(r"[$€£¥]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:dollars?|euros?|pounds?|cents?|yuan|yen|rupees?)\b",
                    re.IGNORECASE)
_ASKS_CLOCK = re.compile(r"\b(?:at )?what time\b", re.IGNORECASE)
_ASKS_YEAR = re.compile(r"\b(?:in |between |by )?(?:what|which) years?\b", re.IGNORECASE)
_ASKS_DATE = re.compile(r"\b(?:on )?(?:what|which) (?:date|day)\b", re.IGNORECASE)
_ASKS_PERSON = re.compile(r"\bwho(?:m|se)?\b", re.IGNORECASE)
#: "Who is Yoav Gallant?" asks what a named person is (a role, a description), not for a name.
_ASKS_IDENTITY = re.compile(r"\b(?i:who (?:is|was|are|were))\s+(?i:the\s+)?[A-Z][\w’'.-]*(?:\s+[A-Z][\w’'.-]*)*\s*\??$")
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = re.compile(
    r"\b" + _MONTH + r"\s+\d{1,2}\b|\b\d{1,2}\s+" + _MONTH + r"\b|\b\d{1,2}/\d{1,2}\b"
    r"|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"\b\d{1,2}(?::\d\d)?\s?(?:a\.m\.|p\.m\.|am\b|pm\b)|\bnoon\b|\bmidnight\b|\b\d{1,2}:\d\d\b",
                    re.IGNORECASE)
#: Words that make a capitalised run a place, an institution, a title or a time rather than a person
#: ("The NFL", "Bank of America").
_NOT_PERSON = frozenset(
    """university college school company corp corporation inc ltd group party department ministry agency service
    services office council court congress senate house parliament committee commission board bank fund association
    union league club team cup awards award day week month act bill law show series film movie festival games game
    olympics river lake sea ocean bay island islands mountain mountains mount park plaza street avenue road bridge
    airport station county city state states province district region republic kingdom empire army navy force forces
    corps guard police center centre institute foundation museum hospital church times news post journal network
    records observatory survey world international national federal united north south east west northern southern
    eastern western new us uk eu un nato monday tuesday wednesday thursday friday saturday sunday january february
    march april may june july august september october november december the of and""".split()
)


@dataclass(frozen=True)
class Slot:
    """What the answer must be: ``kind`` (count, money, measure, clock, year, date, person) and, for a count, the
    counted noun's stem; for a measure, the pattern of a number with its unit."""

    kind: str
    unit: str = ""
    measure: re.Pattern[str] | None = None


@lru_cache(maxsize=1 << 12)
def asked_slot(question: str) -> Slot | None:
    """The slot the asking clause names, if it names one this module can check.

    >>> asked_slot("Argo AI will shut down. How many employees does it have?")
    Slot(kind='count', unit='employe', measure=None)
    >>> [asked_slot(q).kind for q in ("How fast was it?", "In what year?", "Who won?", "On what date?")]
    ['measure', 'year', 'person', 'date']
    >>> asked_slot("How many Twitter accounts are verified?").unit, asked_slot("How many people live near it?").unit
    ('account', 'peopl')
    >>> asked_slot("How many of them were there?") is None, asked_slot("Why did it fail?") is None
    (True, True)
    """
    clause = focus(question)
    many = _HOW_MANY.search(clause) or _HOW_MANY_WORD.search(clause)
    if many:
        nouns = [w for w in words_of(many.group(1)) if w.word not in _NOT_A_UNIT]
        return Slot("count", nouns[-1].stem) if nouns else None
    if _ASKS_MONEY.search(clause):
        return Slot("money")
    for ask, measure in _MEASURES:
        if ask.search(clause):
            return Slot("measure", measure=measure)
    for kind, ask in (("clock", _ASKS_CLOCK), ("year", _ASKS_YEAR), ("date", _ASKS_DATE), ("person", _ASKS_PERSON)):
        if ask.search(clause):
            return None if kind == "person" and _ASKS_IDENTITY.search(clause) else Slot(kind)
    return None


def fills(slot: Slot, question: str, text: str) -> bool:
    """Does ``text`` write something of the slot's kind that ``question`` does not already state?

    >>> q = "How many flights did Korean Air cancel?"
    >>> fills(asked_slot(q), q, "It canceled 57 flights."), fills(asked_slot(q), q, "It canceled flights in 2022.")
    (True, False)
    >>> q = "Who will sing the anthem at the Super Bowl?"
    >>> fills(asked_slot(q), q, "The NFL said on Sunday."), fills(asked_slot(q), q, "Singer Chris Stapleton will.")
    (False, True)
    """
    asked = question.lower()
    if slot.kind == "count":
        words = words_of(text)
        if not any(w.stem == slot.unit for w in words):
            return False
        return any(_counts(m, text, asked) for m in _NUMBER.finditer(text))
    if slot.kind == "person":
        known = {w.word for w in words_of(question)}
        return any(_person(name, known) for name in names_in(text))
    pattern = {"measure": slot.measure, "clock": _CLOCK, "year": _ANY_YEAR, "date": _DATE,
               "money": _MONEY}[slot.kind]
    return pattern is not None and any(m.group(0).lower() not in asked for m in pattern.finditer(text))


def _counts(number: re.Match[str], text: str, asked: str) -> bool:
    """A number that counts: not a year, not a percentage, not one the question states."""
    item = number.group(0).strip(".,").lower()
    return not (YEAR.fullmatch(item) or item in asked or _PERCENT_AFTER.match(text[number.end():]))


def _person(name: tuple[str, ...], known: set[str]) -> bool:
    """Two to four capitalised words, not all stated by the question, none naming a place, a body or a time."""
    return 2 <= len(name) <= 4 and not all(w in known for w in name) and not any(w in _NOT_PERSON for w in name)


def slot_filled(question: str, text: str) -> float:
    """1 when the question names no checkable slot or ``text`` fills it, else 0 (a probe feature).

    >>> slot_filled("How many employees does Argo AI have?", "Ford invested $1 billion in Argo AI in 2017.")
    0.0
    >>> slot_filled("Why did it fail?", "It failed.")
    1.0
    """
    slot = asked_slot(question)
    return 1.0 if slot is None or fills(slot, question, text) else 0.0
