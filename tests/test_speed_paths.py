"""Each speed-up keeps the exact path's answers: approximate indexes, index extension, re-indexing, batching."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEED_FILE, CountingEmbedder, HashEmbedder, TokenHashEmbedder, load_seed_qa

from qa import store as store_mod
from qa.embed import normalize
from qa.pipeline import Pipeline, _encode, build_store
from qa.store import Store, build_faiss, choose_index_type, extend_index, ivf_lists, ivf_probes
from qa.types import Document


def clustered(n: int, dim: int = 48, clusters: int = 200, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` centres: the shape real sentence embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    pick = rng.integers(0, clusters, n)
    return normalize(centres[pick] + 0.35 * rng.normal(size=(n, dim)))


def exact(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def _article(i: int, sentences: int = 5) -> Document:
    text = " ".join(f"Article {i} reports event number {j} in city {i * 7 + j}." for j in range(sentences))
    return Document(doc_id=f"doc-{i}", text=text, source=f"doc-{i}.txt")


# ----- index type by size --------------------------------------------------------------------------------


def test_index_type_is_chosen_by_size_and_recorded(tmp_path: Path) -> None:
    assert choose_index_type(1_000) == "flat"
    assert choose_index_type(store_mod.EXACT_MAX) == "flat"
    assert choose_index_type(store_mod.EXACT_MAX + 1) == "ivf"
    assert ivf_probes(ivf_lists(1_000_000)) >= 32
    store = build_store([_article(1)], HashEmbedder())
    store.save(tmp_path / "ix")
    assert json.loads((tmp_path / "ix" / "manifest.json").read_text())["index_type"] == "flat"


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_approximate_index_returns_the_exact_top_results(index_type: str) -> None:
    vectors = clustered(20_000)
    queries = clustered(200, seed=1)
    index = build_faiss(vectors, index_type)
    assert index.ntotal == len(vectors)
    _, found = index.search(queries, 10)
    truth = exact(vectors, queries, 10)
    assert np.mean(found[:, 0] == truth[:, 0]) >= 0.97  # the best result is the exact best
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95


def test_ivf_store_survives_save_and_load(tmp_path: Path) -> None:
    docs = [_article(i, 20) for i in range(300)]
    store = build_store(docs, HashEmbedder())
    ivf = Store(list(store.documents.values()), store.sentences, store.vectors, model=store.model,
                segmenter=store.segmenter, chunking=store.chunking, index_type="ivf")
    assert ivf.index_type == "ivf" and type(ivf.index).__name__ == "IndexIVFFlat"
    ivf.save(tmp_path / "ix")
    loaded = Store.load(tmp_path / "ix")
    assert loaded.index_type == "ivf"
    assert loaded.index.nprobe == ivf.index.nprobe == ivf_probes(ivf.index.nlist)
    q = HashEmbedder().encode([store.sentences[17].text, store.sentences[2222].text])
    assert np.array_equal(loaded.search(q, 5)[1], ivf.search(q, 5)[1])
    assert loaded.search(q, 1)[1][:, 0].tolist() == [17, 2222]


def test_tiny_corpus_asked_for_ivf_gets_exact_search() -> None:
    index = build_faiss(clustered(50), "ivf")
    assert type(index).__name__ == "IndexFlatIP" and index.ntotal == 50


# ----- adding to an index instead of rebuilding it --------------------------------------------------------


@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_extended_index_answers_like_a_rebuilt_one(index_type: str) -> None:
    vectors = clustered(12_000)
    old, new = vectors[:11_950], vectors[11_950:]
    base = build_faiss(old, index_type)
    grown = extend_index(base, new)
    assert grown is not None
    assert base.ntotal == len(old) and grown.ntotal == len(vectors)  # the live index is left alone
    _, ids = grown.search(new, 1)
    assert ids[:, 0].tolist() == list(range(len(old), len(vectors)))  # the new rows are found as themselves
    queries = clustered(100, seed=3)
    _, found = grown.search(queries, 10)
    if index_type == "flat":
        assert np.array_equal(found, build_faiss(vectors, "flat").search(queries, 10)[1])
    else:
        truth = exact(vectors, queries, 10)
        assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]) >= 0.95


def test_extension_is_refused_when_a_rebuild_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "EXACT_MAX", 1_000)
    flat = build_faiss(clustered(990), "flat")
    assert extend_index(flat, clustered(5, seed=1)) is not None
    assert extend_index(flat, clustered(100, seed=1)) is None  # past EXACT_MAX: time for an IVF
    ivf = build_faiss(clustered(5_000), "ivf")
    assert extend_index(ivf, clustered(100, seed=1)) is not None
    assert extend_index(ivf, clustered(20_000, seed=1)) is None  # far more vectors than its lists were sized for


def test_adding_an_article_extends_the_index_instead_of_retraining(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "EXACT_MAX", 100)  # so a small corpus gets an IVF index
    pipe = Pipeline.from_documents([_article(i, sentences=60) for i in range(70)], embedder=HashEmbedder())
    before = pipe.store.index
    assert pipe.store.index_type == "ivf"
    centroids = before.quantizer.reconstruct_n(0, before.nlist)
    pipe.add([_article(99, sentences=4)])
    after = pipe.store.index
    assert after is not before and after.ntotal == before.ntotal + 4 == len(pipe.store)
    assert np.array_equal(after.quantizer.reconstruct_n(0, after.nlist), centroids)  # not retrained
    new_rows = pipe.store.rows_of("doc-99")
    vectors = pipe.store.vectors
    scores, found = pipe.store.search(vectors[new_rows], 1)
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)  # each new sentence finds itself (or an identical vector)
    assert np.allclose(vectors[found[:, 0]], vectors[new_rows])
    # a changed article moves rows: then the index is rebuilt to match
    pipe.add([_article(3, sentences=2)])
    assert pipe.store.index.ntotal == len(pipe.store) == 4204 - 58


# ----- re-indexing does no needless embedding -------------------------------------------------------------


def test_reindexing_an_unchanged_corpus_embeds_nothing(tmp_path: Path) -> None:
    docs = [_article(i) for i in range(4)]
    first = CountingEmbedder()
    Pipeline.from_documents(docs, index_dir=tmp_path / "ix", embedder=first)
    assert first.embedded == 20
    again = CountingEmbedder()
    pipe = Pipeline.from_documents(docs, index_dir=tmp_path / "ix", embedder=again)
    assert again.embedded == 0
    pipe.add([_article(9, sentences=3)])
    assert again.embedded == 3  # only the new article's sentences
    assert len(pipe.store) == 23


def test_progress_path_keeps_order_and_shows_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    texts = [("word " * (i % 37 + 1)) + f"item {i}" for i in range(1500)]
    counting = CountingEmbedder()
    with_bar, tokens = _encode(counting, texts, progress=True)
    assert np.array_equal(with_bar, HashEmbedder().encode(texts)) and tokens is None  # no tokens from a fake
    assert len(counting.calls) > 1  # embedded in chunks, so the bar moves
    assert "embedding" in capsys.readouterr().err


def test_progress_path_keeps_token_order() -> None:
    texts = [("word " * (i % 37 + 1)) + f"item {i}" for i in range(1500)]
    embedder = TokenHashEmbedder()
    _, tokens = _encode(embedder, texts, progress=True)
    assert tokens is not None and len(tokens.blocks) == 1 and len(tokens) == len(texts)
    assert [len(v) for v in tokens.get(range(len(texts)))] == [i % 37 + 3 for i in range(1500)]
    want = [v for v, _ in embedder.encode_tokens(texts[:40])]
    for a, b in zip(want, tokens.get(range(40)), strict=True):
        assert np.min(np.sum(a * b, axis=1)) > 0.999


# ----- the rerank reads stored tokens instead of running the model per query --------------------------------


@pytest.fixture(scope="module")
def onnx_seed(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The seed article indexed by the default (ONNX int8) embedder, with its stored tokens."""
    from qa.embed import make_embedder
    from qa.generate import ExtractiveGenerator

    os.environ["QA_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "qa-onnx-cache")
    try:
        embedder = make_embedder()
        return Pipeline.from_texts({SEED_FILE.name: SEED_FILE.read_text(encoding="utf-8")}, embedder=embedder,
                                   generator=ExtractiveGenerator())
    finally:
        del os.environ["QA_CACHE_DIR"]


def test_stored_tokens_equal_the_tokens_the_model_gives_per_query(onnx_seed: Pipeline) -> None:
    store = onnx_seed.store
    assert store.tokens is not None
    texts = [s.text for s in store.sentences]
    live = onnx_seed.embedder.encode_tokens(texts)  # type: ignore[attr-defined]
    for (want, _), got in zip(live, store.tokens.get(range(len(store))), strict=True):
        assert want.shape == got.shape
        assert np.min(np.sum(want * got, axis=1)) > 0.999


def test_stored_tokens_rank_like_encoding_per_query(onnx_seed: Pipeline) -> None:
    """Same top results and abstentions as the on-the-fly rerank, for every seed question."""
    from qa.retrieve import Retriever

    store = onnx_seed.store
    stored = onnx_seed._retriever
    live_store = Store(list(store.documents.values()), store.sentences, store.vectors, model=store.model,
                       segmenter=store.segmenter, chunking=store.chunking, index=store.index)
    live = Retriever(live_store, onnx_seed.embedder)
    assert stored.reranks and live.reranks and live_store.tokens is None
    questions = [str(row["question"]) for row in load_seed_qa()]
    assert len(questions) >= 10
    for q in questions:
        a, b = stored.search(q, 5), live.search(q, 5)
        assert [h.sentence for h in a] == [h.sentence for h in b], q
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=0.02), q
        assert stored.abstains(a) == live.abstains(b), q


# ----- the query path stays light -------------------------------------------------------------------------


def test_qa_ask_imports_no_torch(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A new ``qa ask`` process on an existing index answers without torch, transformers or Gradio."""
    env = {**os.environ, "QA_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "qa-onnx-cache")}
    index = tmp_path / "ix"
    subprocess.run([sys.executable, "-m", "qa", "index", str(ROOT / "seeds"), "--index-dir", str(index)],
                   env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    code = (
        "import io, json, sys, contextlib\n"
        "from qa.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main(['ask', '--index-dir', {str(index)!r}, '--llm', 'extractive', '--json',"
        " 'Who stayed in Washington despite the cancellation?'])\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'gradio') if m in sys.modules]\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'answer': json.loads(out.getvalue())}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True,
                          text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0 and result["heavy"] == []
    assert "Gallant" in result["answer"]["citations"][0]["sentence"]
