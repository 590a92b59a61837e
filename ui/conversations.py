"""Saved conversations: a small SQLite file on the server, keyed by an anonymous browser id.

The browser keeps only a random id (in Gradio's encrypted localStorage), so a conversation survives a
reload and a server restart without a login, and each stored answer keeps its citations so the source
panel can show them again. Gradio-free, so it can be unit-tested.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from qa.types import Answer, Citation

TITLE_CHARS = 80  # a conversation's title in the list: its first question, shortened
LISTED = 100  # conversations shown in the sidebar, most recent first
_BROWSER_ID = re.compile(r"^[0-9a-f]{32}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, browser TEXT NOT NULL, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_browser ON conversations (browser, updated);
CREATE TABLE IF NOT EXISTS messages (
    conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, display TEXT NOT NULL,
    answer TEXT, error INTEGER NOT NULL, PRIMARY KEY (conversation, seq)
);
"""


class ChatTurn(TypedDict):
    """One chat message as the session keeps it: what the pipeline sees and what the user sees."""

    role: str
    content: str  # plain text, passed to the pipeline as history
    display: str  # escaped Markdown shown in the chat
    answer: Answer | None  # for assistant messages: the answer, to re-show its sources on click
    error: bool  # failed exchanges are shown but not sent back as history


@dataclass(frozen=True)
class Conversation:
    """One saved conversation as the sidebar lists it."""

    conv_id: str
    title: str
    updated: float


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The stored form of an answer: its public JSON plus the question."""
    return {"question": answer.question, **answer.to_json()}


def answer_from_json(data: dict[str, Any]) -> Answer:
    """Rebuild an ``Answer`` from ``answer_to_json``'s output (fields added later are ignored)."""
    return Answer(
        question=str(data.get("question", "")), text=str(data["answer"]), abstained=bool(data["abstained"]),
        citations=[_citation(c) for c in data.get("citations", [])], backend=str(data.get("backend", "extractive")),
        notice=data.get("notice"), unsupported=[str(u) for u in data.get("unsupported", [])],
        related=[_citation(c) for c in data.get("related", [])],
    )


def _citation(c: dict[str, Any]) -> Citation:
    """A citation from ``Citation.to_json``'s output."""
    return Citation(
        n=int(c["n"]), doc_id=str(c["doc_id"]), text=str(c["sentence"]), start=int(c["start"]), end=int(c["end"]),
        score=float(c["score"]), title=c.get("title"), published=c.get("published"), url=c.get("url"),
        outlet=c.get("outlet"),
    )


def new_browser_id() -> str:
    """A random, anonymous id for one browser."""
    return uuid.uuid4().hex


def valid_browser_id(value: object) -> str | None:
    """The id if it is one ``new_browser_id`` could have made; None for anything else."""
    return value if isinstance(value, str) and _BROWSER_ID.match(value) else None


def title_for(question: str) -> str:
    """A conversation's default title: its first question on one line, shortened."""
    one_line = " ".join(question.split())
    return one_line if len(one_line) <= TITLE_CHARS else one_line[: TITLE_CHARS - 1].rstrip() + "\u2026"


class ConversationStore:
    """Conversations per browser id in one SQLite file (``path``), or in memory when ``path`` is None.

    One connection, serialised by a lock: Gradio calls the handlers from several threads, and each
    operation is a few small statements.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        with self._lock:
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self.secret = self._meta("browser_secret", lambda: secrets.token_urlsafe(24))

    def _meta(self, key: str, make: Any) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return str(row[0])
        value = str(make())
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return str(self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def listing(self, browser: str) -> list[Conversation]:
        """The browser's conversations, most recently changed first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, title, updated FROM conversations WHERE browser = ? ORDER BY updated DESC LIMIT ?",
                (browser, LISTED),
            ).fetchall()
        return [Conversation(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    def load(self, browser: str, conv_id: str) -> list[ChatTurn] | None:
        """The conversation's messages; None when it does not exist or belongs to another browser."""
        with self._lock:
            owner = self._db.execute("SELECT browser FROM conversations WHERE id = ?", (conv_id,)).fetchone()
            if owner is None or owner[0] != browser:
                return None
            rows = self._db.execute(
                "SELECT role, content, display, answer, error FROM messages WHERE conversation = ? ORDER BY seq",
                (conv_id,),
            ).fetchall()
        return [
            ChatTurn(role=str(role), content=str(content), display=str(display),
                     answer=answer_from_json(json.loads(answer)) if answer else None, error=bool(error))
            for role, content, display, answer, error in rows
        ]

    def save(self, browser: str, conv_id: str | None, turns: Sequence[ChatTurn]) -> str | None:
        """Store the whole conversation (creating it, titled by its first question, when ``conv_id`` is None
        or unknown); returns its id, or None when there is nothing to store or it is another browser's."""
        if not turns:
            return conv_id
        now = time.time()
        rows = [
            (i, t["role"], t["content"], t["display"],
             json.dumps(answer_to_json(t["answer"]), ensure_ascii=False) if t["answer"] is not None else None,
             int(t["error"]))
            for i, t in enumerate(turns)
        ]
        with self._lock:
            owner = (self._db.execute("SELECT browser FROM conversations WHERE id = ?", (conv_id,)).fetchone()
                     if conv_id else None)
            if owner is not None and owner[0] != browser:
                return None
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if owner is None:
                    conv_id = uuid.uuid4().hex
                    first = next((t["content"] for t in turns if t["role"] == "user"), "Conversation")
                    self._db.execute(
                        "INSERT INTO conversations (id, browser, title, created, updated) VALUES (?, ?, ?, ?, ?)",
                        (conv_id, browser, title_for(first), now, now),
                    )
                else:
                    self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conv_id))
                    self._db.execute("DELETE FROM messages WHERE conversation = ?", (conv_id,))
                self._db.executemany(
                    "INSERT INTO messages (conversation, seq, role, content, display, answer, error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(conv_id, *row) for row in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return conv_id

    def rename(self, browser: str, conv_id: str, title: str) -> bool:
        """Give the conversation a new title (an empty one is refused); False when it is not this browser's."""
        title = title_for(title)
        if not title:
            return False
        with self._lock:
            cur = self._db.execute(
                "UPDATE conversations SET title = ? WHERE id = ? AND browser = ?", (title, conv_id, browser)
            )
        return cur.rowcount == 1

    def delete(self, browser: str, conv_id: str) -> bool:
        """Delete the conversation and its messages; False when it is not this browser's."""
        with self._lock:
            cur = self._db.execute("DELETE FROM conversations WHERE id = ? AND browser = ?", (conv_id, browser))
        return cur.rowcount == 1
