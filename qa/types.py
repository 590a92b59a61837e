"""The values that flow between pipeline stages: one frozen dataclass per stage result."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The whole answer when the articles do not hold one.
ABSTAIN_TEXT = "The article does not say."


@dataclass(frozen=True)
class Document:
    """A whole article as read from disk or given as text; offsets are relative to ``text``."""

    doc_id: str
    text: str
    source: str = ""


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
    claims: list[ClaimCheck] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The stable JSON shape printed by ``qa ask --json`` and returned by the UI API."""
        return {
            "answer": self.text,
            "abstained": self.abstained,
            "backend": self.backend,
            "notice": self.notice,
            "unsupported": list(self.unsupported),
            "citations": [
                {
                    "n": c.n,
                    "doc_id": c.doc_id,
                    "sentence": c.text,
                    "start": c.start,
                    "end": c.end,
                    "score": round(c.score, 4),
                }
                for c in self.citations
            ],
            "claims": [c.to_json() for c in self.claims],
        }


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, as the UI and ``Pipeline.ask(history=...)`` pass it."""

    role: str
    content: str
