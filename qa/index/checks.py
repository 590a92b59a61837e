"""Checks of an index's files beyond their checksums: a file can match its manifest and still disagree with
the others (offsets outside a document, arrays of the wrong shape). Loading says which file, instead of
failing later with a traceback or quoting a wrong slice."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, SupportsIndex, overload

import numpy as np

from qa.errors import IndexCorruptError
from qa.index.manifest import CHUNK_BYTES, document_from_row
from qa.types import Document, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray


#: A document's optional fields in ``documents-*.jsonl``: text or null (``authors``: a list of text).
_TEXT_FIELDS = tuple(f.name for f in fields(Document) if f.name not in ("doc_id", "text", "source", "authors"))


def _metadata_ok(row: dict[str, object]) -> bool:
    authors = row.get("authors", [])
    return all(row.get(name) is None or isinstance(row.get(name), str) for name in _TEXT_FIELDS) and (
        authors is None or (isinstance(authors, list) and all(isinstance(a, str) for a in authors))
    )


def read_documents_file(path: Path) -> list[Document]:
    """The documents of ``documents-*.jsonl``: one JSON object per line with a text ``doc_id`` and ``text``,
    and metadata fields (``title``, ``authors``, …) when the article had them."""
    documents: list[Document] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                raise IndexCorruptError(str(path), f"line {i} is not valid JSON") from None
            if not (
                isinstance(row, dict)
                and isinstance(row.get("doc_id"), str)
                and isinstance(row.get("text"), str)
                and isinstance(row.get("source", ""), str)
                and _metadata_ok(row)
            ):
                raise IndexCorruptError(
                    str(path), f"line {i} is not a document (doc_id, text, source and metadata as text)"
                )
            if row["doc_id"] in seen:
                raise IndexCorruptError(str(path), f"line {i} repeats the document {row['doc_id']!r}")
            seen.add(row["doc_id"])
            documents.append(document_from_row(row))
    return documents


class SpanSentences(Sequence[Sentence]):
    """A loaded index's sentences: each built from its row of ``(document, n, start, end)`` the first time it
    is read, and kept (the same row is the same object), so opening a million-sentence index builds none.

    >>> rows = SpanSentences([Document("d", "One. Two.")], np.array([[0, 0, 0, 4], [0, 1, 5, 9]]))
    >>> rows[1], rows[1] is rows[1], rows.doc_rows()
    (Sentence(doc_id='d', n=1, start=5, end=9, text='Two.'), True, {'d': [0, 1]})
    >>> rows == [rows[0], rows[1]], rows[-1:] == [rows[1]]
    (True, True)
    """

    def __init__(self, documents: Sequence[Document], spans: NDArray[np.int64]) -> None:
        self._ids = [d.doc_id for d in documents]
        self._texts = [d.text for d in documents]
        self._spans = spans
        self._made: list[Sentence | None] = [None] * len(spans)

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, i: SupportsIndex) -> Sentence: ...

    @overload
    def __getitem__(self, i: slice) -> list[Sentence]: ...

    def __getitem__(self, i: SupportsIndex | slice) -> Sentence | list[Sentence]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        made = self._made[i]
        if made is None:
            d, n, start, end = self._spans[i].tolist()
            made = self._made[i] = Sentence(self._ids[d], n, start, end, self._texts[d][start:end])
        return made

    def __iter__(self) -> Iterator[Sentence]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # as a list's: compared by content

    def doc_rows(self) -> dict[str, list[int]]:
        """Each document's rows in row order, from the spans (no sentence is built)."""
        doc = self._spans[:, 0] if len(self._spans) else np.zeros(0, np.int64)
        order = np.argsort(doc, kind="stable")
        bounds = np.cumsum(np.bincount(doc, minlength=len(self._ids)))[:-1]
        return {self._ids[k]: rows.tolist() for k, rows in enumerate(np.split(order, bounds)) if len(rows)}


def sentences_from_spans(documents: list[Document], spans: NDArray[np.int64], path: Path) -> SpanSentences:
    """The sentences that rows of ``(document, n, start, end)`` describe, each checked to be a slice of its
    document (all at once, on the arrays); built when first read (``SpanSentences``)."""
    if spans.ndim != 2 or spans.shape[1] != 4 or not np.issubdtype(spans.dtype, np.integer):
        raise IndexCorruptError(
            str(path),
            f"it holds an array of shape {spans.shape} ({spans.dtype}), not rows of (document, n, start, end)",
        )
    if len(spans):
        doc, start, end = spans[:, 0], spans[:, 2], spans[:, 3]
        if int(doc.min()) < 0 or int(doc.max()) >= len(documents):
            raise IndexCorruptError(str(path), "a sentence names a document that is not in the index")
        lengths = np.array([len(d.text) for d in documents], dtype=np.int64)
        if int(start.min()) < 0 or bool((end <= start).any()) or bool((end > lengths[doc]).any()):
            raise IndexCorruptError(str(path), "a sentence's offsets fall outside its document")
    return SpanSentences(documents, spans)


def check_vectors(vectors: NDArray[np.float32], rows: int, dim: int, path: Path) -> None:
    """One float vector of the manifest's width per sentence."""
    if vectors.ndim != 2 or vectors.shape != (rows, dim) or not np.issubdtype(vectors.dtype, np.floating):
        raise IndexCorruptError(
            str(path),
            f"its shape does not match the manifest: {vectors.shape} {vectors.dtype}, not {rows} × {dim} floats",
        )


class DeferredChecks:
    """Whole-file checksums verified off the opening path: a background thread hashes the files from the
    moment the index is opened, and the first use of their contents (a search, the vectors, a save) waits
    for it. Opening a million-sentence index then hashes none of its gigabytes of vectors and FAISS lists,
    and a damaged file still fails, naming it, before a byte of it is used (and so does every later use).

    The files are read through handles opened under the reader's lease, so a writer that replaces the
    index meanwhile cannot take them away.
    """

    def __init__(self, files: list[tuple[Path, BinaryIO, str]]) -> None:
        self._files = files
        self._error: tuple[str, str] | None = None  # (file, what is wrong with it)
        self._thread = threading.Thread(target=self._run, name="qa-index-checksums", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for path, handle, expected in self._files:
            try:
                digest = hashlib.sha256()
                with handle:
                    while block := handle.read(CHUNK_BYTES):
                        digest.update(block)
                if digest.hexdigest() != expected:
                    self._error = (str(path), "its checksum does not match the manifest")
            except OSError as exc:
                self._error = (str(path), f"it cannot be read ({exc.strerror or exc})")
            if self._error is not None:
                break
        for _, handle, _ in self._files:
            handle.close()

    def wait(self) -> None:
        """Return once every file matched its checksum; else raise ``IndexCorruptError`` naming the first
        that did not."""
        self._thread.join()
        if self._error is not None:
            raise IndexCorruptError(*self._error)
