"""The embedders: the ONNX fast paths agree with the torch model, token embeddings included.

The ONNX exports live in the user's cache (``QA_CACHE_DIR``, else ``~/.cache/qa-news``), shared by the
whole suite: exporting takes ~30 s the first time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from helpers.data import SEED_ID, seed_questions
from helpers.env import isolated_settings

from qa import config
from qa.answer import ExtractiveGenerator
from qa.embed import Embedder, make_embedder, normalize
from qa.embed.onnx_embedder import OnnxEmbedder, token_batches
from qa.embed.sbert import SentenceTransformerEmbedder
from qa.errors import ConfigError
from qa.ingest import segment
from qa.pipeline import Pipeline
from qa.types import Document

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return isolated_settings().cache_dir


@pytest.fixture(scope="session")
def seed_sentences(seed_text: str) -> list[str]:
    return [s.text for s in segment(Document(doc_id="seed", text=seed_text))]


@pytest.fixture(scope="session")
def questions() -> list[str]:
    return [q.text for q in seed_questions()]


@pytest.fixture(scope="session")
def onnx_fp32(cache_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(quantize=False, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def onnx_int8(cache_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(quantize=True, cache_dir=cache_dir)


def _top1(embedder: Embedder, sentences: Sequence[str], questions: Sequence[str]) -> list[int]:
    s = embedder.encode(sentences)
    q = embedder.encode(questions)
    return [int(i) for i in np.argmax(q @ s.T, axis=1)]


def test_make_embedder_picks_the_runtime_from_the_settings(tmp_path: Path) -> None:
    default = make_embedder()
    assert isinstance(default, OnnxEmbedder) and default.name == "all-MiniLM-L6-v2"
    assert isinstance(make_embedder(settings=config.resolve(embed_runtime="torch")), SentenceTransformerEmbedder)
    fp32 = make_embedder(settings=config.resolve(embed_runtime="onnx"))
    assert isinstance(fp32, OnnxEmbedder)
    assert "fp32" in fp32.directory.name and "int8" in default.directory.name
    assert default.directory.parent == config.resolve().cache_dir / "onnx"
    elsewhere = make_embedder(settings=config.resolve(cache_dir=tmp_path))
    assert isinstance(elsewhere, OnnxEmbedder) and elsewhere.directory.parent == tmp_path / "onnx"
    assert not (tmp_path / "onnx").exists()  # nothing is exported until something is encoded
    assert make_embedder("sentence-transformers/all-MiniLM-L6-v2").name == "sentence-transformers/all-MiniLM-L6-v2"


def test_token_batches_cover_every_row_once_within_budget() -> None:
    lengths = np.random.default_rng(0).integers(3, 120, 500)
    batches = token_batches(lengths, 32, 1024)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for b in batches:
        assert len(b) <= 32
        assert len(b) == 1 or len(b) * int(lengths[b].max()) <= 1024
    assert [int(lengths[b].max()) for b in batches] == sorted(int(lengths[b].max()) for b in batches)


def test_onnx_fp32_is_the_torch_model(
    onnx_fp32: OnnxEmbedder, embedder: SentenceTransformerEmbedder, seed_sentences: list[str], questions: list[str]
) -> None:
    fast = onnx_fp32.encode(seed_sentences)
    ref = embedder.encode(seed_sentences)
    assert fast.shape == ref.shape == (len(seed_sentences), 384) and fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(fast * ref, axis=1)) >= 0.999
    assert _top1(onnx_fp32, seed_sentences, questions) == _top1(embedder, seed_sentences, questions)
    assert onnx_fp32.runtime == "onnx" and embedder.runtime == "torch"


def test_onnx_int8_stays_close_to_torch(
    onnx_int8: OnnxEmbedder, embedder: SentenceTransformerEmbedder, seed_sentences: list[str], questions: list[str]
) -> None:
    assert onnx_int8.runtime == "onnx-int8"
    assert np.min(np.sum(onnx_int8.encode(seed_sentences) * embedder.encode(seed_sentences), axis=1)) >= 0.98
    assert np.min(np.sum(onnx_int8.encode(questions) * embedder.encode(questions), axis=1)) >= 0.98
    agree = np.mean(np.array(_top1(onnx_int8, seed_sentences, questions))
                    == np.array(_top1(embedder, seed_sentences, questions)))
    assert agree >= 0.9


def test_token_embeddings_agree_with_torch(
    onnx_fp32: OnnxEmbedder, embedder: SentenceTransformerEmbedder, seed_sentences: list[str]
) -> None:
    """The rerank's contract: unit rows for the non-special tokens, with the same character offsets."""
    texts = [*seed_sentences[:5], "Who stayed in Washington?"]
    for (fast, fast_off), (ref, ref_off), text in zip(
        onnx_fp32.encode_tokens(texts), embedder.encode_tokens(texts), texts, strict=True
    ):
        assert np.array_equal(fast_off, ref_off) and len(fast) == len(fast_off) > 0
        assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(fast * ref, axis=1)) >= 0.999
        assert all(0 <= s < e <= len(text) for s, e in fast_off.tolist())
    assert onnx_fp32.encode_tokens([]) == [] and embedder.encode_tokens([]) == []


@pytest.mark.parametrize("which", ["onnx_fp32", "onnx_int8", "embedder"])
def test_encode_with_tokens_is_one_pass_of_both(
    request: pytest.FixtureRequest, which: str, seed_sentences: list[str]
) -> None:
    emb: Embedder = request.getfixturevalue(which)
    texts = seed_sentences[:6]
    vectors, tokens = emb.encode_with_tokens(texts)
    assert np.allclose(vectors, emb.encode(texts), atol=2e-3)
    alone = emb.encode_tokens(texts)
    assert [len(t) for t in tokens] == [len(v) for v, _ in alone]
    for got, (want, _) in zip(tokens, alone, strict=True):
        assert np.min(np.sum(normalize(got) * want, axis=1)) >= 0.99


def test_int8_pipeline_cites_the_same_sentences_as_torch(
    onnx_int8: OnnxEmbedder, embedder: SentenceTransformerEmbedder, seed_text: str
) -> None:
    """Through the whole pipeline (dense, BM25, rerank, abstention): the same citations and abstentions."""
    texts = {SEED_ID: seed_text}
    fast = Pipeline.from_texts(texts, embedder=onnx_int8, generator=ExtractiveGenerator())
    ref = Pipeline.from_texts(texts, embedder=embedder, generator=ExtractiveGenerator())
    rows = seed_questions()
    same = [fast.retrieve(q.text, 1).hits[0].sentence == ref.retrieve(q.text, 1).hits[0].sentence
            for q in rows if q.answerable]
    assert np.mean(same) >= 0.9
    for q in rows:  # unanswerable questions have near-ties at the top; what matters is that both abstain
        assert fast.ask(q.text).abstained == ref.ask(q.text).abstained == (not q.answerable), q.text


def test_encode_keeps_input_order_across_length_buckets(onnx_fp32: OnnxEmbedder, seed_sentences: list[str]) -> None:
    texts = [*seed_sentences, "Short.", "A" * 3, *reversed(seed_sentences)]
    together = onnx_fp32.encode(texts)
    alone = np.concatenate([onnx_fp32.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)
    assert onnx_fp32.encode([]).shape == (0, 384)


def test_export_is_published_whole(onnx_fp32: OnnxEmbedder) -> None:
    onnx_fp32.encode(["x"])
    directory = onnx_fp32.directory
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    assert meta["dim"] == 384 and meta["quantized"] is False and meta["model"] == "all-MiniLM-L6-v2"
    assert (directory / meta["onnx"]).is_file() and (directory / "tokenizer.json").is_file()
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")]  # no half-written exports


def test_an_export_folder_opens_as_it_is(onnx_int8: OnnxEmbedder) -> None:
    onnx_int8.encode(["make sure it exists"])
    opened = OnnxEmbedder.from_dir(onnx_int8.directory, name="all-MiniLM-L6-v2")
    assert opened.runtime == "onnx" and opened.dim == 384  # from_dir reads the folder; it exports nothing
    assert np.allclose(opened.encode(["Who stayed?"]), onnx_int8.encode(["Who stayed?"]), atol=1e-3)


def test_a_failed_export_falls_back_to_torch_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model that cannot be exported (here: a folder that holds no model) is run on torch instead, with a
    warning; when torch cannot load it either, the error says which model and what to use."""
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}", encoding="utf-8")
    e = OnnxEmbedder(str(broken), cache_dir=tmp_path / "cache")
    assert e.runtime == "torch"
    err = capsys.readouterr().err
    assert "exporting the embedding model" in err and "ONNX export failed" in err and "torch instead" in err
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))  # nothing half-exported is left
    with pytest.raises(ConfigError, match="Could not load the embedding model"):
        e.encode(["hello world"])
