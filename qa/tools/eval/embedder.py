"""The evaluation's embedder: every text embedded once per run, tokens too when the embedder gives them."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from qa.config import Settings
from qa.embed import Embedder, TokenVectors

if TYPE_CHECKING:
    from numpy.typing import NDArray


class CachingEmbedder(Embedder):
    """Wraps an embedder so every text is embedded once per run; no token embeddings (stage 1 only)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._cache: dict[str, NDArray[np.float32]] = {}
        self._tokens: dict[str, TokenVectors] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def prime(self, texts: Iterable[str], *, desc: str = "embedding") -> None:
        """Embed all uncached texts (and their tokens) up front, in large batches, with a progress bar."""
        tokens = self.can_encode_tokens
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache or (tokens and t not in self._tokens)))
        if not todo:
            return
        from tqdm import tqdm

        batch = 256
        with tqdm(total=len(todo), desc=desc, unit="text", file=sys.stderr) as bar:
            for i in range(0, len(todo), batch):
                chunk = todo[i : i + batch]
                self.encode(chunk)
                if tokens:
                    self.encode_tokens(chunk)
                bar.update(len(chunk))

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.inner.encode(missing), strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)


class CachingTokenEmbedder(CachingEmbedder):
    """A ``CachingEmbedder`` that also offers (cached) token embeddings, so the rerank runs (and the
    indexes store them, as ``qa index`` does: the harness measures the stored int8 tokens)."""

    can_encode_tokens: ClassVar[bool] = True

    def __init__(self, inner: Embedder) -> None:
        if not inner.can_encode_tokens:
            raise ValueError(f"{type(inner).__name__} gives no token embeddings")
        super().__init__(inner)

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if missing:
            for t, v in zip(missing, self.inner.encode_tokens(missing), strict=True):
                self._tokens[t] = v
        return [self._tokens[t] for t in texts]


def eval_embedder(settings: Settings, embedder: Embedder | None = None) -> tuple[CachingEmbedder, str]:
    """The product's embedder (or ``embedder``), cached; with token embeddings when it declares them.

    Returns the embedder and a note saying where the token embeddings come from.
    """
    from qa.embed import make_embedder

    if isinstance(embedder, CachingEmbedder):
        return embedder, "as given"
    inner = embedder or make_embedder(settings=settings)
    if inner.can_encode_tokens:
        return CachingTokenEmbedder(inner), "the product's embedder"
    return CachingEmbedder(inner), "none: the embedder gives no token embeddings, so the rerank is off"
