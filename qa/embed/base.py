"""What an embedder is: texts to unit vectors of a fixed width, and what else it can do, declared.

``can_encode_tokens`` says whether it also gives contextual token embeddings (the rerank needs them,
and ``qa index`` stores them when it can). Callers read the declaration; they never probe for methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: One text's token embeddings: unit rows for its non-special tokens, and their (start, end) offsets.
TokenVectors = tuple["NDArray[np.float32]", "NDArray[np.int64]"]


class Embedder(ABC):
    """Maps texts to L2-normalised float32 rows of a fixed width."""

    #: Whether ``encode_tokens`` and ``encode_with_tokens`` work (the late-interaction rerank needs them).
    can_encode_tokens: ClassVar[bool] = False

    @property
    @abstractmethod
    def name(self) -> str:
        """The model's name, recorded in an index's manifest."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """The width of the vectors."""

    @property
    def runtime(self) -> str:
        """What computes the vectors (``onnx-int8``, ``onnx``, ``torch``), as ``qa bench`` reports it."""
        return type(self).__name__

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One unit row per text."""

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Each text's contextual token embeddings (unit rows) with their character offsets."""
        raise NotImplementedError(f"{type(self).__name__} gives no token embeddings (can_encode_tokens is False)")

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
        """Sentence vectors and each text's token vectors, from one pass of the model where it can."""
        return self.encode(texts), [v for v, _ in self.encode_tokens(texts)]


def normalize(vectors: NDArray[Any]) -> NDArray[np.float32]:
    """Scale rows to unit length so inner product is cosine similarity.

    >>> normalize(np.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)
