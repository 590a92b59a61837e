"""What retrieval reads from an index, whatever holds it: one interface, so a second store can be added.

An index is a snapshot: documents, their sentences (each an exact slice of its document), one unit
vector per sentence, the BM25 postings, and optionally the rerank's stored token codes. It is never
changed in place (searches may run on it in other threads); ``with_documents`` returns a new one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from qa.types import Document, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder
    from qa.index.lexical import LexicalIndex
    from qa.index.tokens import TokenTable


class SentenceIndex(ABC):
    """Documents and their sentences, searchable densely (vectors) and lexically (BM25)."""

    #: The backend's name, recorded in the manifest and shown by ``qa docs``.
    backend: ClassVar[str]

    documents: Mapping[str, Document]
    sentences: Sequence[Sentence]
    vectors: NDArray[np.float32]  # (len(sentences), dim) unit rows
    lexical: LexicalIndex
    tokens: TokenTable | None  # the rerank's token codes, when the embedder gave them at index time
    model: str  # the embedding model's name

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @abstractmethod
    def rows_of(self, doc_id: str) -> Sequence[int]:
        """Row numbers of a document's sentences, in document order."""

    @abstractmethod
    def dense_search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The ``k`` rows nearest to each query row (scores, ids); ids of -1 mean fewer than ``k``."""

    @abstractmethod
    def with_documents(
        self, documents: Sequence[Document], embedder: Embedder, *, progress: bool = False
    ) -> SentenceIndex:
        """A new index with ``documents`` added (or replacing those of the same id); this one is unchanged."""

    @abstractmethod
    def without_documents(self, doc_ids: Sequence[str], embedder: Embedder) -> SentenceIndex:
        """A new index without the documents ``doc_ids`` (nothing is embedded again); this one is unchanged."""

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Write the index to ``path``; the previous index there stays loadable until the switch."""
