"""Stage-1 features of a candidate sentence: their names, and the answer-type cues among them."""

from __future__ import annotations

import re
from collections.abc import Sequence
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

