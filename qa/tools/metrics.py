"""Pure metric helpers for ``qa eval``: SQuAD answer normalisation and ranking metrics.

Kept free of I/O and models so a test can pin every figure the harness reports to hand-checked cases.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)


def _is_punct(ch: str) -> bool:
    return ch in _PUNCT or (ch > "\x7f" and unicodedata.category(ch).startswith("P"))


def normalize_answer(text: str) -> str:
    """SQuAD's official normalisation: lower case, drop punctuation and articles, collapse whitespace.

    Unicode punctuation (curly quotes, dashes) counts as punctuation too, so a gold answer written
    “Succession” matches an article's "Succession" (SQuAD's own script drops only ASCII punctuation).

    >>> normalize_answer("The  Norman-French, an army!")
    'normanfrench army'
    >>> normalize_answer("\u201cSuccession\u201d")
    'succession'
    >>> normalize_answer("  ")
    ''
    """
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if not _is_punct(ch))
    return " ".join(_ARTICLES.sub(" ", no_punct).split())


def contains_answer(sentence: str, answers: Iterable[str]) -> bool:
    """Does the sentence contain any gold answer, both SQuAD-normalised (plain substring, as SQuAD scores)?

    Answers that normalise to nothing (e.g. "the") never match, so they cannot make every sentence relevant.

    >>> contains_answer("In the 10th century, Rollo swore fealty.", ["10th century"])
    True
    >>> contains_answer("Rollo swore fealty.", ["Normandy", "the"])
    False
    """
    norm = normalize_answer(sentence)
    return any(a and a in norm for a in (normalize_answer(x) for x in answers))


def contains_support(sentence: str, support: Iterable[str]) -> bool:
    """Seed-QA rule: the cited sentence must contain one of the ``support`` substrings verbatim.

    >>> contains_support("Hamas welcomed the resolution.", ["Hamas welcomed"])
    True
    >>> contains_support("Hamas welcomed the resolution.", [])
    False
    """
    return any(s and s in sentence for s in support)


def first_relevant(relevant: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant item, or None when none is.

    >>> first_relevant([False, True, True]), first_relevant([False])
    (2, None)
    """
    for i, r in enumerate(relevant):
        if r:
            return i + 1
    return None


def hit_at_1(relevant: Sequence[bool]) -> float:
    """1.0 when the top item is relevant.

    >>> hit_at_1([True, False]), hit_at_1([False, True]), hit_at_1([])
    (1.0, 0.0, 0.0)
    """
    return 1.0 if relevant and relevant[0] else 0.0


def recall_at_k(relevant: Sequence[bool], k: int) -> float:
    """1.0 when any of the top ``k`` items is relevant (per-question answer recall, as in QA retrieval).

    >>> recall_at_k([False, False, True], 2), recall_at_k([False, False, True], 3)
    (0.0, 1.0)
    """
    return 1.0 if any(relevant[:k]) else 0.0


def mrr_at_k(relevant: Sequence[bool], k: int) -> float:
    """Reciprocal rank of the first relevant item within the top ``k``, else 0.

    >>> mrr_at_k([False, False, True], 10), mrr_at_k([False, False, True], 2)
    (0.3333333333333333, 0.0)
    """
    r = first_relevant(relevant[:k])
    return 1.0 / r if r is not None else 0.0


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; 0.0 for no values, so an empty group reports 0 rather than failing.

    >>> mean([1.0, 0.0, 0.5]), mean([])
    (0.5, 0.0)
    """
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0
