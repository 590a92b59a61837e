"""Candidate sentences for a question: the union of the dense and BM25 top lists, with stage-1 features.

Per query the work is O(N) numpy (BM25 scores, top-k selection) plus Python over the candidate set
only (a few hundred rows), so it stays fast at a million sentences.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.embed import Embedder
from qa.index import SentenceIndex
from qa.index.lexical import LexicalQuery
from qa.retrieve.features import FEATURES, asked_types, focus, is_clutter, offers, type_cues
from qa.retrieve.rerank import QueryTokens

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: The sentence after each list's best few is a candidate too: answers often follow the matching sentence.
FOLLOWERS_OF_TOP = 5


@dataclass(frozen=True)
class Candidates:
    """The candidate rows for one question, their stage-1 features, and the query-level evidence."""

    rows: NDArray[np.int64]
    features: NDArray[np.float32]  # (len(rows), len(FEATURES))
    next_index: NDArray[np.int64]  # position in ``rows`` of each row's next sentence, or -1
    corpus_coverage: float
    query_tokens: QueryTokens | None = None

    def __len__(self) -> int:
        return len(self.rows)


def gather(
    index: SentenceIndex,
    embedder: Embedder,
    query: str,
    *,
    n_candidates: int,
    doc_ids: Collection[str] | None = None,
    query_tokens: QueryTokens | None = None,
) -> Candidates:
    """Gather candidates from both sides of the index and compute their stage-1 features."""
    n = len(index)
    lq = index.lexical.query(query)
    corpus_cov = lq.known_mass / lq.mass if lq.mass > 0 else 0.0
    empty = Candidates(
        np.zeros(0, dtype=np.int64), np.zeros((0, len(FEATURES)), dtype=np.float32),
        np.zeros(0, dtype=np.int64), corpus_cov,
    )
    if not n:
        return empty
    q = embedder.encode([query])[0]
    lexical = index.lexical.scores(lq)
    found = index.candidate_rows(query, q, lexical, min(n, n_candidates), FOLLOWERS_OF_TOP, doc_ids)
    heads = found.heads
    followers = heads[heads + 1 < n] + 1
    if doc_ids is not None:  # ``found.rows`` are restricted already (by the store); the followers are not
        allowed = set(doc_ids)
        followers = np.array([r for r in followers.tolist() if index.sentences[r].doc_id in allowed], dtype=np.int64)
    rows = np.unique(np.concatenate([found.rows, followers]))
    if doc_ids is not None and not len(rows):  # filtered corpora may be small: rank every allowed sentence
        rows = np.array(sorted(i for d in set(doc_ids) for i in index.rows_of(d)), dtype=np.int64)
    if not len(rows):
        return empty
    features, next_index = _features(index, query, q, query_tokens, lq, lexical, rows)
    return Candidates(rows, features, next_index, corpus_cov, query_tokens)


def neighbours(index: SentenceIndex, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Previous and next row in the same document, or -1."""
    sents = index.sentences
    n = len(sents)
    prev = np.full(len(rows), -1, dtype=np.int64)
    nxt = np.full(len(rows), -1, dtype=np.int64)
    for i, r in enumerate(rows.tolist()):
        doc, pos = sents[r].doc_id, sents[r].n
        if r > 0 and sents[r - 1].doc_id == doc and sents[r - 1].n == pos - 1:
            prev[i] = r - 1
        if r + 1 < n and sents[r + 1].doc_id == doc and sents[r + 1].n == pos + 1:
            nxt[i] = r + 1
    return prev, nxt


def _features(
    index: SentenceIndex,
    query: str,
    q: NDArray[np.float32],
    qt: QueryTokens | None,
    lq: LexicalQuery,
    lexical: NDArray[np.float32],
    rows: NDArray[np.int64],
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``FEATURES`` of each candidate row, and where each row's next sentence is among the candidates."""
    vec = index.vectors
    prev, nxt = neighbours(index, rows)
    has_prev, has_next = prev >= 0, nxt >= 0
    v = vec[rows]
    vp = np.where(has_prev[:, None], vec[np.maximum(prev, 0)], 0.0)
    vn = np.where(has_next[:, None], vec[np.maximum(nxt, 0)], 0.0)
    dense = v @ q
    dense_idf = v @ qt.pooled() if qt is not None else dense
    win = v + vp + vn
    window = (win @ q) / np.maximum(np.linalg.norm(win, axis=1), 1e-9)

    mass = lq.mass if lq.mass > 0 else 1.0
    bm25 = lexical[rows]
    bm25_prev = np.where(has_prev, lexical[np.maximum(prev, 0)], 0.0)
    bm25_next = np.where(has_next, lexical[np.maximum(nxt, 0)], 0.0)
    bm25_max = float(bm25.max()) if bm25.size else 0.0

    pres = index.lexical.term_presence(lq, rows)
    pres_prev = index.lexical.term_presence(lq, np.maximum(prev, 0)) & has_prev[:, None]
    pres_next = index.lexical.term_presence(lq, np.maximum(nxt, 0)) & has_next[:, None]
    coverage = (pres @ lq.term_idf) / mass
    coverage_window = ((pres | pres_prev | pres_next) @ lq.term_idf) / mass

    dense_rank = np.empty(len(rows), dtype=np.float64)
    dense_rank[np.argsort(-dense, kind="stable")] = np.arange(len(rows))
    bm25_rank = np.empty(len(rows), dtype=np.float64)
    bm25_rank[np.argsort(-bm25, kind="stable")] = np.arange(len(rows))

    sentences = [index.sentences[r] for r in rows.tolist()]
    texts = [s.text for s in sentences]
    length = np.log(np.array([max(len(t), 1) for t in texts], dtype=np.float64))
    cues = type_cues(query, texts)

    terms = np.maximum(index.lexical.lengths(rows), 1)
    novel = np.clip(1.0 - pres.sum(axis=1) / terms, 0.0, 1.0)
    asking = focus(query)
    lf = index.lexical.query(asking) if asking != query else lq
    focus_cov = (index.lexical.term_presence(lf, rows) @ lf.term_idf) / (lf.mass if lf.mass > 0 else 1.0)
    lead = ~np.isin(lq.term_ids, lf.term_ids)
    lead_mass = float(lq.term_idf[lead].sum())
    lead_cov = (pres[:, lead] @ lq.term_idf[lead]) / lead_mass if lead_mass > 0 else np.zeros(len(rows))
    if asked_types(query):
        sents = index.sentences
        offer = offers(query, texts)
        offer_prev = offers(query, [sents[p].text if p >= 0 else "" for p in prev.tolist()])
        offer_next = offers(query, [sents[x].text if x >= 0 else "" for x in nxt.tolist()])
    else:
        offer = offer_prev = offer_next = np.zeros(len(rows), dtype=np.bool_)
    clutter = np.array([is_clutter(t) for t in texts], dtype=np.float64)
    position = np.log1p(np.array([s.n for s in sentences], dtype=np.float64))
    short = np.array([len(t.split()) < 6 for t in texts], dtype=np.float64)

    cols = [
        dense, dense_idf, vp @ q, vn @ q, window,
        bm25 / mass, bm25 / bm25_max if bm25_max > 0 else np.zeros(len(rows)), bm25_prev / mass, bm25_next / mass,
        coverage, coverage_window,
        np.log1p(dense_rank), np.log1p(bm25_rank), length,
        cues[:, 0], cues[:, 1], cues[:, 2], cues[:, 3],
        novel, focus_cov, lead_cov, offer, offer_prev, offer_next, clutter, position, short,
    ]
    features = np.ascontiguousarray(np.column_stack(cols), dtype=np.float32)
    pos = np.searchsorted(rows, np.maximum(nxt, 0))
    pos = np.minimum(pos, len(rows) - 1)
    next_index = np.where(has_next & (rows[pos] == nxt), pos, -1).astype(np.int64)
    return features, next_index
