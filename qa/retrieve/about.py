"""Questions about an article itself (who wrote it, when it was published, which outlet, its headline),
answered from the header its canonical text begins with.

The fitted ranker scores sentences for content questions; "Who wrote it?" shares no words with
"By Jane Doe." So, as a small rule outside the fitted weights: when a question asks for an article's
author, date, outlet or headline (the patterns below), and it names the article (most of its title's
words), or points at it ("it", "this article") while only one article is in scope or the ranking
already points at one, that article's header line is put first. The line is a sentence of the text,
cited with exact offsets like any other; an article without that line (no known author) gets no help,
and the question is answered, or abstains, as before.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from qa.index import SentenceIndex
from qa.ingest import header_spans
from qa.types import Document, Hit

_WORD = re.compile(r"[^\W_]+")
_STOP = frozenset(
    "a an the of in on at to for and or but is are was were be been by with from as about after over into "
    "its it this that these those who what when which where why how did does do has have had s".split()
)
#: (header line, pattern): asked in this order, the first match wins.
INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("byline", re.compile(
        r"\b(?:who\s+(?:wrote|writes|has\s+written|authored|penned|is\s+the\s+(?:author|writer|reporter|journalist))"
        r"|(?:author|authors|byline|writer|reporter|journalist)s?\s+(?:of|is|are|was|were)\b|by\s+whom"
        r"|whose\s+(?:article|story|piece|report)|written\s+by\s+whom)", re.IGNORECASE)),
    ("dateline", re.compile(
        r"\b(?:when\s+(?:was|were|did|is|has)\b.{0,240}?\b(?:publish|post|writ|releas|updat|dated|appear|come\s+out"
        r"|came\s+out|print)\w*|(?:what|which)\s+(?:date|day)\b|(?:publication|release)\s+date|date\s+of\s+"
        r"(?:publication|the\s+(?:article|story|piece|report))|how\s+(?:old|recent)\s+is)", re.IGNORECASE)),
    ("dateline", re.compile(
        r"\b(?:(?:which|what)\s+(?:outlet|newspaper|paper|publication|site|website|magazine|media|news\s*"
        r"(?:outlet|organi[sz]ation|site|agency|source)|source)\b|who\s+(?:published|reported|ran|carried|"
        r"printed|put\s+out)\b|where\s+(?:was|is)\b.{0,240}?\b(?:published|posted|printed)\b)", re.IGNORECASE)),
    ("title", re.compile(r"\b(?:(?:what|which)\s+(?:is|was)\s+the\s+(?:title|headline)|(?:title|headline)\s+of)\b",
                         re.IGNORECASE)),
)
#: A question pointing at an article: "it", "this", "the WeWork story"; one asking which outlet ran something
#: is about an article whatever it names.
_POINTS_AT_IT = re.compile(
    r"\b(?:it|this|that|article|story|piece|report|item|post|news|outlet|newspaper|publication|website)\b",
    re.IGNORECASE,
)


def asked_line(question: str) -> str | None:
    """The header line a question asks for (``byline``, ``dateline``, ``title``), or None.

    >>> [asked_line(q) for q in ("Who wrote it?", "When was the vote article published?",
    ...                          "Which outlet reported the strike?", "Who won the vote?")]
    ['byline', 'dateline', 'dateline', None]
    """
    for line, pattern in INTENTS:
        if pattern.search(question):
            return line
    return None


def _words(text: str) -> set[str]:
    return {w for w in (t.lower() for t in _WORD.findall(text)) if w not in _STOP}


def named_article(question: str, documents: Sequence[Document]) -> Document | None:
    """The article whose title the question names: most of the title's words are in the question."""
    asked = _words(question)
    best: tuple[float, int, Document] | None = None
    for doc in documents:
        title = _words(doc.title or "")
        if not title:
            continue
        shared = len(title & asked)
        cover = shared / len(title)
        if shared >= min(2, len(title)) and cover >= 0.6 and (best is None or (cover, shared) > best[:2]):
            best = (cover, shared, doc)
    return best[2] if best else None


def header_first(
    question: str,
    index: SentenceIndex,
    hits: Sequence[Hit],
    doc_ids: Collection[str] | None,
) -> tuple[Hit, ...] | None:
    """The hits with the asked-for header line first, or None when the question is not about an article's
    own metadata, or the article or its line cannot be told."""
    line = asked_line(question)
    if line is None:
        return None
    scope = [d for i, d in index.documents.items() if doc_ids is None or i in doc_ids]
    target = named_article(question, scope)
    if target is None and _POINTS_AT_IT.search(question):
        if len(scope) == 1:
            target = scope[0]
        elif hits:
            target = index.documents.get(hits[0].sentence.doc_id)
    if target is None:
        return None
    span = header_spans(target).get(line)
    if span is None:
        return None
    sentence = next((index.sentences[r] for r in index.rows_of(target.doc_id)
                     if (index.sentences[r].start, index.sentences[r].end) == span), None)
    if sentence is None:
        return None
    top = max((h.score for h in hits), default=0.0)
    first = Hit(sentence=sentence, score=top + 5.0, rank=0)  # a clear winner: no runner-up is cited beside it
    rest = [h for h in hits if h.sentence != sentence][: max(len(hits), 1) - 1]
    return (first, *(Hit(h.sentence, h.score, i + 1, h.dense, h.lexical) for i, h in enumerate(rest)))
