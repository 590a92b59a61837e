"""``manifest.json``: what an index was built with and which files hold it; loading checks both."""

from __future__ import annotations

import hashlib
import json
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
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
