"""The sidebar of saved conversations: open, rename, delete, new chat; and saving after each answer.

The browser's anonymous id lives in a ``gr.BrowserState`` whose secret is kept in the store, so the
id (and with it the conversations) survives a server restart. The handlers here return Gradio
updates; the storing itself is ``ConversationStore``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gradio as gr

from qa.types import Document

from . import render
from .conversations import ChatTurn, ConversationStore, new_browser_id, valid_browser_id
from .names import names_of

#: The browser's id under this localStorage key (encrypted with the store's secret).
STORAGE_KEY = "qa-browser"

# What opening a conversation updates: conversation id, turns, chat, sources, status, title box.
Opened = tuple[str | None, list[ChatTurn], list[dict[str, str]], str, str, Any]


def chat_messages(turns: Sequence[ChatTurn]) -> list[dict[str, str]]:
    """The chat component's messages for the session's turns."""
    return [{"role": t["role"], "content": t["display"]} for t in turns]


def stopped(turns: list[ChatTurn] | None) -> tuple[list[dict[str, str]], list[ChatTurn], str]:
    """"Stop" pressed: the answer being written keeps what it had, marked as stopped; the exchange is not
    passed on as history (like a failed one)."""
    turns = list(turns or [])
    if len(turns) >= 2 and turns[-1]["role"] == "assistant" and turns[-1]["answer"] is None and not turns[-1]["error"]:
        partial = turns[-1]["content"]
        shown = render.answer_markdown(partial, link_markers=False) + "\n\n" if partial.strip() else ""
        turns[-2] = ChatTurn(**{**turns[-2], "error": True})
        turns[-1] = ChatTurn(role="assistant", content=partial, display=shown + "*Stopped.*", answer=None, error=True)
    return chat_messages(turns), turns, render.status_html(None)


def ask_again(turns: list[ChatTurn] | None) -> tuple[str, list[ChatTurn], list[dict[str, str]]]:
    """"Ask again": the last question goes back in the box and its answer is taken away, to be asked anew."""
    turns = list(turns or [])
    last = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=None)
    if last is None:
        return "", turns, chat_messages(turns)
    question = turns[last]["content"]
    return question, turns[:last], chat_messages(turns[:last])


def show_filter(documents: Mapping[str, Document], selected: list[str] | None) -> tuple[Any, str]:
    """The chip by the input that says questions are restricted to the ticked documents (hidden when none)."""
    chip = render.filter_chip(names_of(documents).documents, selected or [])  # the list's values are public names
    return gr.update(visible=bool(chip)), chip


def hint_due(turns: Sequence[ChatTurn]) -> bool:
    """True until an answer of this conversation has shown the "start Ollama" hint (once is enough)."""
    return not any(t["answer"] is not None and t["answer"].notice for t in turns)


class ConversationHandlers:
    """Event handlers of the conversation sidebar, shared by every session of one app."""

    def __init__(self, store: ConversationStore, documents: Callable[[], Mapping[str, Document]]) -> None:
        self.store = store
        self.documents = documents

    def browser_state(self) -> gr.BrowserState:
        """The component that keeps this browser's id (same key and secret after a restart)."""
        return gr.BrowserState(None, storage_key=STORAGE_KEY, secret=self.store.secret)

    def choices(self, browser: str | None) -> list[tuple[str, str]]:
        return [(c.title, c.conv_id) for c in self.store.listing(browser)] if browser else []

    def _listing(self, browser: str | None, current: str | None) -> Any:
        return gr.update(choices=self.choices(browser), value=current)

    def _show(self, conv_id: str | None, turns: list[ChatTurn], title: str = "") -> Opened:
        """The chat, sources and status of a conversation, its last answer's sources shown."""
        for t in turns:  # re-render stored answers, so older conversations read like new ones
            if t["answer"] is not None and not t["error"]:
                t["display"] = render.message_markdown(t["answer"])
        last = next((t["answer"] for t in reversed(turns) if t["answer"] is not None), None)
        sources = render.render_sources(self.documents(), last)
        return (conv_id, turns, chat_messages(turns), sources, render.status_html(last, hint=False),
                gr.update(value=title))

    def start(self, browser: Any) -> tuple[Any, ...]:
        """Page load: give a new browser its id; show the most recent conversation of a known one."""
        bid = valid_browser_id(browser) or new_browser_id()
        listed = self.store.listing(bid)
        turns: list[ChatTurn] = (self.store.load(bid, listed[0].conv_id) or []) if listed else []
        if not turns:
            return (bid, *self.new(bid))
        return (bid, *self._show(listed[0].conv_id, turns, listed[0].title), self._listing(bid, listed[0].conv_id))

    def open(self, browser: Any, conv_id: str | None) -> tuple[Any, ...]:
        """Show a past conversation chosen in the sidebar."""
        bid = valid_browser_id(browser)
        turns = self.store.load(bid, conv_id) if bid and conv_id else None
        if turns is None:
            return self.new(browser)
        title = next((c.title for c in self.store.listing(bid or "") if c.conv_id == conv_id), "")
        return (*self._show(conv_id, turns, title), self._listing(bid, conv_id))

    def new(self, browser: Any) -> tuple[Any, ...]:
        """An empty chat; it is stored once its first question is answered."""
        bid = valid_browser_id(browser)
        return (None, [], [], render.EMPTY_SOURCES_HTML, render.status_html(None), gr.update(value=""),
                self._listing(bid, None))

    def save(self, browser: Any, conv_id: str | None, turns: list[ChatTurn] | None) -> tuple[Any, Any]:
        """After an answer: store the conversation and refresh the sidebar."""
        bid = valid_browser_id(browser)
        if not bid or not turns:
            return conv_id, gr.update()
        saved = self.store.save(bid, conv_id, turns)
        return saved, self._listing(bid, saved)

    def rename(self, browser: Any, conv_id: str | None, title: str | None) -> Any:
        bid = valid_browser_id(browser)
        if bid and conv_id and (title or "").strip():
            self.store.rename(bid, conv_id, title or "")
        return self._listing(bid, conv_id)

    def delete(self, browser: Any, conv_id: str | None) -> tuple[Any, ...]:
        """Delete the open conversation and start a new chat."""
        bid = valid_browser_id(browser)
        if bid and conv_id:
            self.store.delete(bid, conv_id)
        return self.new(browser)
