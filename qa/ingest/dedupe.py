"""Near-identical articles: the same wire story from two outlets is recognised, so it is noted, not
indexed twice without a word.

Two articles are near-identical when at least ``THRESHOLD`` of the word 5-shingles of the shorter body
(the text after the header) occur in the other, and the shorter is at least half as long. Only a sample
of the shingles is kept (those whose hash falls in 1/4 of the range), so comparing is cheap and stable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from qa.ingest.header import document_label, header_spans
from qa.types import Document, IndexChange

THRESHOLD = 0.8
MIN_SHINGLES = 8  # bodies shorter than this many sampled shingles are not compared


def body(doc: Document) -> str:
    """The article's text after its header."""
    spans = header_spans(doc)
    return doc.text[max(e for _, e in spans.values()) :] if spans else doc.text


@lru_cache(maxsize=8192)
def fingerprint(text: str) -> frozenset[int]:
    words = re.findall(r"\w+", text.lower())
    out = set()
    for i in range(len(words) - 4):
        h = int.from_bytes(hashlib.blake2b(" ".join(words[i : i + 5]).encode(), digest_size=8).digest(), "big")
        if h % 4 == 0:
            out.add(h)
    return frozenset(out)


def similarity(a: frozenset[int], b: frozenset[int]) -> float:
    """Share of the smaller fingerprint found in the other; 0 when either is too short to tell, or one is
    less than half the other (an excerpt is not the same article)."""
    if min(len(a), len(b)) < MIN_SHINGLES or min(len(a), len(b)) < 0.5 * max(len(a), len(b)):
        return 0.0
    return len(a & b) / min(len(a), len(b))


def near_duplicates(new: Sequence[Document], existing: Mapping[str, Document]) -> list[tuple[str, str]]:
    """``(new id, other id)`` for each new document nearly identical to an indexed one (other than the
    version it replaces) or to an earlier one of ``new``."""
    new_ids = {d.doc_id for d in new}
    pool = [(i, fingerprint(body(d))) for i, d in existing.items() if i not in new_ids]
    found: list[tuple[str, str]] = []
    for doc in new:
        mine = fingerprint(body(doc))
        match = next((i for i, theirs in pool if similarity(mine, theirs) >= THRESHOLD), None)
        if match is not None:
            found.append((doc.doc_id, match))
        pool.append((doc.doc_id, mine))
    return found


def describe_additions(before: Mapping[str, Document], documents: Sequence[Document]) -> IndexChange:
    """What adding ``documents`` to an index holding ``before`` does: which are new, which replace a
    document of the same id with other content, which are unchanged; and notes on the new ones that are
    nearly identical to another article or were read with a notice."""
    added: list[str] = []
    replaced: list[str] = []
    unchanged: list[str] = []
    for doc in documents:
        old = before.get(doc.doc_id)
        if old is None:
            added.append(doc.doc_id)
        elif old.text == doc.text:
            unchanged.append(doc.doc_id)
        else:
            replaced.append(doc.doc_id)
    fresh = [d for d in documents if d.doc_id not in unchanged]
    notes = [f"{d.doc_id}: {d.notice}" for d in fresh if d.notice]
    labels = {d.doc_id: document_label(d) for d in [*before.values(), *documents]}
    for doc_id, other in near_duplicates(fresh, before):
        notes.append(
            f"{doc_id} is nearly identical to {other} ({labels[other]}): the same story from another outlet? "
            "Both are indexed; `qa remove` one of them if you want only one."
        )
    return IndexChange(added=tuple(added), replaced=tuple(replaced), unchanged=tuple(unchanged), notes=tuple(notes))
