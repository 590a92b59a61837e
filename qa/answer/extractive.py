"""The extractive answerer: no model, no network; it answers with the article's own sentences.

An answer reads as an answer, not a quote dump: when the question asks for a figure, a date or a name and
the cited sentence holds exactly one new one, that short span leads; then the sentence that answers,
quoted and cited, with the sentence it needs to be understood (``Hit.needed``: the speaker of a quote,
the referent of "he"); when the runner-up scores nearly as well, it is cited too, so a reader sees both
candidates. At most ``MAX_SENTENCES`` sentences and ``MAX_WORDS`` words. When the sources come from
several articles, each quote names its article. An overview question gets the summary sentences in
document order, each article named when there are several.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import ClassVar

from qa.answer.base import Generator
from qa.retrieve.evidence import cited_together
from qa.retrieve.features import OFFERS, asked_types
from qa.retrieve.overview import is_overview
from qa.types import ABSTAIN_TEXT, Hit, Turn

MAX_SENTENCES = 3
MAX_WORDS = 120
#: The runner-up is cited too when its score is within this of the best one's.
CLOSE_MARGIN = 1.0
#: Types whose span is reliable enough to lead an answer with (names are ambiguous in a sentence).
_SPAN_TYPES = ("money", "percent", "number", "time")


class ExtractiveGenerator(Generator):
    """No LLM: quote the sentences that answer. Never touches the network."""

    writes_free_text: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return "extractive"

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        if not sources:
            yield ABSTAIN_TEXT
            return
        if is_overview(question):
            yield overview_text(sources)
            return
        chosen = choose(sources)
        lead = lead_span(question, [sources[i].sentence.text for i in chosen])
        several = len({h.sentence.doc_id for h in sources}) > 1  # a library: say which article each is from
        quotes = " ".join(_quote(sources[i], i + 1, several) for i in chosen)
        yield f"{lead} {quotes}" if lead else quotes


def _quote(hit: Hit, n: int, name_article: bool) -> str:
    article = f" ({hit.article or hit.sentence.doc_id})" if name_article else ""
    return f"\u201c{hit.sentence.text}\u201d [{n}]{article}"


def choose(sources: Sequence[Hit]) -> list[int]:
    """Positions of the sentences to cite: the best hit with its needed context, then a close runner-up."""
    retrieved = [i for i, h in enumerate(sources) if h.context_for < 0]
    if not retrieved:
        return [0]
    chosen = cited_together(sources, retrieved[0])
    if len(retrieved) > 1:
        top, second = sources[retrieved[0]], sources[retrieved[1]]
        extra = [i for i in cited_together(sources, retrieved[1]) if i not in chosen]
        if second.score >= top.score - CLOSE_MARGIN and _fits([*chosen, *extra], sources):
            chosen = chosen + extra
    return chosen if _fits(chosen, sources) else [retrieved[0]]


def _fits(positions: Sequence[int], sources: Sequence[Hit]) -> bool:
    words = sum(len(sources[i].sentence.text.split()) for i in positions)
    return len(positions) <= MAX_SENTENCES and words <= MAX_WORDS


def lead_span(question: str, texts: Sequence[str]) -> str:
    """The short answer to lead with: the single new figure, amount or date the first sentence offers
    of an asked type ("How many…?" → "More than 2.5 million."); empty when there is none or several.

    >>> lead_span("How many vetoes did the US cast?", ["The US had vetoed three resolutions."])
    'Three.'
    >>> lead_span("Who stayed?", ["Gallant stayed."])
    ''
    """
    wanted = [t for t in _SPAN_TYPES if t in asked_types(question)]
    if not wanted or not texts:
        return ""
    q, text = question.lower(), texts[0]
    for kind in wanted:
        spans = _merged([m.span() for m in OFFERS[kind].finditer(text) if m.group(0).lower().strip() not in q], text)
        if len(spans) == 1:
            span = _widen(text, *spans[0])
            return span[:1].upper() + span[1:] + "."
        if spans:
            return ""
    return ""


def _merged(spans: Sequence[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Spans joined where only spaces separate them ("2.5" + "million" → "2.5 million")."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and not text[out[-1][1] : start].strip():
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


_QUALIFIER = re.compile(
    r"(?:more than|less than|fewer than|at least|about|around|nearly|almost|over|up to|some|roughly|"
    r"approximately)\s+$",
    re.IGNORECASE,
)


def _widen(text: str, start: int, end: int) -> str:
    """A figure with the qualifier before it ("more than 2.5 million")."""
    qualifier = _QUALIFIER.search(text[max(0, start - 20) : start])
    return text[start - len(qualifier.group(0)) if qualifier else start : end].strip()


def overview_text(sources: Sequence[Hit]) -> str:
    """The summary sentences quoted in order; with several articles, each group names its article."""
    docs = list(dict.fromkeys(h.sentence.doc_id for h in sources))
    parts: list[str] = []
    for doc_id in docs:
        quotes = " ".join(
            f"\u201c{h.sentence.text}\u201d [{i + 1}]" for i, h in enumerate(sources) if h.sentence.doc_id == doc_id
        )
        name = next((h.article for h in sources if h.sentence.doc_id == doc_id and h.article), doc_id)
        parts.append(f"{name}: {quotes}" if len(docs) > 1 else quotes)
    return "\n".join(parts)
