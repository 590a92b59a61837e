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

from collections.abc import Iterator, Sequence
from typing import ClassVar

from qa.answer.base import Generator
from qa.answer.span import lead_span
from qa.retrieve.evidence import cited_together
from qa.retrieve.overview import is_overview
from qa.types import ABSTAIN_TEXT, Hit, Turn

MAX_SENTENCES = 3
MAX_WORDS = 120
#: The runner-up is cited too when its score is within this of the best one's.
CLOSE_MARGIN = 1.0


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
        said = {sources[i].sentence.text for i in chosen}  # a page may repeat a caption or a pull quote
        extra = [i for i in cited_together(sources, retrieved[1])
                 if i not in chosen and sources[i].sentence.text not in said]
        if second.score >= top.score - CLOSE_MARGIN and _fits([*chosen, *extra], sources):
            chosen = chosen + extra
    return chosen if _fits(chosen, sources) else [retrieved[0]]


def _fits(positions: Sequence[int], sources: Sequence[Hit]) -> bool:
    words = sum(len(sources[i].sentence.text.split()) for i in positions)
    return len(positions) <= MAX_SENTENCES and words <= MAX_WORDS


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
