"""The two protocols: SQuAD (held-out folds, baselines in the same run) and the seed-QA set (the pipeline)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.retrieve import RetrievalConfig, ScorerWeights
from qa.tools import metrics
from qa.tools.eval.data import Article, SeedQuestion, load_seed_qa, load_squad
from qa.tools.eval.embedder import CachingEmbedder
from qa.tools.eval.fit import ABSTAIN_QUANTILE, OFF_TOPIC_WEIGHT, RIDGE, TARGETS
from qa.tools.eval.harness import TOP, Harness, Record, dense_baseline, make_folds, training_folds
from qa.tools.eval.report import Outcome, evaluate_records, summarise, write_json


def run_squad(
    path: Path, embedder: CachingEmbedder, *, token_note: str = "", fit_out: Path | None = None,
    cfg: RetrievalConfig | None = None, train: Sequence[Article] = (), train_names: Sequence[str] = (),
    store: str | None = None,
) -> dict[str, Any]:
    """The SQuAD protocol; ``train`` articles (news) join every fold's training set and are not reported;
    with ``fit_out``, also write the weights fitted on every article there."""
    started = time.perf_counter()
    cfg = cfg or RetrievalConfig()
    articles = load_squad(path)
    folds = make_folds(len(articles))
    harness = Harness([*articles, *train], embedder, cfg, store=store)
    n = len(articles)
    train_folds = [[n + i for i in fold] for fold in training_folds(len(train))]
    records = harness.collect([*folds, *train_folds])
    titles = [a.title for a in articles]
    result, weights = evaluate_records(records, folds, titles, harness, cfg, reranks=harness.reranks)
    insample = weights[-1]
    if fit_out is not None:
        meta = {
            "fitted_on": f"{path.name}: all {len(articles)} articles ({', '.join(titles)})"
            + (f"; and {len(train)} articles of {', '.join(train_names)}" if train else ""),
            "embedder": embedder.name,
            "token_embeddings": token_note,
            "abstain_quantile": ABSTAIN_QUANTILE,
            "off_topic_weight": OFF_TOPIC_WEIGHT,
            "abstain_sources": "each source file weighs the same in the abstention fit; the threshold lets at most "
                               "abstain_quantile of each source's answerable questions abstain, dated (news) and "
                               "undated articles each with their own threshold (below_dated, below)",
            "ridge": RIDGE,
            "rerank_top": cfg.rerank_top,
            "rerank_next": cfg.rerank_next,
            "command": f"qa eval {path} --fit" + "".join(f" --train {t}" for t in train_names),
        }
        insample = ScorerWeights(insample.stage1, insample.rerank, insample.abstain, insample.abstain_stage1, meta)
        write_json(fit_out, insample.to_json())
    counts = {k: sum(r.kind == k for r in records) for k in ("answerable", "unanswerable", "off_topic")}
    return {
        "dataset": str(path),
        "format": "squad2",
        "embedder": embedder.name,
        "token_embeddings": token_note,
        "reranks": harness.reranks,
        "documents": "one document per article, paragraphs as lines; each question asked of its own article",
        "store": store or "FAISS (in memory)",
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


def run_seed_qa(path: Path, embedder: CachingEmbedder, settings: Settings, *, token_note: str = "") -> dict[str, Any]:
    """The seed-QA protocol, through the real pipeline over ``settings.seeds_dir`` (extractive answers,
    shipped weights)."""
    from tqdm import tqdm

    from qa.answer import ExtractiveGenerator
    from qa.pipeline import Pipeline

    started = time.perf_counter()
    questions = load_seed_qa(path)
    pipe = Pipeline.from_paths([settings.seeds_dir], index_dir=None, embedder=embedder,
                               generator=ExtractiveGenerator(), settings=settings)
    store = pipe.index
    dense_index = dense_baseline(store)
    rows: list[dict[str, Any]] = []
    outcomes: dict[str, list[tuple[bool, Outcome]]] = {"pipeline": [], "bm25": [], "dense": []}
    for q in tqdm(questions, desc="asking", unit="q", file=sys.stderr):
        res = pipe.ask(q.text, llm="extractive")
        hits = pipe.retrieve(q.text, TOP).hits

        def rel(text: str, q: SeedQuestion = q) -> bool:
            return metrics.contains_support(text, q.support)

        first = res.citations[0].text if res.citations else None
        ok = res.abstained if not q.answerable else (first is not None and rel(first))
        rows.append({"question": q.text, "answerable": q.answerable, "abstained": res.abstained,
                     "first_citation": first, "ok": ok})
        outcomes["pipeline"].append((q.answerable, Outcome([rel(h.sentence.text) for h in hits], res.abstained)))
        if q.answerable:
            lex = store.lexical.plain_scores(q.text)
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
        "reranks": embedder.can_encode_tokens,
        "corpus": str(settings.seeds_dir),
        "systems": summary,
        "answerable_cited_right": f"{sum(answerable_ok)}/{len(answerable_ok)}",
        "unanswerable_abstained": f"{sum(unanswerable_ok)}/{len(unanswerable_ok)}",
        "all_ok": all(r["ok"] for r in rows),
        "questions": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
