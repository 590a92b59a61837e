"""Fitting the scorer and the abstention models on the records of the training folds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.retrieve import RetrievalConfig, ScorerWeights
from qa.retrieve.scorer import ABSTAIN_FEATURES, LATE_FEATURES, AbstainModel, is_dated, linear, rank, rerank_set
from qa.tools.eval.harness import Extras, Record

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: The abstention model separates answerable questions from unanswerable and off-topic ones; its
#: threshold rejects at most ``ABSTAIN_QUANTILE`` of each source's training answerable questions.
ABSTAIN_QUANTILE = 0.03
#: Off-topic questions weigh as much as on-topic unanswerable ones. At half (before the runner-up's evidence)
#: SQuAD's off-topic questions were answered 5.6 % of the time with that evidence, 3 % at the same weight.
OFF_TOPIC_WEIGHT = 1.0
#: The threshold is read off confidences from models fitted without the question's article (``held_out_confidence``).
HELD_OUT_PARTS = 4
RIDGE = 1e-2
TARGETS = {"hit_at_1": 0.82, "recall_at_5": 0.96, "wrongly_abstained": 0.05}
TOP = 10  # ranks kept per question: MRR@10 needs ten



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
    x: NDArray[np.float64], y: NDArray[np.bool_], ridge: float = RIDGE, weights: NDArray[np.float64] | None = None
) -> tuple[NDArray[np.float64], float]:
    """L2-regularised (sample-weighted) logistic regression by Newton's method; raw-feature weights and bias.

    >>> w, b = fit_logistic(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([False, False, True, True]))
    >>> bool(w[0] > 0), bool(1.0 < -b / w[0] < 2.0)
    (True, True)
    """
    mu, sd = _standardise(x)
    z = np.column_stack([(x - mu) / sd, np.ones(len(x))])
    target = y.astype(np.float64)
    share = np.ones(len(z)) if weights is None else np.asarray(weights, dtype=np.float64)
    share = share / share.sum()
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], ridge)
    reg[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (share * (p - target)) + reg * w
        hess = (z * (share * p * (1 - p))[:, None]).T @ z + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    raw = w[:-1] / sd
    return raw, float(w[-1] - raw @ mu)


def selected(rec: Record, stage1: Sequence[float], cfg: RetrievalConfig) -> NDArray[np.int64]:
    """The candidate positions the rerank rescores for these stage-1 weights."""
    return rerank_set(linear(rec.cand.features, stage1), rec.cand.next_index, cfg.rerank_top, cfg.rerank_next)


def _ranking_evidence(
    rec: Record, w: ScorerWeights, extras: Extras, cfg: RetrievalConfig, rerank: bool
) -> NDArray[np.float64]:
    sel = selected(rec, w.stage1, cfg) if rerank else None
    late = extras.late(rec, sel) if sel is not None else None
    return rank(rec.cand, w, late, sel, extras.probe(rec)).evidence


def _fit_abstain(
    records: Sequence[Record], w: ScorerWeights, extras: Extras, cfg: RetrievalConfig, rerank: bool
) -> AbstainModel:
    """Logistic answerable-versus-not model (unanswerable and off-topic questions, the latter weighing
    ``OFF_TOPIC_WEIGHT``).

    Each source file weighs the same in the fit (``source_balance``): otherwise SQuAD's adversarial
    unanswerable questions, eight times as many, decide what an unanswerable news question looks like.
    The threshold holds each source's training answerable questions to ``ABSTAIN_QUANTILE``, read on
    confidences from models fitted without their article (``held_out_confidence``).
    """
    usable = [r for r in records if len(r.cand)]
    ev = np.array([_ranking_evidence(r, w, extras, cfg, rerank) for r in usable]).reshape(-1, len(ABSTAIN_FEATURES))
    y = np.array([r.kind == "answerable" for r in usable], dtype=np.bool_)
    if not y.any():
        return AbstainModel((0.0,) * len(ABSTAIN_FEATURES), 0.0, 0.5, 0.5)
    balance = source_balance([r.source for r in usable])
    if y.all():  # nothing to learn from: a constant belief, so only the answerable quantile decides
        coef, bias = np.zeros(len(ABSTAIN_FEATURES)), 0.0
        confidence = np.full(int(y.sum()), 0.5)
    else:
        sample = np.array([OFF_TOPIC_WEIGHT if r.kind == "off_topic" else 1.0 for r in usable]) * balance
        coef, bias = fit_logistic(ev, y, weights=sample)
        confidence = held_out_confidence(ev, y, sample, np.array([r.article for r in usable]), coef, bias)[y]
    sources = [r.source for r, answerable in zip(usable, y, strict=True) if answerable]
    dated = np.array([is_dated(e) for e in ev[y]], dtype=np.bool_)
    undated_below, dated_below = abstain_thresholds(confidence, sources, dated)
    return AbstainModel(tuple(float(v) for v in coef), bias, undated_below, dated_below)


def held_out_confidence(
    ev: NDArray[np.float64], y: NDArray[np.bool_], sample: NDArray[np.float64], articles: NDArray[np.int64],
    coef: NDArray[np.float64], bias: float, parts: int = HELD_OUT_PARTS,
) -> NDArray[np.float64]:
    """Each record's confidence from a model fitted without its article's part (article mod ``parts``).

    The threshold is a low quantile of the answerable questions' confidences; read off the fitting data
    itself it is too optimistic (the model has seen those questions), and more so the more evidence it
    has: with the runner-up's evidence, 3 % in training let 5 % of held-out news questions abstain.
    A part whose complement lacks a class is scored by the model fitted on everything (``coef``, ``bias``).

    >>> x = np.array([[0.0], [1.0], [0.2], [0.9], [0.1], [0.8]])
    >>> y = np.array([False, True, False, True, False, True])
    >>> c = held_out_confidence(x, y, np.ones(6), np.array([0, 0, 1, 1, 2, 2]), *fit_logistic(x, y), parts=3)
    >>> bool((c[y] > 0.5).all() and (c[~y] < 0.5).all())
    True
    """
    out = 1.0 / (1.0 + np.exp(-np.clip(ev @ coef + bias, -50, 50)))
    for part in range(parts):
        inside = articles % parts == part
        rest = ~inside
        if not inside.any() or not y[rest].any() or y[rest].all():
            continue
        c, b = fit_logistic(ev[rest], y[rest], weights=sample[rest])
        out[inside] = 1.0 / (1.0 + np.exp(-np.clip(ev[inside] @ c + b, -50, 50)))
    return np.asarray(out, dtype=np.float64)


def source_balance(sources: Sequence[str]) -> NDArray[np.float64]:
    """Per-record weights under which every source weighs the same in total (mean weight 1).

    >>> source_balance(["squad", "squad", "squad", "news"]).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    names, index, counts = np.unique(np.asarray(sources, dtype=str), return_inverse=True, return_counts=True)
    return np.asarray(len(sources) / (len(names) * counts[index]), dtype=np.float64)


def abstain_threshold(answerable: NDArray[np.float64], sources: Sequence[str] | None = None) -> float:
    """The confidence below which ``ABSTAIN_QUANTILE`` of the (training) answerable questions fall, in the
    source where that point is lowest: no source loses more than that share of its answerable questions.
    (A share of all sources together, each weighing the same, let SQuAD's own reach 4.5 % in training.)

    >>> abstain_threshold(np.linspace(0.0, 1.0, 101))
    0.03
    >>> abstain_threshold(np.array([0.1, 0.5, 0.6, 0.7, 0.2, 0.3]), ["a", "a", "a", "a", "b", "b"])
    0.136
    >>> abstain_threshold(np.array([0.9, 0.5, 0.6, 0.7, 0.2, 0.3]), ["a", "a", "a", "a", "b", "b"])
    0.203
    """
    if not len(answerable):
        return 0.5
    groups = np.asarray(sources, dtype=str) if sources is not None else np.zeros(len(answerable), dtype=str)
    return round(min(float(np.quantile(answerable[groups == g], ABSTAIN_QUANTILE)) for g in np.unique(groups)), 6)


def abstain_thresholds(
    answerable: NDArray[np.float64], sources: Sequence[str], dated: NDArray[np.bool_]
) -> tuple[float, float]:
    """``abstain_threshold`` of the undated and of the dated articles' answerable questions, each apart;
    a kind with none in training takes the other's (the only calibration there is).

    >>> abstain_thresholds(np.array([0.1, 0.5, 0.7, 0.9]), ["a", "a", "b", "b"], np.array([False, False, True, True]))
    (0.112, 0.706)
    >>> abstain_thresholds(np.array([0.1, 0.5]), ["a", "a"], np.array([False, False]))
    (0.112, 0.112)
    """
    groups = np.asarray(sources, dtype=str)
    found = {kind: abstain_threshold(answerable[dated == kind], list(groups[dated == kind]))
             for kind in (False, True) if (dated == kind).any()}
    if not found:
        return 0.5, 0.5
    either = next(iter(found.values()))
    return found.get(False, either), found.get(True, either)


def fit_weights(
    records: Sequence[Record], extras: Extras, cfg: RetrievalConfig, meta: Mapping[str, Any] | None = None
) -> ScorerWeights:
    """Fit stage 1 on every candidate, the rerank on stage 1's selection, then both abstention models."""
    answerable = [r for r in records if r.kind == "answerable"]
    stage1 = tuple(float(v) for v in fit_ranker([(r.cand.features, r.relevant) for r in answerable]))
    groups = []
    for r in answerable:
        sel = selected(r, stage1, cfg)
        late = extras.late(r, sel)
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
        _fit_abstain(records, provisional, extras, cfg, rerank=True),
        _fit_abstain(records, provisional, extras, cfg, rerank=False),
        meta=dict(meta or {}),
    )
