"""Shared fixtures for the whole suite.

The tests are split by what they need:

* ``tests/unit``: no model, no server, no subprocess (the style check of ruff and mypy aside), no disk
  beyond ``tmp_path`` (in-memory FAISS and BM25 are fine; the fakes of ``helpers.fakes`` stand in for
  the embedder and the generator).
* ``tests/integration``: the real embedder, indexes on disk, the repository's data files, the fake
  Ollama server speaking HTTP on loopback, the chat handlers.
* ``tests/e2e``: ``qa`` in subprocesses, the Gradio app over HTTP, a real browser, the load test, and
  ``kill -9`` faults.

Every test gets its own index directory (``QA_INDEX_DIR`` under ``tmp_path``) and an Ollama address
where nothing listens. ``QA_CACHE_DIR`` is left alone on purpose: the ONNX export cache takes ~30 s to
fill and is shared by every test that needs it (a test that needs its own passes ``cache_dir``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.data import SEED_FILE, SEED_ID
from helpers.env import NO_OLLAMA, SETTINGS_ENV, isolated_settings
from helpers.fake_ollama import FakeOllama
from helpers.fakes import CountingEmbedder, HashEmbedder, TokenHashEmbedder

from qa.answer import ExtractiveGenerator
from qa.answer.ollama import clear_probe_cache
from qa.embed.sbert import SentenceTransformerEmbedder
from qa.pipeline import Pipeline

__all__ = ["CountingEmbedder", "HashEmbedder", "TokenHashEmbedder"]

KINDS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its folder (``-m unit`` runs the fast ones)."""
    for item in items:
        parts = item.path.parts
        for kind in KINDS:
            if kind in parts and "tests" in parts:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's settings or writes outside its tmp_path (the export cache aside), and
    none sees what an earlier test's Ollama probes found."""
    for var in SETTINGS_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("OLLAMA_HOST", NO_OLLAMA)  # the discard port: nothing listens
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clear_probe_cache()
    yield
    clear_probe_cache()


@pytest.fixture
def fake_ollama() -> Iterator[Callable[..., FakeOllama]]:
    """Start fake Ollama servers (real HTTP on loopback) for a test; all are stopped at its end."""
    started: list[FakeOllama] = []

    def start(*args: Any, **kwargs: Any) -> FakeOllama:
        server = FakeOllama(*args, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real reference embedder (torch, offline, small), shared by the integration tests."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def seed_pipeline(
    embedder: SentenceTransformerEmbedder, seed_text: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """An in-memory pipeline over the seed article with the real embedder, extractive by default."""
    settings = isolated_settings(index_dir=tmp_path_factory.mktemp("seed-index"))
    yield Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=ExtractiveGenerator(),
                              settings=settings)
