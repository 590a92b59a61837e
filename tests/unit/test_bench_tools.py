"""``qa bench``: its arithmetic, its synthetic corpora and its table (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.embed import normalize
from qa.index import TokenTable
from qa.tools.bench.corpus import squad_documents, synthetic_corpus
from qa.tools.bench.measure import exact_top, latency, percentile_ms, recall_at
from qa.tools.bench.milvus import bytes_per_sentence, dir_bytes
from qa.tools.bench.report import table


def test_percentiles_and_recall() -> None:
    assert percentile_ms([0.001] * 19 + [0.1], 50) == pytest.approx(1.0)
    lat = latency([0.002, 0.004])
    assert lat["p50_ms"] == pytest.approx(3.0) and lat["n"] == 2
    assert recall_at(np.array([[1, 2, 3]]), np.array([[3, 2, 9]]), 3) == pytest.approx(2 / 3)


def test_exact_top_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = normalize(rng.normal(size=(450, 16)))
    queries = normalize(rng.normal(size=(7, 16)))
    want = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    assert np.array_equal(exact_top(vectors, queries, 10, step=100), want)  # in chunks
    assert np.array_equal(exact_top(vectors, queries, 10), want)


def test_synthetic_corpus_has_exact_spans_and_unit_vectors() -> None:
    rng = np.random.default_rng(1)
    texts = [f"Real sentence number {i} about topic {i % 5}." for i in range(30)]
    vectors = normalize(rng.normal(size=(30, 8)))
    tokens = TokenTable.quantize([normalize(rng.normal(size=(i % 4 + 1, 8))) for i in range(30)], 8)
    docs, sentences, out, synthetic_tokens = synthetic_corpus(95, texts, vectors, per_doc=20, tokens=tokens)
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
    _, small, small_vectors, no_tokens = synthetic_corpus(10, texts, vectors)
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
    text = table(_fake_result())
    lines = text.splitlines()
    assert lines[0].split("|")[0].strip() == "measurement"
    assert len({len(line) for line in lines[:2]}) == 1
    for needle in ("SentenceTransformer.encode", "4.00x", "quality: onnx-int8", "query 100k", "recall@10 0.990",
                   "cold start: qa ask", "import sentence_transformers", "heavy modules"):
        assert needle in text
    met = [line.rsplit("|", 1)[1].strip() for line in lines[2:]]
    assert "NO" not in met and met.count("yes") >= 6


def test_squad_documents_keep_answer_offsets(tmp_path: Any) -> None:
    from helpers.squad import write_squad

    docs, questions = squad_documents(write_squad(tmp_path / "tiny.json"))
    assert [d.doc_id for d in docs] == ["Volcanoes", "Coffee", "Railways", "Chess"]
    by_id = {d.doc_id: d.text for d in docs}
    assert len(questions) == 12  # the answerable ones
    for question, doc_id, offset in questions:
        assert question.endswith("?") and 0 <= offset < len(by_id[doc_id])
    assert ("Who engineered the line?", "Railways", by_id["Railways"].index("George Stephenson")) in questions


def test_dir_bytes_counts_files_below_and_not_links(tmp_path: Any) -> None:
    assert dir_bytes(tmp_path / "absent") == 0
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "b").write_bytes(b"y" * 32)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert dir_bytes(tmp_path) == 42


def test_bytes_per_sentence_counts_only_what_writing_added() -> None:
    assert bytes_per_sentence(100, 1_100, 10) == 100.0
    assert bytes_per_sentence(100, 50, 10) == 0.0  # a server that compacted meanwhile: never negative
    assert bytes_per_sentence(0, 10, 0) == 10.0


def _milvus_row(size: int) -> dict[str, Any]:
    lat = {"p50_ms": 20.0, "p95_ms": 40.0, "mean_ms": 25.0, "n": 30}
    return {"size": size, "construct_s": 1.5, "save_s": 30.0, "build_s": 31.5, "open_s": 4.0, "peak_mib": 2000.0,
            "stored_tokens": False, "latency": {"retrieval": lat, "end_to_end": lat},
            "disk": {"empty_server_bytes": 0, "written_bytes": 1234, "bytes_per_sentence": 3210}}


def test_table_puts_milvus_rows_beside_faiss() -> None:
    result = _fake_result()
    result["query"][0]["disk"] = {"bytes_per_sentence": 2500, "token_bytes_per_sentence": 1600, "open_s": 0.5}
    result["milvus"] = {"rows": [_milvus_row(100_000), _milvus_row(10_000)]}
    text = table(result)
    assert "milvus 100k: build" in text and "31.5 s (FAISS: index 1.0s + BM25 2.0s) | 4.0 s" in text
    assert "milvus 100k: end-to-end extractive p50/p95" in text and "20.0 / 40.0 ms (FAISS 1.0 / 2.0 ms)" in text

    def row(label: str) -> list[str]:
        line = next(line for line in text.splitlines() if line.startswith(label))
        return [cell.strip() for cell in line[len(label) :].split("|")]

    assert row("disk 100k: Milvus Lite data dir bytes per sentence")[1] == "3210 B (FAISS 2500 B)"
    assert row("milvus 10k: build (construct+BM25 1.5s, write 30.0s) | open")[1:3] == ["31.5 s", "4.0 s"]  # no FAISS
    assert "milvus 10k: retrieval with rerank (tokens encoded per query) p50/p95" in text


def test_table_has_the_1m_open_row_with_its_target() -> None:
    result = _fake_result()
    row = dict(result["query"][0], size=1_000_000)
    row["disk"] = {"bytes_per_sentence": 5000, "token_bytes_per_sentence": 1600, "open_s": 4.2,
                   "open_runs_s": [4.2, 5.0, 4.9], "first_search_s": 3.1}
    result["query"] = [row]
    line = next(line for line in table(result).splitlines() if "FAISS index open" in line)
    assert "best of 3" in line and "4.2 s (then the first search 3.1 s)" in line and "< 10 s" in line
    assert line.rstrip().endswith("yes")


def test_milvus_section_is_skipped_with_a_line_without_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.tools.bench as bench

    monkeypatch.setattr(bench, "missing_modules", lambda: ["milvus_lite"])

    def never(name: str, fn: Any) -> Any:
        raise AssertionError("no Milvus child without the client")

    out = bench.bench_milvus(Path("squad.json"), [10_000], 5, "cache", never)
    assert out["rows"] == [] and "milvus_lite not installed" in out["skipped"]
    result = _fake_result()
    result["milvus"] = out
    assert "milvus: skipped" in table(result)


def test_the_markdown_table_has_the_same_rows_as_the_text_table(tmp_path: Any) -> None:
    import json
    import re

    from qa.tools.bench import cli
    from qa.tools.bench.report import markdown, table_rows

    result = _fake_result()
    md = markdown(result).splitlines()
    assert md[0] == "| measurement | value | peak MiB | target | met |" and len(md) == 2 + len(table_rows(result))
    assert all(len(re.split(r"(?<!\\)\|", line)) == 7 for line in md[2:])  # a "|" in a cell is escaped
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(result), encoding="utf-8")
    assert cli(["--markdown", str(saved)]) == 0
    assert cli(["--markdown", str(tmp_path / "missing.json")]) == 2
