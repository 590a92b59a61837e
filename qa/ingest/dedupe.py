"""Near-identical articles: the same wire story from two outlets is recognised, so it is noted, not
indexed twice without a word.

Two articles are near-identical when at least ``THRESHOLD`` of the word 5-shingles of the shorter body
(the text after the header) occur in the other, and the shorter is at least half as long. Only a sample
of the shingles is kept (those whose hash falls in 1/4 of the range), so comparing is cheap and stable.
A shingle's hash combines its words' CRC-32s in numpy, so fingerprinting every article of a large index
(as each ``qa index`` run does) costs ~0.1 s per 100,000 sentences instead of one hash object per shingle.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from qa.ingest.header import document_label, header_spans
from qa.types import Document, IndexChange

THRESHOLD = 0.8
MIN_SHINGLES = 8  # bodies shorter than this many sampled shingles are not compared


def body(doc: Document) -> str:
    """The article's text after its header."""
    spans = header_spans(doc)
    return doc.text[max(e for _, e in spans.values()) :] if spans else doc.text


SHINGLE = 5
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier: position-dependent mixing of the word hashes


@lru_cache(maxsize=1 << 16)
def _word_hash(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


@lru_cache(maxsize=8192)
def fingerprint(text: str) -> frozenset[int]:
    """The sampled hashes of the body's word 5-shingles (the same text gives the same set in any process).

    >>> text = " ".join(f"day {i} of the strike" for i in range(40))
    >>> a = fingerprint(text)
    >>> a == fingerprint(text.upper().replace(" of", ", of")), 20 < len(a) < 80  # of 196 shingles
    (True, True)
    """
    words = np.array([_word_hash(w) for w in re.findall(r"\w+", text.lower())], dtype=np.uint64)
    if len(words) < SHINGLE:
        return frozenset()
    n = len(words) - SHINGLE + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for k in range(SHINGLE):
            h = (h ^ words[k : k + n]) * _MIX
        h ^= h >> np.uint64(29)
    return frozenset(h[h % np.uint64(4) == 0].tolist())


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
