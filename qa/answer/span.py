"""The short answer an extractive answer leads with: "More than $50 billion.", "April 1191.", "Three."

A reader sees the lead first, so a wrong lead costs more than none. It is given only when the clause that
asks (not the context news-quiz questions open with) asks for a figure, an amount, a share or a date, and
the cited sentence offers exactly one such item the question does not already hold, taken whole ("$532
million", not "$5"; "12 May 1705", not "May"). The modal "may", "no one" and relative days ("today") are
never leads. Pure functions of the text, so the lead can be checked against the question in tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.retrieve.features import focus
from qa.retrieve.slots import Slot, asked_slot

_NUM = r"\d[\d,]*(?:\.\d+)?"
_SCALE = r"(?:\s?(?:hundred|thousand|million|billion|trillion|bn|m)\b)?"
_NUMBER_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    r"|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?"
    r"|millions?|billions?|trillions?|dozens?)"
)
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December" \
         r"|Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"

#: What a sentence offers, per kind of lead, each item matched whole.
_ITEMS: dict[str, re.Pattern[str]] = {
    "percent": re.compile(rf"\b{_NUM}\s?(?:%|percent\b|per cent\b|percentage points?\b)", re.I),
    "money": re.compile(
        rf"(?:\b(?:US|A|C|HK|NZ))?[$€£¥]\s?{_NUM}{_SCALE}"
        rf"|\b{_NUM}{_SCALE}\s?(?:dollars?|euros?|pounds?|cents?|yuan|yen|rupees?)\b",
        re.I,
    ),
    "number": re.compile(
        rf"(?<![-–$€£¥])\b(?!(?:1[5-9]|20)\d\d\b(?!\s?(?:hundred|thousand|million|billion)))"
        rf"{_NUM}(?![\d,.]*\d){_SCALE}(?:\s(?:million|billion))?(?![\d,.]*\s?(?:%|percent)|[-–]\d|[^\W\d_])"
        rf"|(?<!\d\s)\b{_NUMBER_WORD}(?:(?:\s|-)(?:and\s)?{_NUMBER_WORD})*\b",
        re.I,
    ),
    "time": re.compile(
        rf"\b(?:{_WEEKDAY},?\s)?(?:{_DAY}\s(?:of\s)?)?{_MONTH}(?:\s{_DAY}\b)?(?:,?\s(?:1[0-9]\d\d|20\d\d)\b)?"
        rf"|\b(?:early|late|mid-?)?\s?(?:1[0-9]\d\d|20\d\d)s?\b|\b{_WEEKDAY}\b|\b\d{{1,2}}(?:st|nd|rd|th)\scentury\b"
    ),
    "duration": re.compile(
        rf"\b(?:{_NUM}|{_NUMBER_WORD}|a|an|several|a few)[\s-]+(?:and a half\s)?(?:years?|months?|weeks?|days?|hours?"
        r"|minutes?|decades?)\b",
        re.I,
    ),
    "measure": re.compile(
        rf"\b(?:{_NUM}|{_NUMBER_WORD}|half an?|an?)[\s-]+(?:miles?|kilomet(?:er|re)s?|km|met(?:er|re)s?|feet|foot|ft"
        r"|inch(?:es)?|yards?|pounds?|lbs?|kilograms?|kg|tons?|tonnes?|acres?|hectares?)\b",
        re.I,
    ),
    "clock": re.compile(
        r"\b\d{1,2}(?::\d\d)?\s?(?:a\.m\.|p\.m\.|am\b|pm\b)(?:\s(?-i:[A-Z]{2,3})\b)?|\b\d{1,2}:\d\d\b", re.I
    ),
}
#: Read at the first question word of the asking clause, in order ("how much": an amount, a share, a count).
_ASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("money", re.compile(
        r"how much\b|what (?:was|is|were|are|will be) the (?:cost|price|value|amount|fine|salary|budget|bail|bond"
        r"|reward|jackpot)\b", re.I)),
    ("percent", re.compile(r"(?:what|which) (?:percentage|percent|share|proportion)\b|how (?:many percent|much)\b",
                           re.I)),
    ("measure", re.compile(r"how (?:far|tall|high|deep|wide|heavy|big|large|long a distance)\b", re.I)),
    ("number", re.compile(
        r"how (?:many|much|old|far|large|big|tall|high|fast|deep|wide|heavy)\b|(?:what|which) (?:number|amount"
        r"|size|magnitude|age(?! group| range| bracket)|rate|score|total|height|speed|temperature|toll|count)\b",
        re.I)),
    ("time", re.compile(r"when\b|(?:what|which) (?:year|century|decade|date|day|month)\b", re.I)),
    ("duration", re.compile(r"how long\b|for how long\b", re.I)),
    ("clock", re.compile(r"(?:what|which) time\b|at what hour\b", re.I)),
)
_WH = re.compile(r"\b(?:what|which|when|how)\b", re.I)
#: Counting words that are pronouns here ("no one", "someone").
_NOT_A_COUNT = re.compile(r"\b(?:no|any|every|some)\s?$", re.I)


def lead_kinds(question: str) -> tuple[str, ...]:
    """The kinds of lead the asking clause wants, read at its first question word.

    >>> lead_kinds("Most did not want it when it was discussed. Which firm's poll showed that?")
    ()
    >>> lead_kinds("How much did it cost?"), lead_kinds("In what year did it open?")
    (('money', 'percent', 'number'), ('time',))
    """
    asking = focus(question)
    m = _WH.search(asking)
    if not m:
        return ()
    rest = asking[m.start() :]
    return tuple(kind for kind, pattern in _ASKS if pattern.match(rest))


def lead_span(question: str, texts: Sequence[str]) -> str:
    """The short answer to lead with, from the first cited sentence; empty when there is none or several.

    >>> lead_span("How many vetoes did the US cast?", ["The US had vetoed three resolutions."])
    'Three.'
    >>> lead_span("Who stayed?", ["Gallant stayed."])
    ''
    >>> lead_span("How many employees does it have?", ["Ford invested $1 billion in it."])  # an amount is no count
    ''
    >>> lead_span("How many people live near it?", ["Just 21 miles away, another volcano erupted."])  # a measure
    ''
    >>> lead_span("In what year did Ford invest?", ["On Wednesday it ended what it began in 2017."])  # the year asked
    '2017.'
    """
    if not texts:
        return ""
    text, asked = texts[0], question.lower()
    slot = asked_slot(question)
    for kind in lead_kinds(question):
        spans = [m.span() for m in _ITEMS[kind].finditer(text)
                 if _counts(text, m) and _new(m.group(0), asked) and not (kind == "number" and _is_day(text, m))
                 and _fits(kind, slot, text, m)]
        if len(spans) == 1:
            span = _widen(text, *spans[0])
            span = span[:1].upper() + span[1:].rstrip(",;:")
            return span if span.endswith(".") else span + "."
        if spans:
            return ""
    return ""


_UNIT_AFTER = re.compile(
    r"^\s?-?(miles?|kilomet(?:er|re)s?|km|met(?:er|re)s?|feet|foot|ft|inch(?:es)?|yards?|acres?|hectares?|pounds?"
    r"|kilograms?|kg|tons?|tonnes?|years?|months?|weeks?|days?|hours?|minutes?|seconds?|degrees?|mph)\b",
    re.I,
)
_HAS_YEAR = re.compile(r"\b(?:1\d|20)\d\d")


def _fits(kind: str, slot: Slot | None, text: str, m: re.Match[str]) -> bool:
    """The item suits the asked slot: a count is no measure of another unit, "what year" wants a year."""
    if slot is None:
        return True
    if kind == "number" and slot.kind == "count":
        return not _measures(text, m, slot.unit)
    if kind == "time" and slot.kind == "year":
        return _HAS_YEAR.search(m.group(0)) is not None
    return True


def _measures(text: str, m: re.Match[str], counted: str) -> bool:
    """A number with a unit that is not the counted noun measures, it does not count: "21 miles away" is no
    answer to "How many people live near it?" (``counted`` is the asked noun's stem)."""
    unit = _UNIT_AFTER.match(text[m.end() :])
    return unit is not None and not unit.group(1).lower().startswith(counted[:4])


def _counts(text: str, m: re.Match[str]) -> bool:
    """Not "no one" nor "someone": a number word must count something."""
    return not (m.group(0).lower().startswith("one") and _NOT_A_COUNT.search(text[max(0, m.start() - 6) : m.start()]))


_MONTH_BEFORE = re.compile(rf"{_MONTH}\s$")
_MONTH_AFTER = re.compile(rf"^(?:st|nd|rd|th)?\s(?:of\s)?{_MONTH}")


def _is_day(text: str, m: re.Match[str]) -> bool:
    """A day of a date is no count: the 12 of "February 12, 2023" or "12 February"."""
    return bool(_MONTH_BEFORE.search(text[max(0, m.start() - 12) : m.start()]) or _MONTH_AFTER.match(text[m.end() :]))


def _new(item: str, question: str) -> bool:
    """An item the question already holds is not the answer ("…reach $10 a barrel. When…?")."""
    return re.search(rf"(?<!\w){re.escape(item.lower().strip())}(?!\w)", question) is None


_QUALIFIER = re.compile(
    r"(?:more than|less than|fewer than|at least|about|around|nearly|almost|over|up to|some|roughly|"
    r"approximately|an estimated)\s+$",
    re.IGNORECASE,
)


def _widen(text: str, start: int, end: int) -> str:
    """A figure with the qualifier before it ("more than 2.5 million")."""
    qualifier = _QUALIFIER.search(text[max(0, start - 20) : start])
    return text[start - len(qualifier.group(0)) if qualifier else start : end].strip()
