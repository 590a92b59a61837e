"""Reading articles from files and bytes: every refusal happens before anything is indexed.

A document's id is stable and unique: for a file, its path relative to the folder indexing started from
(``base``, by default the current directory), or its absolute path when it lies outside; never its bare
name, so two ``story.txt`` from two folders are two documents, and the same file given twice is one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from qa.errors import (
    EmptyDocumentError,
    FileTooLargeError,
    LinkedFileError,
    MissingFileError,
    UnsupportedFileTypeError,
)
from qa.ingest.formats import (
    SUFFIX_FORMATS,
    Parsed,
    decode,
    html_charset,
    read_html,
    read_markdown,
    read_pdf,
    read_text,
)
from qa.ingest.header import with_header
from qa.types import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
try:
    _NOFOLLOW = os.O_NOFOLLOW
except AttributeError:  # pragma: no cover - Windows: the link check before opening is all there is
    _NOFOLLOW = 0

__all__ = ["SUPPORTED_SUFFIXES", "decode", "document_from_bytes", "expand_paths", "file_id", "make_document",
           "parse_bytes", "read_document", "read_documents"]


def parse_bytes(data: bytes, name: str, fmt: str, *, url: str | None = None, charset: str | None = None) -> Parsed:
    """Read ``data`` in format ``fmt`` (``text``, ``markdown``, ``html``, ``pdf``); ``name`` is for messages."""
    if fmt == "pdf":
        return read_pdf(data, name)
    if fmt == "html":
        return read_html(decode(data, name, charset or html_charset(data)), name, url)
    text = decode(data, name, charset)
    return read_markdown(text) if fmt == "markdown" else read_text(text)


def make_document(doc_id: str, parsed: Parsed, *, source: str, name: str, revision: str | None = None) -> Document:
    """The Document of a parsed article: its canonical text (header + body) and metadata."""
    meta = {"title": parsed.title, "authors": parsed.authors, "published": parsed.published,
            "modified": parsed.modified, "outlet": parsed.outlet}
    text = with_header(parsed.body, **meta) if parsed.header else parsed.body
    if not text.strip():
        raise EmptyDocumentError(name)
    return Document(
        doc_id=doc_id, text=text, source=source, title=parsed.title, authors=parsed.authors,
        published=parsed.published, modified=parsed.modified, outlet=parsed.outlet, url=parsed.url,
        language=parsed.language, notice=parsed.notice, revision=revision,
    )


def document_from_bytes(data: bytes, name: str, *, doc_id: str | None = None, source: str = "") -> Document:
    """Build a Document from uploaded or read bytes; the suffix of ``name`` picks the format."""
    fmt = SUFFIX_FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise UnsupportedFileTypeError(name, SUPPORTED_SUFFIXES)
    if not data.strip():
        raise EmptyDocumentError(name)
    parsed = parse_bytes(data, name, fmt)
    return make_document(doc_id or Path(name).name, parsed, source=source or name, name=name)


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


def file_id(path: Path, base: Path | None = None) -> str:
    """A file's document id: its path relative to ``base`` (default: the current directory), with ``/``
    separators, or its absolute path when it is outside ``base``.

    >>> file_id(Path("/news/a/story.txt"), Path("/news")), file_id(Path("/elsewhere/story.txt"), Path("/news"))
    ('a/story.txt', '/elsewhere/story.txt')
    """
    full = Path(os.path.abspath(path))
    root = Path(os.path.abspath(base if base is not None else Path.cwd()))
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()


def read_documents(paths: Iterable[str | Path], *, max_bytes: int, base: Path | None = None) -> list[Document]:
    """Read every file first, so one bad file fails the whole batch before anything is written. The same
    file named twice (``a.txt`` and ``./a.txt``) is read once."""
    docs: dict[str, Document] = {}
    for p in expand_paths(paths):
        doc_id = file_id(p, base)
        if doc_id not in docs:
            docs[doc_id] = read_document(p, max_bytes=max_bytes, doc_id=doc_id, source=str(p))
    return list(docs.values())
