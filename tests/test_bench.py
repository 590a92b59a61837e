"""``qa bench``: its arithmetic, its synthetic corpora and its table (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_DATA

from qa import bench
from qa.embed import normalize
from qa.store import TokenTable


def test_percentiles_and_recall() -> None:
    assert bench.percentile_ms([0.001] * 19 + [0.1], 50) == pytest.approx(1.0)
    lat = bench.latency([0.002, 0.004])
    assert lat["p50_ms"] == pytest.approx(3.0) and lat["n"] == 2
    assert bench.recall_at(np.array([[1, 2, 3]]), np.array([[3, 2, 9]]), 3) == pytest.approx(2 / 3)


def test_exact_top_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = normalize(rng.normal(size=(450, 16)))
    queries = normalize(rng.normal(size=(7, 16)))
    want = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    assert np.array_equal(bench.exact_top(vectors, queries, 10, step=100), want)  # in chunks
    assert np.array_equal(bench.exact_top(vectors, queries, 10), want)


def test_synthetic_corpus_has_exact_spans_and_unit_vectors() -> None:
    rng = np.random.default_rng(1)
    texts = [f"Real sentence number {i} about topic {i % 5}." for i in range(30)]
    vectors = normalize(rng.normal(size=(30, 8)))
    tokens = TokenTable.quantize([normalize(rng.normal(size=(i % 4 + 1, 8))) for i in range(30)], 8)
    docs, sentences, out, synthetic_tokens = bench.synthetic_corpus(95, texts, vectors, per_doc=20, tokens=tokens)
    assert synthetic_tokens is not None and len(synthetic_tokens) == 95
    pairs = zip(synthetic_tokens.get(range(30)), tokens.get(range(30)), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)
    # a synthetic sentence borrows the tokens of the real sentence whose length it has
    assert all(len(synthetic_tokens.get([r])[0]) in (1, 2, 3, 4) for r in range(30, 95))
    assert len(sentences) == len(out) == 95 and len(docs) == 5
    by_id = {d.doc_id: d for d in docs}
    assert all(by_id[s.doc_id].text[s.start : s.end] == s.text for s in sentences)
    assert [s.text for s in sentences[:30]] == texts and np.array_equal(out[:30], vectors)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    _, small, small_vectors, no_tokens = bench.synthetic_corpus(10, texts, vectors)
    assert no_tokens is None
    assert len(small) == 10 and np.array_equal(small_vectors, vectors[:10])


def _fake_result() -> dict[str, Any]:
    lat = {"p50_ms": 1.0, "p95_ms": 2.0, "mean_ms": 1.2, "n": 5}
    row = {"embed_sent_per_s": 400.0, "index_build_sent_per_s": 300.0, "ratio_best": 4.0, "ratio_median": 3.8,
           "ratio_cpu": 4.1, "index_build_ratio": 3.0, "peak_mib": 400.0, "runtime": "onnx-int8"}
    quality_row = {"product_hit_at_1": 65.0, "product_hit_at_1_delta_points": -0.2, "dense_hit_at_1": 60.0,
                   "dense_hit_at_1_delta_points": 0.1, "product_top1_agreement": 96.0, "cosine_min": 0.99,
                   "seed_qa_ok": "14/14"}
    return {
        "default_runtime": "onnx-int8",
        "build": {"summary": {"sentences": 100, "plain_sent_per_s": 100.0, "plain_peak_mib": 900.0,
                              "onnx": dict(row, runtime="onnx"), "onnx-int8": row}},
        "quality": {"questions": 10, "articles": 1, "torch": {"product_hit_at_1": 65.2, "dense_hit_at_1": 59.9,
                                                              "seed_qa_ok": "14/14"},
                    "onnx": quality_row, "onnx-int8": quality_row},
        "query": [{"size": 100_000, "index_type": "ivf", "faiss_build_s": 1.0, "faiss_index_cached": False,
                   "lexical_build_s": 2.0, "recall_at_10": 0.99, "peak_mib": 1300.0, "reranks": True,
                   "latency": {k: lat for k in ("encode", "bm25", "faiss", "stage1", "retrieval", "end_to_end")}}],
        "coldstart": {"qa_ask_median_s": 0.8, "import_st_median_s": 5.0, "qa_ask_peak_mib": 250.0,
                      "import_st_peak_mib": 450.0, "heavy_modules_imported_by_ask": []},
    }


def test_table_has_every_section_and_target() -> None:
    text = bench.table(_fake_result())
    lines = text.splitlines()
    assert lines[0].split("|")[0].strip() == "measurement"
    assert len({len(line) for line in lines[:2]}) == 1
    for needle in ("SentenceTransformer.encode", "4.00x", "quality: onnx-int8", "query 100k", "recall@10 0.990",
                   "cold start: qa ask", "import sentence_transformers", "heavy modules"):
        assert needle in text
    met = [line.rsplit("|", 1)[1].strip() for line in lines[2:]]
    assert "NO" not in met and met.count("yes") >= 6


@pytest.mark.skipif(not (SHARED_DATA / "squad-v2-dev.json").is_file(), reason="needs the SQuAD dev file")
def test_bench_query_section_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path_factory: pytest.TempPathFactory,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "qa-onnx-cache"))
    out = tmp_path / "bench.json"
    rc = bench.main(["--sections", "query", "--sizes", "1000", "--queries", "4", "--json", str(out),
                     "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    result = json.loads(out.read_text())
    (q,) = result["query"]
    assert q["size"] == 1000 and q["index_type"] == "flat" and q["recall_at_10"] == 1.0
    assert set(q["latency"]) >= {"encode", "bm25", "faiss", "retrieval", "end_to_end"}
    assert q["peak_mib"] > 0
    printed = capsys.readouterr().out
    assert "query 1k" in printed and result["table"] in printed
