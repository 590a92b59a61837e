"""``manifest.json``: what an index was built with and which files hold it; loading checks both."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.types import Document

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def content_hash(text: str) -> str:
    """Identify a document's content, so unchanged documents are never embedded twice.

    >>> content_hash("abc")[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    return file_hashes(path)[0]


#: Large memory-mapped files also record one SHA-256 per chunk of this many bytes, so opening an index
#: reads none of them and a query verifies only the chunks it touches, once (``LazyCheck``).
CHUNK_BYTES = 4 << 20


def file_hashes(path: Path, chunk: int = CHUNK_BYTES) -> tuple[str, list[str]]:
    """SHA-256 of a file and of each ``chunk`` bytes of it, in one read."""
    whole = hashlib.sha256()
    parts: list[str] = []
    with path.open("rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            whole.update(block)
            parts.append(hashlib.sha256(block).hexdigest())
    return whole.hexdigest(), parts


class LazyCheck:
    """Verifies a memory-mapped file chunk by chunk, the first time a byte range in a chunk is read.

    Opening a million-sentence index would otherwise hash gigabytes of token codes; a damaged chunk
    still fails its first read with ``IndexCorruptError`` naming the file.
    """

    def __init__(self, path: Path, chunks: list[str], chunk_bytes: int) -> None:
        self.path = path
        self.chunks = chunks
        self.chunk_bytes = chunk_bytes
        self._done = [False] * len(chunks)
        self._lock = threading.Lock()

    def check(self, lo: int, hi: int) -> None:
        """Verify the chunks holding bytes ``[lo, hi)`` (each at most once)."""
        if hi <= lo:
            return
        first, last = lo // self.chunk_bytes, (hi - 1) // self.chunk_bytes
        todo = [c for c in range(first, last + 1) if c >= len(self._done) or not self._done[c]]
        if not todo:
            return
        with self._lock, self.path.open("rb") as f:
            for c in todo:
                if c >= len(self.chunks):
                    raise IndexCorruptError(str(self.path), "it is longer than the manifest says")
                if self._done[c]:
                    continue
                f.seek(c * self.chunk_bytes)
                if hashlib.sha256(f.read(self.chunk_bytes)).hexdigest() != self.chunks[c]:
                    raise IndexCorruptError(str(self.path), f"its checksum does not match the manifest "
                                                            f"(bytes {c * self.chunk_bytes} onwards)")
                self._done[c] = True


#: The metadata copied into the manifest's document entries, so ``qa docs`` lists documents without
#: opening the index.
LISTED_FIELDS = ("title", "authors", "published", "modified", "outlet", "url", "language", "notice")


def document_row(doc: Document) -> dict[str, Any]:
    """A document as one JSON object of ``documents-*.jsonl`` (its metadata fields included when set)."""
    row: dict[str, Any] = {"doc_id": doc.doc_id, "source": doc.source, "text": doc.text}
    for name, value in asdict(doc).items():
        if name not in row and value not in (None, ()):
            row[name] = list(value) if isinstance(value, tuple) else value
    return row


def listed_entry(doc: Document, sentences: int | None) -> dict[str, Any]:
    """What ``qa docs`` lists of a document: its source, sentence count and ``LISTED_FIELDS`` (any store)."""
    return {"source": doc.source, "sentences": sentences,
            **{k: v for k, v in document_row(doc).items() if k in LISTED_FIELDS}}


def document_from_row(row: dict[str, Any]) -> Document:
    """The inverse of ``document_row``; rows of indexes written before metadata was kept load too."""
    known = {f.name for f in fields(Document)}
    values = {k: v for k, v in row.items() if k in known}
    if "authors" in values:
        values["authors"] = tuple(str(a) for a in values["authors"] or ())
    return Document(**values)


@dataclass(frozen=True)
class Manifest:
    """What an index was built with; loading refuses an index that does not match."""

    model: str
    dim: int
    segmenter: str
    chunking: dict[str, Any]
    index_type: str
    documents: dict[str, dict[str, Any]]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model": self.model,
            "dim": self.dim,
            "segmenter": self.segmenter,
            "chunking": self.chunking,
            "index_type": self.index_type,
            "documents": self.documents,
            "files": self.files,
        }


def read_manifest(root: Path) -> Manifest:
    """Parse and check ``manifest.json``; every failure names the file and how to rebuild."""
    p = root / MANIFEST
    if root.exists() and not root.is_dir():
        raise IndexNotFoundError(str(root), "it is a file, not an index folder")
    if not p.is_file():
        raise IndexNotFoundError(str(root))
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(str(p), f"not valid JSON: {exc}") from exc
    except RecursionError:  # json nests by recursion: a hostile manifest must not crash the reader
        raise IndexCorruptError(str(p), "its JSON is nested too deeply") from None
    if not isinstance(raw, dict):
        raise IndexCorruptError(str(p), "not a JSON object")
    version = raw.get("format_version")
    if not isinstance(version, int):
        raise IndexCorruptError(str(p), "it has no format_version")
    if version > FORMAT_VERSION:
        raise IndexMismatchError(
            str(root), f"it has format version {version}, newer than this program's {FORMAT_VERSION} (upgrade qa)"
        )
    if version < FORMAT_VERSION:
        raise IndexMismatchError(str(root), f"it has the old format version {version}")
    try:
        return Manifest(
            model=str(raw["model"]),
            dim=int(raw["dim"]),
            segmenter=str(raw["segmenter"]),
            chunking=dict(raw["chunking"]),
            index_type=str(raw["index_type"]),
            documents=dict(raw["documents"]),
            files=dict(raw.get("files", {})),
            format_version=version,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptError(str(p), f"a field is missing or malformed: {exc}") from exc
