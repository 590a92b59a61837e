"""Stage 3: the index of sentences. ``SentenceIndex`` is the interface retrieval reads; ``FaissIndex``
is the embedded default (FAISS + BM25 + token codes in one folder, with its manifest).

    >>> from qa.index import FaissIndex, SentenceIndex
    >>> issubclass(FaissIndex, SentenceIndex)
    True
"""

import os
from pathlib import Path

from qa.errors import IndexNotFoundError
from qa.index.base import SentenceIndex
from qa.index.faiss_index import FaissIndex
from qa.index.folder import writing
from qa.index.lexical import LexicalIndex
from qa.index.tokens import TokenTable

__all__ = ["FaissIndex", "LexicalIndex", "SentenceIndex", "TokenTable", "latest", "open_index", "writing"]


def open_index(path: str | os.PathLike[str], *, expect_model: str | None = None) -> SentenceIndex:
    """Open the index at ``path`` (the manifest names its backend; FAISS is the only one today)."""
    return FaissIndex.load(path, expect_model=expect_model)


def latest(index: SentenceIndex, path: str | os.PathLike[str]) -> SentenceIndex:
    """``index``, or the index now at ``path`` when another writer saved there since ``index`` was loaded or
    saved (call it holding the write lock, so that adding to it loses nothing)."""
    if isinstance(index, FaissIndex) and index.saved_as(path):
        return index
    try:
        return open_index(Path(path), expect_model=index.model)
    except IndexNotFoundError:
        return index
