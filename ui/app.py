"""The Gradio web chat started by ``qa serve``: streamed, cited answers next to the highlighted source.

Gradio is imported by this package only, never from ``qa``. One ``Pipeline`` is shared by every session:
asking only reads it, and ``Pipeline.add`` swaps its state under the pipeline's lock, so
concurrent users need no further locking. Conversation history is per-session ``gr.State``.

No ``from __future__ import annotations`` here: ``gr.api`` reads the ``ask`` function's type
hints at runtime to describe the endpoint.
"""

import dataclasses
import html
import logging
import weakref
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from qa.errors import ConfigError, QAError
from qa.ingest.fetch import fetch_policy
from qa.pipeline import Pipeline
from qa.question import check_doc_ids, check_question
from qa.types import Answer

from . import render
from .api import docs_endpoint
from .assets import SCROLL_TO_FIRST_CITATION
from .backend import INFO, picker_update
from .chats import ConversationHandlers, ask_again, chat_messages, hint_due, show_filter, stopped
from .conversations import ChatTurn, ConversationStore
from .documents import HIDDEN_EXAMPLE, DocumentHandlers, DocumentPanel, Panel, example_slots, show_examples
from .names import names_of
from .slots import RESERVED, ModelSlots

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8  # answers computed at once; the rest wait in the queue
QUEUE_SIZE = 256  # waiting requests beyond this are refused with "queue full"
HISTORY_MESSAGES = 12  # messages of the conversation passed on to the pipeline
SHOWN_QUESTION_CHARS = 2_000  # a pasted 100,000-character question is shown truncated

# Gradio sees this default and passes a fresh tracker per call; it also follows the tqdm bar
# that Pipeline.add(progress=True) shows while embedding a large upload.
_UPLOAD_PROGRESS = gr.Progress(track_tqdm=True)

_LIMITS: "weakref.WeakKeyDictionary[gr.Blocks, int]" = weakref.WeakKeyDictionary()


def _noticed(answer: Answer, notice: str | None) -> Answer:
    """The answer with one more notice for the user (kept with any it has)."""
    if not notice:
        return answer
    return dataclasses.replace(answer, notice=f"{answer.notice} {notice}" if answer.notice else notice)


def _error_message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, QAError) else "Something went wrong on the server; the log has the details."


class ChatHandlers:
    """The event handlers of one app, bound to its pipeline (shared by all sessions)."""

    def __init__(
        self, pipeline: Pipeline, *, llm: str | None, max_file_bytes: int, remote: bool = False, model_slots: int = 6,
        allow_uploads: bool = False,
    ) -> None:
        """``remote``: served beyond loopback; its users then change the library only with ``allow_uploads``."""
        self.pipeline = pipeline
        self.llm = llm
        self.max_file_bytes = max_file_bytes
        self.slots = ModelSlots(model_slots)
        settings = pipeline.settings
        self.picked_by_default = llm or settings.llm  # what the page's answerer picker shows at first
        self.docs = DocumentHandlers(pipeline, max_file_bytes=max_file_bytes,
                                     policy=lambda: fetch_policy(settings, served_remotely=remote),
                                     writable=allow_uploads or not remote, remote=remote)

    # ----- documents -----------------------------------------------------------------

    def doc_choices(self) -> list[tuple[str, str]]:
        """The document list: ``(label, id)``, labelled "Title — Outlet, 6 Feb 2018"."""
        return self.docs.choices()

    def doc_filter(self, selected: Collection[str] | None) -> list[str] | None:
        """The documents a question is restricted to; None means all. Unknown ids are an error."""
        selected = check_doc_ids(selected)
        if not selected:
            return None
        known = self.pipeline.documents
        ids = names_of(known).doc_ids(selected)  # the names the chat shows (no server paths), or ids
        missing = [name for name, d in zip(selected, ids, strict=True) if d not in known]
        if missing:
            raise ConfigError(
                f"Not in the index: {', '.join(sorted(missing))}. Choose from the document list "
                f"({len(known)} indexed) or upload the file first."
            )
        return list(dict.fromkeys(ids))

    def refresh_documents(self, selected: list[str] | None = None) -> tuple[Any, str]:
        """Document list and summary, keeping the still-valid part of the user's selection."""
        _, choices, summary, *_ = self.docs.panel("", selected)
        return choices, summary

    def upload(
        self, files: list[str] | None, selected: list[str] | None, progress: gr.Progress = _UPLOAD_PROGRESS,
        request: gr.Request | None = None,
    ) -> Panel:
        """Validate uploaded files, then embed and index the good ones; every rejection is explained, and a
        file that would replace an indexed document waits for the user's confirmation. Refused when the
        library is read-only; ``request`` names the user in the log of changes."""
        return self.docs.upload(files, selected, progress, request)

    def add_link(
        self, url: str | None, selected: list[str] | None, progress: gr.Progress = _UPLOAD_PROGRESS,
        request: gr.Request | None = None,
    ) -> Panel:
        """Fetch a page or a feed by its link and index it (the chat's "add by link" box)."""
        return self.docs.add_link(url, selected, progress, request)

    # ----- chat ----------------------------------------------------------------------

    def respond(
        self, question: str | None, turns: list[ChatTurn] | None, selected: list[str] | None, model: str | None = None
    ) -> Iterator[tuple[Any, Any, list[ChatTurn], Any, Any]]:
        """Stream one answer into the chat, then show its citations in the source panel. ``model``: the
        answerer picked in the page ("auto", "extractive", "ollama:NAME"); the app's own when None or unchanged
        (so a pipeline built with its own generator keeps it until the user picks another)."""
        wanted = model if model and model != self.picked_by_default else self.llm
        turns = list(turns or [])
        hint = hint_due(turns)
        try:
            q = check_question(question, self.pipeline.settings.max_question_chars)
        except QAError as exc:
            yield gr.update(), gr.update(), turns, gr.update(), render.status_html(error=str(exc))
            return
        history = [{"role": t["role"], "content": t["content"]} for t in turns if not t["error"]][-HISTORY_MESSAGES:]
        shown = q if len(q) <= SHOWN_QUESTION_CHARS else q[:SHOWN_QUESTION_CHARS] + "\u2026"
        user: ChatTurn = {
            "role": "user",
            "content": q,
            "display": render.escape_markdown(shown),
            "answer": None,
            "error": False,
        }
        reply: ChatTurn = {
            "role": "assistant",
            "content": "",
            "display": "*Searching the articles\u2026*",
            "answer": None,
            "error": False,
        }
        turns += [user, reply]
        yield "", chat_messages(turns), turns, gr.update(), render.status_html(None)
        text = ""
        final: Answer | None = None
        try:
            doc_ids = self.doc_filter(selected)
            with self.slots.choose(self.pipeline, wanted) as (llm, notice):
                for item in self.pipeline.stream(q, history, llm=llm, doc_ids=doc_ids):
                    if isinstance(item, Answer):
                        final = _noticed(item, notice)
                        continue
                    text += item
                    reply["content"] = text  # what "Stop" keeps
                    reply["display"] = render.answer_markdown(text, link_markers=False) + " \u258c"
                    yield gr.update(), chat_messages(turns), turns, gr.update(), gr.update()
        except Exception as exc:
            if not isinstance(exc, QAError):
                log.exception("answering %r failed", q[:200])
            message = _error_message(exc)
            user["error"] = reply["error"] = True
            reply["content"] = message
            reply["display"] = "**Error:** " + render.escape_markdown(message)
            yield gr.update(), chat_messages(turns), turns, gr.update(), render.status_html(error=message)
            return
        if final is None:  # the pipeline always ends with an Answer; be safe anyway
            final = Answer(question=q, text=text, abstained=False)
        names = names_of(self.pipeline.documents)
        final = names.answer(final)  # citations name documents as the chat does: never by a server path
        reply["content"] = final.text
        reply["display"] = render.message_markdown(final)
        reply["answer"] = final
        sources = render.render_sources(names.documents, final)
        yield gr.update(), chat_messages(turns), turns, sources, render.status_html(final, hint=hint)

    def show_message_sources(self, turns: list[ChatTurn] | None, evt: gr.SelectData) -> tuple[Any, Any]:
        """Clicking an earlier answer shows that answer's sources again."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not isinstance(index, int) or not turns or not 0 <= index < len(turns):
            return gr.update(), gr.update()
        answer = turns[index]["answer"]
        if answer is None:
            return gr.update(), gr.update()
        return (render.render_sources(names_of(self.pipeline.documents).documents, answer),
                render.status_html(answer, hint=False))

    def ask(
        self, question: str, doc_ids: list[str] | None = None, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        """Answer one question about the indexed articles; errors come back as the message to show."""
        try:
            with self.slots.choose(self.pipeline, self.llm) as (llm, notice):
                answer = _noticed(self.pipeline.ask(question, history, llm=llm, doc_ids=self.doc_filter(doc_ids)),
                                  notice)
        except Exception as exc:
            if not isinstance(exc, QAError):
                log.exception("API ask failed")
            raise gr.Error(html.escape(_error_message(exc), quote=False), print_exception=False) from exc
        return names_of(self.pipeline.documents).answer(answer).to_json()


def _ask_endpoint(handlers: ChatHandlers) -> Callable[..., dict[str, Any]]:
    """A plain function with runtime type hints, as ``gr.api`` needs to describe the endpoint."""

    def ask(
        question: str, doc_ids: list[str] | None = None, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        """Answer a question about the indexed news articles.

        Returns the Answer as JSON: answer, abstained, backend, notice, unsupported, citations
        (n, doc_id, sentence, start, end, score), and claims (text, supported, score, citations: the
        check of each sentence of the answer). Restrict the search with doc_ids;
        pass earlier turns as history ([{"role": "user"|"assistant", "content": ...}]).
        """
        return handlers.ask(question, doc_ids, history)

    return ask


def build_app(
    pipeline: Pipeline,
    *,
    llm: str | None = None,
    max_file_bytes: int | None = None,
    concurrency_limit: int = DEFAULT_CONCURRENCY,
    title: str = "News QA",
    remote: bool = False,
    chats_db: str | Path | None = None,
    allow_uploads: bool = False,
) -> gr.Blocks:
    """The chat UI for ``pipeline`` (not launched). Launch it with ``launch()`` for the styling and limits.
    ``remote``: served beyond loopback, so links to private addresses are refused (``QA_ALLOW_PRIVATE_LINKS``),
    and the library is read-only unless ``allow_uploads`` (``--allow-uploads``).
    ``chats_db``: the SQLite file of saved conversations; None keeps them in memory until the server stops."""
    limit = max_file_bytes if max_file_bytes is not None else pipeline.settings.max_file_bytes
    # answers by the model may take all answer slots but RESERVED: those stay free for quick answers
    h = ChatHandlers(pipeline, llm=llm, max_file_bytes=limit, remote=remote, model_slots=concurrency_limit - RESERVED,
                     allow_uploads=allow_uploads)
    convs = ConversationHandlers(ConversationStore(chats_db), lambda: names_of(pipeline.documents).documents)
    mb = f"{limit / 1e6:g}"
    demo = gr.Blocks(title=title, analytics_enabled=False)
    with demo:
        gr.HTML(
            f"<h1>{render.escape(title)}</h1><p>Ask about the indexed news articles. Every answer cites the "
            "exact sentences it comes from; they are highlighted next to the chat. Runs locally: "
            "nothing leaves this machine.</p>",
            elem_id="qa-header",
        )
        turns = gr.State([])
        browser = convs.browser_state()
        conv = gr.State(None)  # the open conversation's id; None until its first answer is stored
        with gr.Sidebar(label="Conversations", open=True, elem_id="qa-sidebar", width=280):
            new_chat = gr.Button("+ New chat", variant="primary", size="sm", elem_id="qa-new-chat")
            gr.HTML('<div class="qa-side-title">Saved conversations</div>', padding=False)
            conv_list = gr.Radio(choices=[], value=None, label="Saved conversations", show_label=False,
                                 elem_id="qa-conversations",
                                 container=False)
            with gr.Accordion("Rename or delete", open=False, elem_id="qa-conv-edit"):
                conv_title = gr.Textbox(show_label=False, placeholder="Title of this conversation", max_lines=1,
                                        elem_id="qa-conv-title")
                with gr.Row():
                    rename = gr.Button("Rename", size="sm", elem_id="qa-conv-rename", min_width=60)
                    delete = gr.Button("Delete", size="sm", variant="stop", elem_id="qa-conv-delete", min_width=60)
            current = h.picked_by_default
            model = gr.Dropdown(choices=[(current, current)], value=current, label="Answers by", elem_id="qa-model",
                                interactive=True, info=INFO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=380):
                chatbot = gr.Chatbot(
                    label="Chat",
                    show_label=False,
                    elem_id="qa-chat",
                    height=470,
                    latex_delimiters=[],
                    feedback_options=None,
                    buttons=[],  # each answer has its own "Copy" (with its references)
                    placeholder="Ask a question about the articles, or click an example below.",
                    group_consecutive_messages=False,
                )
                status = gr.HTML(render.status_html(None), elem_id="qa-status")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        show_label=False,
                        placeholder="Ask about the articles\u2026 (Enter to send)",
                        elem_id="qa-question",
                        scale=8,
                        max_lines=4,
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", elem_id="qa-send", scale=1, min_width=90)
                    stop = gr.Button("Stop", variant="stop", elem_id="qa-stop", scale=1, min_width=90, visible=False)
                with gr.Row(elem_id="qa-filter-row", visible=False) as filter_row:
                    filter_chip = gr.HTML("", elem_id="qa-filter-chip", padding=False)
                    search_all = gr.Button("Search all", size="sm", elem_id="qa-search-all", scale=0, min_width=90)
                with gr.Row(elem_classes="qa-examples"):
                    examples = [
                        gr.Button(q or HIDDEN_EXAMPLE, size="sm", variant="secondary", elem_classes="qa-example",
                                  visible=bool(q))
                        for q in example_slots(list(pipeline.documents))
                    ]
                    again = gr.Button("Ask again", size="sm", elem_id="qa-again")
                    clear = gr.Button("New chat", size="sm", variant="stop", elem_id="qa-clear")
            with gr.Column(scale=4, min_width=320):
                sources = gr.HTML(render.EMPTY_SOURCES_HTML, elem_id="qa-sources", label="Sources", container=True)
        pending = gr.State(None)  # documents waiting for "Replace" (per session)
        lib = DocumentPanel.build(h.docs, max_mb=mb)

        chat_io: dict[str, Any] = {
            "fn": h.respond,
            "outputs": [question, chatbot, turns, sources, status],
            "concurrency_limit": concurrency_limit,
            "concurrency_id": "answer",
            "api_visibility": "private",
            "show_progress": "minimal",
        }
        scroll: dict[str, Any] = {
            "fn": None,
            "js": SCROLL_TO_FIRST_CITATION,
            "queue": False,
            "api_visibility": "private",
        }
        save: dict[str, Any] = {
            "fn": convs.save, "inputs": [browser, conv, turns], "outputs": [conv, conv_list],
            "queue": False, "api_visibility": "private",
        }
        private: dict[str, Any] = {"queue": False, "api_visibility": "private"}
        busy: dict[str, Any] = {"fn": lambda: (gr.update(visible=False), gr.update(visible=True)),
                                "outputs": [send, stop], **private}
        idle: dict[str, Any] = {"fn": lambda: (gr.update(visible=True), gr.update(visible=False)),
                                "outputs": [send, stop], **private}
        answering = []  # the answer steps "Stop" cancels
        again_step = again.click(ask_again, inputs=[turns], outputs=[question, turns, chatbot], **private)
        starts: list[tuple[Any, Any]] = [(question.submit(**busy), question), (send.click(**busy), question),
                                         (again_step.then(**busy), question)]
        starts += [(button.click(**busy), button) for button in examples]  # a Button's value is its label
        for start, asked in starts:
            step = start.then(inputs=[asked, turns, lib.doc_filter, model], **chat_io)
            answering.append(step)
            step.then(**save).then(**idle).then(**scroll)
        stop.click(None, cancels=answering, **private).then(  # cancel first, then mark what was written
            stopped, inputs=[turns], outputs=[chatbot, turns, status], **private).then(**save).then(**idle)
        shown = [conv, turns, chatbot, sources, status, conv_title]
        for button in (clear, new_chat):
            button.click(convs.new, inputs=[browser], outputs=[*shown, conv_list], **private)
        conv_list.input(convs.open, inputs=[browser, conv_list], outputs=[*shown, conv_list], **private).then(
            **scroll)
        rename.click(convs.rename, inputs=[browser, conv, conv_title], outputs=[conv_list], **private)
        conv_title.submit(convs.rename, inputs=[browser, conv, conv_title], outputs=[conv_list], **private)
        delete.click(convs.delete, inputs=[browser, conv], outputs=[*shown, conv_list], **private)
        demo.load(lambda: picker_update(current, pipeline.settings.ollama_host), outputs=[model], **private)
        lib.doc_filter.change(lambda selected: show_filter(pipeline.documents, selected), inputs=[lib.doc_filter],
                          outputs=[filter_row, filter_chip], **private)
        search_all.click(lambda: gr.update(value=[]), outputs=[lib.doc_filter], **private)
        demo.load(convs.start, inputs=[browser], outputs=[browser, *shown, conv_list], **private).then(**scroll)
        chatbot.select(
            h.show_message_sources, inputs=[turns], outputs=[sources, status], api_visibility="private"
        ).then(**scroll)
        panel = [lib.upload_status, lib.doc_filter, lib.doc_summary, pending, lib.confirm_row, lib.confirm_msg]
        index_io: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "index", "show_progress": "full"}
        examples_io: dict[str, Any] = {"fn": lambda *shown: show_examples(list(pipeline.documents), *shown),
                                       "inputs": examples, "outputs": examples, **private}  # follow the library
        lib.upload.upload(h.upload, inputs=[lib.upload, lib.doc_filter], outputs=panel, api_name="upload",
                          **index_io).then(
            lambda: None, outputs=[lib.upload], queue=False, api_visibility="private"
        ).then(**examples_io)
        link_io: dict[str, Any] = {"inputs": [lib.link, lib.doc_filter], "outputs": panel, **index_io}
        lib.add_link.click(h.add_link, api_name="add_link", **link_io).then(
            lambda: "", outputs=[lib.link], queue=False, api_visibility="private"
        ).then(**examples_io)
        lib.link.submit(h.add_link, api_visibility="private", **link_io).then(**examples_io)
        lib.replace.click(h.docs.confirm, inputs=[pending, lib.doc_filter], outputs=panel, api_visibility="private",
                          **index_io).then(**examples_io)
        lib.keep.click(h.docs.cancel, inputs=[pending, lib.doc_filter], outputs=panel, api_visibility="private",
                       queue=False)
        lib.remove.click(h.docs.remove, inputs=[lib.doc_filter], outputs=panel, api_name="remove",
                         **index_io).then(**examples_io)
        demo.load(h.refresh_documents, inputs=[lib.doc_filter], outputs=[lib.doc_filter, lib.doc_summary],
                  api_visibility="private").then(**examples_io)  # another session may have changed it
        gr.api(  # type: ignore[attr-defined]
            _ask_endpoint(h), api_name="ask", concurrency_limit=concurrency_limit, concurrency_id="answer"
        )
        gr.api(docs_endpoint(pipeline), api_name="docs", queue=False)  # type: ignore[attr-defined]
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=QUEUE_SIZE)
    _LIMITS[demo] = limit
    return demo


def upload_limit(demo: gr.Blocks) -> int | None:
    """The largest upload ``build_app`` allowed for ``demo``, for the server to enforce while receiving it."""
    return _LIMITS.get(demo)


