"""Follow-up questions are made standalone for retrieval: a pronoun becomes whom it means."""

from __future__ import annotations

import time

import pytest

from qa.retrieve import standalone_query
from qa.retrieve.followup import is_abstention_text
from qa.types import Turn


def _turns(history: list[tuple[str, str]]) -> list[Turn]:
    return [Turn(role, text) for user, answer in history for role, text in (("user", user), ("assistant", answer))]


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        ("Who stayed in Washington?", [], "Who stayed in Washington?"),
        (
            "And what did he reject?",
            [("Who stayed in Washington?", "Israeli Defense Minister Yoav Gallant remained there [1].")],
            "And what did Yoav Gallant reject? Washington",
        ),
        # "there" wants a place; none follows "in"/"at" here, so the topic's name is appended instead
        ("How many people sought refuge there?", [("Where is Rafah?", "It is in southern Gaza [1].")],
         "How many people sought refuge there? Rafah"),
        ("How many people live there?", [("What happened in Coeur d'Alene, Idaho?", "Police arrested 31 men [1].")],
         "How many people live Coeur d'Alene? Idaho"),
        # an existential "there" names no place: it is kept (it was "how many cases were Spain?")
        ("And by August, how many cases were there?", [("Where did the outbreak start?", "It began in Spain [1].")],
         "And by August, how many cases were there?"),
        ("Is there a plan to rebuild?", [("What happened in Coeur d'Alene, Idaho?", "A bridge fell [1].")],
         "Is there a plan to rebuild? Coeur Idaho"),
        ("Were there any deaths?", [("What happened in Coeur d'Alene, Idaho?", "A bridge fell [1].")],
         "Were there any deaths? happened Coeur d'Alene Idaho"),
        # one content word and no name: elliptical, searched with the previous question's words
        ("On which beach?", [("How many whales washed up on the Isle of Lewis?", "55 whales [1].")],
         "On which beach? many whales washed up Isle Lewis"),
        ("Where is Rafah?", [("How many whales washed up on the Isle of Lewis?", "55 whales [1].")],
         "Where is Rafah?"),
        ("Who was there?", [("What happened in Coeur d'Alene, Idaho?", "A bridge fell [1].")],
         "Who was Coeur d'Alene? Idaho"),
        # a definite description pointing back carries the names the previous answer gave
        ("Who was killed in that strike?",
         [("Where did the strike hit?", "\u201cA strike hit a house in Sherpur, Kabul,\u201d Zabiullah Mujahid said.")],
         "Who was killed in that strike? Sherpur Kabul"),
        # a description of a person takes the person the answer named, not the answer's places
        ("What position does that man hold now?",
         [("Who let the plane land there?", "It landed in Maldives once former President Mohamed Nasheed intervened.")],
         "What position does that man hold now? Mohamed Nasheed"),
        # a description of a place takes the place the answer named
        ("Who is the city's mayor?",
         [("Which pumps failed?", "Governor Tate Reeves said the pumps in Jackson failed.")],
         "Who is the city's mayor? Jackson"),
        # a month is no place: "there" is the place named after it
        ("Who let his plane land there?", [("Where did Rajapaksa flee to in July, to Maldives?", "To Maldives [1].")],
         "Who let his plane land Maldives? Rajapaksa"),
        ("And what are they willing to do?", [("What did Hamas welcome?", "The resolution [1].")],
         "And what are Hamas willing to do?"),
        ("Why?", [("Who cancelled the trip to Washington?", "He did [1].")], "Why? cancelled trip Washington"),
        ("What did Hamas welcome?", [("Who stayed in Washington?", "Gallant [1].")], "What did Hamas welcome?"),
        (
            "What did she say then?",
            [("Who opened the bridge?", "Mayor Ana Ruiz [1]."), ("When?", "On Monday [1].")],
            "What did Ana Ruiz say then?",
        ),
        # an abstention names nobody: the referent comes from the turn before it
        (
            "What did he say?",
            [("Who stayed in Washington?", "Yoav Gallant stayed [1]."),
             ("Who won the match?", "The article does not say.")],
            "What did Yoav Gallant say?",
        ),
        # the history may already end with the question being asked (as a chat passes it)
        (
            "What did he reject?",
            [("Who stayed in Washington?", "Yoav Gallant [1]."), ("What did he reject?", "")],
            "What did Yoav Gallant reject? Washington",
        ),
    ],
)
def test_standalone_query(question: str, history: list[tuple[str, str]], expected: str) -> None:
    turns = [t for t in _turns(history) if t.content]
    assert standalone_query(question, turns) == expected


def test_the_latest_referent_wins() -> None:
    history = _turns([("Who called?", "Joe Biden called [1]."), ("Who stayed?", "Yoav Gallant stayed [2].")])
    assert standalone_query("What did he say?", history) == "What did Yoav Gallant say?"


def test_a_long_history_costs_little() -> None:
    """Each turn is rewritten once (no recursion over the history): 200 turns take milliseconds."""
    history = _turns([(f"Who was minister number {i}?", f"Minister Name{i} Person{i} [1].") for i in range(100)])
    started = time.perf_counter()
    assert standalone_query("And what did he do?", history) == "And what did Name99 Person99 do?"
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("The article does not say.", True), ("  the article does not say", True), ("Gallant stayed [1].", False)],
)
def test_is_abstention_text(text: str, expected: bool) -> None:
    assert is_abstention_text(text) is expected
