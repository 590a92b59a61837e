"""Evidence that the best sentence actually answers: what an on-topic question the article does not answer lacks.

A question the article does not answer usually still matches it well (same people, same event), so
topical scores alone cannot tell it apart. What gives it away is local to the best sentence and its
neighbours: an important word of the clause that asks (not of the context a news-quiz question opens with,
which may come from anywhere in the article) with no close token there (late interaction, minimum instead
of mean), a number or a name the question states that the passage does not contain, an asked answer type
(a number, a date, a name) that the passage does not offer, and asking-clause words the corpus has never
seen; and the top sentence alone against the asking clause: whether it fills the asked slot (a count of
the asked noun, a year, a person's name: ``slots``) and which of the clause's words it lacks. These are
computed for the top candidate after ranking; the runner-up gets the text-level part only
(``RUNNER_FEATURES``, ``runner_probe``), since the answer is often cited second.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.index import SentenceIndex
from qa.index.terms import QUESTION_WORDS, Word, lower_plain, stopwords, words_of
from qa.retrieve.features import CALENDAR_WORDS, FEATURES, asked_types, focus, offers
from qa.retrieve.slots import YEAR, slot_filled
from qa.types import published_date

if TYPE_CHECKING:
    from datetime import date

    from numpy.typing import NDArray

    from qa.index.lexical import LexicalIndex
    from qa.retrieve.candidates import Candidates
    from qa.retrieve.rerank import QueryTokens

#: Query-level evidence about the top candidate's passage (see the module docstring), in this order.
PROBE_FEATURES: tuple[str, ...] = (
    "late_min",  # the worst-matched important token of the asking clause: its best cosine in the passage
    "late_min_own",  # the same in the top sentence alone
    "late_low",  # the 20th percentile of the asking clause's important tokens' best cosines in the passage
    "number_missing",  # the question states a number the passage lacks (the article's own year is not lacking)
    "name_missing",  # share of the question's names (capitalised words) the passage lacks
    "asks_type",  # the question asks for a number, a date, a name…
    "top_offers",  # the top sentence offers it (1 when nothing is asked)
    "focus_unknown",  # share of the asking clause's IDF mass in terms the corpus has never seen (``unknown_focus``)
    "year_unknown",  # the question names a year its article never mentions and is not dated (``unknown_year``)
    "slot_filled",  # the top sentence fills the asked slot: a count of the asked noun, a year, a name (``slots``)
    "focus_own",  # the top sentence's IDF coverage of the asking clause (not of the context a quiz opens with)
    "focus_lacks",  # how many of the asking clause's content words the top sentence lacks (stems)
    "dated",  # the top sentence's article carries a publication date (news): its own abstention threshold
)
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][a-z][\w’'-]*(?:[ \t]+[A-Z][a-z][\w’'-]*)*")
_POSSESSIVE = re.compile(r"'s?$")
#: Question tokens whose weight is at least this quantile count as important for the minimum.
IMPORTANT_QUANTILE = 0.5

TokenSource = Callable[[Sequence[int]], "list[NDArray[np.float32]]"]


#: The probe features read of the runner-up too: the answer cited second, where the top sentence only
#: sets the scene ("The company announced…" before the figure), fills the slot the top one does not. All are
#: read from the text of the sentence and its neighbours: no token vectors, no look at the whole article.
RUNNER_FEATURES: tuple[str, ...] = (
    "number_missing", "name_missing", "top_offers", "slot_filled", "focus_own", "focus_lacks",
)


def probe(
    query: str, cand: Candidates, top: int, index: SentenceIndex, tokens: TokenSource | None
) -> NDArray[np.float64]:
    """``PROBE_FEATURES`` for the candidate at position ``top`` (its sentence and its two neighbours)."""
    row = int(cand.rows[top])
    window = _window(index, row)
    late_min = late_min_own = late_low = 0.0
    qt = cand.query_tokens
    both: NDArray[np.float32] | None = None
    if qt is not None and tokens is not None and len(qt.vectors):
        vectors = tokens(window)
        own = vectors[window.index(row)]
        both = np.vstack(vectors)
        asking = qt.offsets[:, 0] >= max(query.rfind(focus(query)), 0)  # the clause that asks, not its context
        pool = asking if asking.any() else np.ones(len(qt.weights), dtype=np.bool_)
        important = pool & (qt.weights >= np.quantile(qt.weights[pool], IMPORTANT_QUANTILE))
        if important.any() and len(both) and len(own):
            best = (qt.vectors[important] @ both.T).max(axis=1)
            late_min = float(best.min())
            late_low = float(np.quantile(best, 0.2))
            late_min_own = float((qt.vectors[important] @ own.T).max(axis=1).min())
    doc_id = index.sentences[row].doc_id
    dated = published_date(index.documents[doc_id].published)
    text = _text_evidence(query, cand, top, index, window, dated)
    rows = index.rows_of(doc_id)
    focus_unknown = unknown_focus(query, index.lexical, qt if both is not None else None, both, rows)
    year_unknown = unknown_year(query, index.lexical, rows, dated.year if dated else None)
    values = {**text, "late_min": late_min, "late_min_own": late_min_own, "late_low": late_low,
              "focus_unknown": focus_unknown, "year_unknown": year_unknown, "dated": float(dated is not None)}
    return np.array([values[name] for name in PROBE_FEATURES], dtype=np.float64)


def runner_probe(query: str, cand: Candidates, position: int, index: SentenceIndex) -> NDArray[np.float64]:
    """``RUNNER_FEATURES`` for the candidate at ``position``: the text-level part of ``probe``, without its
    token lookups and whole-article checks, which the runner-up's evidence does not use."""
    row = int(cand.rows[position])
    dated = published_date(index.documents[index.sentences[row].doc_id].published)
    text = _text_evidence(query, cand, position, index, _window(index, row), dated)
    return np.array([text[name] for name in RUNNER_FEATURES], dtype=np.float64)


@dataclass(frozen=True)
class PassageProbe:
    """``scorer.Probe`` over one question's candidates in an index: ``probe`` for the top candidate,
    ``runner_probe`` for the runner-up."""

    query: str
    cand: Candidates
    index: SentenceIndex
    tokens: TokenSource | None

    def top(self, position: int) -> NDArray[np.float64]:
        return probe(self.query, self.cand, position, self.index, self.tokens)

    def runner(self, position: int) -> NDArray[np.float64]:
        return runner_probe(self.query, self.cand, position, self.index)


def _window(index: SentenceIndex, row: int) -> list[int]:
    """The sentence's row with its neighbours' (those that exist), in order."""
    from qa.retrieve.candidates import neighbours

    prev, nxt = neighbours(index, np.array([row], dtype=np.int64))
    return [r for r in (int(prev[0]), row, int(nxt[0])) if r >= 0]


def _text_evidence(
    query: str, cand: Candidates, pos: int, index: SentenceIndex, window: Sequence[int], dated: date | None
) -> dict[str, float]:
    """What the passage's and the sentence's words tell (``RUNNER_FEATURES`` and ``asks_type``); ``dated``: the
    article's date."""
    row = int(cand.rows[pos])
    passage = " ".join(index.sentences[r].text for r in window)
    lowered = passage.lower()
    known = f"{lowered} {dated.year}" if dated else lowered  # "in June 2022" of an article dated 2022
    numbers = [m.group(0).strip(".,") for m in _NUMBER.finditer(query)]
    text = index.sentences[row].text
    asks = bool(asked_types(query))
    return {
        "number_missing": float(any(n not in known for n in numbers)),
        "name_missing": missing_names(query, passage),
        "asks_type": float(asks),
        "top_offers": float(offers(query, [text])[0]) if asks else 1.0,
        "slot_filled": slot_filled(query, text),
        "focus_own": float(cand.features[pos, FEATURES.index("focus_coverage")]),
        "focus_lacks": lacking(query, text),
    }


def missing_names(query: str, passage: str) -> float:
    """Share of the question's names (runs of capitalised words after its first, not a month or a weekday)
    that ``passage`` lacks. A run is there when its last word is, as news names a person by surname after
    the first mention; read without a possessive and with one apostrophe ("Peru's" is in "Peru’s history").

    >>> missing_names("Who became Peru's president in December?", "She is the first president in Peru’s history.")
    0.0
    >>> missing_names("Where did Joseph Chahayed meet Biden?", "Chahayed said so.")
    0.5
    """
    lowered = lower_plain(passage)
    names = _surnames(query)
    return sum(n not in lowered for n in names) / len(names) if names else 0.0


def _surnames(query: str) -> list[str]:
    """The last word of each name in ``query``, lower-cased; a month, a weekday or a possessive ends a name.

    >>> _surnames("Who won Colombia's June 2022 run-off against Rodolfo Hernández?")
    ['colombia', 'hernández']
    """
    out: list[str] = []
    for m in _NAME.finditer(query):
        run: list[str] = []
        for word in lower_plain(m.group(0)).split():
            if word not in CALENDAR_WORDS:
                run.append(word)
            if run and (word in CALENDAR_WORDS or _POSSESSIVE.search(word)):
                out.append(_POSSESSIVE.sub("", run[-1]))
                run = []
        if run:
            out.append(run[-1])
    return out


def lacking(query: str, text: str) -> float:
    """How many content words of the asking clause (stems, not question words) ``text`` lacks: the
    sentence that answers "Who will sing the national anthem?" says "sing" and "anthem", the on-topic
    one that does not ("Rihanna will perform at the halftime show") lacks both.

    >>> lacking("Who will sing the anthem?", "Rihanna will perform at halftime."), lacking("Who signed?", "She signs.")
    (2.0, 0.0)
    """
    asked = {w.stem for w in asking_words(query)}
    return float(len(asked - {w.stem for w in words_of(text)}))


def asking_words(query: str) -> list[Word]:
    """The content words (not stop or question words) of the clause that asks, spans in ``query``.

    >>> [w.word for w in asking_words("Rihanna will perform. Who will sing the anthem?")]
    ['sing', 'anthem']
    """
    clause = focus(query)
    stop = stopwords() | QUESTION_WORDS
    return [w for w in words_of(clause, max(query.rfind(clause), 0)) if w.word not in stop]


def unknown_year(query: str, lexical: LexicalIndex, rows: Sequence[int], dated: int | None = None) -> float:
    """1 when the question names a year that the article (``rows``) never mentions and is not dated
    (``dated``): "How many died in the June 2019 quake?" of a 2022 article that speaks of 2015 only.
    Unlike ``number_missing``, which looks at the best passage, this looks at the whole article, so it
    stays 0 for a question whose date is written elsewhere in the article than its answer.

    >>> from qa.index.lexical import LexicalIndex
    >>> lexical = LexicalIndex(["A quake struck in 2015.", "More than 300 people died."])
    >>> [unknown_year(q, lexical, [0, 1], 2022) for q in ("Who died in 2019?", "Who died in 2015?", "In 2022?")]
    [1.0, 0.0, 0.0]
    """
    years = {y for y in YEAR.findall(query) if dated is None or int(y) != dated}
    if not years:
        return 0.0
    stems = {y: words_of(y)[0].stem for y in years}
    held = held_terms(lexical, sorted(set(stems.values())), rows)
    return float(any(stems[y] not in held for y in years))


def unknown_focus(
    query: str,
    lexical: LexicalIndex,
    qt: QueryTokens | None = None,
    passage: NDArray[np.float32] | None = None,
    rows: Sequence[int] | None = None,
) -> float:
    """Share of the asking clause's IDF mass in words the article never uses, each discounted by how
    closely the passage's tokens match it anyway (the mean over the word's tokens of their best cosine):
    a paraphrase ("stayed" where the article says "remained") is not a missing fact. Without token
    vectors an unseen word counts whole.

    "The article" is ``rows`` (the top sentence's document), else the whole corpus: in a library of
    many articles, a word another article uses still tells that this one does not answer.

    >>> from qa.index.lexical import LexicalIndex
    >>> lexical = LexicalIndex(["Gallant remained in Washington.", "Hamas welcomed the resolution."])
    >>> unknown_focus("Who remained in Washington?", lexical), unknown_focus("Who stayed in Washington?", lexical) > 0.5
    (0.0, True)
    >>> unknown_focus("Who welcomed the resolution?", lexical, rows=[0]) > 0.5  # the other article's word
    True
    """
    words = asking_words(query)
    if not words:
        return 0.0
    stems = [w.stem for w in words]
    held = held_terms(lexical, stems, rows) if rows is not None else frozenset(s for s in stems if lexical.knows(s))
    mass = missing = 0.0
    seen: set[str] = set()
    for begin, end, _, stem in words:
        if stem in seen:
            continue
        seen.add(stem)
        weight = lexical.term_idf(stem)
        mass += weight
        if stem in held:
            continue
        match = 0.0
        if qt is not None and passage is not None and len(passage):
            inside = (qt.offsets[:, 0] >= begin) & (qt.offsets[:, 1] <= end)
            if inside.any():
                match = float(np.clip((qt.vectors[inside] @ passage.T).max(axis=1), 0.0, 1.0).mean())
        missing += weight * (1.0 - match)
    return missing / mass if mass > 0 else 0.0


def held_terms(lexical: LexicalIndex, stems: Sequence[str], rows: Sequence[int]) -> frozenset[str]:
    """The stemmed terms that at least one of ``rows`` (a document's) holds.

    A document's rows are usually one run: then each term costs one binary search in its postings, however
    long the document; other rows are looked up one by one.

    >>> from qa.index.lexical import LexicalIndex
    >>> lexical = LexicalIndex(["Gallant remained in Washington.", "The governor signed the bill."])
    >>> sorted(held_terms(lexical, ["remain", "sign", "unseen"], [0])), sorted(held_terms(lexical, ["sign"], [1, 0]))
    (['remain'], ['sign'])
    """
    if not len(rows):
        return frozenset()
    first, last = int(rows[0]), int(rows[-1])
    run = last - first + 1 == len(rows)
    wanted = np.sort(np.asarray(rows, dtype=np.int64)) if not run else None
    held: set[str] = set()
    for stem, postings in zip(stems, lexical.postings_of(stems), strict=True):
        if postings is None or not len(postings):
            continue
        if wanted is None:
            at = int(np.searchsorted(postings, first))
            found = at < len(postings) and int(postings[at]) <= last
        else:
            pos = np.minimum(np.searchsorted(postings, wanted), len(postings) - 1)
            found = bool((postings[pos] == wanted).any())
        if found:
            held.add(stem)
    return frozenset(held)
