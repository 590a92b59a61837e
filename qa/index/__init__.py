"""Stage 3: the index of sentences. ``SentenceIndex`` is the interface retrieval reads; ``FaissIndex``
is the embedded default (FAISS + BM25 + token codes in one folder, with its manifest).

    >>> from qa.index import FaissIndex, SentenceIndex
    >>> issubclass(FaissIndex, SentenceIndex)
    True
"""

import os

from qa.index.base import SentenceIndex
from qa.index.faiss_index import FaissIndex
from qa.index.lexical import LexicalIndex
from qa.index.tokens import TokenTable

__all__ = ["FaissIndex", "LexicalIndex", "SentenceIndex", "TokenTable", "open_index"]


def open_index(path: str | os.PathLike[str], *, expect_model: str | None = None) -> SentenceIndex:
    """Open the index at ``path`` (the manifest names its backend; FAISS is the only one today)."""
    return FaissIndex.load(path, expect_model=expect_model)
