"""Fakes at the two swappable edges of the pipeline: the embedder and the generator.

They subclass the library's own interfaces (``qa.embed.Embedder``, ``qa.answer.Generator``) and
declare their capabilities, exactly as a real implementation must; nothing inside the library is
patched.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import ClassVar

import numpy as np

from qa.answer import Generator
from qa.embed import Embedder, TokenVectors, normalize
from qa.types import Hit, Turn

_WORD = re.compile(r"\w+")


def _bucket(word: str, dim: int) -> int:
    return int(hashlib.md5(word.encode("utf-8", "surrogatepass")).hexdigest(), 16) % dim


@lru_cache(maxsize=65_536)
def _word_vector(word: str, dim: int) -> np.ndarray:
    seed = int(hashlib.md5(word.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16)
    v = np.random.default_rng(seed).normal(size=dim)
    out = (v / np.linalg.norm(v)).astype(np.float32)
    out.flags.writeable = False
    return out


class HashEmbedder(Embedder):
    """Deterministic, model-free: a bag of hashed words, so sentences sharing words are similar.

    Gives no token embeddings (``can_encode_tokens`` is False): the rerank is off with it.
    """

    can_encode_tokens: ClassVar[bool] = False
    name = "fake-hash-embedder"
    dim = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                w = word.strip(".,;:!?\"'()[]")
                if w:
                    out[i, _bucket(w, self.dim)] += 1.0
        return normalize(out)


class TokenHashEmbedder(HashEmbedder):
    """A ``HashEmbedder`` that also gives token embeddings (one hashed random unit vector per word),
    so the rerank and the stored-token paths run without a model."""

    can_encode_tokens: ClassVar[bool] = True
    name = "fake-token-embedder"

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        out: list[TokenVectors] = []
        for text in texts:
            spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
            vectors = np.array([_word_vector(text[s:e].lower(), self.dim) for s, e in spans], dtype=np.float32)
            out.append((vectors.reshape(-1, self.dim), np.array(spans, dtype=np.int64).reshape(-1, 2)))
        return out


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


class CountingTokenEmbedder(TokenHashEmbedder):
    """Counts the texts whose token embeddings are asked for (what the rerank encodes per question)."""

    def __init__(self) -> None:
        self.token_texts: list[str] = []
        self._lock = threading.Lock()

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        with self._lock:
            self.token_texts.extend(texts)
        return super().encode_tokens(texts)


class ScriptedGenerator(Generator):
    """Streams fixed chunks, as a model would; ``writes_free_text`` as declared by the subclass."""

    writes_free_text: ClassVar[bool] = True

    def __init__(self, *chunks: str, name: str = "fake-llm", delay: float = 0.0) -> None:
        self.chunks = chunks
        self._name = name
        self.delay = delay
        self.calls: list[tuple[str, tuple[Hit, ...], tuple[Turn, ...]]] = []

    @property
    def name(self) -> str:
        return self._name

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        self.calls.append((question, tuple(sources), tuple(history)))
        for chunk in self.chunks:
            if self.delay:
                time.sleep(self.delay)
            yield chunk


class QuotingGenerator(ScriptedGenerator):
    """Declares that it only quotes the sources (like the extractive answerer): claims are not checked."""

    writes_free_text: ClassVar[bool] = False
