"""Shared fixtures. The real embedder is loaded once per session; every path points at tmp_path."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.embed import SentenceTransformerEmbedder, normalize

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "seeds" / "us-israel-un-ceasefire-resolution.txt"
SHARED_DATA = ROOT.parent / "shared" / "data"


class HashEmbedder:
    """Deterministic fake for unit tests: bag of hashed words, so shared words mean similarity."""

    name = "fake-hash-embedder"
    dim = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                w = word.strip(".,;:!?\"'()[]")
                if w:
                    out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        return normalize(out)


class TokenHashEmbedder(HashEmbedder):
    """A fake that also has token embeddings (one hashed random unit vector per word), so the
    rerank and the stored-token paths run without a model."""

    name = "fake-token-embedder"

    @staticmethod
    def _word(word: str, dim: int) -> np.ndarray:
        seed = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(seed).normal(size=dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def encode_tokens(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for text in texts:
            spans = [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
            vecs = [self._word(text[s:e].lower(), self.dim) for s, e in spans]
            vectors = np.array(vecs, dtype=np.float32).reshape(-1, self.dim)
            out.append((vectors, np.array(spans, dtype=np.int64).reshape(-1, 2)))
        return out

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.encode(texts), [v for v, _ in self.encode_tokens(texts)]


class CountingEmbedder(HashEmbedder):
    """Counts the texts it is asked to embed, to prove unchanged documents are not embedded again."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return super().encode(texts)

    @property
    def embedded(self) -> int:
        return sum(self.calls)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's environment or writes the project's index/."""
    for var in ("QA_INDEX_DIR", "QA_EMBED_MODEL", "QA_LLM", "QA_MODEL", "OLLAMA_HOST", "QA_OLLAMA_TIMEOUT", "QA_TOP_K"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real default embedder (offline, small), shared by all integration tests."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def seed_pipeline(embedder: SentenceTransformerEmbedder, seed_text: str) -> Iterator[object]:
    """An in-memory pipeline over the seed article with the real embedder, extractive by default."""
    from qa.generate import ExtractiveGenerator
    from qa.pipeline import Pipeline

    yield Pipeline.from_texts({SEED_FILE.name: seed_text}, embedder=embedder, generator=ExtractiveGenerator())


def load_seed_qa() -> list[dict[str, object]]:
    path = SHARED_DATA / "seed-qa-dev.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
