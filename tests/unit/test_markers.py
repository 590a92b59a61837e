"""The one grammar of citation markers (``qa.cite.markers``), and that every reader of markers uses it."""

from __future__ import annotations

import pytest
from qa.ui import render

from qa.answer.ollama import _history_messages
from qa.answer.prompts import neutralize_source
from qa.cite.markers import (
    MAX_RANGE,
    cited_numbers,
    dedupe,
    find_markers,
    format_markers,
    neutralize,
    parse_numbers,
    renumber,
    strip_markers,
)
from qa.retrieve.followup import standalone_query
from qa.types import Turn

# text → (the markers found, the numbers cited in order, the text without markers)
MARKERS: list[tuple[str, list[str], list[int], str]] = [
    ("A [3].", ["[3]"], [3], "A."),
    ("A [3, 5].", ["[3, 5]"], [3, 5], "A."),
    ("A [3,5].", ["[3,5]"], [3, 5], "A."),
    ("A [3; 5].", ["[3; 5]"], [3, 5], "A."),
    ("A [3-5].", ["[3-5]"], [3, 4, 5], "A."),
    ("A [3\u20135].", ["[3\u20135]"], [3, 4, 5], "A."),  # en dash
    ("A [3 \u2014 5].", ["[3 \u2014 5]"], [3, 4, 5], "A."),  # em dash, spaced
    ("A [3][5].", ["[3]", "[5]"], [3, 5], "A."),  # two markers, not one glued to the other
    ("A [ 2 ].", ["[ 2 ]"], [2], "A."),
    ("A [source 3].", ["[source 3]"], [3], "A."),
    ("A [Source 3].", ["[Source 3]"], [3], "A."),
    ("A [sources: 3, 4].", ["[sources: 3, 4]"], [3, 4], "A."),
    ("A [ref. 2].", ["[ref. 2]"], [2], "A."),
    ("A [1, 3-4].", ["[1, 3-4]"], [1, 3, 4], "A."),
    ("A [2][1]. B [1, 3].", ["[2]", "[1]", "[1, 3]"], [2, 1, 3], "A. B."),  # cited once each, first come first
    ("(see [1])", ["[1]"], [1], "(see )"),
    ("word[1] is a wiki link.", [], [], "word[1] is a wiki link."),  # glued to a word: not a citation
    ("x2[1] and arr[0]", [], [], "x2[1] and arr[0]"),
    ("A word[1] and a real one [2].", ["[2]"], [2], "A word[1] and a real one."),
    ("[5-3] backwards", ["[5-3]"], [], "backwards"),
    (f"[1-{MAX_RANGE}] at the limit", [f"[1-{MAX_RANGE}]"], list(range(1, MAX_RANGE + 1)), "at the limit"),
    (f"[1-{MAX_RANGE + 1}] a range too long", [f"[1-{MAX_RANGE + 1}]"], [], "a range too long"),
    ("[1-999999] a million sentences", ["[1-999999]"], [], "a million sentences"),
    ("[1-2-3] not a range", ["[1-2-3]"], [], "not a range"),  # names nothing (it used to crash)
    ("[2, 1-2-3] partly", ["[2, 1-2-3]"], [2], "partly"),
    ("[a] [] [1.5] [#2]", [], [], "[a] [] [1.5] [#2]"),
    ("No markers at all.", [], [], "No markers at all."),
]


@pytest.mark.parametrize(("text", "found", "numbers", "stripped"), MARKERS, ids=[m[0] for m in MARKERS])
def test_marker_grammar(text: str, found: list[str], numbers: list[int], stripped: str) -> None:
    assert [m.group(0) for m, _ in find_markers(text)] == found
    assert cited_numbers(text) == numbers
    assert strip_markers(text) == stripped


@pytest.mark.parametrize(
    ("inside", "numbers"),
    [("3", [3]), ("3, 5", [3, 5]), ("3,5", [3, 5]), ("3-5", [3, 4, 5]), ("3 \u2013 5", [3, 4, 5]),
     ("1, 3-4", [1, 3, 4]), ("3; 5", [3, 5]), ("5-3", []), ("1-500", []), ("4-4", [4])],
)
def test_parse_numbers(inside: str, numbers: list[int]) -> None:
    assert parse_numbers(inside) == numbers


@pytest.mark.parametrize(
    ("text", "valid", "expected_text", "order"),
    [
        ("A [3]. B [1, 3]. C [9].", [1, 3], "A [1]. B [2][1]. C .", [3, 1]),
        ("Both [1-2].", [1, 2], "Both [1][2].", [1, 2]),
        ("Glued word[1] stays, [2] moves.", [1, 2], "Glued word[1] stays, [1] moves.", [2]),
        ("Labelled [Source 2] and [source 2].", [2], "Labelled [1] and [1].", [2]),
        ("None valid [7].", [1], "None valid .", []),
    ],
)
def test_renumber_by_first_appearance(text: str, valid: list[int], expected_text: str, order: list[int]) -> None:
    assert renumber(text, valid) == (expected_text, order)


def test_format_and_dedupe() -> None:
    assert format_markers([1, 3]) == "[1][3]" and format_markers([]) == ""
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See [2] and word[1, 2].", "See (2) and word(1, 2)."),  # shown to a model: glued look-alikes go too
        ("[source 3] and [3-4]", "(3) and (3-4)"),
        ("arr[i] stays", "arr[i] stays"),
    ],
)
def test_neutralize(text: str, expected: str) -> None:
    assert neutralize(text) == expected


def test_every_reader_of_markers_uses_the_one_grammar() -> None:
    """The chat links, the prompt, the history sent to a model and the follow-up rewriting agree on
    what a marker is: ``word[1]`` is text everywhere except where text is shown to a model as data."""
    text = "The wiki[1] says so [2]. And more [source 3]."
    links = render.answer_markdown(text)
    assert links.count('class="qa-ref"') == 2 and 'href="#qa-cite-2"' in links and 'href="#qa-cite-3"' in links
    assert "wiki\\[1\\]" in links  # escaped text, not a link
    assert neutralize_source(text) == "The wiki(1) says so (2). And more (3)."
    assert _history_messages([Turn("assistant", text)]) == [
        {"role": "assistant", "content": "The wiki[1] says so. And more."}
    ]
    history = [Turn("user", "Who stayed?"), Turn("assistant", "Yoav Gallant [1][2] stayed.")]
    assert standalone_query("What did he do?", history) == "What did Yoav Gallant do?"
