"""The retriever: candidates, stage 1, the rerank, and the abstention decision, for one index."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from qa.embed import Embedder
from qa.index import SentenceIndex
from qa.retrieve.about import header_first
from qa.retrieve.answerability import PassageProbe
from qa.retrieve.candidates import Candidates, gather, neighbours
from qa.retrieve.features import FEATURES
from qa.retrieve.followup import fuse
from qa.retrieve.rerank import QueryTokens, TokenCache, late_score, token_weights
from qa.retrieve.scorer import LATE_FEATURES, Probe, Ranking, RetrievalConfig, evidence, linear, rank, rerank_set
from qa.types import Hit, Retrieval

if TYPE_CHECKING:
    from numpy.typing import NDArray


class Retriever:
    """Ranks the index's sentences for a question, and says when none answers it."""

    def __init__(
        self,
        index: SentenceIndex,
        embedder: Embedder,
        config: RetrievalConfig | None = None,
        *,
        tokens: TokenCache | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.weights = self.config.resolved_weights()
        if tokens is None and self.config.rerank and embedder.can_encode_tokens:
            tokens = TokenCache(embedder)
        self.tokens = tokens if self.config.rerank else None

    def with_index(self, index: SentenceIndex) -> Retriever:
        """The same retriever over another index (after an addition), keeping its token cache warm."""
        return Retriever(index, self.embedder, self.config, tokens=self.tokens)

    @property
    def reranks(self) -> bool:
        """Whether the late-interaction stage runs (it needs token embeddings from the embedder)."""
        return self.tokens is not None

    def _query_tokens(self, query: str) -> QueryTokens | None:
        if self.tokens is None:
            return None
        vectors, offsets = self.tokens.encoder.encode_tokens([query])[0]
        if not len(vectors):
            return None
        return QueryTokens(vectors, token_weights(query, offsets, self.index.lexical), offsets)

    def candidates(self, query: str, k: int = 10, *, doc_ids: Collection[str] | None = None) -> Candidates:
        """Candidates from both indexes with their stage-1 features (the question's tokens first: the
        embedder then has the question's vector from the same pass)."""
        qt = self._query_tokens(query) if len(self.index) else None
        return gather(
            self.index, self.embedder, query,
            n_candidates=max(self.config.candidates, k), doc_ids=doc_ids, query_tokens=qt,
        )

    def late_features(self, cand: Candidates, selected: NDArray[np.int64]) -> NDArray[np.float32] | None:
        """``LATE_FEATURES`` for the candidate positions in ``selected`` (None without token embeddings)."""
        qt = cand.query_tokens
        if self.tokens is None or qt is None or not len(selected):
            return None
        rows = cand.rows[selected]
        prev, nxt = neighbours(self.index, rows)
        need = sorted({int(r) for r in rows} | {int(p) for p in prev if p >= 0} | {int(p) for p in nxt if p >= 0})
        toks = dict(zip(need, self.sentence_tokens(need), strict=True))
        out = np.zeros((len(rows), len(LATE_FEATURES)), dtype=np.float32)
        for i, (r, p, x) in enumerate(zip(rows.tolist(), prev.tolist(), nxt.tolist(), strict=True)):
            own = toks[r]
            out[i, 0] = late_score(qt, own)
            out[i, 1] = late_score(qt, np.vstack([own, toks[p]])) if p >= 0 else out[i, 0]
            out[i, 2] = late_score(qt, np.vstack([own, toks[x]])) if x >= 0 else out[i, 0]
            out[i, 3] = late_score(qt, toks[p]) if p >= 0 else 0.0
        return out

    def sentence_tokens(self, rows: Sequence[int]) -> list[NDArray[np.float32]]:
        """Unit token vectors of index rows: stored at index time (a gather), else encoded (cached)."""
        stored = self.index.tokens
        if stored is not None:
            return stored.get(rows)
        assert self.tokens is not None
        return self.tokens.get([self.index.sentences[r].text for r in rows])

    def probe(self, query: str, cand: Candidates) -> Probe:
        """The abstention evidence of this question's candidates, for ``rank``: the top one's, the runner-up's."""
        return PassageProbe(query, cand, self.index, self.sentence_tokens if self.tokens is not None else None)

    def rank(self, cand: Candidates, query: str) -> Ranking:
        """Stage 1, then the rerank when token embeddings are available."""
        if not len(cand):
            return Ranking(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), 0.0, 1.0, False,
                           evidence(cand, np.zeros(0, dtype=np.float32), 0.0, None))
        w = self.weights
        selected = None
        late = None
        if self.tokens is not None and cand.query_tokens is not None:
            cfg = self.config
            selected = rerank_set(linear(cand.features, w.stage1), cand.next_index, cfg.rerank_top, cfg.rerank_next)
            late = self.late_features(cand, selected)
        return rank(cand, w, late, selected, self.probe(query, cand))

    def follow_up(
        self, question: str, standalone: str, k: int, *, doc_ids: Collection[str] | None = None
    ) -> Retrieval:
        """A follow-up: the question as asked and its standalone form, each ranked ``2k`` deep and fused
        (``qa.retrieve.followup.fuse``): the question's own words decide, the conversation's names help."""
        if standalone == question:
            return self.search(question, k, doc_ids=doc_ids)
        alone = self.search(question, 2 * k, doc_ids=doc_ids)
        return fuse(alone, self.search(standalone, 2 * k, doc_ids=doc_ids), k)

    def search(self, query: str, k: int = 10, *, doc_ids: Collection[str] | None = None) -> Retrieval:
        """The top ``k`` sentences, best first (optionally only from ``doc_ids``), and the confidence
        that they answer the question at all."""
        cand = self.candidates(query, k, doc_ids=doc_ids)
        if not len(cand):
            return Retrieval(query=query, hits=(), confidence=0.0, threshold=1.0)
        found = self._ranked(query, cand, k)
        about = header_first(query, self.index, found.hits, doc_ids)
        if about is None:
            return found
        # a question about the article itself, answered by its header line (``qa.retrieve.about``)
        return Retrieval(query=query, hits=about, confidence=max(found.confidence, found.threshold),
                         threshold=found.threshold)

    def _ranked(self, query: str, cand: Candidates, k: int) -> Retrieval:
        ranking = self.rank(cand, query)
        dense_col, bm25_col = FEATURES.index("dense"), FEATURES.index("bm25")
        hits = tuple(
            Hit(
                sentence=self.index.sentences[int(cand.rows[j])],
                score=float(ranking.scores[i]),
                rank=i,
                dense=float(cand.features[j, dense_col]),
                lexical=float(cand.features[j, bm25_col]),
            )
            for i, j in enumerate(ranking.order[:k].tolist())
        )
        return Retrieval(query=query, hits=hits, confidence=ranking.confidence, threshold=ranking.threshold)
