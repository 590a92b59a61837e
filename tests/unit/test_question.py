"""The one place a question and a conversation history are checked (``qa.question``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest

from qa import errors
from qa.question import (
    MAX_HISTORY_CHARS,
    MAX_HISTORY_TURNS,
    DateRange,
    check_dates,
    check_doc_ids,
    check_history,
    check_question,
)
from qa.types import Turn


@pytest.mark.parametrize(
    ("question", "expected"),
    [("Who stayed?", "Who stayed?"), ("  Who stayed?\n", "Who stayed?"), ("x" * 20, "x" * 20)],
)
def test_good_questions_are_stripped(question: str, expected: str) -> None:
    assert check_question(question, 20) == expected


@pytest.mark.parametrize("question", ["", "   ", "\n\t", None])
def test_empty_or_missing_question(question: Any) -> None:
    with pytest.raises(errors.EmptyQuestionError) as err:
        check_question(question, 100)
    assert str(err.value).startswith("The question is empty. Type a question")


@pytest.mark.parametrize(
    ("question", "message"),
    [(5, "question must be text, not int"), (["Who?"], "question must be text, not list"),
     ({"q": "Who?"}, "question must be text, not dict"), (True, "question must be text, not bool")],
)
def test_a_question_of_the_wrong_type_names_the_field(question: Any, message: str) -> None:
    """A number sent as the question through the API was called "empty"."""
    with pytest.raises(errors.InputError, match=message):
        check_question(question, 100)


@pytest.mark.parametrize(
    ("question", "where"),
    [("Who stayed\udcff?", "U+DCFF, a lone surrogate, at position 11"),
     ("\ud800", "U+D800, a lone surrogate, at position 1")],
)
def test_a_lone_surrogate_is_refused_naming_where(question: str, where: str) -> None:
    """Bytes that are not UTF-8 on a command line become lone surrogates: refused, not a traceback later."""
    with pytest.raises(errors.InputError, match="The question contains a character that is not valid text") as err:
        check_question(question, 100)
    assert where in str(err.value)


DOC_IDS: list[tuple[str, Any, str | list[str] | None]] = [
    ("None", None, None),
    ("empty", [], None),
    ("names", ["a.txt", "b.txt"], ["a.txt", "b.txt"]),
    ("repeated", ("a.txt", "a.txt"), ["a.txt"]),
    ("one name, not a list (was split into letters)", "file.txt",
     re.escape('doc_ids must be a list of document names, for example ["file.txt"], not a single str')),
    ("a number", 5, "doc_ids must be a list of document names, for example .* not int"),
    ("a dict", {"a.txt": 1}, "doc_ids must be a list of document names, for example .* not dict"),
    ("a null name", [None], r"doc_ids\[0\] must be a document name \(text\), not null"),
    ("a number name", ["a.txt", 7], r"doc_ids\[1\] must be a document name \(text\), not int"),
    ("a nested list", [["a.txt"]], r"doc_ids\[0\] must be a document name \(text\), not list"),
    ("a lone surrogate", ["a\udcff.txt"], r"doc_ids\[0\] contains a character that is not valid text"),
]


@pytest.mark.parametrize(("case", "doc_ids", "expected"), DOC_IDS, ids=[c[0] for c in DOC_IDS])
def test_doc_ids_are_a_list_of_names(case: str, doc_ids: Any, expected: str | list[str] | None) -> None:
    if expected is None or isinstance(expected, list):
        assert check_doc_ids(doc_ids) == expected
    else:
        with pytest.raises(errors.InputError, match=expected):
            check_doc_ids(doc_ids)


@pytest.mark.parametrize(
    ("length", "limit", "message"),
    [(21, 20, "21 characters long; the limit is 20"), (100_000, 2000, "100,000 characters long; the limit is 2,000")],
)
def test_too_long_question(length: int, limit: int, message: str) -> None:
    with pytest.raises(errors.QuestionTooLongError, match=message):
        check_question("w" * length, limit)
    assert check_question("  " + "w" * limit + "  ", limit) == "w" * limit  # the limit counts the stripped text


def _nested(depth: int) -> list[Any]:
    """A list nested ``depth`` deep, built without recursion (as JSON parsers with no depth limit give it)."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _turns(n: int, text: str = "hi") -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": text} for i in range(n)]


GOOD_HISTORIES: list[tuple[str, Any, list[Turn]]] = [
    ("None", None, []),
    ("empty list", [], []),
    ("Turns", [Turn("user", "Q"), Turn("assistant", "A")], [Turn("user", "Q"), Turn("assistant", "A")]),
    ("dicts", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
     [Turn("user", "Hi"), Turn("assistant", "Hello")]),
    ("dict without a role is the user's", [{"content": "Hi"}], [Turn("user", "Hi")]),
    ("a tuple of dicts", ({"role": "system", "content": "S"},), [Turn("system", "S")]),
    ("pairs", [("Q1", "A1"), ["Q2", "A2"]], [Turn("user", "Q1"), Turn("assistant", "A1"), Turn("user", "Q2"),
                                             Turn("assistant", "A2")]),
    ("a pair still waiting for its answer", [("Q1", None)], [Turn("user", "Q1")]),
    ("a message without text (a file in Gradio)", [{"role": "user", "content": None}], []),
    ("mixed", [Turn("user", "Q"), {"role": "assistant", "content": "A"}, ("Q2", "A2")],
     [Turn("user", "Q"), Turn("assistant", "A"), Turn("user", "Q2"), Turn("assistant", "A2")]),
    ("exactly the most turns", _turns(MAX_HISTORY_TURNS), [Turn(t["role"], t["content"])
                                                            for t in _turns(MAX_HISTORY_TURNS)]),
    ("exactly the most characters", [("x" * (MAX_HISTORY_CHARS - 1), "y")],
     [Turn("user", "x" * (MAX_HISTORY_CHARS - 1)), Turn("assistant", "y")]),
]


@pytest.mark.parametrize(("case", "history", "expected"), GOOD_HISTORIES, ids=[c[0] for c in GOOD_HISTORIES])
def test_good_histories(case: str, history: Any, expected: list[Turn]) -> None:
    assert check_history(history) == tuple(expected)


BAD_HISTORIES: list[tuple[str, Any, str]] = [
    ("a number", 5, "history must be a list of turns .* not int"),
    ("a string", "text", "history must be a list of turns .* not str"),
    ("bytes", b"text", "history must be a list of turns .* not bytes"),
    ("one dict", {"role": "user", "content": "Hi"}, "history must be a list of turns .* not dict"),
    ("a set", {"Q"}, "history must be a list of turns .* not set"),
    ("a None turn", [None], r"history\[0\] must be a turn"),
    ("a number turn", [("Q", "A"), 7], r"history\[1\] must be a turn"),
    ("a triple", [("Q", "A", "extra")], r"history\[0\] must be a turn"),
    ("an unknown role", [{"role": "robot", "content": "beep"}], r"history\[0\] must have a role"),
    ("a non-text content", [{"role": "user", "content": 42}], r"history\[0\] must have a role"),
    ("a pair of non-texts", [("Q", 3)], r"history\[0\] must be a pair of texts"),
    ("too many turns", _turns(MAX_HISTORY_TURNS + 1), "history has 201 turns; the limit is 200"),
    ("too many characters", [("x" * MAX_HISTORY_CHARS, "y")], "history holds 200,001 characters; the limit is 200,000"),
    ("too many characters over many turns", _turns(100, "z" * 2_001), "history holds 200,100 characters"),
    ("a turn nested 100,000 deep", [_nested(100_000)], r"history\[0\] must be a turn .*\[\[\[\.\.\.\]\]\]"),
    ("a lone surrogate", [{"role": "user", "content": "Wh\udcffo?"}], r"history\[0\] contains a character"),
    ("a lone surrogate in a pair", [("Q", "A"), ("Q", "\ud800")], r"history\[1\] contains a character"),
]


@pytest.mark.parametrize(("case", "history", "message"), BAD_HISTORIES, ids=[c[0] for c in BAD_HISTORIES])
def test_bad_histories_are_refused_naming_history(case: str, history: Any, message: str) -> None:
    with pytest.raises(errors.InputError, match=message) as err:
        check_history(history)
    assert "history" in str(err.value)
    assert err.value.exit_code == 2


def test_a_long_bad_turn_is_shown_shortened() -> None:
    with pytest.raises(errors.InputError) as err:
        check_history([{"role": "robot", "content": "x" * 10_000}])
    assert len(str(err.value)) < 200 and "..." in str(err.value)


def test_history_is_returned_as_an_immutable_tuple() -> None:
    history: list[Mapping[str, str]] = [{"role": "user", "content": "Q"}]
    checked = check_history(history)
    history.append({"role": "assistant", "content": "later"})
    assert checked == (Turn("user", "Q"),)


DATES = [
    ("none", None, None, None),
    ("empty strings", "", "", None),
    ("since only", "2024-03-01", None, DateRange(date(2024, 3, 1), None)),
    ("until only, a date object", None, date(2024, 3, 31), DateRange(None, date(2024, 3, 31))),
    ("both", "2024-03-01", "2024-03-31", DateRange(date(2024, 3, 1), date(2024, 3, 31))),
    ("one day", "2024-03-01", "2024-03-01", DateRange(date(2024, 3, 1), date(2024, 3, 1))),
    ("a word", "March", None, "since must be a date written YYYY-MM-DD"),
    ("a datetime string", None, "2024-03-01T10:00", "until must be a date written YYYY-MM-DD"),
    ("no such day", "2024-02-30", None, "since must be a date"),
    ("a number", 2024, None, "since must be a date"),
    ("backwards", "2024-04-01", "2024-03-01", r"since \(2024-04-01\) is after until \(2024-03-01\)"),
]


@pytest.mark.parametrize(("case", "since", "until", "expected"), DATES, ids=[c[0] for c in DATES])
def test_date_filters_are_iso_days(case: str, since: Any, until: Any, expected: DateRange | str | None) -> None:
    if expected is None or isinstance(expected, DateRange):
        assert check_dates(since, until) == expected
    else:
        with pytest.raises(errors.InputError, match=expected):
            check_dates(since, until)


@pytest.mark.parametrize(("published", "inside"), [
    ("2024-03-01", True), ("2024-03-31T23:59:00+05:00", True), ("2024-02-29", False), ("2024-04-01", False),
    (None, False), ("", False), ("sometime", False),
])
def test_a_date_range_includes_both_ends_and_never_an_unknown_date(published: str | None, inside: bool) -> None:
    assert DateRange(date(2024, 3, 1), date(2024, 3, 31)).allows(published) is inside
