"""Scoring records with fitted weights, held-out by folds, beside the baselines; the printed table."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.retrieve import RetrievalConfig, ScorerWeights
from qa.retrieve.scorer import rank, rrf_scores
from qa.tools import metrics
from qa.tools.eval.fit import TARGETS, fit_weights, selected
from qa.tools.eval.harness import TOP, Extras, Record


@dataclass
class Outcome:
    """What one system did with one record."""

    relevant: list[bool]  # relevance of its top ranks
    abstained: bool


def apply_weights(rec: Record, w: ScorerWeights, extras: Extras, cfg: RetrievalConfig, rerank: bool) -> Outcome:
    """Rank and decide abstention exactly as ``Retriever.search``/``abstains`` do (``qa.retrieve.rank``)."""
    if not len(rec.cand):
        return Outcome([], True)
    sel = selected(rec, w.stage1, cfg) if rerank else None
    late = extras.late(rec, sel) if sel is not None else None
    ranking = rank(rec.cand, w, late, sel, extras.probe(rec))
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
    records: Sequence[Record], folds: Sequence[Sequence[int]], titles: Sequence[str], extras: Extras,
    cfg: RetrievalConfig, *, reranks: bool,
) -> tuple[dict[str, Any], list[ScorerWeights]]:
    """Held-out figures per fold (fit on the other folds), the baselines, and the in-sample fit on all.

    Records of articles in no fold (training-only articles, e.g. news when SQuAD is measured) join every
    fold's training set and are never reported.
    """
    fold_of = {a: f for f, fold in enumerate(folds) for a in fold}
    train_only = [r for r in records if r.article not in fold_of]
    records = [r for r in records if r.article in fold_of]
    held: dict[str, list[tuple[Record, Outcome]]] = {"hybrid_heldout": [], "stage1_heldout": []}
    fold_weights: list[ScorerWeights] = []
    if len(folds) > 1:
        for f in range(len(folds)):
            train = [*train_only, *(r for r in records if fold_of[r.article] != f)]
            test = [r for r in records if fold_of[r.article] == f]
            if not any(r.kind == "answerable" and r.relevant.any() for r in train):
                continue
            w = fit_weights(train, extras, cfg)
            fold_weights.append(w)
            held["hybrid_heldout"].extend((r, apply_weights(r, w, extras, cfg, reranks)) for r in test)
            held["stage1_heldout"].extend((r, apply_weights(r, w, extras, cfg, False)) for r in test)
    ans = [r for r in records if r.kind == "answerable"]
    systems: dict[str, Any] = {}
    if held["hybrid_heldout"]:
        systems["hybrid_heldout"] = summarise(held["hybrid_heldout"])
        if reranks:
            systems["stage1_heldout"] = summarise(held["stage1_heldout"])
    systems["bm25"] = summarise([(r, Outcome(r.bm25, False)) for r in ans], abstains=False)
    systems["dense"] = summarise([(r, Outcome(r.dense, False)) for r in ans], abstains=False)
    systems["rrf"] = summarise([(r, rrf_outcome(r)) for r in ans], abstains=False)
    insample = fit_weights([*train_only, *records], extras, cfg)
    systems["hybrid_insample"] = summarise([(r, apply_weights(r, insample, extras, cfg, reranks)) for r in records])
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


def write_json(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)



def report(result: Mapping[str, Any]) -> str:
    lines = [
        f"{result['dataset']} ({result['format']}; embedder {result['embedder']}; "
        f"rerank {'on' if result['reranks'] else 'off'}, token embeddings: {result['token_embeddings']})",
        "",
    ]
    if result["format"] == "squad2":
        lines += [f"protocol: {result['protocol']}", f"questions: {result['counts']}",
                  f"index store: {result.get('store', 'FAISS (in memory)')}", ""]
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
