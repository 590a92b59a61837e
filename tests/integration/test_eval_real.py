"""``qa eval`` with the real embedder: the SQuAD harness on a tiny hand-made file, refitting the weights, and
the bundled seed questions through the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.claims import RECORDS, write_claims
from helpers.squad import COUNTS, FOLDS, write_squad

from qa import config
from qa.cite import ClaimModel
from qa.embed.sbert import SentenceTransformerEmbedder
from qa.retrieve import ScorerWeights
from qa.retrieve.features import FEATURES
from qa.tools import eval as ev
from qa.tools.eval.claims_run import run_claims
from qa.tools.eval.embedder import eval_embedder
from qa.tools.eval.run import run_squad


def _rates(node: object) -> list[float]:
    """Every rate in a result tree (floats other than seconds)."""
    if isinstance(node, dict):
        return [x for k, v in node.items() if k != "seconds" for x in _rates(v)]
    if isinstance(node, list):
        return [x for v in node for x in _rates(v)]
    return [node] if isinstance(node, float) else []


def test_squad_harness_on_a_tiny_file(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_squad(tmp_path / "tiny.json")
    out = tmp_path / "out" / "result.json"
    assert ev.main(str(data), str(out), embedder=embedder) == 0
    printed = capsys.readouterr().out
    assert "| hybrid + rerank, held-out folds |" in printed and "baseline: BM25" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["format"] == "squad2" and result["reranks"] is True
    assert result["token_embeddings"] == "the product's embedder"
    assert result["counts"] == COUNTS and result["folds"] == FOLDS
    systems = result["systems"]
    assert set(systems) == {"hybrid_heldout", "stage1_heldout", "bm25", "dense", "rrf", "hybrid_insample"}
    for name in ("hybrid_heldout", "stage1_heldout", "hybrid_insample"):
        assert systems[name]["answerable"]["n"] == 12
        assert systems[name]["unanswerable"]["n"] == 4 and systems[name]["off_topic"]["n"] == 16
        assert set(systems[name]["answerable"]) >= {"hit_at_1", "recall_at_5", "mrr_at_10", "wrongly_abstained"}
    bm25 = systems["bm25"]["answerable"]
    assert (bm25["n"], bm25["hit_at_1"], bm25["recall_at_5"], bm25["mrr_at_10"]) == (12, 1.0, 1.0, 1.0)
    assert bm25["wrongly_abstained"] is None and "off_topic" not in systems["bm25"]
    assert systems["hybrid_heldout"]["answerable"]["recall_at_5"] == 1.0  # two-paragraph articles: trivially
    assert all(0.0 <= r <= 1.0 for r in _rates(systems))
    assert set(result["per_article"]) == {"Volcanoes", "Coffee", "Railways", "Chess"}
    assert len(result["fold_weights"]) == 2
    assert set(result["insample_weights"]["stage1"]) == set(FEATURES)


def test_fit_writes_loadable_weights(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    data = write_squad(tmp_path / "tiny.json")
    target = tmp_path / "weights.json"
    emb, note = eval_embedder(config.resolve(), embedder)
    result = run_squad(data, emb, token_note=note, fit_out=target)
    weights = ScorerWeights.load(target)
    assert "all 4 articles" in weights.meta["fitted_on"] and weights.meta["token_embeddings"] == note
    assert weights.to_json()["stage1"] == result["insample_weights"]["stage1"]
    assert 0.0 <= weights.abstain.below <= 1.0


def test_seed_protocol_reports_every_question(tmp_path: Path) -> None:
    """With no arguments, ``qa eval`` runs the seed questions shipped in the package through the real
    pipeline, with the product's embedder (ONNX int8)."""
    out = tmp_path / "seed.json"
    assert ev.main(None, str(out)) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["format"] == "seed-qa" and result["dataset"].endswith("seed-qa.jsonl")
    assert result["all_ok"] is True, [r for r in result["questions"] if not r["ok"]]
    assert result["answerable_cited_right"] == "11/11" and result["unanswerable_abstained"] == "3/3"
    pipeline = result["systems"]["pipeline"]
    assert pipeline["answerable"]["hit_at_1"] == 1.0 and pipeline["off_topic"]["abstained"] == 1.0
    assert len(result["questions"]) == 14 and result["reranks"] is True
    assert result["token_embeddings"] == "the product's embedder"


# ----- the claims protocol -------------------------------------------------------------------------


def test_claims_protocol_on_a_tiny_file(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_claims(tmp_path / "claims.jsonl")
    out = tmp_path / "result.json"
    assert ev.main(str(data), str(out), embedder=embedder) == 0
    printed = capsys.readouterr().out
    assert "| check through ask, (a) reply cites nothing |" in printed and "baseline: lexical overlap" in printed
    assert "baseline: MiniLM max cosine" in printed and "targets (>= 0.7 each, >= 0.75 mean)" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    n = sum(len(s) for _, s in RECORDS)
    assert result["format"] == "claims" and result["sentences"] == n and result["articles"] == len(RECORDS)
    assert result["stats"]["asks"] == 2 * len(RECORDS)  # each text asked twice: citing nothing, citing the closest
    assert result["stats"]["abstained"] == 0 and result["stats"]["unmatched"] == 0
    assert set(result["systems"]) == {"checker_a", "checker_b", "lexical", "cosine", "entailment"}
    for system in result["systems"].values():
        assert all(0.0 <= x <= 1.0 for x in _rates(system))
    assert sum(result["systems"]["checker_a"][d]["n"] for d in ("QAGS-CNNDM", "QAGS-XSum", "XSumFaith")) == n

    settings = config.resolve()
    fitted = tmp_path / "claim_weights.json"
    again = run_claims(data, eval_embedder(settings, embedder)[0], settings, fit_out=fitted)
    model = ClaimModel.load(fitted)
    assert again["fitted"]["path"] == str(fitted) and model.meta["command"].endswith("--fit")
