"""``qa eval DATASET [--json OUT]``: measure retrieval and abstention on SQuAD 2.0 or the seed-QA set.

SQuAD protocol. Each article is one document (its paragraphs joined as lines, as a news article's
paragraphs are) in its own index, and every question is asked of its own article. The articles are
split into folds (article *i* goes to fold *i mod K*, K = 4 for 8 articles, so each fold holds two
articles). For each fold the scorer and the abstention model are fitted on the other folds and
applied to this one, so every "held-out" figure comes from articles the weights never saw. Off-topic
questions are simulated by asking each article the questions of the other article in its fold (so
they are held out too). Baselines run in the same process on the same sentences: BM25 over
sentences, plain dense retrieval (same MiniLM, exact FAISS inner product over single sentences),
and their reciprocal-rank fusion. The shipped weights are fitted on all articles:
``python -m qa.eval DATASET --fit`` rewrites ``qa/retrieval_weights.json``.

Seed-QA protocol: the real pipeline over ``seeds/``; an answerable question's first citation must
contain one of its ``support`` substrings, an unanswerable one must abstain.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa import config, metrics
from qa.embed import Embedder, SentenceTransformerEmbedder
from qa.errors import InputError, MissingFileError
from qa.retrieve import (
    ABSTAIN_FEATURES,
    FEATURES,
    WEIGHTS_FILE,
    Candidates,
    RetrievalConfig,
    Retriever,
    ScorerWeights,
    abstain_features,
    confidence,
    rank_scores,
    rrf_scores,
)
from qa.types import Document

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.store import Store

#: Fraction of training answerable questions the fitted abstention threshold may reject.
ABSTAIN_QUANTILE = 0.02
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
        articles = []
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
                articles.append(Article(title=str(a.get("title", f"article-{len(articles)}")), text=text, questions=questions))
    except (ValueError, KeyError, TypeError) as exc:
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
    """Wraps an embedder so every text is embedded once per run, in large batches where possible."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._cache: dict[str, NDArray[np.float32]] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def prime(self, texts: Iterable[str], *, desc: str = "embedding") -> None:
        """Embed all uncached texts up front, with a progress bar."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not todo:
            return
        from tqdm import tqdm

        batch = 256
        with tqdm(total=len(todo), desc=desc, unit="text", file=sys.stderr) as bar:
            for i in range(0, len(todo), batch):
                chunk = todo[i : i + batch]
                for t, v in zip(chunk, self.inner.encode(chunk), strict=True):
                    self._cache[t] = v
                bar.update(len(chunk))

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.inner.encode(missing), strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)


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


def _dense_baseline(store: Store) -> Any:
    """Plain dense retrieval: exact FAISS inner product over single-sentence vectors."""
    import faiss

    index = faiss.IndexFlatIP(store.dim)
    index.add(np.ascontiguousarray(store.vectors, dtype=np.float32))
    return index


def collect(articles: Sequence[Article], embedder: CachingEmbedder, folds: Sequence[Sequence[int]]) -> list[Record]:
    """Index each article, then gather features and baseline rankings for every question (computed once)."""
    from tqdm import tqdm

    from qa.ingest import segment
    from qa.pipeline import build_store

    sentences = [s.text for a in articles for s in segment(Document(doc_id=a.title, text=a.text))]
    embedder.prime(sentences, desc="embedding sentences")
    embedder.prime((q.text for a in articles for q in a.questions), desc="embedding questions")
    partner = off_topic_partners(folds)
    jobs: list[tuple[int, Question, str]] = []
    for i, a in enumerate(articles):
        jobs.extend((i, q, "answerable" if q.answerable else "unanswerable") for q in a.questions)
        if i in partner:
            jobs.extend((i, q, "off_topic") for q in articles[partner[i]].questions)
    stores = [build_store([Document(doc_id=a.title, text=a.text)], embedder) for a in articles]
    retrievers = [Retriever(s, embedder, RetrievalConfig()) for s in stores]
    dense_indexes = [_dense_baseline(s) for s in stores]
    records: list[Record] = []
    for i, q, kind in tqdm(jobs, desc="retrieving", unit="q", file=sys.stderr):
        retriever = retrievers[i]
        store = stores[i]
        cand = retriever.candidates(q.text, TOP)
        texts = store.sentences

        def rel(row: int, answers: tuple[str, ...] = q.answers) -> bool:
            return metrics.contains_answer(texts[row].text, answers)

        rec = Record(i, q, kind, cand, np.array([rel(int(r)) for r in cand.rows], dtype=np.bool_))
        if kind == "answerable":
            lex = retriever.lexical.scores(q.text)
            top_lex = np.argsort(-lex, kind="stable")[:TOP]
            rec.bm25 = [rel(int(r)) for r in top_lex]
            _, ids = dense_indexes[i].search(embedder.encode([q.text]), min(TOP, len(store)))
            rec.dense = [rel(int(r)) for r in ids[0] if r >= 0]
        records.append(rec)
    return records


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
    """Article ``i`` goes to fold ``i mod K``, with K = n // 2 capped at 4 (two articles a fold for 8).

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


def fit_ranker(groups: Sequence[tuple[NDArray[np.float32], NDArray[np.bool_]]], ridge: float = RIDGE) -> NDArray[np.float64]:
    """Conditional logit (softmax over each question's candidates, gold spread over its relevant
    sentences) by Newton's method on standardised features; returns raw-feature weights.

    >>> x = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=np.float32)
    >>> w = fit_ranker([(x[:2], np.array([True, False])), (x[2:], np.array([False, True]))])
    >>> bool(w[0] > 1.0)
    True
    """
    usable = [(f, y) for f, y in groups if len(f) and y.any()]
    d = len(groups[0][0][0]) if usable else 0
    if not usable:
        raise ValueError("no question has a relevant candidate to learn from")
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
        log_norm = np.log(np.add.reduceat(np.exp(s), starts))[group]
        log_p = s - log_norm
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


def fit_logistic(x: NDArray[np.float64], y: NDArray[np.bool_], ridge: float = RIDGE) -> tuple[NDArray[np.float64], float]:
    """L2-regularised logistic regression by Newton's method; returns raw-feature weights and bias.

    >>> w, b = fit_logistic(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([False, False, True, True]))
    >>> bool(w[0] > 0), bool(-b / w[0] > 1.0) and bool(-b / w[0] < 2.0)
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


def fit_weights(records: Sequence[Record], meta: Mapping[str, Any] | None = None) -> ScorerWeights:
    """Fit the scorer on answerable records, then the abstention model on answerable vs off-topic
    records, and set the threshold so that ``ABSTAIN_QUANTILE`` of training answerable questions abstain."""
    answerable = [r for r in records if r.kind == "answerable"]
    rank = fit_ranker([(r.cand.features, r.relevant) for r in answerable])
    provisional = ScorerWeights(tuple(rank), (0.0,) * len(ABSTAIN_FEATURES), 0.0, 0.0)
    pos = [r for r in answerable if len(r.cand)]
    neg = [r for r in records if r.kind == "off_topic" and len(r.cand)]
    ev_pos = np.array([abstain_features(r.cand, rank_scores(r.cand.features, provisional)) for r in pos])
    if neg:
        ev_neg = np.array([abstain_features(r.cand, rank_scores(r.cand.features, provisional)) for r in neg])
        x = np.concatenate([ev_pos, ev_neg])
        y = np.concatenate([np.ones(len(ev_pos), dtype=np.bool_), np.zeros(len(ev_neg), dtype=np.bool_)])
        aw, ab = fit_logistic(x, y)
    else:  # nothing off-topic to learn from: fall back to the shipped abstention model
        from qa.retrieve import default_weights

        shipped = default_weights()
        aw, ab = np.array(shipped.abstain), shipped.abstain_bias
    w = ScorerWeights(tuple(rank), tuple(float(v) for v in aw), float(ab), 0.0)
    conf = np.array([confidence(e, w) for e in ev_pos])
    below = float(np.quantile(conf, ABSTAIN_QUANTILE)) if len(conf) else 0.5
    return ScorerWeights(w.rank, w.abstain, w.abstain_bias, below, meta=dict(meta or {}))


# ----- scoring records --------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one system did with one record."""

    relevant: list[bool]  # relevance of its top ranks
    abstained: bool


def apply_weights(rec: Record, weights: ScorerWeights, scorer: str = "learned") -> Outcome:
    """Rank and decide abstention exactly as ``Retriever.search``/``abstains`` do."""
    if not len(rec.cand):
        return Outcome([], True)
    learned = rank_scores(rec.cand.features, weights)
    conf = confidence(abstain_features(rec.cand, learned), weights)
    scores = learned if scorer == "learned" else rrf_scores(rec.cand.features)
    order = np.argsort(-scores, kind="stable")[:TOP]
    return Outcome([bool(rec.relevant[j]) for j in order], conf < weights.abstain_below)


def summarise(pairs: Sequence[tuple[Record, Outcome]], *, abstains: bool = True) -> dict[str, Any]:
    """Aggregate one system's outcomes into the reported figures."""
    ans = [(r, o) for r, o in pairs if r.kind == "answerable"]
    una = [(r, o) for r, o in pairs if r.kind == "unanswerable"]
    off = [(r, o) for r, o in pairs if r.kind == "off_topic"]
    out: dict[str, Any] = {
        "answerable": {
            "n": len(ans),
            "hit_at_1": metrics.mean(0.0 if o.abstained else metrics.hit_at_1(o.relevant) for _, o in ans),
            "recall_at_5": metrics.mean(metrics.recall_at_k(o.relevant, 5) for _, o in ans),
            "mrr_at_10": metrics.mean(metrics.mrr_at_k(o.relevant, 10) for _, o in ans),
            "top1_ignoring_abstention": metrics.mean(metrics.hit_at_1(o.relevant) for _, o in ans),
            "wrongly_abstained": metrics.mean(float(o.abstained) for _, o in ans) if abstains else None,
        },
    }
    if abstains:
        out["unanswerable"] = {"n": len(una), "abstained": metrics.mean(float(o.abstained) for _, o in una)}
        out["off_topic"] = {"n": len(off), "abstained": metrics.mean(float(o.abstained) for _, o in off)}
    return out


def evaluate_records(
    records: Sequence[Record], folds: Sequence[Sequence[int]], titles: Sequence[str]
) -> tuple[dict[str, Any], list[ScorerWeights]]:
    """Held-out figures per fold (fit on the others), baselines, and the in-sample shipped fit."""
    fold_of = {a: f for f, fold in enumerate(folds) for a in fold}
    held: list[tuple[Record, Outcome]] = []
    held_rrf: list[tuple[Record, Outcome]] = []
    fold_weights: list[ScorerWeights] = []
    for f in range(len(folds)):
        train = [r for r in records if fold_of[r.article] != f]
        test = [r for r in records if fold_of[r.article] == f]
        if len(folds) < 2 or not any(r.kind == "answerable" and r.relevant.any() for r in train):
            continue
        w = fit_weights(train)
        fold_weights.append(w)
        held.extend((r, apply_weights(r, w)) for r in test)
        held_rrf.extend((r, apply_weights(r, w, "rrf")) for r in test)
    ans = [r for r in records if r.kind == "answerable"]
    systems: dict[str, Any] = {}
    if held:
        systems["hybrid_heldout"] = summarise(held)
    systems["bm25"] = summarise([(r, Outcome(r.bm25, False)) for r in ans], abstains=False)
    systems["dense"] = summarise([(r, Outcome(r.dense, False)) for r in ans], abstains=False)
    if held_rrf:
        systems["rrf"] = summarise([(r, Outcome(o.relevant, False)) for r, o in held_rrf], abstains=False)
    shipped = fit_weights(records)
    systems["hybrid_insample"] = summarise([(r, apply_weights(r, shipped)) for r in records])
    per_article: dict[str, Any] = {}
    for a, title in enumerate(titles):
        mine = [(r, o) for r, o in held if r.article == a]
        if mine:
            per_article[title] = {
                "fold": fold_of[a],
                "hybrid_heldout": summarise(mine),
                "bm25": summarise([(r, Outcome(r.bm25, False)) for r in ans if r.article == a], abstains=False),
                "dense": summarise([(r, Outcome(r.dense, False)) for r in ans if r.article == a], abstains=False),
            }
    return {"systems": systems, "per_article": per_article}, [*fold_weights, shipped]


# ----- reporting --------------------------------------------------------------------------------

_LABELS = {
    "hybrid_heldout": "hybrid, held-out folds",
    "bm25": "BM25 over sentences",
    "dense": "dense (exact FAISS)",
    "rrf": "RRF of BM25 + dense",
    "hybrid_insample": "hybrid, shipped weights (in-sample)",
    "pipeline": "pipeline (shipped)",
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


def _write_json(path: str, payload: Mapping[str, Any]) -> None:
    import os

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)


# ----- entry points -----------------------------------------------------------------------------


def run_squad(path: Path, embedder: Embedder, *, fit_out: Path | None = None) -> dict[str, Any]:
    """The SQuAD protocol; with ``fit_out``, also write the weights fitted on every article there."""
    started = time.perf_counter()
    articles = load_squad(path)
    folds = make_folds(len(articles))
    cache = CachingEmbedder(embedder)
    records = collect(articles, cache, folds)
    titles = [a.title for a in articles]
    result, weights = evaluate_records(records, folds, titles)
    shipped = weights[-1]
    if fit_out is not None:
        meta = {
            "fitted_on": f"{path.name}: all {len(articles)} articles ({', '.join(titles)})",
            "embedder": embedder.name,
            "abstain_quantile": ABSTAIN_QUANTILE,
            "ridge": RIDGE,
            "command": f"python -m qa.eval {path.name} --fit",
        }
        shipped = ScorerWeights(shipped.rank, shipped.abstain, shipped.abstain_bias, shipped.abstain_below, meta=meta)
        _write_json(str(fit_out), shipped.to_json())
    counts = {k: sum(r.kind == k for r in records) for k in ("answerable", "unanswerable", "off_topic")}
    return {
        "dataset": str(path),
        "format": "squad2",
        "embedder": embedder.name,
        "documents": "one document per article, paragraphs as lines; each question asked of its own article",
        "protocol": (
            f"{len(folds)} folds of articles (article i in fold i mod {len(folds)}); the scorer and abstention "
            "model are fitted on the other folds and reported on the held-out fold; off-topic = the questions "
            "of the other article in the same fold"
        ),
        "folds": [[titles[a] for a in fold] for fold in folds],
        "counts": counts,
        "targets": TARGETS,
        **result,
        "fold_weights": [w.to_json() for w in weights[:-1]],
        "insample_weights": shipped.to_json(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_seed_qa(path: Path, embedder: Embedder, seeds_dir: Path | None = None) -> dict[str, Any]:
    """The seed-QA protocol, through the real pipeline (extractive answers, shipped weights)."""
    from qa.generate import ExtractiveGenerator
    from qa.pipeline import Pipeline

    started = time.perf_counter()
    questions = load_seed_qa(path)
    settings = config.resolve(seeds_dir=seeds_dir)
    pipe = Pipeline.from_paths([settings.seeds_dir], index_dir=None, embedder=embedder,
                               generator=ExtractiveGenerator(), settings=settings)
    store = pipe.store
    dense_index = _dense_baseline(store)
    lexical = pipe._retriever.lexical
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    systems: dict[str, list[tuple[bool, list[bool], bool]]] = {"pipeline": [], "bm25": [], "dense": []}
    for q in tqdm(questions, desc="asking", unit="q", file=sys.stderr):
        res = pipe.ask(q.text)
        hits = pipe.retrieve(q.text, TOP)

        def rel(text: str, q: SeedQuestion = q) -> bool:
            return metrics.contains_support(text, q.support)

        first = res.citations[0].text if res.citations else None
        ok = res.abstained if not q.answerable else (first is not None and rel(first))
        rows.append({"question": q.text, "answerable": q.answerable, "abstained": res.abstained,
                     "first_citation": first, "ok": ok})
        systems["pipeline"].append((q.answerable, [rel(h.sentence.text) for h in hits], res.abstained))
        if q.answerable:
            lex = lexical.scores(q.text)
            systems["bm25"].append((True, [rel(store.sentences[int(r)].text) for r in np.argsort(-lex, kind="stable")[:TOP]], False))
            _, ids = dense_index.search(embedder.encode([q.text]), min(TOP, len(store)))
            systems["dense"].append((True, [rel(store.sentences[int(r)].text) for r in ids[0] if r >= 0], False))
    summary: dict[str, Any] = {}
    for name, outs in systems.items():
        ans = [(r, a) for is_ans, r, a in outs if is_ans]
        una = [a for is_ans, _, a in outs if not is_ans]
        summary[name] = {
            "answerable": {
                "n": len(ans),
                "hit_at_1": metrics.mean(0.0 if a else metrics.hit_at_1(r) for r, a in ans),
                "recall_at_5": metrics.mean(metrics.recall_at_k(r, 5) for r, _ in ans),
                "mrr_at_10": metrics.mean(metrics.mrr_at_k(r, 10) for r, _ in ans),
                "wrongly_abstained": metrics.mean(float(a) for _, a in ans) if name == "pipeline" else None,
            },
        }
        if name == "pipeline":
            summary[name]["off_topic"] = {"n": len(una), "abstained": metrics.mean(float(a) for a in una)}
    answerable_ok = [r["ok"] for r in rows if r["answerable"]]
    unanswerable_ok = [r["ok"] for r in rows if not r["answerable"]]
    return {
        "dataset": str(path),
        "format": "seed-qa",
        "embedder": embedder.name,
        "corpus": str(settings.seeds_dir),
        "systems": summary,
        "answerable_cited_right": f"{sum(answerable_ok)}/{len(answerable_ok)}",
        "unanswerable_abstained": f"{sum(unanswerable_ok)}/{len(unanswerable_ok)}",
        "all_ok": all(r["ok"] for r in rows),
        "questions": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _report(result: Mapping[str, Any]) -> str:
    lines = [f"{result['dataset']} ({result['format']}, embedder {result['embedder']})", ""]
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
        for r in result["questions"]:
            if not r["ok"]:
                lines.append(f"  FAILED: {r['question']!r} -> {r['first_citation'] or 'abstained'}")
    lines.append(f"({result['seconds']} s)")
    return "\n".join(lines)


def _detect(path: Path) -> str:
    if not path.is_file():
        raise MissingFileError(str(path))
    if path.suffix.lower() == ".jsonl":
        return "seed-qa"
    return "squad2"


def main(dataset: str, json_out: str | None = None, *, fit: bool = False, embedder: Embedder | None = None) -> int:
    """Run the protocol that matches the file, print the table, and optionally write JSON."""
    path = Path(dataset)
    kind = _detect(path)
    emb: Embedder = embedder or SentenceTransformerEmbedder(config.resolve().embed_model)
    if kind == "seed-qa":
        if fit:
            raise EvalDataError(dataset, "weights are fitted on SQuAD files, not on the seed set")
        result = run_seed_qa(path, emb)
    else:
        result = run_squad(path, emb, fit_out=WEIGHTS_FILE if fit else None)
    print(_report(result))
    if fit:
        print(f"wrote the weights fitted on all articles to {WEIGHTS_FILE}")
    if json_out:
        _write_json(json_out, result)
    return 0


def _cli(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qa.eval", description=__doc__.split("\n\n")[0] if __doc__ else None)
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
