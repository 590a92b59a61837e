"""The BM25 arrays as saved beside an index: tagged with the tokeniser that made them, so an index saved by
another tokeniser is rebuilt instead of being scored with the wrong terms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.index.lexical import LexicalIndex

if TYPE_CHECKING:
    from numpy.typing import NDArray


#: What the postings were tokenised with: stored beside them, so a saved index from another tokeniser
#: (stemmer, stopwords, question words) is rebuilt instead of silently scored with the wrong terms.
TOKENIZER = "bm25s.tokenize|lower|stopwords-en|PyStemmer-english|v1"


def saved_arrays(index: LexicalIndex) -> dict[str, NDArray[Any]]:
    """``index.to_arrays()`` plus the tokeniser it was built with, for the index directory."""
    return {**index.to_arrays(), "tokenizer": np.frombuffer(TOKENIZER.encode(), dtype=np.uint8).copy()}


def from_saved(arrays: Mapping[str, NDArray[Any]], sentences: int) -> LexicalIndex | None:
    """The saved index, or None when it was tokenised differently or covers other sentences (rebuild then).

    >>> index = LexicalIndex(["The cat sat.", "Dogs bark."])
    >>> len(from_saved(saved_arrays(index), 2) or []), from_saved(saved_arrays(index), 3)
    (2, None)
    """
    raw = arrays.get("tokenizer")
    if raw is None or bytes(np.asarray(raw, dtype=np.uint8)).decode("utf-8", "replace") != TOKENIZER:
        return None
    try:
        index = LexicalIndex.from_arrays(arrays)
    except ValueError:
        return None
    return index if len(index) == sentences else None
