"""Reading articles from files and bytes: every refusal happens before anything is indexed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from qa.errors import (
    EmptyDocumentError,
    FileTooLargeError,
    LinkedFileError,
    MissingFileError,
    UndecodableDocumentError,
    UnsupportedFileTypeError,
)
from qa.ingest.html import html_to_text
from qa.types import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm")
try:
    _NOFOLLOW = os.O_NOFOLLOW
except AttributeError:  # pragma: no cover - Windows: the link check before opening is all there is
    _NOFOLLOW = 0


def decode(data: bytes, name: str) -> str:
    """Decode strict UTF-8 (with or without BOM); binary data (a NUL byte anywhere) is refused, not guessed at."""
    if b"\x00" in data:
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


def _check_link(p: Path, shown: str, follow_links: bool) -> None:
    """A link is read only when it points into the folder it is in (never, without ``follow_links``)."""
    if not p.is_symlink():
        return
    if not follow_links:
        raise LinkedFileError(shown)
    target = p.resolve()
    if not target.is_relative_to(p.absolute().parent.resolve()):
        raise LinkedFileError(shown, str(target))


def read_document(
    path: str | Path,
    *,
    max_bytes: int,
    name: str | None = None,
    doc_id: str | None = None,
    source: str = "",
    follow_links: bool = True,
) -> Document:
    """Read one file, refusing what cannot be indexed before reading it whole.

    ``name`` is what the user calls the file when it is not its path (an upload's name): it picks the
    format and appears in messages. The size is checked before reading and again while reading, so a
    file that grows in between is refused too. A symbolic link is followed only to a file in the link's
    own folder, and not at all without ``follow_links`` (uploads).
    """
    p = Path(path)
    shown = name if name is not None else str(path)
    _check_link(p, shown, follow_links)
    if not p.is_file():
        raise MissingFileError(shown)
    if Path(name if name is not None else p.name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileTypeError(shown, SUPPORTED_SUFFIXES)
    size = p.stat().st_size
    if size > max_bytes:
        raise FileTooLargeError(shown, size, max_bytes)
    flags = os.O_RDONLY | (0 if follow_links else _NOFOLLOW)
    with os.fdopen(os.open(p, flags), "rb") as fh:  # without following: a link swapped in meanwhile is refused
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after the size check
        raise FileTooLargeError(shown, len(data), max_bytes)
    return document_from_bytes(data, name if name is not None else p.name, doc_id=doc_id, source=source or str(p))


def _scan(folder: Path) -> list[Path]:
    """The supported files inside ``folder``, never following a link: a link out of the folder is refused, and
    a link within it is skipped (what it points to is indexed under its own name)."""
    root = folder.resolve()
    found: list[Path] = []
    for here, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            entry = Path(here) / name
            if entry.is_symlink():
                target = entry.resolve()
                if not target.is_relative_to(root):
                    raise LinkedFileError(str(entry), str(target))
            elif name in files and entry.suffix.lower() in SUPPORTED_SUFFIXES and entry.is_file():
                found.append(entry)
    return sorted(found)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the supported files inside any directory given, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            _check_link(p, str(p), True)  # a link to a folder elsewhere is refused as a link to a file is
            found = _scan(p.resolve() if p.is_symlink() else p)
            if not found:
                raise EmptyDocumentError(f"{p} (a directory with no {', '.join(SUPPORTED_SUFFIXES)} files)")
            out.extend(found)
        else:
            out.append(p)
    return out


def read_documents(paths: Iterable[str | Path], *, max_bytes: int) -> list[Document]:
    """Read every file first, so one bad file fails the whole batch before anything is written."""
    docs = [read_document(p, max_bytes=max_bytes) for p in expand_paths(paths)]
    seen: set[str] = set()
    unique: list[Document] = []
    for doc in docs:
        doc_id = _unseen_id(doc, seen)
        seen.add(doc_id)
        unique.append(Document(doc_id=doc_id, text=doc.text, source=doc.source))
    return unique


def _unseen_id(doc: Document, seen: set[str]) -> str:
    """The document's name, or enough of its folders to tell it apart (``b/x.txt``); never an absolute
    path, which would show where files live on the server to anyone using the chat."""
    parts = Path(doc.source).parts
    for depth in range(1, len(parts) + 1):
        tail = "/".join(p for p in parts[-depth:] if p not in ("/", "\\") and not p.endswith(":\\"))
        if tail and tail not in seen:
            return tail
    n = 2
    while f"{doc.doc_id} ({n})" in seen:
        n += 1
    return f"{doc.doc_id} ({n})"
