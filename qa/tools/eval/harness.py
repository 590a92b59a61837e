"""Per-question records: candidates and features computed once per run, independent of the weights."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.index import FaissIndex, SentenceIndex, build_index, open_index
from qa.retrieve import RetrievalConfig, Retriever, ScorerWeights
from qa.retrieve.candidates import Candidates
from qa.retrieve.scorer import Probe
from qa.tools import metrics
from qa.tools.eval.data import Article, Question
from qa.tools.eval.embedder import CachingEmbedder

if TYPE_CHECKING:
    from numpy.typing import NDArray

TOP = 10  # ranks kept per question: MRR@10 needs ten


@dataclass
class Record:
    """One question asked of one article: candidate features, relevance, and the baselines' rankings."""

    article: int
    question: Question
    kind: str  # "answerable" | "unanswerable" | "off_topic"
    cand: Candidates
    relevant: NDArray[np.bool_]  # per candidate
    bm25: list[bool] = field(default_factory=list)  # relevance of the baseline's top ranks
    dense: list[bool] = field(default_factory=list)
    late: dict[int, NDArray[np.float32]] = field(default_factory=dict)  # memo: candidate position → late features
    probes: dict[int, NDArray[np.float64]] = field(default_factory=dict)  # memo: top position → probe features
    runners: dict[int, NDArray[np.float64]] = field(default_factory=dict)  # memo: runner-up position → its features
    source: str = ""  # the file of the article asked (``Article.source``)


class Extras(Protocol):
    """What fitting and scoring need beyond a record's stage-1 features (the harness provides both)."""

    def late(self, rec: Record, selected: NDArray[np.int64]) -> NDArray[np.float32] | None: ...

    def probe(self, rec: Record) -> Probe | None: ...


def dense_baseline(index: SentenceIndex) -> Any:
    """Plain dense retrieval: exact FAISS inner product over single-sentence vectors."""
    import faiss

    flat = faiss.IndexFlatIP(index.dim)
    flat.add(np.ascontiguousarray(index.vectors, dtype=np.float32))
    return flat


def _article_index(article: Article, embedder: CachingEmbedder, store: str | None) -> SentenceIndex:
    """One article's index: in memory (FAISS), or written to the store and opened from it again."""
    doc = article.document()
    if store is None:
        return FaissIndex.build([doc], embedder)
    build_index(store, [doc], embedder).save(store)
    return open_index(store, expect_model=embedder.name)


class Harness:
    """One index and retriever per article; records hold everything weight-independent, computed once."""

    def __init__(
        self, articles: Sequence[Article], embedder: CachingEmbedder, config: RetrievalConfig, *,
        store: str | None = None,
    ) -> None:
        """``store``: ``milvus://HOST:PORT/PREFIX`` keeps each article's index in Milvus (collection
        ``PREFIX_aN``), written and read back through the server as ``qa index`` / ``qa ask`` do."""
        from qa.ingest import segment

        self.articles = articles
        self.embedder = embedder
        self.config = config
        sentences = [s.text for a in articles for s in segment(a.document())]
        embedder.prime(sentences, desc="embedding sentences")
        embedder.prime((q.text for a in articles for q in a.questions), desc="embedding questions")
        self.stores = [_article_index(a, embedder, f"{store}_a{i}" if store else None) for i, a in enumerate(articles)]
        # candidates and features do not depend on weights: never read the shipped file here
        unfitted = replace(config, weights=ScorerWeights.zeros())
        self.retrievers = [Retriever(s, embedder, unfitted) for s in self.stores]

    @property
    def reranks(self) -> bool:
        return all(r.reranks for r in self.retrievers)

    def collect(self, folds: Sequence[Sequence[int]]) -> list[Record]:
        """Features, relevance and baseline rankings for every question and every off-topic pairing."""
        from tqdm import tqdm

        partner = off_topic_partners(folds)
        jobs: list[tuple[int, Question, str]] = []
        for i, a in enumerate(self.articles):
            jobs.extend((i, q, "answerable" if q.answerable else "unanswerable") for q in a.questions)
            if i in partner:
                jobs.extend((i, q, "off_topic") for q in self.articles[partner[i]].questions)
        dense_indexes = [dense_baseline(s) for s in self.stores]
        records: list[Record] = []
        for i, q, kind in tqdm(jobs, desc="retrieving", unit="q", file=sys.stderr):
            retriever, store = self.retrievers[i], self.stores[i]
            cand = retriever.candidates(q.text, TOP)

            def rel(row: int, answers: tuple[str, ...] = q.answers, store: SentenceIndex = store) -> bool:
                return metrics.contains_answer(store.sentences[row].text, answers)

            rec = Record(i, q, kind, cand, np.array([rel(int(r)) for r in cand.rows], dtype=np.bool_),
                         source=self.articles[i].source)
            if kind == "answerable":
                lex = store.lexical.plain_scores(q.text)
                rec.bm25 = [rel(int(r)) for r in np.argsort(-lex, kind="stable")[:TOP]]
                _, ids = dense_indexes[i].search(self.embedder.encode([q.text]), min(TOP, len(store)))
                rec.dense = [rel(int(r)) for r in ids[0] if r >= 0]
            records.append(rec)
        return records

    def late(self, rec: Record, selected: NDArray[np.int64]) -> NDArray[np.float32] | None:
        """Late-interaction features of the selected candidates (memoised per record)."""
        retriever = self.retrievers[rec.article]
        if not retriever.reranks or rec.cand.query_tokens is None or not len(selected):
            return None
        missing = [j for j in selected.tolist() if j not in rec.late]
        if missing:
            feats = retriever.late_features(rec.cand, np.array(missing, dtype=np.int64))
            if feats is None:
                return None
            rec.late.update(zip(missing, feats, strict=True))
        return np.stack([rec.late[j] for j in selected.tolist()]).astype(np.float32)

    def probe(self, rec: Record) -> Probe:
        """The abstention probe of a record's candidate positions (memoised per record and position)."""
        return _MemoProbe(self.retrievers[rec.article].probe(rec.question.text, rec.cand), rec)


@dataclass(frozen=True)
class _MemoProbe:
    """A probe whose answers are kept on the record: each fit and fold asks again for the same positions."""

    inner: Probe
    rec: Record

    def top(self, position: int) -> NDArray[np.float64]:
        if position not in self.rec.probes:
            self.rec.probes[position] = self.inner.top(position)
        return self.rec.probes[position]

    def runner(self, position: int) -> NDArray[np.float64]:
        if position not in self.rec.runners:
            self.rec.runners[position] = self.inner.runner(position)
        return self.rec.runners[position]


def off_topic_partners(folds: Sequence[Sequence[int]]) -> dict[int, int]:
    """Each article is asked the questions of the next article in its own fold (none if alone).

    >>> off_topic_partners([[0, 2], [1, 3], [4]])
    {0: 2, 2: 0, 1: 3, 3: 1}
    """
    out: dict[int, int] = {}
    for fold in folds:
        if len(fold) > 1:
            for j, a in enumerate(fold):
                out[a] = fold[(j + 1) % len(fold)]
    return out


def training_folds(n_articles: int) -> list[list[int]]:
    """Pairs of training-only articles, so each has an off-topic partner to learn abstention from.

    >>> training_folds(5)
    [[0, 1], [2, 3], [4]]
    """
    return [list(range(i, min(i + 2, n_articles))) for i in range(0, n_articles, 2)]


def make_folds(n_articles: int) -> list[list[int]]:
    """Article ``i`` goes to fold ``i mod K``, K = n // 2 capped at 4 (two articles a fold for 8).

    >>> make_folds(8)
    [[0, 4], [1, 5], [2, 6], [3, 7]]
    >>> make_folds(4), make_folds(3), make_folds(1)
    ([[0, 2], [1, 3]], [[0, 2], [1]], [[0]])
    """
    k = max(1, min(4, n_articles // 2)) if n_articles >= 4 else min(2, n_articles)
    return [list(range(f, n_articles, k)) for f in range(k)]
