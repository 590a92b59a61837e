"""The late-interaction rerank: question tokens matched to sentence tokens, weighted by rarity."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.embed import Embedder, normalize
from qa.index.terms import QUESTION_WORDS, WH_WORDS, stopwords, words_of

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.index.lexical import LexicalIndex


class TokenCache:
    """Token embeddings of recently seen texts (float16), so follow-up questions re-encode nothing."""

    def __init__(self, encoder: Embedder, capacity: int = 4096) -> None:
        self.encoder = encoder
        self.capacity = capacity
        self._items: OrderedDict[str, NDArray[np.float16]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: Sequence[str]) -> list[NDArray[np.float32]]:
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
            for t in found:
                self._items.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = [vec.astype(np.float16) for vec, _ in self.encoder.encode_tokens(missing)]
            found.update(zip(missing, fresh, strict=True))
            with self._lock:
                self._items.update(zip(missing, fresh, strict=True))
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        return [found[t].astype(np.float32) for t in texts]


@dataclass(frozen=True)
class QueryTokens:
    """The question's token embeddings, each token's weight (the IDF of the word it belongs to) and its
    character span in the question (``probe`` finds a word's tokens by it)."""

    vectors: NDArray[np.float32]
    weights: NDArray[np.float64]
    offsets: NDArray[np.int64]

    def pooled(self) -> NDArray[np.float32]:
        """IDF-weighted pooling: a question vector that is not dominated by "what", "the" and "?"."""
        v = (self.weights[:, None] * self.vectors).sum(axis=0, keepdims=True)
        pooled: NDArray[np.float32] = normalize(v)[0]
        return pooled


def token_weights(question: str, offsets: NDArray[np.int64], lexical: LexicalIndex) -> NDArray[np.float64]:
    """Weight each question token by the BM25 IDF of its word; question words weigh as much as an
    unknown word (the most), stop words, the question's frame and punctuation nothing.

    Uniform weights when nothing is left, so a question of stop words still gets a score.
    """
    words = words_of(question)
    stop = stopwords() | QUESTION_WORDS
    unknown = lexical.unknown_idf()
    word_idf = [unknown if w.word in WH_WORDS else 0.0 if w.word in stop else lexical.term_idf(w.stem) for w in words]
    out = np.zeros(len(offsets), dtype=np.float64)
    starts = np.array([w.start for w in words], dtype=np.int64)
    ends = np.array([w.end for w in words], dtype=np.int64)
    for i, (s, _) in enumerate(offsets.tolist()):
        j = int(np.searchsorted(starts, s, side="right")) - 1
        if 0 <= j < len(words) and s < ends[j]:
            out[i] = word_idf[j]
    if out.sum() <= 0:
        out[:] = 1.0
    return out


def late_score(q: QueryTokens, tokens: NDArray[np.float32]) -> float:
    """IDF-weighted mean over question tokens of the best cosine to any of ``tokens``.

    >>> qt = QueryTokens(np.eye(2, dtype=np.float32), np.array([3.0, 1.0]), np.array([[0, 1], [2, 3]]))
    >>> late_score(qt, np.array([[1.0, 0.0]], dtype=np.float32))
    0.75
    """
    if not len(tokens) or not len(q.vectors):
        return 0.0
    best = (q.vectors @ tokens.T).max(axis=1)
    return float((best * q.weights).sum() / q.weights.sum())

