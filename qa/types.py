"""The values that flow between pipeline stages: one frozen dataclass per stage result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

#: The whole answer when the articles do not hold one.
ABSTAIN_TEXT = "The article does not say."


@dataclass(frozen=True)
class Document:
    """A whole article as read from a file, a link, a feed or given as text; offsets are relative to ``text``.

    ``text`` is the canonical text: what is stored, indexed, cited and highlighted. An article read
    with metadata begins with a short header that is part of it (title line, byline, dateline:
    ``qa.ingest.header``), so questions about who wrote it or when are answered from cited text.
    The metadata fields are never invented: ``None`` (or ``()``) when the source does not say.
    """

    doc_id: str  # stable and unique: the URL, or the file's path relative to where it was indexed from
    text: str
    source: str = ""  # where it was read from: a path, a URL, ``upload:NAME``, ``FEED_URL#entry``
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None  # ISO 8601 date or datetime, as the source gives it
    modified: str | None = None  # ditto; only when the source says so, never copied from ``published``
    outlet: str | None = None  # the site or publication's name
    url: str | None = None  # the canonical address of the article
    language: str | None = None  # as declared by the source ("en", "en-US"); no detection
    notice: str | None = None  # what the reader had to do, e.g. no article found: the visible text was indexed
    revision: str | None = None  # what the source said about this version (a feed entry's id and dates)


@dataclass(frozen=True)
class Sentence:
    """One sentence, always an exact slice ``document.text[start:end]``."""

    doc_id: str
    n: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """A retrieved sentence with the score that ranked it (higher is better)."""

    sentence: Sentence
    score: float
    rank: int
    dense: float = 0.0
    lexical: float = 0.0
    context_for: int = -1  # the rank of the retrieved hit this sentence accompanies (-1: retrieved itself)
    needed: bool = False  # as context: the hit cannot be understood without it (an answer cites both)
    article: str = ""  # how its article is named to people ("Title — Outlet, 6 Feb 2018"), when known


@dataclass(frozen=True)
class Retrieval:
    """The ranked sentences for one question, and the evidence that they answer it at all."""

    query: str  # what was searched: the question, or a follow-up made standalone
    hits: tuple[Hit, ...]
    confidence: float  # fitted belief that the corpus answers the question
    threshold: float  # abstain below it

    @property
    def abstains(self) -> bool:
        """True when nothing was found, or the evidence is below the fitted threshold."""
        return not self.hits or self.confidence < self.threshold


@dataclass(frozen=True)
class Citation:
    """A numbered reference from an answer back to one exact source sentence."""

    n: int
    doc_id: str
    text: str
    start: int
    end: int
    score: float
    title: str | None = None  # the cited document's metadata, for the reference list
    published: str | None = None
    url: str | None = None
    outlet: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "sentence": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "title": self.title,
            "published": self.published,
            "url": self.url,
            "outlet": self.outlet,
        }


@dataclass(frozen=True)
class ClaimCheck:
    """One sentence of an answer and its check against the sources: where it is in ``Answer.text``,
    what it cites there, and the verdict (``None`` when it was not checked, as an extractive quote is not)."""

    text: str  # what it claims: without markers, bullet or "according to the article" lead-in
    start: int  # ``Answer.text[start:end]`` is the sentence as shown, markers included
    end: int
    citations: tuple[int, ...]  # the citation numbers it carries
    supported: bool | None
    score: float | None  # the checker's probability of support (0.5 is its threshold)

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "supported": self.supported,
            "score": None if self.score is None else round(self.score, 4),
            "citations": list(self.citations),
        }


@dataclass(frozen=True)
class Answer:
    """What the user gets: text with ``[n]`` markers and the citations they point to."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    backend: str = "extractive"
    notice: str | None = None
    unsupported: list[str] = field(default_factory=list)
    related: list[Citation] = field(default_factory=list)  # on an abstention: on topic, but not an answer
    claims: list[ClaimCheck] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The stable JSON shape printed by ``qa ask --json`` and returned by the UI API."""
        return {
            "answer": self.text,
            "abstained": self.abstained,
            "backend": self.backend,
            "notice": self.notice,
            "unsupported": list(self.unsupported),
            "citations": [c.to_json() for c in self.citations],
            "related": [c.to_json() for c in self.related],
            "claims": [c.to_json() for c in self.claims],
        }


@dataclass(frozen=True)
class IndexChange:
    """What adding or removing documents did, for the message the user sees."""

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()  # ids that were indexed before with another content
    unchanged: tuple[str, ...] = ()  # given again with the same content: nothing embedded
    removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # near-duplicates, pages without an article, skipped feed entries


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, as the UI and ``Pipeline.ask(history=...)`` pass it."""

    role: str
    content: str


def published_date(published: str | None) -> date | None:
    """The day of an ISO 8601 publication date or datetime (``Document.published``); None when unknown
    or not a date. The date filter and the stores' date fields read it here, so they agree.

    >>> published_date("2024-03-25T10:00:00Z"), published_date("March"), published_date(None)
    (datetime.date(2024, 3, 25), None, None)
    """
    if not published:
        return None
    try:
        return date.fromisoformat(published[:10])
    except ValueError:
        return None

