"""Stage 2: turn text into unit-length vectors. The embedder is one of the two swappable edges."""

from __future__ import annotations

import importlib.util

from qa.config import DEFAULT_EMBED_MODEL, Settings, resolve
from qa.embed.base import Embedder, TokenVectors, normalize
from qa.embed.sbert import SentenceTransformerEmbedder

__all__ = ["DEFAULT_EMBED_MODEL", "Embedder", "TokenVectors", "make_embedder", "normalize"]


def make_embedder(model: str | None = None, settings: Settings | None = None) -> Embedder:
    """The product's embedder for ``model`` (default: the configured one), int8 ONNX unless configured.

    ``settings.embed_runtime`` picks ``onnx-int8`` (default), ``onnx`` (fp32, numerically the torch
    model) or ``torch``; exports are cached under ``settings.cache_dir``. Falls back to torch when
    onnxruntime or tokenizers is not installed. Every runtime reports the same ``name``: their vectors
    agree to cosine ≥ 0.98, so an index built by one is searched by another.
    """
    settings = settings or resolve()
    name = model or settings.embed_model
    kind = settings.embed_runtime
    fast = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))
    if kind == "torch" or not fast:
        return SentenceTransformerEmbedder(name)
    from qa.embed.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(name, quantize=kind == "onnx-int8", cache_dir=settings.cache_dir)
