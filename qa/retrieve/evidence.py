"""The sources an answerer sees: each retrieved sentence with the neighbours a reader needs to understand it.

News sentences often cannot stand alone: "He said the offensive could begin imminently" names its
speaker one sentence earlier; a quote is attributed in the next sentence ("…," the minister said.); a
sentence ending in a colon is explained by the next one; a "how many" question's figure sits in the
sentence after the one that matches the question's words. A neighbour is *needed* when one of these
holds, and the extractive answer then cites it too. Every neighbour of a retrieved sentence is shown to a
language model as context (``neighbours``), numbered like any source, so citations still resolve to
single sentences.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from qa.index import SentenceIndex
from qa.ingest.header import document_label
from qa.retrieve.features import asked_types, offers
from qa.types import Hit, Retrieval, Sentence

#: Openings that point back to an earlier sentence (a pronoun or a definite description).
_POINTS_BACK = re.compile(
    r"^\W*(?:he|she|it|they|his|her|its|their|this|that|these|those|there|such|both"
    r"|the (?:company|group|firm|agency|man|woman|men|women|president|official|officials|organization|state|city"
    r"|country|team|court|report|bill|move|decision|storm|quake|earthquake|volcano|hurricane|plane|ship|agreement"
    r"|deal|star|singer|actor|suspect|victim|minister|leader|body|move|measure|law|policy|plan|vote|resolution))\b",
    re.IGNORECASE,
)
_OPENS_QUOTE = re.compile(r"^\W*[\"“]")
_ATTRIBUTED = re.compile(r"\b(?:said|says|told|added|wrote|asked|according to|tweeted|stated)\b", re.IGNORECASE)
_ATTRIBUTION_ONLY = re.compile(
    r"^\W*(?:[A-Z][\w.’'-]+(?:\s+[A-Z][\w.’'-]+)*|he|she|they|the \w+(?: \w+)?)\s+(?:said|says|told|added|wrote)\b",
    re.IGNORECASE,
)


def needs_previous(text: str) -> bool:
    """Does the sentence point back to the one before it (a pronoun, "the company", an unattributed quote)?

    >>> needs_previous("He said the offensive could begin."), needs_previous("Netanyahu said it could begin.")
    (True, False)
    """
    if _POINTS_BACK.search(text):
        return True
    return bool(_OPENS_QUOTE.search(text)) and not _ATTRIBUTED.search(text)


def needs_next(text: str, following: str) -> bool:
    """Is the sentence completed by the next one (a colon, or a quote attributed right after it)?

    >>> needs_next("The minister was blunt:", "We will not stop.")
    True
    >>> needs_next("“We will not stop.”", "The minister said so on Tuesday.")
    True
    """
    if text.rstrip().endswith(":"):
        return True
    unattributed = bool(_OPENS_QUOTE.search(text)) and not _ATTRIBUTED.search(text)
    return unattributed and bool(_ATTRIBUTION_ONLY.search(following))


def _neighbour(index: SentenceIndex, s: Sentence, step: int) -> Sentence | None:
    rows = index.rows_of(s.doc_id)
    pos = s.n + step
    if 0 <= pos < len(rows):
        neighbour = index.sentences[rows[pos]]
        return neighbour if neighbour.n == pos else None
    return None


def context_of(question: str, s: Sentence, index: SentenceIndex) -> tuple[list[Sentence], list[Sentence]]:
    """The sentences before and after ``s`` that a reader needs to understand it as an answer to ``question``."""
    prev, nxt = _neighbour(index, s, -1), _neighbour(index, s, +1)
    before = [prev] if prev is not None and needs_previous(s.text) else []
    after = [nxt] if nxt is not None and needs_next(s.text, nxt.text) else []
    if asked_types(question):  # the asked figure or name is next door
        own, *around = offers(question, [s.text, nxt.text if nxt else "", prev.text if prev else ""]).tolist()
        if not own:
            if around[0] and nxt is not None:
                after = [nxt]
            elif around[1] and prev is not None and not before:
                before = [prev]
    return before, after


def sources(
    question: str, retrieval: Retrieval, index: SentenceIndex, *, neighbours: bool = False
) -> tuple[Hit, ...]:
    """The retrieved hits in rank order, each with its needed context (``Hit.context_for`` its rank, ``needed``),
    and with ``neighbours`` also the sentence before and after every hit as plain context. Each sentence once."""
    out: list[Hit] = []
    seen: set[tuple[str, int]] = set()
    documents = index.documents

    def add(hit: Hit) -> None:
        key = (hit.sentence.doc_id, hit.sentence.n)
        if key not in seen:
            seen.add(key)
            doc = documents.get(hit.sentence.doc_id)
            out.append(replace(hit, article=document_label(doc) if doc is not None else hit.sentence.doc_id))

    for hit in retrieval.hits:
        before, after = context_of(question, hit.sentence, index)
        needed = {(x.doc_id, x.n) for x in (*before, *after)}
        if neighbours:
            prev, nxt = _neighbour(index, hit.sentence, -1), _neighbour(index, hit.sentence, +1)
            before = before or ([prev] if prev is not None else [])
            after = after or ([nxt] if nxt is not None else [])
        for s in before:
            add(_context(hit, s, (s.doc_id, s.n) in needed))
        add(hit)
        for s in after:
            add(_context(hit, s, (s.doc_id, s.n) in needed))
    return tuple(out)


def _context(hit: Hit, s: Sentence, needed: bool) -> Hit:
    return replace(hit, sentence=s, context_for=hit.rank, needed=needed)


def cited_together(hits: Sequence[Hit], first: int) -> list[int]:
    """Positions in ``hits`` of the hit at ``first`` and then the context it needs (in document order):
    the sentence that answers leads, the speaker or referent that explains it follows."""
    rank = hits[first].rank
    context = [i for i, h in enumerate(hits) if i != first and h.context_for == rank and h.needed]
    return [first, *sorted(context, key=lambda i: (hits[i].sentence.doc_id, hits[i].sentence.n))]


#: A question whose best sentence is at least this similar (cosine) is on the articles' topic: when it is
#: not answered, the closest passages are offered as "related" (off-topic questions average about 0.2).
ON_TOPIC = 0.3
RELATED = 2


def related(retrieval: Retrieval) -> tuple[Hit, ...]:
    """For an abstention: the closest passages when the question is on topic, else nothing."""
    hits = retrieval.hits
    if not hits or max(h.dense for h in hits) < ON_TOPIC:
        return ()
    return hits[:RELATED]
