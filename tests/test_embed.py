"""The embedders: the ONNX fast paths agree with the torch model, and the query path needs no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEED_FILE, load_seed_qa

from qa import embed
from qa.embed import (
    Embedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
    normalize,
    resolve_cache_dir,
    resolve_runtime,
    token_batches,
)
from qa.errors import ConfigError
from qa.ingest import segment
from qa.types import Document

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the whole test session (exports take seconds; they are made once)."""
    return tmp_path_factory.getbasetemp() / "qa-onnx-cache"


@pytest.fixture(autouse=True)
def _cache_env(monkeypatch: pytest.MonkeyPatch, onnx_cache: Path) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(onnx_cache))
    monkeypatch.delenv("QA_EMBED_RUNTIME", raising=False)


@pytest.fixture(scope="session")
def seed_sentences(seed_text: str) -> list[str]:
    return [s.text for s in segment(Document(doc_id="seed", text=seed_text))]


@pytest.fixture(scope="session")
def seed_questions() -> list[str]:
    return [str(row["question"]) for row in load_seed_qa()]


@pytest.fixture(scope="session")
def onnx_fp32(onnx_cache: Path) -> Iterator[OnnxEmbedder]:
    yield OnnxEmbedder(quantize=False, cache_dir=onnx_cache)


@pytest.fixture(scope="session")
def onnx_int8(onnx_cache: Path) -> Iterator[OnnxEmbedder]:
    yield OnnxEmbedder(quantize=True, cache_dir=onnx_cache)


def _top1(embedder: Embedder, sentences: Sequence[str], questions: Sequence[str]) -> list[int]:
    s = embedder.encode(sentences)
    q = embedder.encode(questions)
    return [int(i) for i in np.argmax(q @ s.T, axis=1)]


# ----- plumbing ------------------------------------------------------------------------------------------


def test_normalize_makes_unit_rows_and_keeps_zero_rows() -> None:
    out = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_runtime_resolves_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_runtime() == embed.DEFAULT_RUNTIME == "onnx-int8"
    monkeypatch.setenv("QA_EMBED_RUNTIME", "torch")
    assert resolve_runtime() == "torch"
    assert resolve_runtime("onnx") == "onnx"
    with pytest.raises(ConfigError, match="QA_EMBED_RUNTIME"):
        resolve_runtime("tensorflow")


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_cache_dir(tmp_path) == tmp_path
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "c"))
    assert resolve_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("QA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == tmp_path / "xdg" / "qa-news"


def test_make_embedder_picks_the_runtime(onnx_cache: Path) -> None:
    default = make_embedder()
    assert isinstance(default, OnnxEmbedder) and default.name == "all-MiniLM-L6-v2"
    assert isinstance(make_embedder(runtime="torch"), SentenceTransformerEmbedder)
    fp32 = make_embedder(runtime="onnx")
    assert isinstance(fp32, OnnxEmbedder)
    assert "fp32" in fp32.directory.name and "int8" in default.directory.name
    assert default.directory.parent == onnx_cache / "onnx"
    assert isinstance(default, Embedder)


def test_token_batches_cover_every_row_once_within_budget() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, 500)
    batches = token_batches(lengths, 32, 1024)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(500))
    for b in batches:
        assert len(b) <= 32
        assert len(b) == 1 or len(b) * int(lengths[b].max()) <= 1024
    assert [int(lengths[b].max()) for b in batches] == sorted(int(lengths[b].max()) for b in batches)


# ----- the ONNX paths agree with torch -------------------------------------------------------------------


def test_onnx_fp32_is_the_torch_model(
    onnx_fp32: OnnxEmbedder, embedder: SentenceTransformerEmbedder, seed_sentences: list[str],
    seed_questions: list[str],
) -> None:
    fast = onnx_fp32.encode(seed_sentences)
    ref = embedder.encode(seed_sentences)
    assert fast.shape == ref.shape and fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(fast * ref, axis=1)) >= 0.999
    assert _top1(onnx_fp32, seed_sentences, seed_questions) == _top1(embedder, seed_sentences, seed_questions)


def test_onnx_int8_stays_close_to_torch(
    onnx_int8: OnnxEmbedder, embedder: SentenceTransformerEmbedder, seed_sentences: list[str],
    seed_questions: list[str],
) -> None:
    fast = onnx_int8.encode(seed_sentences)
    ref = embedder.encode(seed_sentences)
    assert np.min(np.sum(fast * ref, axis=1)) >= 0.98
    q_fast, q_ref = onnx_int8.encode(seed_questions), embedder.encode(seed_questions)
    assert np.min(np.sum(q_fast * q_ref, axis=1)) >= 0.98
    agree = np.mean(np.array(_top1(onnx_int8, seed_sentences, seed_questions))
                    == np.array(_top1(embedder, seed_sentences, seed_questions)))
    assert agree >= 0.9


def test_int8_pipeline_cites_the_same_sentences_as_torch(
    onnx_int8: OnnxEmbedder, embedder: SentenceTransformerEmbedder, seed_text: str
) -> None:
    """Through the whole pipeline (dense, BM25, rerank, abstention): the same citations and abstentions."""
    from qa.generate import ExtractiveGenerator
    from qa.pipeline import Pipeline

    texts = {SEED_FILE.name: seed_text}
    fast = Pipeline.from_texts(texts, embedder=onnx_int8, generator=ExtractiveGenerator())
    ref = Pipeline.from_texts(texts, embedder=embedder, generator=ExtractiveGenerator())
    rows = load_seed_qa()
    answerable = [str(r["question"]) for r in rows if r["answerable"]]
    same = [fast.retrieve(q, 1)[0].sentence == ref.retrieve(q, 1)[0].sentence for q in answerable]
    assert np.mean(same) >= 0.9
    for r in rows:  # unanswerable questions have near-ties at the top; what matters is that both abstain
        assert fast.ask(str(r["question"])).abstained == ref.ask(str(r["question"])).abstained


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
    assert meta["dim"] == 384 and meta["quantized"] is False
    assert (directory / meta["onnx"]).is_file() and (directory / "tokenizer.json").is_file()
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")]  # no half-written exports


def test_failed_export_falls_back_to_torch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import HashEmbedder

    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(embed, "export_onnx", broken)
    monkeypatch.setattr(embed, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    e = OnnxEmbedder(cache_dir=tmp_path)
    assert e.encode(["hello world"]).shape == (1, HashEmbedder.dim)
    assert e.runtime == "torch"
    assert "ONNX export failed" in capsys.readouterr().err


def test_query_path_does_not_import_torch(onnx_int8: OnnxEmbedder, onnx_cache: Path) -> None:
    """With the export cached, a new process encodes a question with onnxruntime alone."""
    onnx_int8.encode(["make sure the export exists"])
    code = (
        "import json, sys\n"
        "from qa.embed import make_embedder\n"
        "v = make_embedder().encode(['Who stayed in Washington?'])\n"
        "print(json.dumps({'shape': list(v.shape), 'heavy': [m for m in ('torch', 'sentence_transformers',"
        " 'transformers') if m in sys.modules]}))\n"
    )
    env = {**os.environ, "QA_CACHE_DIR": str(onnx_cache)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"shape": [1, 384], "heavy": []}
    assert "exporting" not in proc.stderr
