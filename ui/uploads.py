"""Turning uploaded files into Documents: only the base name of an upload is ever used.

Gradio stores uploads in its own cache directory; the name the browser sent is used as
the document id only, never as a path, so ``../../etc/passwd`` becomes ``passwd``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import DocumentError
from qa.ingest import read_document
from qa.types import Document

#: Control characters, and the bidirectional controls that make "evil\u202etxt.exe" display as "evilexe.txt".
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def base_name(name: str) -> str:
    """The last component of a user-supplied file name, with any directory part dropped.

    >>> base_name("../../etc/passwd")
    'passwd'
    >>> base_name("C:\\\\Users\\\\me\\\\news.txt")
    'news.txt'
    >>> base_name("..")
    'upload'
    >>> base_name("report\u202etxt.html")  # a right-to-left override would show it as "reportlmth.txt"
    'reporttxt.html'
    """
    last = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    last = _UNSAFE.sub("", last).strip()
    return last if last not in ("", ".", "..") else "upload"


def read_upload(path: str | Path, name: str | None, *, max_bytes: int) -> Document:
    """Validate one uploaded file (type, size, encoding, emptiness) and build its Document.

    ``path`` is where the web server stored the upload; ``name`` is the name the user gave
    it (defaults to the stored file's name). Raises ``DocumentError`` with a user message.
    """
    shown = base_name(name if name is not None else Path(path).name)
    return read_document(path, max_bytes=max_bytes, name=shown, doc_id=shown, source=f"upload:{shown}",
                         follow_links=False)


@dataclass
class UploadReport:
    """What happened to each file of one upload, for the message shown to the user."""

    accepted: list[Document] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def read_uploads(files: Sequence[tuple[str, str | None]], *, max_bytes: int) -> UploadReport:
    """Read every file; bad ones are reported, good ones are kept (two with one name: last wins)."""
    report = UploadReport()
    by_id: dict[str, Document] = {}
    for path, name in files:
        try:
            doc = read_upload(path, name, max_bytes=max_bytes)
        except DocumentError as exc:
            report.rejected.append((base_name(name if name is not None else Path(path).name), str(exc)))
        except OSError as exc:
            shown = base_name(name if name is not None else Path(path).name)
            report.rejected.append((shown, f"The upload of {shown} could not be read ({exc.strerror}). Try again."))
        else:
            by_id[doc.doc_id] = doc
    report.accepted = list(by_id.values())
    return report
