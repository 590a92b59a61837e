"""Stage 3: the index of sentences. ``SentenceIndex`` is the interface retrieval reads; ``FaissIndex``
is the embedded default (FAISS + BM25 + token codes in one folder, with its manifest).

    >>> from qa.index import FaissIndex, SentenceIndex
    >>> issubclass(FaissIndex, SentenceIndex)
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import IndexNotFoundError
from qa.index.base import SentenceIndex
from qa.index.faiss_index import FaissIndex
from qa.index.folder import writing
from qa.index.lexical import LexicalIndex
from qa.index.tokens import TokenTable

if TYPE_CHECKING:
    from qa.embed import Embedder
    from qa.index.folder import Notify
    from qa.types import Document

SCHEME = "milvus://"  # the same as qa.index.milvus_store.SCHEME, without importing it (or pymilvus)

__all__ = [
    "FaissIndex", "LexicalIndex", "SentenceIndex", "TokenTable", "add_shard", "build_index", "document_entries",
    "is_store", "latest", "locked", "open_index",
]


def is_store(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names a Milvus store (``milvus://...``) rather than a FAISS index folder."""
    return isinstance(location, str) and location.startswith(SCHEME)


def open_index(location: str | os.PathLike[str], *, expect_model: str | None = None) -> SentenceIndex:
    """Open the index at ``location``: a folder (FAISS, with its manifest) or ``milvus://HOST:PORT/COLLECTION``."""
    if is_store(location):
        from qa.index.milvus_index import MilvusIndex

        return MilvusIndex.load(str(location), expect_model=expect_model)
    return FaissIndex.load(location, expect_model=expect_model)


@contextmanager
def locked(
    location: str | os.PathLike[str], *, timeout: float | None = None, on_wait: Notify | None = None
) -> Iterator[None]:
    """Hold the write lock of an index folder while a writer reads, adds and saves. A Milvus store has no
    folder: its saves switch an alias in one call, and concurrent writers are the server's to order."""
    if is_store(location):
        yield
        return
    kwargs = {} if timeout is None else {"timeout": timeout}
    with writing(location, on_wait=on_wait, **kwargs):
        yield


def latest(index: SentenceIndex, location: str | os.PathLike[str]) -> SentenceIndex:
    """``index``, or the index now at ``location`` when another writer saved there since ``index`` was
    loaded or saved (call it holding the write lock, so that adding to it loses nothing)."""
    if is_store(location) or (isinstance(index, FaissIndex) and index.saved_as(location)):
        return index
    try:
        return open_index(Path(location), expect_model=index.model)
    except IndexNotFoundError:
        return index


def build_index(
    location: str | os.PathLike[str] | None,
    documents: Sequence[Document],
    embedder: Embedder,
    *,
    previous: SentenceIndex | None = None,
    progress: bool = False,
) -> SentenceIndex:
    """Index ``documents`` for the backend of ``location`` (FAISS for a folder or in memory)."""
    if location is not None and is_store(location):
        from qa.index.milvus_index import MilvusIndex, MilvusTarget

        return MilvusIndex.build(MilvusTarget.parse(str(location)), documents, embedder, previous=previous,
                                 progress=progress)
    return FaissIndex.build(documents, embedder, previous=previous, progress=progress)


def document_entries(location: str | os.PathLike[str]) -> dict[str, dict[str, object]]:
    """Each indexed document's metadata and sentence count, without opening the index (``qa docs``): the
    FAISS folder's manifest, or the Milvus store's documents collection."""
    if is_store(location):
        from qa.index.milvus_index import document_entries as from_store

        return dict(from_store(str(location)))
    from qa.index.manifest import read_manifest

    return dict(read_manifest(Path(location)).documents)


def add_shard(
    location: str, documents: Sequence[Document], embedder: Embedder, shard: str, *, progress: bool = False
) -> tuple[int, int]:
    """Index this shard's share (``I/N``) of ``documents`` into the Milvus store at ``location``, beside
    other shards writing at the same time; returns (documents written, documents unchanged)."""
    from qa.errors import ConfigError

    if not is_store(location):
        raise ConfigError("--shard needs a Milvus store (--store milvus://HOST:PORT/COLLECTION): shards on "
                          "several machines write into one collection; a FAISS folder has one writer at a time.")
    from qa.index.milvus_index import Shard, index_shard

    return index_shard(location, documents, embedder, Shard.parse(shard), progress=progress)
