"""``qa eval DATASET [--json OUT]``: measure retrieval and abstention on SQuAD 2.0 or the seed-QA set.

SQuAD protocol. Each article is one document (its paragraphs joined as lines, as a news article's
paragraphs are) in its own index, and every question is asked of its own article. The articles are
split into folds (article *i* goes to fold *i mod K*; K = 4 for 8 articles, two articles a fold).
For each fold the scorers and the abstention models are fitted on the other folds and applied to
this one, so every "held-out" figure comes from articles the weights never saw. Off-topic questions
are simulated by asking each article the questions of the other article in its fold (held out too).
Baselines run in the same process on the same sentences: BM25 over sentences, plain dense retrieval
(the same embedder, exact FAISS inner product over single sentences), and their reciprocal-rank
fusion. The shipped weights are fitted on all articles: ``python -m qa.eval DATASET --fit``
rewrites ``qa/retrieval_weights.json``.

Seed-QA protocol: the real pipeline over ``seeds/``; an answerable question's first citation must
contain one of its ``support`` substrings, an unanswerable one must abstain.

Embeddings are computed once per run (``CachingEmbedder``). The rerank needs token embeddings:
from the product's embedder when it offers ``encode_tokens``, else from the same model on torch
(the JSON's ``token_embeddings`` says which).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa import config, metrics
from qa.embed import Embedder
from qa.errors import InputError, MissingFileError
from qa.retrieve import (
    ABSTAIN_FEATURES,
    LATE_FEATURES,
    WEIGHTS_FILE,
    AbstainModel,
    Candidates,
    RetrievalConfig,
    Retriever,
    ScorerWeights,
    TokenEmbedder,
    TokenVectors,
    linear,
    rank,
    rerank_set,
    rrf_scores,
    token_embedder_for,
)
from qa.types import Document

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.store import Store

#: The abstention threshold is the lowest that abstains on ``OFF_TOPIC_ABSTAIN`` of the training
#: off-topic questions, but never rejects more than ``ABSTAIN_QUANTILE`` of training answerable ones.
ABSTAIN_QUANTILE = 0.02
OFF_TOPIC_ABSTAIN = 0.99
RIDGE = 1e-2
TARGETS = {"hit_at_1": 0.82, "recall_at_5": 0.96, "wrongly_abstained": 0.05}
TOP = 10  # ranks kept per question: MRR@10 needs ten


class EvalDataError(InputError):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"Cannot evaluate {path}: {why}. Give a SQuAD 2.0 JSON file or a seed-QA .jsonl file.")


# ----- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    answers: tuple[str, ...]
    answerable: bool


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    questions: tuple[Question, ...]


def load_squad(path: Path) -> list[Article]:
    """Articles of a SQuAD 2.0 file; paragraphs become lines of one document."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        articles: list[Article] = []
        for a in raw["data"]:
            paragraphs = [p for p in a["paragraphs"] if p["context"].strip()]
            text = "\n".join(" ".join(p["context"].split()) for p in paragraphs)
            questions = tuple(
                Question(
                    qid=str(q.get("id", f"{a['title']}-{i}")),
                    text=str(q["question"]).strip(),
                    answers=tuple(dict.fromkeys(str(x["text"]) for x in q.get("answers", []))),
                    answerable=not q.get("is_impossible", False) and bool(q.get("answers")),
                )
                for p in paragraphs
                for i, q in enumerate(p["qas"])
                if str(q["question"]).strip()
            )
            if text.strip():
                title = str(a.get("title", f"article-{len(articles)}"))
                articles.append(Article(title=title, text=text, questions=questions))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvalDataError(str(path), f"not SQuAD 2.0 JSON ({exc})") from exc
    if not articles:
        raise EvalDataError(str(path), "it holds no article")
    return articles


@dataclass(frozen=True)
class SeedQuestion:
    text: str
    answerable: bool
    answers: tuple[str, ...]
    support: tuple[str, ...]


def load_seed_qa(path: Path) -> list[SeedQuestion]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(
                SeedQuestion(
                    text=str(row["question"]),
                    answerable=bool(row["answerable"]),
                    answers=tuple(map(str, row.get("answers", []))),
                    support=tuple(map(str, row.get("support", []))),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalDataError(str(path), f"line {n} is not a seed-QA object ({exc})") from exc
    if not out:
        raise EvalDataError(str(path), "it holds no question")
    return out


class CachingEmbedder:
    """Wraps an embedder (and a token-embedding source) so every text is embedded once per run."""

    def __init__(self, inner: Embedder, tokens: TokenEmbedder | None = None) -> None:
        self.inner = inner
        self.token_source = tokens
        self._cache: dict[str, NDArray[np.float32]] = {}
        self._tokens: dict[str, TokenVectors] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def prime(self, texts: Iterable[str], *, desc: str = "embedding") -> None:
        """Embed all uncached texts (and their tokens) up front, in large batches, with a progress bar."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache or
                                  (self.token_source is not None and t not in self._tokens)))
        if not todo:
            return
        from tqdm import tqdm

        batch = 256
        with tqdm(total=len(todo), desc=desc, unit="text", file=sys.stderr) as bar:
            for i in range(0, len(todo), batch):
                chunk = todo[i : i + batch]
                self.encode(chunk)
                if self.token_source is not None:
                    self.encode_tokens(chunk)
                bar.update(len(chunk))

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.inner.encode(missing), strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        if self.token_source is None:
            raise TypeError("no token embeddings")
        missing = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if missing:
            for t, v in zip(missing, self.token_source.encode_tokens(missing), strict=True):
                self._tokens[t] = v
        return [self._tokens[t] for t in texts]


class CachingTokenEmbedder(CachingEmbedder):
    """A ``CachingEmbedder`` that also offers (cached) token embeddings, so the rerank runs (and the
    indexes store them, as ``qa index`` does: the harness measures the stored int8 tokens)."""

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
        return self.encode(texts), [v for v, _ in self.encode_tokens(texts)]

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        assert self.token_source is not None
        missing = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if missing:
            for t, v in zip(missing, self.token_source.encode_tokens(missing), strict=True):
                self._tokens[t] = v
        return [self._tokens[t] for t in texts]


def eval_embedder(embedder: Embedder | None = None) -> tuple[CachingEmbedder, str]:
    """The product's embedder, cached; token embeddings from it or, failing that, from torch.

    Returns the embedder and a note saying where the token embeddings come from.
    """
    from qa.embed import SentenceTransformerEmbedder, make_embedder
    from qa.retrieve import SentenceTransformerTokens

    if isinstance(embedder, CachingEmbedder):
        return embedder, "as given"
    inner = embedder or make_embedder(config.resolve().embed_model)
    own = token_embedder_for(inner)
    if own is not None:
        return CachingTokenEmbedder(inner, own), "the product's embedder"
    try:
        torch_model = SentenceTransformerEmbedder(inner.name)._load()
    except Exception:  # a fake or non-sentence-transformers embedder: measure stage 1 only
        return CachingEmbedder(inner), "none: the rerank is off"
    return (
        CachingTokenEmbedder(inner, SentenceTransformerTokens(torch_model)),
        "the same model on torch (the product's embedder has no encode_tokens, so its rerank is off until it has)",
    )


# ----- per-question records ---------------------------------------------------------------------


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


LateFn = Callable[[Record, "NDArray[np.int64]"], "NDArray[np.float32] | None"]


def _dense_baseline(store: Store) -> Any:
    """Plain dense retrieval: exact FAISS inner product over single-sentence vectors."""
    import faiss

    index = faiss.IndexFlatIP(store.dim)
    index.add(np.ascontiguousarray(store.vectors, dtype=np.float32))
    return index


class Harness:
    """One index and retriever per article; records hold everything weight-independent, computed once."""

    def __init__(self, articles: Sequence[Article], embedder: CachingEmbedder, config: RetrievalConfig) -> None:
        from qa.ingest import segment
        from qa.pipeline import build_store

        self.articles = articles
        self.embedder = embedder
        self.config = config
        sentences = [s.text for a in articles for s in segment(Document(doc_id=a.title, text=a.text))]
        embedder.prime(sentences, desc="embedding sentences")
        embedder.prime((q.text for a in articles for q in a.questions), desc="embedding questions")
        self.stores = [build_store([Document(doc_id=a.title, text=a.text)], embedder) for a in articles]
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
        dense_indexes = [_dense_baseline(s) for s in self.stores]
        records: list[Record] = []
        for i, q, kind in tqdm(jobs, desc="retrieving", unit="q", file=sys.stderr):
            retriever, store = self.retrievers[i], self.stores[i]
            cand = retriever.candidates(q.text, TOP)

            def rel(row: int, answers: tuple[str, ...] = q.answers, store: Store = store) -> bool:
                return metrics.contains_answer(store.sentences[row].text, answers)

            rec = Record(i, q, kind, cand, np.array([rel(int(r)) for r in cand.rows], dtype=np.bool_))
            if kind == "answerable":
                lex = retriever.lexical.plain_scores(q.text)
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


def make_folds(n_articles: int) -> list[list[int]]:
    """Article ``i`` goes to fold ``i mod K``, K = n // 2 capped at 4 (two articles a fold for 8).

    >>> make_folds(8)
    [[0, 4], [1, 5], [2, 6], [3, 7]]
    >>> make_folds(4), make_folds(3), make_folds(1)
    ([[0, 2], [1, 3]], [[0, 2], [1]], [[0]])
    """
    k = max(1, min(4, n_articles // 2)) if n_articles >= 4 else min(2, n_articles)
    return [list(range(f, n_articles, k)) for f in range(k)]


# ----- fitting ----------------------------------------------------------------------------------


def _standardise(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    return mu, sd


def fit_ranker(
    groups: Sequence[tuple[NDArray[np.float32], NDArray[np.bool_]]], ridge: float = RIDGE
) -> NDArray[np.float64]:
    """Conditional logit (softmax over each question's candidates, gold spread over its relevant
    sentences), fitted by damped Newton on standardised features; returns raw-feature weights.

    >>> x = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=np.float32)
    >>> w = fit_ranker([(x[:2], np.array([True, False])), (x[2:], np.array([False, True]))])
    >>> bool(w[0] > 1.0)
    True
    """
    usable = [(f, y) for f, y in groups if len(f) and y.any()]
    if not usable:
        raise ValueError("no question has a relevant candidate to learn from")
    d = usable[0][0].shape[1]
    x = np.concatenate([f for f, _ in usable]).astype(np.float64)
    t = np.concatenate([y / y.sum() for _, y in usable]).astype(np.float64)
    sizes = np.array([len(f) for f, _ in usable])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    group = np.repeat(np.arange(len(usable)), sizes)
    mu, sd = _standardise(x)
    z = (x - mu) / sd
    g = len(usable)

    def objective(w: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        s = z @ w
        s = s - np.maximum.reduceat(s, starts)[group]
        log_p = s - np.log(np.add.reduceat(np.exp(s), starts))[group]
        return float(-(t * log_p).sum() / g + 0.5 * ridge * w @ w), np.exp(log_p)

    w = np.zeros(d)
    loss, p = objective(w)
    for _ in range(100):
        grad = z.T @ (p - t) / g + ridge * w
        m = np.add.reduceat(z * p[:, None], starts)
        hess = (z * p[:, None]).T @ z / g - m.T @ m / g + ridge * np.eye(d)
        step = np.linalg.solve(hess, grad)
        lr = 1.0
        while True:  # backtracking: a full Newton step overshoots on near-separable questions
            new_loss, new_p = objective(w - lr * step)
            if new_loss <= loss or lr < 1e-6:
                break
            lr /= 2
        w, p, done = w - lr * step, new_p, loss - new_loss < 1e-10
        loss = new_loss
        if done:
            break
    return np.asarray(w / sd, dtype=np.float64)


def fit_logistic(
    x: NDArray[np.float64], y: NDArray[np.bool_], ridge: float = RIDGE
) -> tuple[NDArray[np.float64], float]:
    """L2-regularised logistic regression by Newton's method; returns raw-feature weights and bias.

    >>> w, b = fit_logistic(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([False, False, True, True]))
    >>> bool(w[0] > 0), bool(1.0 < -b / w[0] < 2.0)
    (True, True)
    """
    mu, sd = _standardise(x)
    z = np.column_stack([(x - mu) / sd, np.ones(len(x))])
    target = y.astype(np.float64)
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], ridge)
    reg[-1] = 0.0
    n = len(z)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (p - target) / n + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z / n + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    raw = w[:-1] / sd
    return raw, float(w[-1] - raw @ mu)


def _selected(rec: Record, stage1: Sequence[float], cfg: RetrievalConfig) -> NDArray[np.int64]:
    return rerank_set(linear(rec.cand.features, stage1), rec.cand.next_index, cfg.rerank_top, cfg.rerank_next)


def _ranking_evidence(
    rec: Record, w: ScorerWeights, late_fn: LateFn, cfg: RetrievalConfig, rerank: bool
) -> NDArray[np.float64]:
    sel = _selected(rec, w.stage1, cfg) if rerank else None
    late = late_fn(rec, sel) if sel is not None else None
    return rank(rec.cand, w, late, sel).evidence


def _fit_abstain(
    records: Sequence[Record], w: ScorerWeights, late_fn: LateFn, cfg: RetrievalConfig, rerank: bool
) -> AbstainModel:
    """Logistic answerable-vs-off-topic model; the threshold lets ``ABSTAIN_QUANTILE`` of answerable abstain."""
    pos = [r for r in records if r.kind == "answerable" and len(r.cand)]
    neg = [r for r in records if r.kind == "off_topic" and len(r.cand)]
    ev_pos = np.array([_ranking_evidence(r, w, late_fn, cfg, rerank) for r in pos]).reshape(-1, len(ABSTAIN_FEATURES))
    ev_neg = np.array([_ranking_evidence(r, w, late_fn, cfg, rerank) for r in neg]).reshape(-1, len(ABSTAIN_FEATURES))
    if len(ev_neg) and len(ev_pos):
        x = np.concatenate([ev_pos, ev_neg])
        y = np.concatenate([np.ones(len(ev_pos), dtype=np.bool_), np.zeros(len(ev_neg), dtype=np.bool_)])
        weights, bias = fit_logistic(x, y)
        model = AbstainModel(tuple(float(v) for v in weights), bias, 0.0)
    else:  # nothing off-topic to learn from: a constant belief, so only the answerable quantile decides
        model = AbstainModel((0.0,) * len(ABSTAIN_FEATURES), 0.0, 0.0)
    return AbstainModel(model.weights, model.bias, abstain_threshold(
        np.array([model.confidence(e) for e in ev_pos]), np.array([model.confidence(e) for e in ev_neg])
    ))


def abstain_threshold(answerable: NDArray[np.float64], off_topic: NDArray[np.float64]) -> float:
    """The lowest confidence threshold that abstains on ``OFF_TOPIC_ABSTAIN`` of the off-topic questions,
    capped so that at most ``ABSTAIN_QUANTILE`` of the answerable ones abstain.

    >>> abstain_threshold(np.linspace(0.5, 1.0, 101), np.linspace(0.0, 0.2, 101))
    0.198
    >>> abstain_threshold(np.linspace(0.0, 1.0, 101), np.linspace(0.0, 1.0, 101))
    0.02
    """
    if not len(answerable):
        return 0.5
    cap = float(np.quantile(answerable, ABSTAIN_QUANTILE))
    if not len(off_topic):
        return round(cap, 6)
    return round(min(cap, float(np.quantile(off_topic, OFF_TOPIC_ABSTAIN))), 6)


def fit_weights(
    records: Sequence[Record], late_fn: LateFn, cfg: RetrievalConfig, meta: Mapping[str, Any] | None = None
) -> ScorerWeights:
    """Fit stage 1 on every candidate, the rerank on stage 1's selection, then both abstention models."""
    answerable = [r for r in records if r.kind == "answerable"]
    stage1 = tuple(float(v) for v in fit_ranker([(r.cand.features, r.relevant) for r in answerable]))
    groups = []
    for r in answerable:
        sel = _selected(r, stage1, cfg)
        late = late_fn(r, sel)
        if late is not None:
            groups.append((np.hstack([r.cand.features[sel], late]), r.relevant[sel]))
    if any(y.any() for _, y in groups):
        rerank_w = tuple(float(v) for v in fit_ranker(groups))
    else:  # no token embeddings: the rerank weights stay those of stage 1
        rerank_w = (*stage1, *(0.0 for _ in LATE_FEATURES))
    zeros = ScorerWeights.zeros()
    provisional = ScorerWeights(stage1, rerank_w, zeros.abstain, zeros.abstain_stage1)
    return ScorerWeights(
        stage1,
        rerank_w,
        _fit_abstain(records, provisional, late_fn, cfg, rerank=True),
        _fit_abstain(records, provisional, late_fn, cfg, rerank=False),
        meta=dict(meta or {}),
    )


# ----- scoring records --------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one system did with one record."""

    relevant: list[bool]  # relevance of its top ranks
    abstained: bool


def apply_weights(rec: Record, w: ScorerWeights, late_fn: LateFn, cfg: RetrievalConfig, rerank: bool) -> Outcome:
    """Rank and decide abstention exactly as ``Retriever.search``/``abstains`` do (``qa.retrieve.rank``)."""
    if not len(rec.cand):
        return Outcome([], True)
    sel = _selected(rec, w.stage1, cfg) if rerank else None
    late = late_fn(rec, sel) if sel is not None else None
    ranking = rank(rec.cand, w, late, sel)
    return Outcome([bool(rec.relevant[j]) for j in ranking.order[:TOP]], ranking.abstains)


def rrf_outcome(rec: Record) -> Outcome:
    order = np.argsort(-rrf_scores(rec.cand.features), kind="stable")[:TOP]
    return Outcome([bool(rec.relevant[j]) for j in order], False)


def summarise(pairs: Sequence[tuple[Record | str, Outcome]], *, abstains: bool = True) -> dict[str, Any]:
    """Aggregate one system's outcomes (keyed by record or by kind) into the reported figures.

    Abstaining counts as a miss at hit@1; recall@5 and MRR@10 judge the ranking itself.
    """

    def kind(key: Record | str) -> str:
        return key if isinstance(key, str) else key.kind

    ans = [o for r, o in pairs if kind(r) == "answerable"]
    una = [o for r, o in pairs if kind(r) == "unanswerable"]
    off = [o for r, o in pairs if kind(r) == "off_topic"]
    out: dict[str, Any] = {
        "answerable": {
            "n": len(ans),
            "hit_at_1": metrics.mean(0.0 if o.abstained else metrics.hit_at_1(o.relevant) for o in ans),
            "recall_at_5": metrics.mean(metrics.recall_at_k(o.relevant, 5) for o in ans),
            "mrr_at_10": metrics.mean(metrics.mrr_at_k(o.relevant, 10) for o in ans),
            "top1_ignoring_abstention": metrics.mean(metrics.hit_at_1(o.relevant) for o in ans),
            "wrongly_abstained": metrics.mean(float(o.abstained) for o in ans) if abstains else None,
        },
    }
    if abstains:
        out["unanswerable"] = {"n": len(una), "abstained": metrics.mean(float(o.abstained) for o in una)}
        out["off_topic"] = {"n": len(off), "abstained": metrics.mean(float(o.abstained) for o in off)}
    return out


def evaluate_records(
    records: Sequence[Record], folds: Sequence[Sequence[int]], titles: Sequence[str], late_fn: LateFn,
    cfg: RetrievalConfig, *, reranks: bool,
) -> tuple[dict[str, Any], list[ScorerWeights]]:
    """Held-out figures per fold (fit on the other folds), the baselines, and the in-sample fit on all."""
    fold_of = {a: f for f, fold in enumerate(folds) for a in fold}
    held: dict[str, list[tuple[Record, Outcome]]] = {"hybrid_heldout": [], "stage1_heldout": []}
    fold_weights: list[ScorerWeights] = []
    if len(folds) > 1:
        for f in range(len(folds)):
            train = [r for r in records if fold_of[r.article] != f]
            test = [r for r in records if fold_of[r.article] == f]
            if not any(r.kind == "answerable" and r.relevant.any() for r in train):
                continue
            w = fit_weights(train, late_fn, cfg)
            fold_weights.append(w)
            held["hybrid_heldout"].extend((r, apply_weights(r, w, late_fn, cfg, reranks)) for r in test)
            held["stage1_heldout"].extend((r, apply_weights(r, w, late_fn, cfg, False)) for r in test)
    ans = [r for r in records if r.kind == "answerable"]
    systems: dict[str, Any] = {}
    if held["hybrid_heldout"]:
        systems["hybrid_heldout"] = summarise(held["hybrid_heldout"])
        if reranks:
            systems["stage1_heldout"] = summarise(held["stage1_heldout"])
    systems["bm25"] = summarise([(r, Outcome(r.bm25, False)) for r in ans], abstains=False)
    systems["dense"] = summarise([(r, Outcome(r.dense, False)) for r in ans], abstains=False)
    systems["rrf"] = summarise([(r, rrf_outcome(r)) for r in ans], abstains=False)
    insample = fit_weights(records, late_fn, cfg)
    systems["hybrid_insample"] = summarise([(r, apply_weights(r, insample, late_fn, cfg, reranks)) for r in records])
    per_article: dict[str, Any] = {}
    for a, title in enumerate(titles):
        mine = [(r, o) for r, o in held["hybrid_heldout"] if r.article == a]
        if mine:
            per_article[title] = {
                "fold": fold_of[a],
                "hybrid_heldout": summarise(mine),
                "bm25": summarise([(r, Outcome(r.bm25, False)) for r in ans if r.article == a], abstains=False),
                "dense": summarise([(r, Outcome(r.dense, False)) for r in ans if r.article == a], abstains=False),
            }
    return {"systems": systems, "per_article": per_article}, [*fold_weights, insample]


# ----- reporting --------------------------------------------------------------------------------

_LABELS = {
    "hybrid_heldout": "hybrid + rerank, held-out folds",
    "stage1_heldout": "hybrid stage 1 only, held-out folds",
    "bm25": "baseline: BM25 over sentences",
    "dense": "baseline: dense (exact FAISS)",
    "rrf": "baseline: RRF of BM25 + dense",
    "hybrid_insample": "shipped weights (in-sample, not held-out)",
    "pipeline": "pipeline (shipped weights)",
}


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def table(systems: Mapping[str, Any]) -> str:
    """A markdown table, one row per system."""
    head = ["system", "n", "hit@1", "recall@5", "MRR@10", "wrongly abst.", "unans. abst.", "off-topic abst."]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for key, s in systems.items():
        a = s["answerable"]
        row = [
            _LABELS.get(key, key),
            a["n"],
            a["hit_at_1"],
            a["recall_at_5"],
            a["mrr_at_10"],
            a.get("wrongly_abstained"),
            s.get("unanswerable", {}).get("abstained"),
            s.get("off_topic", {}).get("abstained"),
        ]
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def _write_json(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)


# ----- entry points -----------------------------------------------------------------------------


def run_squad(
    path: Path, embedder: CachingEmbedder, *, token_note: str = "", fit_out: Path | None = None,
    cfg: RetrievalConfig | None = None,
) -> dict[str, Any]:
    """The SQuAD protocol; with ``fit_out``, also write the weights fitted on every article there."""
    started = time.perf_counter()
    cfg = cfg or RetrievalConfig()
    articles = load_squad(path)
    folds = make_folds(len(articles))
    harness = Harness(articles, embedder, cfg)
    records = harness.collect(folds)
    titles = [a.title for a in articles]
    result, weights = evaluate_records(records, folds, titles, harness.late, cfg, reranks=harness.reranks)
    insample = weights[-1]
    if fit_out is not None:
        meta = {
            "fitted_on": f"{path.name}: all {len(articles)} articles ({', '.join(titles)})",
            "embedder": embedder.name,
            "token_embeddings": token_note,
            "abstain_quantile": ABSTAIN_QUANTILE,
            "off_topic_abstain": OFF_TOPIC_ABSTAIN,
            "ridge": RIDGE,
            "rerank_top": cfg.rerank_top,
            "rerank_next": cfg.rerank_next,
            "command": f"python -m qa.eval {path} --fit",
        }
        insample = ScorerWeights(insample.stage1, insample.rerank, insample.abstain, insample.abstain_stage1, meta)
        _write_json(fit_out, insample.to_json())
    counts = {k: sum(r.kind == k for r in records) for k in ("answerable", "unanswerable", "off_topic")}
    return {
        "dataset": str(path),
        "format": "squad2",
        "embedder": embedder.name,
        "token_embeddings": token_note,
        "reranks": harness.reranks,
        "documents": "one document per article, paragraphs as lines; each question asked of its own article",
        "protocol": (
            f"{len(folds)} folds of articles (article i in fold i mod {len(folds)}); scorers and abstention "
            "fitted on the other folds, reported on the held-out fold; off-topic = the questions of the other "
            "article in the same fold"
        ),
        "folds": [[titles[a] for a in fold] for fold in folds],
        "counts": counts,
        "targets": TARGETS,
        **result,
        "fold_weights": [w.to_json() for w in weights[:-1]],
        "insample_weights": insample.to_json(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_seed_qa(
    path: Path, embedder: CachingEmbedder, *, token_note: str = "", seeds_dir: Path | None = None
) -> dict[str, Any]:
    """The seed-QA protocol, through the real pipeline (extractive answers, shipped weights)."""
    from tqdm import tqdm

    from qa.generate import ExtractiveGenerator
    from qa.pipeline import Pipeline

    started = time.perf_counter()
    questions = load_seed_qa(path)
    settings = config.resolve(seeds_dir=seeds_dir)
    pipe = Pipeline.from_paths([settings.seeds_dir], index_dir=None, embedder=embedder,
                               generator=ExtractiveGenerator(), settings=settings)
    store = pipe.store
    dense_index = _dense_baseline(store)
    retriever = Retriever(store, embedder)
    rows: list[dict[str, Any]] = []
    outcomes: dict[str, list[tuple[bool, Outcome]]] = {"pipeline": [], "bm25": [], "dense": []}
    for q in tqdm(questions, desc="asking", unit="q", file=sys.stderr):
        res = pipe.ask(q.text, llm="extractive")
        hits = pipe.retrieve(q.text, TOP)

        def rel(text: str, q: SeedQuestion = q) -> bool:
            return metrics.contains_support(text, q.support)

        first = res.citations[0].text if res.citations else None
        ok = res.abstained if not q.answerable else (first is not None and rel(first))
        rows.append({"question": q.text, "answerable": q.answerable, "abstained": res.abstained,
                     "first_citation": first, "ok": ok})
        outcomes["pipeline"].append((q.answerable, Outcome([rel(h.sentence.text) for h in hits], res.abstained)))
        if q.answerable:
            lex = retriever.lexical.plain_scores(q.text)
            top_lex = np.argsort(-lex, kind="stable")[:TOP]
            outcomes["bm25"].append((True, Outcome([rel(store.sentences[int(r)].text) for r in top_lex], False)))
            _, ids = dense_index.search(embedder.encode([q.text]), min(TOP, len(store)))
            outcomes["dense"].append((True, Outcome([rel(store.sentences[int(r)].text) for r in ids[0] if r >= 0],
                                                    False)))
    summary: dict[str, Any] = {}
    for name, outs in outcomes.items():
        pairs: list[tuple[Record | str, Outcome]] = [("answerable" if a else "off_topic", o) for a, o in outs]
        summary[name] = summarise(pairs, abstains=name == "pipeline")
        summary[name].pop("unanswerable", None)
    answerable_ok = [r["ok"] for r in rows if r["answerable"]]
    unanswerable_ok = [r["ok"] for r in rows if not r["answerable"]]
    return {
        "dataset": str(path),
        "format": "seed-qa",
        "embedder": embedder.name,
        "token_embeddings": token_note,
        "reranks": retriever.reranks,
        "corpus": str(settings.seeds_dir),
        "systems": summary,
        "answerable_cited_right": f"{sum(answerable_ok)}/{len(answerable_ok)}",
        "unanswerable_abstained": f"{sum(unanswerable_ok)}/{len(unanswerable_ok)}",
        "all_ok": all(r["ok"] for r in rows),
        "questions": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _report(result: Mapping[str, Any]) -> str:
    lines = [
        f"{result['dataset']} ({result['format']}; embedder {result['embedder']}; "
        f"rerank {'on' if result['reranks'] else 'off'}, token embeddings: {result['token_embeddings']})",
        "",
    ]
    if result["format"] == "squad2":
        lines += [f"protocol: {result['protocol']}", f"questions: {result['counts']}", ""]
        lines.append(table(result["systems"]))
        t = TARGETS
        lines += [
            "",
            f"targets on held-out folds: hit@1 >= {t['hit_at_1']}, recall@5 >= {t['recall_at_5']}, "
            f"wrongly abstained <= {t['wrongly_abstained']}",
        ]
        held = result["systems"].get("hybrid_heldout")
        if held:
            a = held["answerable"]
            met = (
                a["hit_at_1"] >= t["hit_at_1"]
                and a["recall_at_5"] >= t["recall_at_5"]
                and a["wrongly_abstained"] <= t["wrongly_abstained"]
            )
            lines.append(f"held-out targets met: {'yes' if met else 'NO'}")
    else:
        lines.append(table(result["systems"]))
        lines += [
            "",
            f"answerable cited right: {result['answerable_cited_right']}; "
            f"unanswerable abstained: {result['unanswerable_abstained']}",
        ]
        lines += [f"  FAILED: {r['question']!r} -> {r['first_citation'] or 'abstained'}"
                  for r in result["questions"] if not r["ok"]]
    lines.append(f"({result['seconds']} s)")
    return "\n".join(lines)


def _detect(path: Path) -> str:
    if not path.is_file():
        raise MissingFileError(str(path))
    return "seed-qa" if path.suffix.lower() == ".jsonl" else "squad2"


def main(
    dataset: str, json_out: str | None = None, *, fit: bool = False, embedder: Embedder | None = None,
    seeds_dir: Path | None = None,
) -> int:
    """Run the protocol that matches the file, print the table, and optionally write JSON."""
    path = Path(dataset)
    kind = _detect(path)
    if fit and kind != "squad2":
        raise EvalDataError(dataset, "weights are fitted on SQuAD files, not on the seed set")
    emb, note = eval_embedder(embedder)
    if kind == "seed-qa":
        result = run_seed_qa(path, emb, token_note=note, seeds_dir=seeds_dir)
    else:
        result = run_squad(path, emb, token_note=note, fit_out=WEIGHTS_FILE if fit else None)
    print(_report(result))
    if fit:
        print(f"wrote the weights fitted on all articles to {WEIGHTS_FILE}")
    if json_out:
        _write_json(json_out, result)
    return 0


def _cli(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qa.eval", description="Measure retrieval; --fit refits the weights.")
    p.add_argument("dataset")
    p.add_argument("--json", dest="json_out")
    p.add_argument("--fit", action="store_true", help=f"refit the shipped weights on every article into {WEIGHTS_FILE}")
    args = p.parse_args(argv)
    from qa.errors import QAError

    try:
        return main(args.dataset, args.json_out, fit=args.fit)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(_cli())
