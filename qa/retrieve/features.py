"""Stage-1 features of a candidate sentence: their names, and the answer-type cues among them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Stage-1 features of each candidate, in the column order of ``Candidates.features``.
FEATURES: tuple[str, ...] = (
    "dense",  # cosine(question, sentence)
    "dense_idf",  # cosine(IDF-weighted pooling of the question's tokens, sentence); = dense without tokens
    "dense_prev",  # cosine(question, previous sentence of the same document), 0 at the start
    "dense_next",  # cosine(question, next sentence), 0 at the end
    "window",  # cosine(question, normalised sum of the three sentence vectors)
    "bm25",  # BM25(sentence) / IDF mass of the question: comparable across questions
    "bm25_rel",  # BM25(sentence) / best BM25 among candidates: within-question contrast
    "bm25_prev",  # BM25 of the neighbours / IDF mass
    "bm25_next",
    "coverage",  # share of the question's IDF mass whose terms occur in the sentence
    "coverage_window",  # the same over the sentence and its neighbours
    "dense_rank",  # log(1 + rank by dense similarity among candidates)
    "bm25_rank",  # log(1 + rank by BM25 among candidates)
    "length",  # log of the sentence's length in characters: longer sentences hold more facts
    "type_number",  # "how many/much…" and the sentence has a number the question lacks
    "type_time",  # "when/what year…" and the sentence has a year, date or century the question lacks
    "type_person",  # "who…" and the sentence has a capitalised name the question lacks
    "type_place",  # "where…" and the sentence has a capitalised name the question lacks
    "novel",  # share of the sentence's terms the question lacks: an answer adds information
    "focus_coverage",  # IDF coverage of the question's asking clause (not its lead-in context)
    "lead_coverage",  # IDF coverage of the lead-in ("Hurricane Ian hit Florida. How many…?": the first part)
    "type_offer",  # the sentence offers a new item of an asked type (money, percent, number, time, name, quote)
    "type_offer_prev",  # … its predecessor does (news names the speaker one sentence away)
    "type_offer_next",  # … its successor does
    "clutter",  # page furniture: video teasers, photo credits, a byline or dateline alone
    "position",  # log(1 + the sentence's position in its document): news leads with the facts
    "short",  # fewer than six words: headings, captions, fragments
)

_Q_NUMBER = re.compile(
    r"\bhow (many|much|long|old|far|large|big|tall|high|often|fast|deep|wide|heavy)\b"
    r"|\bwhat (percentage|percent|proportion|number|amount|fraction|size|share)\b"
)
_Q_TIME = re.compile(
    r"\bwhen\b|\b(what|which|in what) (year|years|century|centuries|decade|date|day|month|time|period|era|age)\b"
)
_Q_PERSON = re.compile(r"\bwho\b|\bwhom\b|\bwhose\b")
_Q_PLACE = re.compile(r"\bwhere\b|\b(what|which) (country|city|state|region|place|location|continent|nation|town)\b")
_NUMBER = re.compile(
    r"\d[\d,.]*|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|half|percent)\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\b([1-9]\d{2}|1\d{3}|20\d{2})s?\b|\b\d{1,2}(st|nd|rd|th)\b|\bcentur(y|ies)\b"
    r"|\b(january|february|march|april|may|june|july|august|september|october|november|december)\b|\b(monday|tuesday|wednesday|thursday|friday|saturday"
    r"|sunday|yesterday|today|tomorrow)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’-]+")
_WORD = re.compile(r"[\w'’-]+")


def question_types(question: str) -> tuple[bool, bool, bool, bool]:
    """Which answer types the question asks for: (number, time, person, place).

    >>> question_types("How many people live there?"), question_types("In what year did it end?")
    ((True, False, False, False), (False, True, False, False))
    >>> question_types("Who wrote it, and where?")
    (False, False, True, True)
    """
    q = question.lower()
    return bool(_Q_NUMBER.search(q)), bool(_Q_TIME.search(q)), bool(_Q_PERSON.search(q)), bool(_Q_PLACE.search(q))


def _new(pattern: re.Pattern[str], text: str, known: set[str]) -> bool:
    return any(m.group(0).lower() not in known for m in pattern.finditer(text))


def type_cues(question: str, texts: Sequence[str]) -> NDArray[np.float32]:
    """Per sentence: (number, time, person, place) cue = the question asks for it and the sentence
    offers one that the question does not already contain (an answer is new information).

    >>> type_cues("How many vetoes were there?", ["They cast three vetoes.", "They vetoed it."]).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    >>> type_cues("Who stayed in Washington?", ["In Washington, Gallant stayed.", "Washington stayed."])[:, 2].tolist()
    [1.0, 0.0]
    """
    wants = question_types(question)
    out = np.zeros((len(texts), 4), dtype=np.float32)
    if not any(wants):
        return out
    known = {w.lower() for w in _WORD.findall(question)}
    for i, text in enumerate(texts):
        if wants[0]:
            out[i, 0] = _new(_NUMBER, text, known)
        if wants[1]:
            out[i, 1] = _new(_TIME, text, known)
        if wants[2] or wants[3]:
            has_name = _new(_CAPITALISED, text, known)
            out[i, 2] = wants[2] and has_name
            out[i, 3] = wants[3] and has_name
    return out



# ----- richer answer types, the question's focus, clutter ---------------------------------------------

_MONTHS = "january february march april may june july august september october november december"
#: Capitalised words that date, not name: a question's "in September" or "on Tuesday" is no name to look for.
CALENDAR_WORDS = frozenset(f"{_MONTHS} monday tuesday wednesday thursday friday saturday sunday".split())
_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand thousands "
    "million millions billion billions trillion dozen dozens half quarter"
)
#: What a sentence can offer, by answer type.
OFFERS: dict[str, re.Pattern[str]] = {
    "money": re.compile(r"[$€£¥]\s?\d|\b\d[\d,.]*\s?(?:dollars?|euros?|pounds?|cents?|yuan|yen|rupees?)\b", re.I),
    "percent": re.compile(r"\b\d[\d,.]*\s?(?:%|percent\b|per cent\b|percentage points?\b)", re.I),
    "number": re.compile(r"\b\d[\d,.]*\b|\b(?:" + "|".join(_NUMBER_WORDS.split()) + r")\b", re.I),
    "time": re.compile(
        r"\b(?:1[5-9]\d\d|20\d\d)s?\b|\b(?:" + "|".join(_MONTHS.split()) + r")\b|\b(?:jan|feb|mar|apr|jun|jul|aug|sept?"
        r"|oct|nov|dec)\.|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|tomorrow"
        r"|tonight|decade|century|centuries)\b|\b\d{1,2}(?:st|nd|rd|th)\b|\b\d{1,2}:\d\d\b"
        r"|\b\d+\s(?:years?|months?|weeks?|days?|hours?)\b",
        re.I,
    ),
    "quote": re.compile(r"[\"“”]|\b(?:said|says|told|wrote|added|stated|tweeted|announced)\b", re.I),
}
_ASKS: dict[str, re.Pattern[str]] = {
    "money": re.compile(
        r"\bhow much\b|\bwhat (?:was|is|were|are) the (?:cost|price|value|amount|fine|salary|budget|bail|bond|reward"
        r"|jackpot)|\b(?:cost|price|paid|pay|worth|raised|spent|fine|budget)\b", re.I),
    "percent": re.compile(r"\bwhat (?:percentage|percent|share|proportion|fraction)|\bpercent", re.I),
    "number": re.compile(
        r"\bhow (?:many|much|long|old|far|large|big|tall|high|often|fast|deep|wide|heavy)\b|\bwhat (?:number|amount"
        r"|size|magnitude|age|rate|score|total|height|speed|temperature|toll|count)\b", re.I),
    "time": re.compile(
        r"\bwhen\b|\b(?:what|which|in what|on what) (?:year|years|century|decade|date|day|month|time|period|era|age"
        r"|season)\b|\bhow long\b", re.I),
    "person": re.compile(
        r"\bwho\b|\bwhom\b|\bwhose\b|\bwhich (?:person|man|woman|official|president|leader|senator|lawmaker|minister"
        r"|analyst|author|actor|actress|player|coach|judge|candidate|mp|ceo|executive|spokesperson|spokesman"
        r"|spokeswoman|singer|artist|rapper|scientist|expert|doctor|member|journalist|reporter|governor|mayor"
        r"|politician|director|founder)\b|\bname of the (?:person|man|woman|official|ceo)\b", re.I),
    "place": re.compile(
        r"\bwhere\b|\b(?:what|which|in what|in which) (?:country|countries|city|cities|state|states|region|place"
        r"|location|continent|nation|town|island|county|province|area|capital|neighborhood|district|village"
        r"|territory)\b", re.I),
    "name": re.compile(
        r"\b(?:what|which) (?:is|was|were|are) (?:the )?names?\b|\b(?:what|which) (?:company|companies|organization"
        r"|group|team|show|film|movie|book|song|brand|agency|network|airline|app|platform|party|species|storm"
        r"|hurricane|mission|virus|disease|drug|product|ship|event|award|program|law|bill|university|school|website"
        r"|newspaper|band|title)\b|\bwhich one\b|\bcalled\b|\bnamed\b", re.I),
    "quote": re.compile(
        r"\bwhat did .{0,60}\b(?:say|said|tell|write|tweet|post|announce|declare)\b|\bwho said\b|\baccording to\b",
        re.I),
}
ANSWER_TYPES: tuple[str, ...] = tuple(_ASKS)
_PROPER = re.compile(r"\b[A-Z][\w’'.-]*(?:\s+(?:of|de|the|and|&|van|von|al|bin|la|le)?\s*[A-Z][\w’'.-]*)*")
_TOKEN = re.compile(r"[\w’'-]+")
#: Page furniture rather than reporting: video teasers, photo credits, bylines, datelines alone.
_CLUTTER_ANYWHERE = re.compile(
    r"JUST WATCHED|Replay More Videos|MUST WATCH|Hide Caption|Getty Images|Click to|Read More\b|Scroll down", re.I
)
_CLUTTER_LINE = re.compile(
    r"(?:Photos?:|Video\b|Sign up\b|Subscribe\b|Watch:|Updated \d|Published \d"
    r"|By [A-Z][\w.’'-]+(?:\s[A-Z][\w.’'-]+)*,?\s*(?:CNN|Reuters|AP|AFP)?\s*$"
    r"|\(?(?:CNN|Reuters|AP|AFP)\)?\s*[-—–]*\s*$)",
    re.I,
)


@lru_cache(maxsize=1 << 17)
def offered(text: str, kind: str) -> tuple[str, ...]:
    """The items of one answer type a sentence offers, lower-cased; found once per sentence text and type
    (queries ask about the same sentences again), and only for the types a question asks for."""
    return tuple(m.group(0).lower().strip() for m in OFFERS[kind].finditer(text))


@lru_cache(maxsize=1 << 16)
def names_in(text: str) -> tuple[tuple[str, ...], ...]:
    """Capitalised runs (not a lone sentence-initial word), as lower-cased words."""
    names = []
    for m in _PROPER.finditer(text):
        name = m.group(0)
        before = text[max(0, m.start() - 2) : m.start()].strip()
        if (m.start() == 0 or before in (".", '"', "“")) and " " not in name:
            continue  # a capital that only starts a sentence is no evidence of a name
        names.append(tuple(_TOKEN.findall(name.lower())))
    return tuple(names)


def asked_types(question: str) -> frozenset[str]:
    """The answer types a question asks for (a "how much" question may want money and a number).

    >>> sorted(asked_types("How much was each man's bond?"))
    ['money', 'number']
    >>> sorted(asked_types("Which company announced it?")), sorted(asked_types("Why did it fail?"))
    (['name'], [])
    """
    wanted = {t for t, p in _ASKS.items() if p.search(question)}
    if "percent" in wanted:
        wanted.discard("money")
    return frozenset(wanted)


#: A full stop that ends an abbreviation, not a sentence: "U.N.", "U.S.", "J.", "Mr.", "Gen.".
_ABBREVIATION = re.compile(
    r"(?:\b(?:[A-Za-z]\.){2,}|\b[A-Z]\.|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Gov|Sen|Rep|Lt|Col|Sgt|Capt|Prof|Inc|Corp"
    r"|Co|Ltd|vs|No)\.)$"
)
_CLAUSE_END = re.compile(r"[.!?]+[\"”’')]*\s+(?=[\"“‘(]?[A-Z0-9])")


def focus(question: str) -> str:
    """The clause that asks: news-quiz questions open with context ("Hurricane Ian hit Florida. How many…?").

    >>> focus("Ian hit Florida this week. How many were without power?")
    'How many were without power?'
    >>> focus("Who drafted the U.N. resolution?"), focus("The U.S. Senate voted. What did Mr. Smith say?")
    ('Who drafted the U.N. resolution?', 'What did Mr. Smith say?')
    """
    q = question.strip()
    cut = 0
    for m in _CLAUSE_END.finditer(q):
        if m.group().startswith(".") and _ABBREVIATION.search(q[: m.start() + 1]):
            continue
        cut = m.end()
    return q[cut:] or question


def offers(question: str, texts: Sequence[str]) -> NDArray[np.bool_]:
    """Per text: does it offer something of a type the question asks for, that the question lacks?

    >>> offers("How many people died?", ["At least 12 people died.", "People died."]).tolist()
    [True, False]
    >>> offers("Which company makes it?", ["It is made by Acme Corp in Ohio.", "It is made here."]).tolist()
    [True, False]
    """
    wanted = asked_types(question)
    out = np.zeros(len(texts), dtype=np.bool_)
    if not wanted:
        return out
    q = question.lower()
    words = set(_TOKEN.findall(q))
    typed = [t for t in wanted if t in OFFERS]
    named = bool(wanted & {"person", "place", "name"})
    for i, text in enumerate(texts):
        if not text:
            continue
        found = any(item not in q for t in typed for item in offered(text, t))
        if not found and named:
            found = any(not all(w in words for w in name) for name in names_in(text))
        out[i] = found
    return out


@lru_cache(maxsize=1 << 16)
def is_clutter(text: str) -> bool:
    """Page furniture (video teasers, captions credits, a byline or dateline on its own line).

    >>> is_clutter("JUST WATCHED"), is_clutter("By Jane Doe, CNN"), is_clutter("The quake hit at dawn.")
    (True, True, False)
    """
    return bool(_CLUTTER_ANYWHERE.search(text) or _CLUTTER_LINE.match(text.lstrip()))
