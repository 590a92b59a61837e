"""The support check: is an answer's sentence backed by the source sentences it cites?

``support = 0.5·cosine + 0.5·lexical`` (lexical = the share of the claim's stemmed content words
found in the source; cosine only when an embedder is given), times a grounding factor that halves
the score of a claim whose names and numbers appear in none of the retrieved sentences (a cheap
guard against "vetoed by Russia" passing as "vetoed"). The rule:

* A claim whose cited sentences support it (``support ≥ SUPPORTED``, each alone or together)
  keeps them, minus any cited sentence that is plainly unrelated (``< IRRELEVANT``).
* A claim whose citations do not support it, or that has none, is attributed to the best
  retrieved sentence when that one supports it strongly (``≥ ATTRIBUTE``); otherwise its
  citations are removed (a citation promises support) and it is listed as unsupported.
* Claims of fewer than four content words ("Yoav Gallant.") are scored together with the question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.cite.markers import strip_markers
from qa.index.terms import tokenize
from qa.types import Hit

if TYPE_CHECKING:
    from qa.embed import Embedder

SUPPORTED = 0.45
IRRELEVANT = 0.2
ATTRIBUTE = 0.6
SHORT_CLAIM_WORDS = 4


@dataclass
class Claim:
    """One sentence of an answer: where it is, what it cites, and whether it is a claim to check."""

    start: int
    end: int
    text: str  # the sentence as written, markers included
    cited: list[int]  # valid source numbers (1-based) in order of appearance
    check: bool  # is it a claim to verify (not a question, lead-in or abstention)?


def _entities(text: str) -> list[str]:
    """Names (capitalised words that do not start the sentence) and numbers a claim asserts."""
    words = re.findall(r"[\w\u2019'.\-]+", text)
    out = []
    for i, raw in enumerate(words):
        w = raw.strip(".'\u2019-")
        if not w:
            continue
        if any(ch.isdigit() for ch in w) or (i > 0 and w[0].isupper() and not w.isupper() and len(w) > 1):
            out.append(w.lower())
    return out


def _tokens(texts: Sequence[str]) -> list[set[str]]:
    return [set(t) for t in tokenize(texts)] if texts else []


def _support_matrix(
    claims: Sequence[str], sources: Sequence[str], embedder: Embedder | None, grounding_text: str
) -> np.ndarray:
    """Rows: claims; columns: sources; values: the support score of the module docstring."""
    if not claims or not sources:
        return np.zeros((len(claims), len(sources)), dtype=np.float32)
    ctoks, stoks = _tokens(claims), _tokens(sources)
    lexical = np.array(
        [[len(c & s) / len(c) if c else 0.0 for s in stoks] for c in ctoks], dtype=np.float32
    )
    if embedder is not None:
        vectors = embedder.encode([*claims, *sources])
        dense = np.clip(vectors[: len(claims)] @ vectors[len(claims) :].T, 0.0, 1.0)
        score = 0.5 * dense + 0.5 * lexical
    else:
        score = lexical
    haystack = grounding_text.lower()
    for i, claim in enumerate(claims):
        names = _entities(claim)
        if names:
            found = sum(1 for n in names if n in haystack)
            score[i] *= 0.5 + 0.5 * found / len(names)
    return np.asarray(score, dtype=np.float32)


def verify(
    question: str, claims: list[Claim], sources: Sequence[Hit], embedder: Embedder | None
) -> tuple[list[list[int]], list[str]]:
    """Decide each claim's final source numbers, and which claims are unsupported."""
    final = [list(c.cited) for c in claims]
    checked = [i for i, c in enumerate(claims) if c.check]
    if not checked:
        return final, []
    texts: list[str] = []
    for i in checked:
        plain = strip_markers(claims[i].text).strip("-*\u2022 \t\"\u201c\u201d")
        if len(_tokens([plain])[0]) < SHORT_CLAIM_WORDS:
            plain = f"{question} {plain}"
        texts.append(plain)
    source_texts = [h.sentence.text for h in sources]
    unions: list[str] = []
    union_of: dict[int, int] = {}
    for row, i in enumerate(checked):
        if len(claims[i].cited) > 1:
            union_of[row] = len(source_texts) + len(unions)
            unions.append(" ".join(source_texts[n - 1] for n in claims[i].cited))
    grounding = " ".join([question, *source_texts])
    matrix = _support_matrix(texts, [*source_texts, *unions], embedder, grounding)
    unsupported: list[str] = []
    for row, i in enumerate(checked):
        scores = matrix[row, : len(source_texts)]
        cited = claims[i].cited
        together = float(matrix[row, union_of[row]]) if row in union_of else 0.0
        if cited and max(together, *(float(scores[n - 1]) for n in cited)) >= SUPPORTED:
            final[i] = [n for n in cited if scores[n - 1] >= IRRELEVANT] or cited
            continue
        best = int(np.argmax(scores))
        if float(scores[best]) >= ATTRIBUTE:
            final[i] = [best + 1]
        else:
            final[i] = []
            unsupported.append(strip_markers(claims[i].text))
    return final, unsupported
