"""Raw HTTP calls of the named API: a missing required argument is named, missing optional ones are filled."""

from __future__ import annotations

import json

from qa.ui.api import check_call


def test_missing_question_is_named_with_what_to_send() -> None:
    for body in (b'{"data": []}', b"{}"):
        fixed, error = check_call("ask", body)
        assert fixed is None and error is not None
        assert error.startswith("Missing argument 'question'.") and '{"data": ["Who stayed in Washington?"]}' in error
        assert "doc_ids" in error and "history" in error


def test_optional_arguments_are_filled_and_complete_calls_pass_unchanged() -> None:
    fixed, error = check_call("ask", b'{"data": ["Who?"], "session_hash": "x"}')
    assert error is None and fixed is not None
    assert json.loads(fixed) == {"data": ["Who?", None, None], "session_hash": "x"}
    assert check_call("ask", json.dumps({"data": ["Who?", ["a"], []]}).encode()) == (None, None)
    assert check_call("docs", b'{"data": []}') == (None, None)


def test_a_body_that_is_not_a_call_is_explained() -> None:
    for body in (b"not json", b'["Who?"]', b'{"data": "Who?"}'):
        fixed, error = check_call("ask", body)
        assert fixed is None and error is not None and "/ask takes, in order: question" in error


def test_a_body_nested_beyond_reason_is_left_to_the_server_checks() -> None:
    deep = ('{"data": ["Who?", null, ' + "[" * 100_000 + "]" * 100_000 + "]}").encode()
    assert check_call("ask", deep) == (None, None)
