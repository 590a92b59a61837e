"""Word terms as BM25 sees them: lower-cased, stop-worded, stemmed. Shared by the lexical index, the
rerank's token weights and the claim check, so all three agree on what a "content word" is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

WORDS = re.compile(r"(?u)\b\w\w+\b")  # bm25s's token pattern: a word as the lexical index sees it


class Word(NamedTuple):
    """A word of a text as the lexical index sees it, with its character span (to find its tokens)."""

    start: int
    end: int
    word: str  # lower-cased
    stem: str


def words_of(text: str, offset: int = 0) -> list[Word]:
    """Each word of ``text`` (bm25s's pattern), lower-cased and stemmed, spans shifted by ``offset``.

    >>> words_of("Who stayed?", 10)
    [Word(start=10, end=13, word='who', stem='who'), Word(start=14, end=20, word='stayed', stem='stay')]
    """
    found = [(m.start() + offset, m.end() + offset, m.group().lower()) for m in WORDS.finditer(text)]
    stems = stemmer().stemWords([w for _, _, w in found]) if found else []
    return [Word(s, e, w, stem) for (s, e, w), stem in zip(found, stems, strict=True)]


def lower_plain(text: str) -> str:
    """``text`` lower-cased with the typographic apostrophe made plain: news writes "Peru’s" where a
    question typed on a keyboard writes "Peru's", and the two must compare equal.

    >>> lower_plain("Peru’s")
    "peru's"
    """
    return text.lower().replace("\u2019", "'")


@lru_cache(maxsize=1)
def stemmer() -> Any:
    """English Snowball stemmer (PyStemmer), loaded once."""
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """bm25s's English stop words."""
    import bm25s.stopwords

    return frozenset(bm25s.stopwords.STOPWORDS_EN)


#: Question words: no lexical evidence (an article rarely contains "what"), but their contextual token
#: embeddings carry the answer type ("when" aligns with dates), so the rerank weighs them fully.
WH_WORDS = frozenset("what which who whom whose when where why how".split())
#: The frame of a question, not its content: left out of a question's terms and given no weight in
#: the rerank, so "What was cancelled?" is judged by "cancelled" alone and "Tell me about X" by "X"
#: (as unknown words, "what" or "me" would otherwise weigh the most).
QUESTION_WORDS = WH_WORDS | frozenset(
    """whether do does did done doing can could would should
    shall will may might must has have had having is am are was were be been being many much tell me
    i my mine myself you your yours we us our they them their he him his she her it its this that these
    those there here about above across after against along among around before behind below between
    beyond during except from into like near off onto out over since than through throughout till toward
    towards under until upon within without also just only even ever very really please know explain
    describe give say said says according article text""".split()
)


def tokenize(texts: Sequence[str], *, question: bool = False) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed word tokens for BM25 (``question``: without question words).

    >>> tokenize(["What was cancelled?"], question=True), tokenize(["What was cancelled?"])
    ([['cancel']], [['what', 'cancel']])
    """
    import bm25s

    stop: str | list[str] = sorted(stopwords() | QUESTION_WORDS) if question else "en"
    return bm25s.tokenize(  # type: ignore[no-any-return]
        list(texts), stopwords=stop, stemmer=stemmer(), return_ids=False, show_progress=False
    )

