"""Reading articles from files and bytes: every refusal happens before anything is indexed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from qa.errors import (
    EmptyDocumentError,
    FileTooLargeError,
    MissingFileError,
    UndecodableDocumentError,
    UnsupportedFileTypeError,
)
from qa.ingest.html import html_to_text
from qa.types import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm")


def decode(data: bytes, name: str) -> str:
    """Decode strict UTF-8 (with or without BOM); binary data is refused, not guessed at."""
    if b"\x00" in data[:8192]:
        raise UndecodableDocumentError(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UndecodableDocumentError(name) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def document_from_bytes(data: bytes, name: str, *, doc_id: str | None = None, source: str = "") -> Document:
    """Build a Document from uploaded or read bytes; the suffix of ``name`` picks the format."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileTypeError(name, SUPPORTED_SUFFIXES)
    text = decode(data, name)
    if suffix in (".html", ".htm"):
        text = html_to_text(text)
    if not text.strip():
        raise EmptyDocumentError(name)
    return Document(doc_id=doc_id or Path(name).name, text=text, source=source or name)


def read_document(
    path: str | Path, *, max_bytes: int, name: str | None = None, doc_id: str | None = None, source: str = ""
) -> Document:
    """Read one file, refusing what cannot be indexed before reading it whole.

    ``name`` is what the user calls the file when it is not its path (an upload's name): it picks the
    format and appears in messages. The size is checked before reading and again while reading, so a
    file that grows in between is refused too.
    """
    p = Path(path)
    shown = name if name is not None else str(path)
    if not p.is_file():
        raise MissingFileError(shown)
    if Path(name if name is not None else p.name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileTypeError(shown, SUPPORTED_SUFFIXES)
    size = p.stat().st_size
    if size > max_bytes:
        raise FileTooLargeError(shown, size, max_bytes)
    with p.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after the size check
        raise FileTooLargeError(shown, len(data), max_bytes)
    return document_from_bytes(data, name if name is not None else p.name, doc_id=doc_id, source=source or str(p))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the supported files inside any directory given, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise EmptyDocumentError(f"{p} (a directory with no {', '.join(SUPPORTED_SUFFIXES)} files)")
            out.extend(found)
        else:
            out.append(p)
    return out


def read_documents(paths: Iterable[str | Path], *, max_bytes: int) -> list[Document]:
    """Read every file first, so one bad file fails the whole batch before anything is written."""
    docs = [read_document(p, max_bytes=max_bytes) for p in expand_paths(paths)]
    seen: dict[str, str] = {}
    unique: list[Document] = []
    for doc in docs:
        doc_id = doc.doc_id
        if doc_id in seen:
            doc_id = doc.source
        seen[doc_id] = doc.source
        unique.append(Document(doc_id=doc_id, text=doc.text, source=doc.source))
    return unique
