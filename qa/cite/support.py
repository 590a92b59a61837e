"""What an answer's sentences end up citing, decided by the claim checker (``qa.cite.evidence``).

* A claim its cited sentences support keeps them (less any cited sentence that adds nothing to it).
* A claim its citations do not support is re-attributed to the sentences that do, if the check finds
  any among the candidates (the retrieved sentences and the rest of their documents).
* Otherwise it is unsupported: it keeps the citations the model gave it, so the reader can look, and is
  listed in ``Answer.unsupported`` and flagged in the chat as not verified by the cited sentence. An
  uncited claim is attributed only when the check says a source supports it.

Sentences that are not claims (questions, lead-ins ending in ":", "the sources do not say") are not
checked and keep what they cite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.types import Hit

if TYPE_CHECKING:
    from qa.cite.evidence import ClaimChecker


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer: where it is, what it cites, what it claims, and whether to check it."""

    start: int
    end: int
    text: str  # the sentence as written, markers included
    cited: tuple[int, ...]  # valid source numbers (1-based) in order of appearance
    claim: str  # what it claims (``qa.cite.claims.claim_text``)
    check: bool  # a claim to verify (not a question, lead-in or abstention)


@dataclass(frozen=True)
class Decision:
    """The outcome for one answer sentence."""

    keep: tuple[int, ...]  # the source numbers it cites in the end (1-based, into the extended sources)
    supported: bool | None  # None: not checked
    score: float | None


def unchecked(sentences: Sequence[AnswerSentence]) -> list[Decision]:
    """Every sentence keeps what it cites, with no verdict."""
    return [Decision(s.cited, None, None) for s in sentences]


def verify(
    sentences: Sequence[AnswerSentence], hits: Sequence[Hit], checker: ClaimChecker, question: str = ""
) -> tuple[list[Decision], list[Hit]]:
    """Each sentence's decision, and the sources its numbers point into: ``hits`` followed by any other
    sentence a claim was re-attributed to (as a ``Hit`` of score 0: the retriever did not rank it)."""
    decisions = unchecked(sentences)
    rows = [i for i, s in enumerate(sentences) if s.check]
    results = checker.check([sentences[i].claim for i in rows], [[n - 1 for n in sentences[i].cited] for i in rows],
                            hits, question=question)
    extended = list(hits)
    number = {h.sentence: i + 1 for i, h in enumerate(hits)}
    for i, checked in zip(rows, results, strict=True):
        s, v = sentences[i], checked.verdict
        if not v.supported:
            decisions[i] = Decision(s.cited, False, v.score)
            continue
        keep: list[int] = []
        for sentence in checked.sentences:
            if sentence not in number:
                extended.append(Hit(sentence=sentence, score=0.0, rank=len(extended)))
                number[sentence] = len(extended)
            keep.append(number[sentence])
        if v.kept_citation:  # in the order the model wrote them
            keep = [n for n in s.cited if n in keep]
        decisions[i] = Decision(tuple(keep), True, v.score)
    return decisions, extended
