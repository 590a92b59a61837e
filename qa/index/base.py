"""What retrieval reads from an index, whatever holds it: one interface, so a second store can be added.

An index is a snapshot: documents, their sentences (each an exact slice of its document), one unit
vector per sentence, the BM25 postings, and optionally the rerank's stored token codes. It is never
changed in place (searches may run on it in other threads); ``with_documents`` returns a new one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from qa.types import Document, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder
    from qa.index.lexical import LexicalIndex
    from qa.index.tokens import TokenTable


@dataclass(frozen=True)
class CandidateRows:
    """A question's candidate rows from both sides of the index (unique, ascending), and the best few of
    them (whose next sentence is a candidate too: answers often follow the matching sentence)."""

    rows: NDArray[np.int64]
    heads: NDArray[np.int64]


class SentenceIndex(ABC):
    """Documents and their sentences, searchable densely (vectors) and lexically (BM25)."""

    #: The backend's name, recorded in the manifest and shown by ``qa docs``.
    backend: ClassVar[str]
    #: Whether the dense and BM25 lists come from one request to the store, filters pushed into it;
    #: otherwise both are searched here and the document filter is applied to their union.
    hybrid_in_store: ClassVar[bool] = False

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

    def candidate_rows(
        self,
        query: str,
        vector: NDArray[np.float32],
        lexical: NDArray[np.float32],
        k: int,
        heads: int,
        doc_ids: Collection[str] | None = None,
    ) -> CandidateRows:
        """The union of the dense top ``k`` (``vector``) and the BM25 top ``k`` (``lexical``: every row's
        BM25 for ``query``), with each list's best ``heads``, restricted to ``doc_ids``."""
        n = len(self)
        k = max(1, min(k, n))
        _, dense_ids = self.dense_search(vector[None, :], k)
        dense_top = dense_ids[0][dense_ids[0] >= 0].astype(np.int64)
        parts = [dense_top]
        lex_top = np.zeros(0, dtype=np.int64)
        if lexical.size and lexical.max() > 0:
            top = np.argpartition(-lexical, k - 1)[:k] if k < n else np.arange(n)
            top = top[lexical[top] > 0]
            lex_top = top[np.argsort(-lexical[top], kind="stable")].astype(np.int64)
            parts.append(lex_top)
        rows = np.unique(np.concatenate(parts))
        best = np.concatenate([dense_top[:heads], lex_top[:heads]])
        if doc_ids is not None:
            allowed = set(doc_ids)
            keep = [r for r in rows.tolist() if self.sentences[r].doc_id in allowed]
            rows = np.array(keep, dtype=np.int64)
        return CandidateRows(rows, best)

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
