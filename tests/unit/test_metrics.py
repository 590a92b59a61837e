"""The metric code behind every figure ``qa eval`` reports, pinned to hand-checked cases."""

from __future__ import annotations

import pytest

from qa.tools import metrics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Normans", "normans"),
        ("  an   Apple,  a PEAR!  ", "apple pear"),
        ("10th and 11th centuries", "10th and 11th centuries"),
        ("Norman-French", "normanfrench"),  # SQuAD drops punctuation without a space
        ("the", ""),
        ("theatre and a thesis", "theatre and thesis"),  # articles only as whole words
        ("U.S.", "us"),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert metrics.normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("sentence", "answers", "expected"),
    [
        ("In the 10th and 11th centuries the Normans...", ["10th and 11th centuries"], True),
        ("Normandy is a region in France.", ["France", "Paris"], True),
        ("Normandy is a region in FRANCE.", ["france"], True),
        ("Rollo swore fealty to Charles.", ["Normandy"], False),
        ("It is the largest.", ["the"], False),  # an answer that normalises to nothing never matches
        ("Their leader, Rollo, agreed.", ["the leader Rollo"], True),  # punctuation and articles are ignored
        ("Their leader, Rollo, agreed.", ["Rollo leader"], False),  # word order is not
        ("The Duchy began in 911 as a fiefdom.", ["911"], True),
        ("No answers at all.", [], False),
    ],
)
def test_contains_answer(sentence: str, answers: list[str], expected: bool) -> None:
    assert metrics.contains_answer(sentence, answers) is expected


@pytest.mark.parametrize(
    ("sentence", "support", "expected"),
    [
        ("Hamas welcomed the resolution.", ["Hamas welcomed"], True),
        ("Hamas welcomed the resolution.", ["hamas welcomed"], False),  # verbatim, case included
        ("Hamas welcomed the resolution.", ["", "rejected"], False),
        ("Hamas welcomed the resolution.", [], False),
    ],
)
def test_contains_support(sentence: str, support: list[str], expected: bool) -> None:
    assert metrics.contains_support(sentence, support) is expected


# relevance of ranked items, best first → (hit@1, recall@5, MRR@10), worked out by hand
RANKINGS = [
    ([True], (1.0, 1.0, 1.0)),
    ([False, True], (0.0, 1.0, 0.5)),
    ([False, False, True, True], (0.0, 1.0, 1 / 3)),
    ([False] * 4 + [True], (0.0, 1.0, 0.2)),
    ([False] * 5 + [True], (0.0, 0.0, 1 / 6)),
    ([False] * 9 + [True], (0.0, 0.0, 0.1)),
    ([False] * 10 + [True], (0.0, 0.0, 0.0)),  # beyond the tenth rank MRR@10 gives nothing
    ([], (0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize(("relevant", "expected"), RANKINGS)
def test_ranking_metrics(relevant: list[bool], expected: tuple[float, float, float]) -> None:
    hit, recall, mrr = expected
    assert metrics.hit_at_1(relevant) == hit
    assert metrics.recall_at_k(relevant, 5) == recall
    assert metrics.mrr_at_k(relevant, 10) == pytest.approx(mrr)


@pytest.mark.parametrize(
    ("relevant", "expected"),
    [([False, True], 2), ([True, True], 1), ([False, False], None), ([], None)],
)
def test_first_relevant(relevant: list[bool], expected: int | None) -> None:
    assert metrics.first_relevant(relevant) == expected


def test_mean_of_a_table_and_of_nothing() -> None:
    per_question = [metrics.hit_at_1(r) for r, _ in RANKINGS]
    assert metrics.mean(per_question) == pytest.approx(1 / len(RANKINGS))
    assert metrics.mean([]) == 0.0
