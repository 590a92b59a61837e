"""Stage 4: find the sentences that answer a question, and decide when none does.

Hybrid retrieval: dense similarity of the question to each sentence and to its neighbours,
fused with BM25 over sentences. The fused score also drives abstention.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.embed import Embedder
from qa.store import Store
from qa.types import Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True)
class RetrievalConfig:
    """Weights and thresholds of the fused score; fitted on folds by ``qa eval``."""

    candidates: int = 100
    w_dense: float = 1.0
    w_context: float = 0.25
    w_lexical: float = 0.35
    abstain_below: float = 0.55


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed word tokens for BM25."""
    import bm25s

    return bm25s.tokenize(  # type: ignore[no-any-return]
        list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


class LexicalIndex:
    """BM25 over sentences, built in memory from the store (cheap next to embedding)."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        self._bm25 = bm25s.BM25()
        self._size = len(texts)
        if texts:
            self._bm25.index(tokenize(texts), show_progress=False)

    def scores(self, query: str) -> NDArray[np.float32]:
        if not self._size:
            return np.zeros(0, dtype=np.float32)
        tokens = tokenize([query])[0]
        if not tokens:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)


class Retriever:
    """Ranks the store's sentences for a question."""

    def __init__(self, store: Store, embedder: Embedder, config: RetrievalConfig | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.lexical = LexicalIndex([s.text for s in store.sentences])

    def search(self, query: str, k: int = 10, *, doc_ids: Collection[str] | None = None) -> list[Hit]:
        """The top ``k`` sentences, best first, optionally only from ``doc_ids``."""
        store = self.store
        if not len(store):
            return []
        cfg = self.config
        q = self.embedder.encode([query])
        lexical = self.lexical.scores(query)
        n_cand = min(len(store), max(cfg.candidates, k))
        _, dense_ids = store.search(q, n_cand)
        candidates = {int(i) for i in dense_ids[0] if i >= 0}
        if lexical.size:
            candidates.update(int(i) for i in np.argsort(-lexical)[:n_cand] if lexical[i] > 0)
        if doc_ids is not None:
            allowed = set(doc_ids)
            candidates = {i for i in candidates if store.sentences[i].doc_id in allowed}
            if not candidates:  # filtered corpora may be small: rank every allowed sentence
                candidates = {i for d in allowed for i in store.rows_of(d)}
        if not candidates:
            return []
        rows = np.fromiter(sorted(candidates), dtype=np.int64)
        dense = store.vectors[rows] @ q[0]
        context = np.array([self._context(int(r), q[0]) for r in rows], dtype=np.float32)
        lex_max = float(lexical.max()) if lexical.size else 0.0
        lex = lexical[rows] / lex_max if lex_max > 0 else np.zeros(len(rows), dtype=np.float32)
        fused = cfg.w_dense * dense + cfg.w_context * context + cfg.w_lexical * lex
        order = np.argsort(-fused, kind="stable")[:k]
        return [
            Hit(
                sentence=store.sentences[int(rows[j])],
                score=float(fused[j]),
                rank=rank,
                dense=float(dense[j]),
                lexical=float(lexical[rows[j]]) if lexical.size else 0.0,
            )
            for rank, j in enumerate(order)
        ]

    def _context(self, row: int, q: NDArray[np.float32]) -> float:
        """Similarity of the question to the sentence's neighbours in the same document."""
        store = self.store
        s = store.sentences[row]
        rows = store.rows_of(s.doc_id)
        pos = s.n
        neigh = [rows[p] for p in (pos - 1, pos + 1) if 0 <= p < len(rows)]
        if not neigh:
            return 0.0
        return float(np.max(store.vectors[neigh] @ q))

    def abstains(self, hits: Sequence[Hit]) -> bool:
        """True when not even the best sentence is close enough to the question."""
        return not hits or hits[0].score < self.config.abstain_below
