"""The claims protocol of ``qa eval``: model-written sentences about news articles, each judged by people,
sent through ``Pipeline.ask`` from a scripted Ollama server exactly as a model's reply would arrive.

1. Every article goes into one index (the product's embedder, token vectors stored as ``qa index`` does).
   A record's question is its own text (retrieval for the claim itself); abstention is off, so that every
   reply reaches the check (the ranking is the shipped one).
2. The checker's features of each sentence against its article, through ``ClaimChecker`` (the same
   candidates, vectors and rarity as ``ask``), are what the model is fitted on. Folds hold whole
   articles, stratified by dataset. For each fold an inner cross-validation on the other folds picks one
   of ``CONFIGS``, which is fitted on them; that fold's replies are then asked of a pipeline carrying
   that model. Nothing is fitted on the sentences it is measured on.
3. Two scenarios: (a) the reply cites nothing; (b) it cites, after each sentence, the source shown to
   the model that is closest to it (MiniLM cosine), as real models do. A sentence counts as flagged when
   ``Answer.claims`` says it is unsupported.
4. Baselines in the same run, thresholds fitted on the same training folds: the share of the sentence's
   content words in its best article sentence, and MiniLM's max cosine to an article sentence. Where
   the file carries a published entailment score (XSumFaith), it is reported as a reference.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qa.cite import ClaimChecker, ClaimModel
from qa.cite.claims import claim_text
from qa.cite.features import FEATURE_NAMES
from qa.config import Settings
from qa.index.terms import tokenize
from qa.retrieve import RetrievalConfig, ScorerWeights
from qa.retrieve.scorer import AbstainModel, default_weights
from qa.tools.eval.claims_fit import (
    DATASETS,
    balanced_accuracy,
    fit_model,
    fit_threshold,
    flag_prf,
    folds,
    pick_config,
)
from qa.tools.eval.data import ClaimRecord, load_claims
from qa.tools.eval.embedder import CachingEmbedder
from qa.tools.eval.report import write_json
from qa.tools.eval.scripted_ollama import MODEL, ScriptedOllama, sources_in
from qa.types import Answer

K_FOLDS = 5
SEED = 0
LLM = f"ollama:{MODEL.split(':')[0]}"


def never_abstain() -> RetrievalConfig:
    """The shipped ranking with abstention off (confidence is never below 0)."""
    w = default_weights()
    never = [AbstainModel(m.weights, m.bias, 0.0, 0.0) for m in (w.abstain, w.abstain_stage1)]
    return RetrievalConfig(weights=ScorerWeights(w.stage1, w.rerank, never[0], never[1], w.meta))


def join_reply(sentences: Sequence[str]) -> str:
    """Sentences as one reply: a space after a sentence that ends with a stop, else a line break."""
    out = ""
    for s in sentences:
        if out:
            out += " " if re.search(r"[.!?][\"'\u201d\u2019)]*$", out) else "\n"
        out += s.strip()
    return out


def cite_after(sentence: str, n: int) -> str:
    """``sentence`` with ``[n]`` before its final stop, as models write it."""
    m = re.search(r"[.!?]+[\"'\u201d\u2019)]*$", sentence.strip())
    s = sentence.strip()
    return f"{s[: m.start()]} [{n}]{s[m.start():]}" if m else f"{s} [{n}]"


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def match_claims(sentences: Sequence[str], answer: Answer) -> list[int | None]:
    """For each written sentence, the ``answer.claims`` entry that holds it (largest overlap), if any."""
    claims = [_norm(c.text) for c in answer.claims]
    out: list[int | None] = []
    for s in sentences:
        key = _norm(claim_text(s))
        best, size = None, 0
        for j, c in enumerate(claims):
            overlap = len(c) if c and c in key else len(key) if key and key in c else 0
            if overlap > size:
                best, size = j, overlap
        out.append(best)
    return out


def _lexical(claim: str, sentences: Sequence[str]) -> float:
    """Share of the claim's content words (stemmed, stop words out) in its best sentence."""
    toks = tokenize([claim, *sentences])
    c = set(toks[0])
    return max((len(c & set(s)) / len(c) for s in toks[1:]), default=0.0) if c else 1.0


def _summary(pred: NDArray[np.bool_], y: NDArray[np.bool_], d: NDArray[np.str_]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bas = []
    for ds in DATASETS:
        m = d == ds
        if not m.any():
            continue
        p, r, f1 = flag_prf(pred[m], y[m])
        out[ds] = {"n": int(m.sum()), "unsupported": int((~y[m]).sum()), "ba": balanced_accuracy(pred[m], y[m]),
                   "flag_precision": p, "flag_recall": r, "flag_f1": f1}
        bas.append(out[ds]["ba"])
    out["mean"] = {"ba": float(np.mean(bas)) if bas else 0.0}
    return out


@dataclasses.dataclass
class _Row:
    record: int
    index: int  # the sentence's position in its record
    text: str
    supported: bool
    dataset: str
    group: str  # the article's document id (folds hold whole articles)


class _State:
    """What the scripted server answers next (asks run one at a time)."""

    def __init__(self, embedder: CachingEmbedder) -> None:
        self.embedder = embedder
        self.sentences: list[str] = []
        self.cite = False
        self.cited: list[str] = []

    def reply(self, request: dict[str, Any]) -> str:
        if not self.cite:
            return join_reply(self.sentences)
        shown = sources_in(request)
        numbers = list(shown)
        vectors = self.embedder.encode([shown[n] for n in numbers])
        out, self.cited = [], []
        for s in self.sentences:
            j = int(np.argmax(vectors @ self.embedder.encode([s])[0]))
            self.cited.append(shown[numbers[j]])
            out.append(cite_after(s, numbers[j]))
        return join_reply(out)


def run_claims(
    path: Path, embedder: CachingEmbedder, settings: Settings, *, token_note: str = "", fit_out: Path | None = None,
) -> dict[str, Any]:
    """The claims protocol (see the module docstring); with ``fit_out``, also write the model fitted on all."""
    from tqdm import tqdm

    from qa.pipeline import Pipeline

    started = time.perf_counter()
    records = load_claims(path)
    doc_of: dict[str, str] = {}
    for r in records:
        doc_of.setdefault(r.article, f"article-{len(doc_of):03d}")
    rows = [_Row(i, j, s.text, s.supported, r.dataset, doc_of[r.article])
            for i, r in enumerate(records) for j, s in enumerate(r.sentences)]
    y = np.array([r.supported for r in rows], dtype=np.bool_)
    d = np.array([r.dataset for r in rows])
    g = np.array([r.group for r in rows])
    retrieval = never_abstain()
    pipe = Pipeline.from_texts({doc: text for text, doc in doc_of.items()}, embedder=embedder, settings=settings,
                               retrieval=retrieval)
    index = pipe.index

    # features through the checker's own candidates, and the baselines' scores
    checker = ClaimChecker(embedder, index)
    x = np.zeros((len(rows), len(FEATURE_NAMES)))
    lexical, cosine = np.zeros(len(rows)), np.zeros(len(rows))
    by_record: dict[int, list[int]] = {}
    for k, row in enumerate(rows):
        by_record.setdefault(row.record, []).append(k)
    for i, ks in tqdm(by_record.items(), desc="features", unit="text", file=sys.stderr):
        rec = records[i]
        doc = doc_of[rec.article]
        hits = pipe.retrieve(question(rec), settings.top_k, doc_ids=[doc]).hits
        feats = checker.features([claim_text(rows[k].text) for k in ks], hits)
        article = [index.sentences[j].text for j in index.rows_of(doc)]
        vectors = index.vectors[index.rows_of(doc)]
        for k, feat in zip(ks, feats, strict=True):
            x[k] = feat.values
            lexical[k] = _lexical(claim_text(rows[k].text), article)
            cosine[k] = float((vectors @ embedder.encode([claim_text(rows[k].text)])[0]).max())

    fo = folds(d, g, K_FOLDS, SEED)
    configs: list[str] = []
    models: list[ClaimModel] = []
    baseline = {"lexical": np.zeros(len(rows), dtype=np.bool_), "cosine": np.zeros(len(rows), dtype=np.bool_)}
    for f in range(K_FOLDS):
        tr, te = fo != f, fo == f
        cfg = pick_config(x[tr], y[tr], d[tr], g[tr])
        configs.append(str(cfg))
        models.append(fit_model(x[tr], y[tr], d[tr], cfg))
        for name, score in (("lexical", lexical), ("cosine", cosine)):
            baseline[name][te] = score[te] >= fit_threshold(score[tr], y[tr], d[tr])

    # the real path: each fold's replies through Pipeline.ask, from the scripted server
    state = _State(embedder)
    preds = {s: np.ones(len(rows), dtype=np.bool_) for s in ("a", "b")}
    scores = {s: np.full(len(rows), np.nan) for s in ("a", "b")}
    stats = {"unmatched": 0, "abstained": 0, "kept_citation": 0, "reattributed": 0, "asks": 0}
    with ScriptedOllama(state.reply) as server:
        asking = dataclasses.replace(settings, ollama_host=server.host)
        for f in range(K_FOLDS):
            fold_pipe = Pipeline(index, embedder=embedder, settings=asking, retrieval=retrieval, claim_model=models[f])
            todo = [(i, ks) for i, ks in by_record.items() if fo[ks[0]] == f]
            for i, ks in tqdm(todo, desc=f"asking (fold {f + 1}/{K_FOLDS})", unit="text", file=sys.stderr):
                rec = records[i]
                state.sentences = [rows[k].text for k in ks]
                for scenario in ("a", "b"):
                    state.cite = scenario == "b"
                    answer = fold_pipe.ask(question(rec), llm=LLM, doc_ids=[doc_of[rec.article]])
                    stats["asks"] += 1
                    stats["abstained"] += int(answer.abstained)
                    for pos, (k, j) in enumerate(zip(ks, match_claims(state.sentences, answer), strict=True)):
                        if j is None:
                            stats["unmatched"] += int(scenario == "a")
                            continue
                        c = answer.claims[j]
                        preds[scenario][k] = c.supported is not False
                        scores[scenario][k] = np.nan if c.score is None else c.score
                        if scenario == "b" and c.supported:
                            texts = {answer.citations[n - 1].text for n in c.citations}
                            kept = state.cited[pos] in texts
                            stats["kept_citation" if kept else "reattributed"] += 1

    systems = {
        "checker_a": _summary(preds["a"], y, d),
        "checker_b": _summary(preds["b"], y, d),
        "lexical": _summary(baseline["lexical"], y, d),
        "cosine": _summary(baseline["cosine"], y, d),
    }
    entailment = _entailment(records, rows, y, d, g, fo)
    if entailment is not None:
        systems["entailment"] = entailment
    result: dict[str, Any] = {
        "dataset": str(path),
        "format": "claims",
        "embedder": embedder.name,
        "token_embeddings": token_note,
        "reranks": embedder.can_encode_tokens,
        "protocol": (
            f"{K_FOLDS} folds of whole articles (stratified by dataset, seed {SEED}); per fold, an inner 4-fold CV "
            "on the other folds picks the configuration, fitted on them; replies asked through Pipeline.ask "
            "from a scripted Ollama server; baselines' thresholds fitted on the same training folds"
        ),
        "records": len(records),
        "articles": len(doc_of),
        "sentences": len(rows),
        "systems": systems,
        "fold_configs": configs,
        "stats": stats,
    }
    if fit_out is not None:
        cfg = pick_config(x, y, d, g)
        model = fit_model(x, y, d, cfg)
        meta = dict(model.meta)
        meta.update(
            fitted_on=f"{path.name}: {len(rows)} sentences of {len(doc_of)} articles ({', '.join(DATASETS)})",
            held_out={k: systems[k]["mean"]["ba"] for k in ("checker_a", "checker_b")}
            | {f"{k}_{ds}": systems[k][ds]["ba"] for k in ("checker_a", "checker_b") for ds in DATASETS
               if ds in systems[k]},
            command=f"qa eval {path.name} --fit",
        )
        write_json(fit_out, ClaimModel(model.gate, model.extractive, model.abstractive, meta).to_json())
        result["fitted"] = {"config": str(cfg), "path": str(fit_out)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def question(rec: ClaimRecord) -> str:
    """The question a record's text is asked with: the text itself (retrieval for the claims)."""
    return " ".join(s.text for s in rec.sentences)[:1500]


def _entailment(
    records: Sequence[ClaimRecord], rows: Sequence[_Row], y: NDArray[np.bool_], d: NDArray[np.str_],
    g: NDArray[np.str_], fo: NDArray[np.int64],
) -> dict[str, Any] | None:
    """The published entailment score of each text as a check, its threshold fitted on the training folds."""
    published = [records[r.record].entailment for r in rows]
    score = np.array([np.nan if v is None else v for v in published])
    has = ~np.isnan(score)
    if not has.any():
        return None
    pred = np.ones(len(rows), dtype=np.bool_)
    for f in range(K_FOLDS):
        tr, te = has & (fo != f), has & (fo == f)
        if tr.any() and te.any():
            pred[te] = score[te] >= fit_threshold(score[tr], y[tr], d[tr])
    out = _summary(pred[has], y[has], d[has])
    out["note"] = "published with the dataset; only where the file has it"
    return out

