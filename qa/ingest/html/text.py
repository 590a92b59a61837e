"""Shingle support and text helpers of the article extraction: is a paragraph in another extractor's text?"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

WORD_RE = re.compile(r"\w+")
WS_RE = re.compile(r"\s+")


class ShingleIndex:
    """Multisets of the 1- to 4-token shingles of a reference text."""

    def __init__(self, text: str) -> None:
        tokens = WORD_RE.findall(text)
        self.counts: list[Counter[tuple[str, ...]]] = [
            Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)) for n in range(1, 5)
        ]


def text_grams(text: str) -> list[tuple[str, ...]]:
    """The text's 4-token shingles (a single shorter one for a text of 1 to 3 tokens)."""
    tokens = WORD_RE.findall(text)
    n = min(4, len(tokens))
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)] if n else []


def support_of(text: str, index: ShingleIndex, consume: bool = False) -> float | None:
    """Share of ``text``'s shingles found in the reference (None for a text without words).

    With ``consume``, each reference shingle supports only as many occurrences as it has in
    the reference, and the ones used are taken out of the index.
    """
    grams = text_grams(text)
    if not grams:
        return None
    counts = index.counts[len(grams[0]) - 1]
    if not consume:
        return sum(g in counts for g in grams) / len(grams)
    need = Counter(grams)
    hits = sum(min(c, counts.get(g, 0)) for g, c in need.items())
    counts.subtract({g: min(c, counts.get(g, 0)) for g, c in need.items()})
    return hits / len(grams)


def best_support(text: str, indexes: Sequence[ShingleIndex]) -> float | None:
    values = [v for v in (support_of(text, ix) for ix in indexes) if v is not None]
    return max(values) if values else None


def strict_support(paragraphs: Sequence[str], indexes: Sequence[ShingleIndex]) -> list[float | None]:
    """Support of each paragraph in turn, each reference shingle used at most as often as it
    occurs (so a paragraph repeated more often than in every reference loses its support)."""
    result: list[float | None] = []
    for para in paragraphs:
        best = best_support(para, indexes)
        if best is not None:
            # take the shingles out of the reference that supports the paragraph best
            scores = [support_of(para, ix) or 0.0 for ix in indexes]
            best_ix = indexes[scores.index(max(scores))]
            best = support_of(para, best_ix, consume=True)
        result.append(best)
    return result


# --- text helpers -------------------------------------------------------------------------


def clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = WS_RE.sub(" ", value).strip()
    return text or None


def split_paragraphs(text: str) -> list[str]:
    """Lines of ``text`` with whitespace collapsed, dropping those without any word character."""
    return [p for p in (clean(line) for line in text.split("\n")) if p and WORD_RE.search(p)]


_END_PUNCT = ".!?:;\"'\u201d\u2019)]\u2026"


def merge_fragments(paragraphs: Sequence[str]) -> list[str]:
    """Rejoin sentences that the extraction split around links or inline markup: a paragraph
    that starts with closing punctuation, or in lower case after one that does not end a
    sentence, continues the previous one."""
    merged: list[str] = []
    for para in paragraphs:
        if merged:
            prev = merged[-1]
            if para[0] in ",.;:!?)]" and not para.startswith("..."):
                merged[-1] = prev + para
                continue
            if para[0].islower() and prev[-1] not in _END_PUNCT:
                merged[-1] = f"{prev} {para}"
                continue
        merged.append(para)
    return merged


def join_paragraphs(lines: Iterable[str]) -> str:
    return "\n\n".join(p for p in (clean(line) for line in lines) if p)

