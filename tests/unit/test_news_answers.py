"""Answers that hold up on news: answer types, the asking clause, clutter, context sentences, overviews,
the extractive answer's form, and the evidence that a passage answers at all."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers.fakes import HashEmbedder, TokenHashEmbedder

from qa.answer.extractive import ExtractiveGenerator, choose, overview_text
from qa.answer.span import lead_span
from qa.index import FaissIndex
from qa.retrieve.answerability import PROBE_FEATURES, probe
from qa.retrieve.evidence import cited_together, context_of, needs_next, needs_previous, sources
from qa.retrieve.features import asked_types, focus, is_clutter, offers
from qa.retrieve.overview import is_overview, summary
from qa.types import Document, Hit, Retrieval, Sentence

ARTICLE = (
    "CNN —\n"
    "Hurricane Ian crossed Florida on Thursday.\n"
    "The storm cut power to homes across the state.\n"
    "More than 2.5 million customers were without power early Thursday.\n"
    "\u201cWe have never seen anything like it.\u201d\n"
    "Governor Ron DeSantis said so at a briefing in Tallahassee.\n"
    "He asked residents to stay indoors.\n"
    "JUST WATCHED\n"
)


@pytest.fixture
def index() -> FaissIndex:
    return FaissIndex.build([Document("ian", ARTICLE)], TokenHashEmbedder())


def _sentence(index: FaissIndex, start: str) -> Sentence:
    return next(s for s in index.sentences if s.text.startswith(start))


@pytest.mark.parametrize(
    ("question", "types"),
    [
        ("How many customers lost power?", {"number"}),
        ("How much was each man's bond?", {"money", "number"}),
        ("What percentage of the vote did he win?", {"percent"}),
        ("When did the storm hit?", {"time"}),
        ("Who said it?", {"person", "quote"}),
        ("In which country did it erupt?", {"place"}),
        ("Which company announced the recall?", {"name"}),
        ("What did the governor say about the storm?", {"quote"}),
        ("Why did the storm weaken?", set()),
    ],
)
def test_asked_types(question: str, types: set[str]) -> None:
    assert asked_types(question) == types


@pytest.mark.parametrize(
    ("question", "text", "offered"),
    [
        ("How many customers lost power?", "More than 2.5 million customers lost power.", True),
        ("How many customers lost power?", "Customers lost power.", False),
        ("How many of the 31 men were released?", "The 31 men were arrested.", False),  # the question's own number
        ("When did it erupt?", "It erupted on Sunday.", True),
        ("Which company makes it?", "It is made by Acme Corp.", True),
        ("Which company makes it?", "It is made here.", False),
        ("Who leads Acme?", "Acme is large.", False),  # only the question's own name
        ("Why did it fail?", "It failed on Sunday.", False),  # nothing is asked for
    ],
)
def test_offers(question: str, text: str, offered: bool) -> None:
    assert offers(question, [text]).tolist() == [offered]


@pytest.mark.parametrize(
    ("question", "asking"),
    [
        ("Ian hit Florida. How many lost power?", "How many lost power?"),
        ("How many lost power?", "How many lost power?"),
        ("Mr. Smith left. Why?", "Why?"),
    ],
)
def test_focus_is_the_asking_clause(question: str, asking: str) -> None:
    assert focus(question) == asking


@pytest.mark.parametrize(
    ("text", "clutter"),
    [
        ("JUST WATCHED", True),
        ("Replay More Videos ...", True),
        ("CNN \u2014", True),
        ("By Jane Doe, CNN", True),
        ("Hide Caption 3 of 12", True),
        ("Hurricane Ian crossed Florida on Thursday.", False),
        ("By Thursday, the storm had weakened.", False),
    ],
)
def test_clutter(text: str, clutter: bool) -> None:
    assert is_clutter(text) is clutter


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("He asked residents to stay indoors.", True),
        ("The company said it would appeal.", True),
        ("\u201cWe have never seen anything like it.\u201d", True),
        ("\u201cWe are ready,\u201d he said.", False),
        ("Governor Ron DeSantis said so.", False),
    ],
)
def test_needs_previous(text: str, back: bool) -> None:
    assert needs_previous(text) is back


def test_needs_next_for_a_colon_or_a_quote_attributed_next() -> None:
    assert needs_next("The governor was blunt:", "Stay home.")
    assert needs_next("\u201cWe have never seen anything like it.\u201d", "Governor Ron DeSantis said so.")
    assert not needs_next("The storm weakened.", "Governor Ron DeSantis said so.")


def test_context_names_the_speaker_and_the_referent(index: FaissIndex) -> None:
    quote = _sentence(index, "\u201cWe have never")
    before, after = context_of("Who said it?", quote, index)
    assert [s.text for s in after] == ["Governor Ron DeSantis said so at a briefing in Tallahassee."]
    he = _sentence(index, "He asked")
    before, after = context_of("What did he ask?", he, index)
    assert [s.text for s in before] == ["Governor Ron DeSantis said so at a briefing in Tallahassee."] and not after


def test_the_asked_figure_next_door_is_context(index: FaissIndex) -> None:
    storm = _sentence(index, "The storm cut power")
    _, after = context_of("How many customers were without power?", storm, index)
    assert [s.text for s in after] == ["More than 2.5 million customers were without power early Thursday."]
    _, after = context_of("Why did the power go out?", storm, index)
    assert after == []  # nothing asked for: no reason to cite the neighbour


def _hits(index: FaissIndex, starts: list[str], scores: list[float]) -> Retrieval:
    pairs = enumerate(zip(starts, scores, strict=True))
    hits = tuple(Hit(_sentence(index, s), score, rank) for rank, (s, score) in pairs)
    return Retrieval(query="q", hits=hits, confidence=1.0, threshold=0.0)


def test_sources_flag_needed_context_and_cite_it_together(index: FaissIndex) -> None:
    retrieval = _hits(index, ["He asked", "Hurricane Ian"], [5.0, 1.0])
    found = sources("What did he ask?", retrieval, index)
    texts = [h.sentence.text[:12] for h in found]
    assert texts == ["Governor Ron", "He asked res", "Hurricane Ia"]
    assert [(h.context_for, h.needed) for h in found] == [(0, True), (-1, False), (-1, False)]
    assert cited_together(found, 1) == [1, 0]  # the answering sentence first, then who "he" is


def test_neighbours_for_a_language_model_are_context_but_not_needed(index: FaissIndex) -> None:
    retrieval = _hits(index, ["More than 2.5"], [5.0])
    found = sources("Why did the power go out?", retrieval, index, neighbours=True)
    assert [h.sentence.text[:12] for h in found] == ["The storm cu", "More than 2.", "\u201cWe have nev"]
    assert [(h.context_for, h.needed) for h in found] == [(0, False), (-1, False), (0, False)]


def test_a_close_runner_up_is_cited_too_a_distant_one_is_not(index: FaissIndex) -> None:
    close = sources("q", _hits(index, ["Hurricane Ian", "More than 2.5"], [5.0, 4.5]), index)
    far = sources("q", _hits(index, ["Hurricane Ian", "More than 2.5"], [5.0, 2.0]), index)
    assert choose(close) == [0, 1] and choose(far) == [0]


def test_a_runner_up_that_repeats_the_answer_word_for_word_is_not_cited_again(index: FaissIndex) -> None:
    """News pages repeat a caption or a pull quote: the same words are quoted once."""
    found = sources("q", _hits(index, ["Hurricane Ian", "More than 2.5"], [5.0, 4.5]), index)
    twice = [found[0], replace(found[1], sentence=replace(found[1].sentence, text=found[0].sentence.text))]
    assert choose(twice) == [0]


@pytest.mark.parametrize(
    ("question", "texts", "lead"),
    [
        ("How many customers lost power?", ["More than 2.5 million customers were without power."],
         "More than 2.5 million."),
        ("When did it hit?", ["It hit on Thursday."], "Thursday."),
        ("How many were hurt?", ["Three were hurt and 12 were missing."], ""),  # two figures: no guess
        ("Who said it?", ["Ron DeSantis said it."], ""),  # names are not led with
        ("How many were hurt?", ["Many were hurt."], ""),
        # amounts whole, not their first digits
        ("How much is his contract worth?", ["The contract takes him to $532 million in earnings."], "$532 million."),
        ("How much damage did Ian cause?", ["Ian likely caused more than $50 billion in damages."],
         "More than $50 billion."),
        ("How much imported oil came from there?", ["71% of its imported oil came from there in 1970."], "71%."),
        # dates whole; the modal "may" and relative days are not dates
        ("What year did the storm hit the fleet?", ["In April 1191 Richard left Messina."], "April 1191."),
        ("When was the act passed?", ["On 12 May 1705, the assembly passed an act."], "12 May 1705."),
        ("When was the valve fitted?", ["Operators may not tamper with it."], ""),
        ("When was the treaty signed?", ["Today, the treaty prohibits price fixing."], ""),
        ("When did the vote happen?", ["the vote happened on may 4, 2021."], "2021."),  # lower-cased text
        # the asking clause decides, not the context before it nor a "when" inside it
        ("Most did not want it when it was discussed. Which firm's poll showed that?",
         ["Just 35% wanted it, according to a 1967 poll."], ""),
        ("What kind of dog was there when his son got his shot?", ["He got his shot on Tuesday."], ""),
        ("Which age group could get shots this week?", ["On Saturday, shots for children were cleared."], ""),
        ("At what time was the strike?", ["Biden said Monday the strike was at 9:48 p.m. ET."], "9:48 p.m. ET."),
        # a count is a count: not "no one", not a year, not the start of a range or a share
        ("How much less steam did it use?", ["No one invention since Watt has so enhanced it."], ""),
        ("How many cylinders does it have?", ["Its efficiency reaches some 27-30% at high pressure."], ""),
        ("How many commissioners are there?", ["Since the 2007 treaty, there remains one for each state."], "One."),
        ("How many died?", ["Two hundred and fifty people died."], "Two hundred and fifty."),
        ("Rescuers came at 7am. How many whales were alive?", ["They came at about 7am, but only 15 were alive."],
         "15."),
        ("How far is the Quad from the Yard?", ["The other three are half a mile northwest of the Yard."],
         "Half a mile."),
        ("How long did the debate last?", ["The debate lasted four hours."], "Four hours."),
        # the day of a date is no count (it led "12." for a stadium's capacity)
        ("How many people does that stadium hold?", ["The game is on February 12, 2023, at the stadium."], ""),
        ("How many seats does it have?", ["Opened on 12 February 2006, it holds 63,400 people."], "63,400."),
        ("How many whales died?", ["On May 3, 55 whales died."], "55."),
        # the asked slot: an amount or a distance is no count of people; "what year" wants the year
        ("How many employees does Argo AI have?", ["Ford invested $1 billion in Argo AI."], ""),
        ("How many people live near the volcano?", ["Just 21 miles away, another volcano erupts."], ""),
        ("How many miles away is the other volcano?", ["Just 21 miles away, another volcano erupts."], "21."),
        ("In what year did Ford invest?", ["On Wednesday it ended what it began in 2017."], "2017."),
    ],
)
def test_lead_span(question: str, texts: list[str], lead: str) -> None:
    assert lead_span(question, texts) == lead


def test_extractive_answer_leads_with_the_figure_and_quotes_the_sentences(index: FaissIndex) -> None:
    found = sources("How many customers were without power?", _hits(index, ["More than 2.5"], [5.0]), index)
    text = "".join(ExtractiveGenerator().stream("How many customers were without power?", found))
    assert text == ("More than 2.5 million. \u201cMore than 2.5 million customers were without power early "
                    "Thursday.\u201d [1]")


@pytest.mark.parametrize(
    ("question", "overview"),
    [
        ("What is this article about?", True),
        ("Summarize the article.", True),
        ("summarize", True),
        ("Give me a short summary", True),
        ("What happened?", True),
        ("What are the key points?", True),
        ("TL;DR", True),
        ("What happened in Lusaka?", False),
        ("Summarize the governor's remarks", False),
        ("Who summarized the report?", False),
    ],
)
def test_is_overview(question: str, overview: bool) -> None:
    assert is_overview(question) is overview


def test_summary_leads_with_reporting_sentences_not_furniture(index: FaissIndex) -> None:
    found = summary(index)
    texts = [h.sentence.text for h in found.hits]
    assert 2 <= len(texts) <= 4 and not found.abstains
    assert "CNN \u2014" not in texts and "JUST WATCHED" not in texts
    assert texts[0] == "Hurricane Ian crossed Florida on Thursday."
    assert [h.sentence.n for h in found.hits] == sorted(h.sentence.n for h in found.hits)


def test_overview_of_several_articles_names_each() -> None:
    two = FaissIndex.build(
        [Document("ian", ARTICLE), Document("quake", "A strong earthquake shook the coast of Chile on Monday. "
                                                     "Rescue teams searched the rubble of three towns overnight.")],
        HashEmbedder(),
    )
    found = summary(two)
    text = overview_text(found.hits)
    assert {h.sentence.doc_id for h in found.hits} == {"ian", "quake"}
    assert text.splitlines()[0].startswith("ian: \u201c") and text.splitlines()[1].startswith("quake: \u201c")


def test_probe_sees_a_missing_number_and_name(index: FaissIndex) -> None:
    from qa.retrieve import RetrievalConfig, Retriever, ScorerWeights

    retriever = Retriever(index, TokenHashEmbedder(), RetrievalConfig(weights=ScorerWeights.zeros()))
    question = "How many of the 40 Miami customers were without power?"
    cand = retriever.candidates(question, 5)
    top = int(np.flatnonzero(cand.rows == _sentence(index, "More than 2.5").n)[0])
    values = dict(zip(PROBE_FEATURES, probe(question, cand, top, index, retriever.sentence_tokens), strict=True))
    assert values["number_missing"] == 1.0 and values["name_missing"] == 1.0
    assert values["asks_type"] == 1.0 and values["top_offers"] == 1.0
    answered = "How many customers were without power?"
    cand = retriever.candidates(answered, 5)
    values = dict(zip(PROBE_FEATURES, probe(answered, cand, top, index, retriever.sentence_tokens), strict=True))
    assert values["number_missing"] == 0.0 and values["name_missing"] == 0.0


@pytest.mark.parametrize(("published", "dated"), [("2022-10-26", 1.0), (None, 0.0)])
def test_probe_flags_a_dated_article(published: str | None, dated: float) -> None:
    """A dated article (news) is held to its own abstention threshold: the probe says which kind it is."""
    from qa.retrieve import RetrievalConfig, Retriever, ScorerWeights

    index = FaissIndex.build([Document("ian", ARTICLE, published=published)], TokenHashEmbedder())
    retriever = Retriever(index, TokenHashEmbedder(), RetrievalConfig(weights=ScorerWeights.zeros()))
    question = "How many customers were without power?"
    cand = retriever.candidates(question, 5)
    values = dict(zip(PROBE_FEATURES, probe(question, cand, 0, index, retriever.sentence_tokens), strict=True))
    assert values["dated"] == dated
