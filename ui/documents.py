"""The chat's document panel: upload files, add by link, confirm before replacing, remove ticked documents.

Every handler returns the same panel outputs (``PANEL``): the status HTML, the document list, its summary,
the documents waiting for the user's confirmation (per-session state), and the confirmation row. A
document whose id is already indexed with other content is never replaced silently: it waits until the
user clicks "Replace" (or "Keep the indexed one").

Who may change the library: on loopback, the one person at this machine. A chat served to other machines shares
one library among everyone who logs in, so there it changes only when the operator allowed it
(``--allow-uploads``, ``QA_ALLOW_UPLOADS``); otherwise every handler that would add, replace or remove a document
refuses, whatever the page shows. Each change is logged (``qa.ui.library``, one line per document) with the
name the user logged in with, or ``local`` on loopback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
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
changes = logging.getLogger("qa.ui.library")  # the server's record of who changed the library

#: Why the panel is read-only, shown in it; web-worded (the operator's flag is in the README).
READ_ONLY = ("This library is shared by everyone who uses this chat, and whoever runs it has not allowed adding "
             "or removing documents here. You can still restrict questions to some of them.")

Panel = tuple[str, Any, str, list[Document] | None, Any, str]
UPLOAD_SUFFIXES = [".txt", ".md", ".markdown", ".html", ".htm", ".pdf"]


def _ok(text: str) -> str:
    return f'<div class="qa-status qa-ok">{text}</div>'


def _error(text: str) -> str:
    return f'<div class="qa-status qa-error" role="alert">{text}</div>'


def _note(text: str) -> str:
    return f'<div class="qa-status qa-notice" role="status"><strong>Note:</strong> {render.escape(text)}</div>'


class DocumentHandlers:
    """Adding and removing documents of one app's pipeline (shared by every session)."""

    def __init__(self, pipeline: Pipeline, *, max_file_bytes: int, policy: Callable[[], FetchPolicy],
                 writable: bool = True, remote: bool = False) -> None:
        """``writable``: users may add and remove documents. ``remote``: served beyond loopback (a user with no
        login is then named by their address, not ``local``)."""
        self.pipeline = pipeline
        self.max_file_bytes = max_file_bytes
        self.policy = policy
        self.writable = writable
        self.remote = remote

    def user(self, request: gr.Request | None) -> str:
        """Who is asking, for the log: the login name; ``local`` on loopback without one; beyond loopback without
        a login, ``anonymous`` and the client's address."""
        name = request.username if request is not None else None
        if name:
            return str(name)
        if not self.remote:
            return "local"
        http = request.request if request is not None else None  # the HTTP request the event came with
        client = http.client if http is not None else None
        return f"anonymous ({client.host})" if client is not None else "anonymous"

    def refused(self, what: str, user: str, selected: Sequence[str] | None) -> Panel | None:
        """The read-only answer to a change, or None when changes are allowed."""
        if self.writable:
            return None
        changes.warning("refused: %s tried to %s (the library is read-only; --allow-uploads allows changes)",
                        user, what)
        gr.Warning(f"Not changed: {READ_ONLY}")
        return self.panel(_error(f"<strong>Not changed:</strong> {render.escape(READ_ONLY)}"), selected)

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

    def _add(self, docs: Sequence[Document], lines: list[str], user: str) -> list[Document]:
        """Add the documents that replace nothing; return those that would replace one (to confirm first)."""
        known = self.pipeline.documents
        waiting = [d for d in docs if d.doc_id in known and known[d.doc_id].text != d.text]
        ready = [d for d in docs if d not in waiting]
        if ready:
            lines.extend(self._commit(ready, user))
        return waiting

    def _commit(self, docs: Sequence[Document], user: str) -> list[str]:
        lines: list[str] = []
        try:
            change = self.pipeline.add(docs, progress=True)
        except (QAError, OSError) as exc:
            log.exception("indexing failed")
            msg = str(exc) if isinstance(exc, QAError) else f"Could not write the index ({exc}). Try again."
            return [_error(f"<strong>Error:</strong> {render.escape(msg)}")]
        by_id = {d.doc_id: d for d in docs}
        done = (("Added", change.added), ("Replaced", change.replaced), ("Already indexed", change.unchanged))
        toast: list[str] = []
        for verb, ids in done:
            for doc_id in ids:
                d = by_id[doc_id]
                label = render.escape(document_label(d))
                lines.append(_ok(f"{verb} <strong>{label}</strong> ({len(d.text):,} characters)."))
                toast.append(f"{verb} {label}")
                if verb != "Already indexed":
                    changes.info("%s by %s: %r (%s)", verb.lower(), user, doc_id, document_label(d))
        if toast:
            gr.Info("<br>".join(toast))
        names = names_of(self.pipeline.documents)
        lines.extend(_note(names.scrub(n)) for n in change.notes)
        return lines

    def upload(self, files: list[str] | None, selected: list[str] | None, progress: gr.Progress,
               request: gr.Request | None = None) -> Panel:
        """Validate uploaded files, then embed and index the good ones; every rejection is explained."""
        if not files:
            return self.panel("", selected)
        user = self.user(request)
        if (no := self.refused(f"upload {len(files)} file(s)", user, selected)) is not None:
            return no
        progress(0.05, desc=f"Reading {len(files)} file(s)")
        report = read_uploads([(str(f), None) for f in files], max_bytes=self.max_file_bytes)
        lines: list[str] = []
        waiting: list[Document] = []
        if report.accepted:
            progress(0.2, desc="Embedding and indexing")
            waiting = self._add(report.accepted, lines, user)
        for name, reason in report.rejected:
            lines.append(_error(f"Rejected <strong>{render.escape(name)}</strong>: {render.escape(reason)}"))
        progress(1.0, desc="Done")
        return self.panel("".join(lines), selected, waiting)

    def add_link(self, url: str | None, selected: list[str] | None, progress: gr.Progress,
                 request: gr.Request | None = None) -> Panel:
        """Fetch a page or a feed (within the fetch policy's limits) and index what it holds."""
        user = self.user(request)
        if (no := self.refused("add a link", user, selected)) is not None:
            return no
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
        waiting = self._add(report.documents, lines, user) if report.documents else []
        if report.unchanged:
            lines.append(_ok(f"{len(report.unchanged)} feed entr{'y' if len(report.unchanged) == 1 else 'ies'} "
                             "already indexed and unchanged."))
        lines.extend(_note(n) for n in report.notes if not any(n in line for line in lines))
        return self.panel("".join(lines), selected, waiting)

    def confirm(self, pending: list[Document] | None, selected: list[str] | None,
                request: gr.Request | None = None) -> Panel:
        """The user chose to replace the indexed versions."""
        if not pending:
            return self.panel("", selected)
        user = self.user(request)
        if (no := self.refused("replace documents", user, selected)) is not None:
            return no
        return self.panel("".join(self._commit(pending, user)), selected)

    def cancel(self, pending: list[Document] | None, selected: list[str] | None) -> Panel:
        names = ", ".join(render.escape(document_label(d)) for d in pending or [])
        return self.panel(_ok(f"Kept the indexed version of {names}.") if names else "", selected)

    def remove(self, selected: list[str] | None, request: gr.Request | None = None) -> Panel:
        """Remove the ticked documents from the index."""
        user = self.user(request)
        if (no := self.refused("remove documents", user, selected)) is not None:
            return no
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
        for doc_id, label in zip(ids, labels, strict=True):
            changes.info("removed by %s: %r (%s)", user, doc_id, label)
        gr.Info("<br>".join(f"Removed {render.escape(n)}" for n in labels))
        return self.panel("".join(_ok(f"Removed <strong>{render.escape(n)}</strong>.") for n in labels), [])


@dataclass(frozen=True)
class DocumentPanel:
    """The documents panel's components. What an upload, a link or a removal did is shown at its top (and in a
    toast), where the eye is, not under the upload box; a read-only library shows why instead of the controls."""

    upload_status: gr.HTML
    confirm_row: gr.Column
    confirm_msg: gr.HTML
    replace: gr.Button
    keep: gr.Button
    doc_filter: gr.CheckboxGroup
    doc_summary: gr.Markdown
    remove: gr.Button
    upload: gr.File
    link: gr.Textbox
    add_link: gr.Button

    @classmethod
    def build(cls, docs: DocumentHandlers, *, max_mb: str) -> DocumentPanel:
        """Lay the panel out inside the current Blocks (an open accordion under the chat)."""
        writable = docs.writable
        with gr.Accordion("Documents", open=True, elem_id="qa-documents"):
            upload_status = gr.HTML("", elem_id="qa-upload-status", padding=False)
            with gr.Column(visible=False, elem_id="qa-confirm") as confirm_row:
                confirm_msg = gr.HTML("", elem_id="qa-confirm-message", padding=False)
                with gr.Row():
                    replace = gr.Button("Replace", size="sm", variant="stop", elem_id="qa-replace")
                    keep = gr.Button("Keep the indexed one", size="sm", elem_id="qa-keep")
            read_only = f"<strong>Read-only.</strong> {render.escape(READ_ONLY)}"
            gr.HTML(f'<div class="qa-status qa-notice" role="note">{read_only}</div>', elem_id="qa-read-only",
                    visible=not writable, padding=False)
            with gr.Row():
                with gr.Column(scale=1):
                    doc_filter = gr.CheckboxGroup(choices=docs.choices(), value=[], label="Indexed documents",
                                                  elem_id="qa-doc-filter")
                    doc_summary = gr.Markdown(render.documents_summary(docs.pipeline.documents),
                                              elem_id="qa-doc-summary")
                    remove = gr.Button("Remove ticked documents", size="sm", variant="secondary", elem_id="qa-remove",
                                       visible=writable)
                with gr.Column(scale=1, visible=writable, elem_id="qa-add"):  # read-only: the handlers refuse too
                    upload = gr.File(label=f"Add documents: .txt, .md, .html or .pdf, up to {max_mb} MB each",
                                     file_count="multiple", file_types=UPLOAD_SUFFIXES, type="filepath",
                                     elem_id="qa-upload")
                    with gr.Row(equal_height=True):
                        link = gr.Textbox(show_label=False, placeholder="Add by link: https://\u2026 (an article or an "
                                          "RSS/Atom feed)", elem_id="qa-link", scale=5, max_lines=1)
                        add_link = gr.Button("Add link", elem_id="qa-add-link", scale=1, min_width=90)
        return cls(upload_status, confirm_row, confirm_msg, replace, keep, doc_filter, doc_summary, remove, upload,
                   link, add_link)


#: Example questions under the chat: the seed article's when the library holds it; otherwise requests for
#: the gist, which any article answers (the seed's questions over someone's own articles would abstain).
SEED_EXAMPLES: dict[str, tuple[str, ...]] = {
    "us-israel-un-ceasefire-resolution.txt": (
        "Who stayed in Washington despite the cancellation?",
        "How did Hamas react to the resolution?",
        "What did the U.S. representative do during the vote?",
    ),
}


def example_questions(doc_ids: Collection[str]) -> tuple[str, ...]:
    """The examples offered for a library of ``doc_ids`` (none for an empty one).

    >>> example_questions(["us-israel-un-ceasefire-resolution.txt"])[0]
    'Who stayed in Washington despite the cancellation?'
    >>> example_questions(["gas-prices.txt"]), example_questions(["a.txt", "b.txt"])[0], example_questions([])
    (('What is this article about?', 'What happened?'), 'What are these articles about?', ())
    """
    for doc_id in doc_ids:
        if doc_id in SEED_EXAMPLES:
            return SEED_EXAMPLES[doc_id]
    if not doc_ids:
        return ()
    return ("What is this article about?" if len(doc_ids) == 1 else "What are these articles about?", "What happened?")


#: Buttons kept under the chat for the examples; those without a question are hidden, with this label.
EXAMPLE_SLOTS = 3
HIDDEN_EXAMPLE = "?"


def example_slots(doc_ids: Collection[str]) -> list[str]:
    """``example_questions`` padded with "" to ``EXAMPLE_SLOTS``, so the same buttons can show the examples of
    whatever the library holds after an upload or a removal.

    >>> example_slots(["gas-prices.txt"])
    ['What is this article about?', 'What happened?', '']
    """
    questions = list(example_questions(doc_ids))[:EXAMPLE_SLOTS]
    return questions + [""] * (EXAMPLE_SLOTS - len(questions))


def show_examples(doc_ids: Collection[str], *shown: str) -> list[Any]:
    """Updates for the example buttons once the library may have changed (an upload, a link, a removal, a
    page opened after another session changed it). A button that already shows its example (``shown``: the
    labels now, ``HIDDEN_EXAMPLE`` on a hidden one) is left alone: an update re-renders it even when nothing
    changes."""
    return [gr.skip() if (q or HIDDEN_EXAMPLE) == now else gr.update(value=q or HIDDEN_EXAMPLE, visible=bool(q))
            for q, now in zip(example_slots(doc_ids), shown, strict=True)]
