"""Each speed-up keeps the exact path's answers: approximate indexes, index extension, re-indexing, batching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.fakes import CountingEmbedder, HashEmbedder, TokenHashEmbedder

from qa.embed import normalize
from qa.index import FaissIndex
from qa.index.build import encode
from qa.index.vectors import EXACT_MAX, build_faiss, choose_index_type, extend_index, ivf_lists, ivf_probes
from qa.pipeline import Pipeline
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


def _as_ivf(index: FaissIndex) -> FaissIndex:
    """The same sentences in an IVF index (what a corpus above ``EXACT_MAX`` sentences gets)."""
    return FaissIndex(list(index.documents.values()), index.sentences, index.vectors, model=index.model,
                      segmenter=index.segmenter, chunking=index.chunking, index_type="ivf", tokens=index.tokens,
                      lexical=index.lexical)


# ----- index type by size --------------------------------------------------------------------------------


def test_index_type_is_chosen_by_size_and_recorded(tmp_path: Path) -> None:
    assert choose_index_type(1_000) == "flat"
    assert choose_index_type(EXACT_MAX) == "flat"
    assert choose_index_type(EXACT_MAX + 1) == "ivf"
    assert ivf_probes(ivf_lists(1_000_000)) >= 32
    index = FaissIndex.build([_article(1)], HashEmbedder())
    index.save(tmp_path / "ix")
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


def test_ivf_index_survives_save_and_load(tmp_path: Path) -> None:
    ivf = _as_ivf(FaissIndex.build([_article(i, 20) for i in range(300)], HashEmbedder()))
    assert ivf.index_type == "ivf" and type(ivf.index).__name__ == "IndexIVFFlat"
    ivf.save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix")
    assert loaded.index_type == "ivf"
    assert loaded.index.nprobe == ivf.index.nprobe == ivf_probes(ivf.index.nlist)
    q = HashEmbedder().encode([ivf.sentences[17].text, ivf.sentences[2222].text])
    assert np.array_equal(loaded.dense_search(q, 5)[1], ivf.dense_search(q, 5)[1])
    assert loaded.dense_search(q, 1)[1][:, 0].tolist() == [17, 2222]


def test_tiny_corpus_asked_for_ivf_gets_exact_search() -> None:
    index = build_faiss(clustered(50), "ivf")
    assert type(index).__name__ == "IndexFlatIP" and index.ntotal == 50


def test_an_unknown_index_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown index type"):
        build_faiss(clustered(10), "annoy")


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


def test_extension_is_refused_when_a_rebuild_is_due() -> None:
    flat = build_faiss(clustered(EXACT_MAX - 5, dim=8), "flat")
    assert extend_index(flat, clustered(5, dim=8, seed=1)) is not None
    assert extend_index(flat, clustered(10, dim=8, seed=1)) is None  # past EXACT_MAX: time for an IVF
    assert extend_index(flat, clustered(0, dim=8)) is flat  # nothing to add: the same index, shared
    ivf = build_faiss(clustered(5_000), "ivf")
    assert extend_index(ivf, clustered(100, seed=1)) is not None
    assert extend_index(ivf, clustered(20_000, seed=1)) is None  # far more vectors than its lists were sized for


def test_adding_an_article_extends_the_index_instead_of_retraining() -> None:
    embedder = HashEmbedder()
    pipe = Pipeline(_as_ivf(FaissIndex.build([_article(i, sentences=60) for i in range(70)], embedder)),
                    embedder=embedder)
    index = pipe.index
    assert isinstance(index, FaissIndex) and index.index_type == "ivf"
    before = index.index
    centroids = before.quantizer.reconstruct_n(0, before.nlist)
    pipe.add([_article(99, sentences=4)])
    grown = pipe.index
    assert isinstance(grown, FaissIndex) and grown.index_type == "ivf"
    after = grown.index
    assert after is not before and after.ntotal == before.ntotal + 4 == len(grown)
    assert np.array_equal(after.quantizer.reconstruct_n(0, after.nlist), centroids)  # not retrained
    new_rows = grown.rows_of("doc-99")
    scores, found = grown.dense_search(grown.vectors[new_rows], 1)
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)  # each new sentence finds itself (or an identical vector)
    assert np.allclose(grown.vectors[found[:, 0]], grown.vectors[new_rows])
    assert grown.lexical.segments == 2  # BM25 gained a segment instead of being rebuilt
    # a changed article moves rows: then the indexes are rebuilt to match
    pipe.add([_article(3, sentences=2)])
    rebuilt = pipe.index
    assert isinstance(rebuilt, FaissIndex)
    assert rebuilt.index.ntotal == len(rebuilt) == 4204 - 58 and rebuilt.lexical.segments == 1


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
    assert len(pipe.index) == 23
    assert len(Pipeline.load(tmp_path / "ix", embedder=again).index) == 23


def test_progress_path_keeps_order_and_shows_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    texts = [("word " * (i % 37 + 1)) + f"item {i}" for i in range(1500)]
    counting = CountingEmbedder()
    with_bar, tokens = encode(counting, texts, progress=True)
    assert np.array_equal(with_bar, HashEmbedder().encode(texts)) and tokens is None  # no tokens declared
    assert len(counting.calls) > 1  # embedded in chunks, so the bar moves
    assert "embedding" in capsys.readouterr().err
    quiet, _ = encode(counting, texts[:100], progress=True)  # below 512 sentences: no bar, one call
    assert np.array_equal(quiet, with_bar[:100]) and "embedding" not in capsys.readouterr().err


def test_progress_path_keeps_token_order() -> None:
    texts = [("word " * (i % 37 + 1)) + f"item {i}" for i in range(1500)]
    embedder = TokenHashEmbedder()
    _, tokens = encode(embedder, texts, progress=True)
    assert tokens is not None and len(tokens.blocks) == 1 and len(tokens) == len(texts)
    assert [len(v) for v in tokens.get(range(len(texts)))] == [i % 37 + 3 for i in range(1500)]
    want = [v for v, _ in embedder.encode_tokens(texts[:40])]
    for a, b in zip(want, tokens.get(range(40)), strict=True):  # lossy codes, but each token is still itself
        assert np.array_equal(a[(b @ a.T).argmax(axis=1)], a) and np.mean(np.sum(a * b, axis=1)) > 0.9
