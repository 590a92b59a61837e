"""The one place a question, a conversation history and a document or date filter are checked, whoever
sends them (CLI, chat, API).

A question is a non-empty string within the configured length. A history is a list of turns, given
as ``Turn`` objects, ``{"role", "content"}`` dicts (Gradio's format) or ``(user, assistant)`` pairs;
it is bounded in turns and characters here, at the edge, so no later stage has to be. Text must be
encodable (a lone surrogate, as a command line can produce from bytes that are not UTF-8, is refused).
Nothing here recurses over what it is given, however deeply nested.
"""

from __future__ import annotations

import reprlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from qa.errors import EmptyQuestionError, InputError, QuestionTooLongError
from qa.types import Turn, published_date

#: Most turns a history may hold, and most characters all its turns together.
MAX_HISTORY_TURNS = 200
MAX_HISTORY_CHARS = 200_000
ROLES = ("user", "assistant", "system")

HistoryLike = Sequence[Turn | Mapping[str, Any] | Sequence[Any]]


def check_question(question: object, limit: int) -> str:
    """The stripped question, or a domain error that says what is wrong with it.

    >>> check_question("  Who stayed?  ", 100)
    'Who stayed?'
    >>> check_question("   ", 100)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qa.errors.EmptyQuestionError: The question is empty. Type a question about the articles, ...
    """
    if question is not None and not isinstance(question, str):
        raise InputError(f"question must be text, not {type(question).__name__}.")
    if question is None or not question.strip():
        raise EmptyQuestionError()
    q = question.strip()
    if len(q) > limit:
        raise QuestionTooLongError(len(q), limit)
    _check_text(q, "The question")
    return q


def _check_text(text: str, what: str) -> None:
    """Refuse text that cannot be encoded (a lone surrogate), naming where it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = f"U+{ord(text[exc.start]):04X}"
        raise InputError(
            f"{what} contains a character that is not valid text ({char}, a lone surrogate, at position "
            f"{exc.start + 1}). Retype it, or save the text as UTF-8."
        ) from None


def check_doc_ids(doc_ids: object) -> list[str] | None:
    """The document names a question is restricted to (None or empty: all), or an ``InputError`` naming doc_ids.

    >>> check_doc_ids(["a.txt", "a.txt", "b.txt"])
    ['a.txt', 'b.txt']
    >>> check_doc_ids("a.txt")
    Traceback (most recent call last):
    qa.errors.InputError: doc_ids must be a list of document names, for example ["a.txt"], not a single str.
    """
    if doc_ids is None:
        return None
    if isinstance(doc_ids, str | bytes):
        shown = doc_ids if isinstance(doc_ids, str) and len(doc_ids) <= 60 else "file.txt"
        raise InputError(
            f'doc_ids must be a list of document names, for example ["{shown}"], not a single {type(doc_ids).__name__}.'
        )
    if isinstance(doc_ids, Mapping) or not isinstance(doc_ids, Collection):
        raise InputError(f'doc_ids must be a list of document names, for example ["file.txt"], not {_kind(doc_ids)}.')
    names: list[str] = []
    for i, name in enumerate(doc_ids):
        if not isinstance(name, str):
            raise InputError(f"doc_ids[{i}] must be a document name (text), not {_kind(name)}.")
        _check_text(name, f"doc_ids[{i}]")
        names.append(name)
    return list(dict.fromkeys(names)) or None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def check_history(history: object) -> tuple[Turn, ...]:
    """The conversation as ``Turn`` objects, or an ``InputError`` naming what is wrong with it.

    >>> check_history([{"role": "user", "content": "Who?"}, ("Why?", "Because.")])
    (Turn(role='user', content='Who?'), Turn(role='user', content='Why?'), Turn(role='assistant', content='Because.'))
    >>> check_history(5)
    Traceback (most recent call last):
    qa.errors.InputError: history must be a list of turns ({"role": "user" or "assistant", "content": "..."}), not int.
    """
    if history is None:
        return ()
    if isinstance(history, str | bytes | Mapping) or not isinstance(history, Sequence):
        raise InputError(
            'history must be a list of turns ({"role": "user" or "assistant", "content": "..."}), '
            f"not {type(history).__name__}."
        )
    if len(history) > MAX_HISTORY_TURNS:
        raise InputError(
            f"history has {len(history):,} turns; the limit is {MAX_HISTORY_TURNS}. Send only the recent turns."
        )
    turns: list[Turn] = []
    for i, item in enumerate(history):
        turns.extend(_turns(item, i))
        for turn in turns[-2:]:
            _check_text(turn.content, f"history[{i}]")
    total = sum(len(t.content) for t in turns)
    if total > MAX_HISTORY_CHARS:
        raise InputError(
            f"history holds {total:,} characters; the limit is {MAX_HISTORY_CHARS:,}. Send only the recent turns."
        )
    return tuple(turns)


def _turns(item: object, i: int) -> list[Turn]:
    if isinstance(item, Turn):
        return [item]
    if isinstance(item, Mapping):
        role, content = item.get("role", "user"), item.get("content")
        if content is None:  # Gradio's messages may carry files or components without text: nothing to use
            return []
        if not isinstance(role, str) or role not in ROLES or not isinstance(content, str):
            raise InputError(
                f"history[{i}] must have a role (user or assistant) and a text content, got {_short(item)}."
            )
        return [Turn(role=role, content=content)]
    if isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) == 2:
        user, assistant = item
        if not all(x is None or isinstance(x, str) for x in (user, assistant)):
            raise InputError(f"history[{i}] must be a pair of texts (question, answer), got {_short(item)}.")
        return [Turn(role, text) for role, text in (("user", user), ("assistant", assistant)) if isinstance(text, str)]
    raise InputError(f"history[{i}] must be a turn {{\"role\": ..., \"content\": ...}}, got {_short(item)}.")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def _short(value: object) -> str:
    """A short description of what was sent: never a recursion through a deeply nested value.

    >>> _short([[[[["deep"]]]]])
    '[[[[...]]]]'
    """
    text = _REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class DateRange:
    """Publication dates a question is restricted to (either end may be open; both ends included)."""

    since: date | None = None
    until: date | None = None

    def allows(self, published: str | None) -> bool:
        """Whether an article published on ``published`` (ISO 8601) is in range; an unknown date is not.

        >>> r = DateRange(date(2024, 3, 1), None)
        >>> r.allows("2024-03-25T10:00:00Z"), r.allows("2024-02-29"), r.allows(None)
        (True, False, False)
        """
        day = published_date(published)
        if day is None:
            return False
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)


def check_dates(since: object, until: object) -> DateRange | None:
    """The date filter of ``since`` / ``until`` (ISO dates, ``date`` objects or None), or an ``InputError``.

    >>> check_dates("2024-03-01", None)
    DateRange(since=datetime.date(2024, 3, 1), until=None)
    >>> check_dates("March", None)
    Traceback (most recent call last):
    qa.errors.InputError: since must be a date written YYYY-MM-DD, for example 2024-03-25, not 'March'.
    """
    ends: list[date | None] = []
    for name, value in (("since", since), ("until", until)):
        if value is None or value == "":
            ends.append(None)
        elif isinstance(value, date):
            ends.append(value)
        else:
            try:
                ends.append(date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None)
            except ValueError:
                ends.append(None)
            if ends[-1] is None:
                raise InputError(f"{name} must be a date written YYYY-MM-DD, for example 2024-03-25, "
                                 f"not {reprlib.repr(value)}.")
    if ends[0] is None and ends[1] is None:
        return None
    if ends[0] is not None and ends[1] is not None and ends[0] > ends[1]:
        raise InputError(f"since ({ends[0]}) is after until ({ends[1]}): swap them.")
    return DateRange(ends[0], ends[1])
