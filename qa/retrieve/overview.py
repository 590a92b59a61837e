"""Overview questions ("What is this article about?", "Summarize", "What happened?") get a short extractive
summary instead of a retrieval: news puts the facts first, so the summary leads with the article's first
reporting sentences (not a dateline, caption or byline) and adds its most central ones, in document order.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import numpy as np

from qa.index import SentenceIndex
from qa.retrieve.features import is_clutter
from qa.types import Hit, Retrieval

_OVERVIEW = re.compile(
    r"^\W*(?:(?:so|and|ok(?:ay)?|please),?\s+)?(?:"
    r"what(?:'s|’s| is| was| are| were)? (?:this|that|the|these|those) (?:article|story|piece|text|report|news"
    r"|document|articles|stories)s? (?:about|saying|on)"
    r"|what(?:'s|’s| is| was) (?:it|this) about"
    r"|summari[sz]e(?: (?:it|this|that|the \w+|them|these))?"
    r"|(?:give|write) (?:me )?(?:a |an )?(?:short |brief |quick )?(?:summary|overview|gist|rundown|recap)"
    r"|(?:can you |could you )?(?:sum (?:it|this|that) up|recap)"
    r"|(?:what|tell me) (?:are )?the (?:main|key|most important) (?:points|facts|takeaways|news)"
    r"|tl;?dr|key (?:points|takeaways)"
    r"|what happened|what(?:'s|’s| is) (?:going on|new|the news)"
    r")\W*$",
    re.IGNORECASE,
)
#: Sentences per article: one article gets this many, several get fewer each (at most ``MAX_SENTENCES``).
PER_ARTICLE = 3
MAX_SENTENCES = 4
#: The lead: of the first sentences of an article, those are preferred.
LEAD = 4
MIN_WORDS = 6


def is_overview(question: str) -> bool:
    """A request for the gist, with no topic of its own.

    >>> is_overview("What is this article about?"), is_overview("Summarize the article."), is_overview("What happened?")
    (True, True, True)
    >>> is_overview("What happened in Lusaka?"), is_overview("Summarize the vote on the resolution")
    (False, False)
    """
    return bool(_OVERVIEW.match(question.strip()))


def summary(index: SentenceIndex, doc_ids: Collection[str] | None = None) -> Retrieval:
    """Up to ``MAX_SENTENCES`` summary sentences of the documents in scope, in document order per document."""
    docs = [d for d in index.documents if doc_ids is None or d in set(doc_ids)]
    if not docs:
        return Retrieval(query="", hits=(), confidence=0.0, threshold=1.0)
    per = PER_ARTICLE if len(docs) == 1 else max(1, MAX_SENTENCES // min(len(docs), MAX_SENTENCES))
    hits: list[Hit] = []
    for doc_id in docs[:MAX_SENTENCES]:
        chosen = _lead_and_centre(index, index.rows_of(doc_id), per)
        hits.extend(
            Hit(sentence=index.sentences[r], score=float(s), rank=len(hits) + k) for k, (r, s) in enumerate(chosen)
        )
    return Retrieval(query="", hits=tuple(hits[:MAX_SENTENCES]), confidence=1.0, threshold=0.0)


def _lead_and_centre(index: SentenceIndex, rows: Sequence[int], k: int) -> list[tuple[int, float]]:
    """``k`` rows: reporting sentences scored by closeness to the article's centre, the lead weighing more."""
    usable = [r for r in rows if not is_clutter(index.sentences[r].text)
              and len(index.sentences[r].text.split()) >= MIN_WORDS]
    if not usable:
        usable = list(rows)
    vectors = index.vectors[usable]
    centre = vectors.mean(axis=0)
    norm = float(np.linalg.norm(centre)) or 1.0
    closeness = vectors @ (centre / norm)
    lead = np.array([1.0 if i < LEAD else 0.0 for i in range(len(usable))])
    score = closeness + 0.25 * lead
    best = sorted(np.argsort(-score, kind="stable")[:k].tolist())  # document order
    return [(usable[i], float(score[i])) for i in best]
