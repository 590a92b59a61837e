"""The chat's document panel: upload files, add by link, confirm before replacing, remove ticked documents.

Every handler returns the same panel outputs (``PANEL``): the status HTML, the document list, its summary,
the documents waiting for the user's confirmation (per-session state), and the confirmation row. A
document whose id is already indexed with other content is never replaced silently: it waits until the
user clicks "Replace" (or "Keep the indexed one").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from qa.errors import QAError
from qa.ingest import document_label
from qa.ingest.fetch import FetchPolicy
from qa.ingest.sources import read_sources
from qa.pipeline import Pipeline
from qa.types import Document

from . import render
from .names import names_of
from .uploads import read_uploads

log = logging.getLogger(__name__)

Panel = tuple[str, Any, str, list[Document] | None, Any, str]


def _ok(text: str) -> str:
    return f'<div class="qa-status qa-ok">{text}</div>'


def _error(text: str) -> str:
    return f'<div class="qa-status qa-error" role="alert">{text}</div>'


def _note(text: str) -> str:
    return f'<div class="qa-status qa-notice" role="status"><strong>Note:</strong> {render.escape(text)}</div>'


class DocumentHandlers:
    """Adding and removing documents of one app's pipeline (shared by every session)."""

    def __init__(self, pipeline: Pipeline, *, max_file_bytes: int, policy: Callable[[], FetchPolicy]) -> None:
        self.pipeline = pipeline
        self.max_file_bytes = max_file_bytes
        self.policy = policy

    def choices(self) -> list[tuple[str, str]]:
        """``(label, id)`` pairs for the document list: "Title — Outlet, 6 Feb 2018", by label."""
        docs = names_of(self.pipeline.documents).documents.values()  # no server path shown
        return sorted(((document_label(d), d.doc_id) for d in docs), key=lambda c: (c[0].lower(), c[1]))

    def panel(self, status: str, selected: Sequence[str] | None, pending: list[Document] | None = None) -> Panel:
        keep = [d for d in (selected or []) if d in names_of(self.pipeline.documents).documents]
        ask = ""
        if pending:
            names = ", ".join(f"<strong>{render.escape(document_label(d))}</strong>" for d in pending)
            ask = (f'<div class="qa-status qa-notice" role="alert">Already indexed with other content: {names}. '
                   "Replace the indexed version?</div>")
        summary = render.documents_summary(self.pipeline.documents)
        return (status, gr.update(choices=self.choices(), value=keep), summary, pending or None,
                gr.update(visible=bool(pending)), ask)

    def _add(self, docs: Sequence[Document], lines: list[str]) -> list[Document]:
        """Add the documents that replace nothing; return those that would replace one (to confirm first)."""
        known = self.pipeline.documents
        waiting = [d for d in docs if d.doc_id in known and known[d.doc_id].text != d.text]
        ready = [d for d in docs if d not in waiting]
        if ready:
            lines.extend(self._commit(ready))
        return waiting

    def _commit(self, docs: Sequence[Document]) -> list[str]:
        lines: list[str] = []
        try:
            change = self.pipeline.add(docs, progress=True)
        except (QAError, OSError) as exc:
            log.exception("indexing failed")
            msg = str(exc) if isinstance(exc, QAError) else f"Could not write the index ({exc}). Try again."
            return [_error(f"<strong>Error:</strong> {render.escape(msg)}")]
        by_id = {d.doc_id: d for d in docs}
        done = (("Added", change.added), ("Replaced", change.replaced), ("Already indexed", change.unchanged))
        for verb, ids in done:
            for doc_id in ids:
                d = by_id[doc_id]
                lines.append(_ok(f"{verb} <strong>{render.escape(document_label(d))}</strong> "
                                 f"({len(d.text):,} characters)."))
        names = names_of(self.pipeline.documents)
        lines.extend(_note(names.scrub(n)) for n in change.notes)
        return lines

    def upload(self, files: list[str] | None, selected: list[str] | None, progress: gr.Progress) -> Panel:
        """Validate uploaded files, then embed and index the good ones; every rejection is explained."""
        if not files:
            return self.panel("", selected)
        progress(0.05, desc=f"Reading {len(files)} file(s)")
        report = read_uploads([(str(f), None) for f in files], max_bytes=self.max_file_bytes)
        lines: list[str] = []
        waiting: list[Document] = []
        if report.accepted:
            progress(0.2, desc="Embedding and indexing")
            waiting = self._add(report.accepted, lines)
        for name, reason in report.rejected:
            lines.append(_error(f"Rejected <strong>{render.escape(name)}</strong>: {render.escape(reason)}"))
        progress(1.0, desc="Done")
        return self.panel("".join(lines), selected, waiting)

    def add_link(self, url: str | None, selected: list[str] | None, progress: gr.Progress) -> Panel:
        """Fetch a page or a feed (within the fetch policy's limits) and index what it holds."""
        url = (url or "").strip()
        if not url:
            return self.panel(_error("Paste a link (https://\u2026) to a news article or a feed first."), selected)
        progress(0.05, desc=f"Fetching {url[:80]}")
        try:
            report = read_sources([url], max_bytes=self.max_file_bytes, policy=self.policy(),
                                  known=self.pipeline.documents)
        except QAError as exc:
            return self.panel(_error(f"<strong>Not added:</strong> {render.escape(str(exc))}"), selected)
        progress(0.3, desc="Embedding and indexing")
        lines: list[str] = []
        waiting = self._add(report.documents, lines) if report.documents else []
        if report.unchanged:
            lines.append(_ok(f"{len(report.unchanged)} feed entr{'y' if len(report.unchanged) == 1 else 'ies'} "
                             "already indexed and unchanged."))
        lines.extend(_note(n) for n in report.notes if not any(n in line for line in lines))
        return self.panel("".join(lines), selected, waiting)

    def confirm(self, pending: list[Document] | None, selected: list[str] | None) -> Panel:
        """The user chose to replace the indexed versions."""
        if not pending:
            return self.panel("", selected)
        return self.panel("".join(self._commit(pending)), selected)

    def cancel(self, pending: list[Document] | None, selected: list[str] | None) -> Panel:
        names = ", ".join(render.escape(document_label(d)) for d in pending or [])
        return self.panel(_ok(f"Kept the indexed version of {names}.") if names else "", selected)

    def remove(self, selected: list[str] | None) -> Panel:
        """Remove the ticked documents from the index."""
        names = names_of(self.pipeline.documents)
        ids = [d for d in names.doc_ids(selected or []) if d in self.pipeline.documents]
        if not ids:
            return self.panel(_error("Tick the documents to remove in the list first."), selected)
        if len(ids) == len(self.pipeline.documents):
            return self.panel(_error("The last document cannot be removed: the index would be empty."), selected)
        labels = [document_label(names.documents[names.name(d)]) for d in ids]
        try:
            self.pipeline.remove(ids)
        except (QAError, OSError) as exc:
            log.exception("removing failed")
            return self.panel(_error(f"<strong>Error:</strong> {render.escape(names.scrub(str(exc)))}"), selected)
        return self.panel("".join(_ok(f"Removed <strong>{render.escape(n)}</strong>.") for n in labels), [])
