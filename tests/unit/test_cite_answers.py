"""Answers built from generated text: markers kept, dropped or renumbered, claims split and checked
(with the model-free ``HashEmbedder``: shared words mean similarity)."""

from __future__ import annotations

from typing import Any

import pytest

from qa.cite import build_answer, is_abstention, split_claims
from qa.ingest import segment
from qa.types import ABSTAIN_TEXT, Document, Hit

ARTICLE = (
    "Mayor Ana Ruiz opened the new harbour bridge in Porto Vale on Monday. "
    "The bridge cost 40 million euros and took three years to build. "
    "Critics said the toll of two euros was too high for daily commuters. "
    "The city council will review the toll in March."
)
DOC = Document("bridge.txt", ARTICLE, "bridge.txt")
SENTENCES = segment(DOC)
# Shown to the model in this order: [1] cost, [2] toll, [3] opening, [4] council.
HITS = [Hit(SENTENCES[i], score=1.0 - r / 10, rank=r) for r, i in enumerate((1, 2, 0, 3))]
QUESTION = "What did the bridge cost?"


def cited(answer: Any) -> list[str]:
    return [c.text for c in answer.citations]


def test_article_segments_as_expected() -> None:
    assert len(SENTENCES) == 4
    assert all(ARTICLE[s.start : s.end] == s.text for s in SENTENCES)


@pytest.mark.parametrize(
    ("text", "expected_text", "expected_sources"),
    [
        ("It cost 40 million euros [1].", "It cost 40 million euros [1].", [0]),
        ("Toll [2] and cost [1].", "Toll [1] and cost [2].", [1, 0]),  # renumbered by first appearance
        ("Both [1, 2].", "Both [1][2].", [0, 1]),
        ("Range [2-4].", "Range [1][2][3].", [1, 2, 3]),
        ("Adjacent [3][1].", "Adjacent [1][2].", [2, 0]),
        ("Spaced [ 2 ].", "Spaced [1].", [1]),
        ("Labelled [Source 2].", "Labelled [1].", [1]),
        ("Repeat [2]. Again [2][2].", "Repeat [1]. Again [1].", [1]),
        ("Dash [1\u20132].", "Dash [1][2].", [0, 1]),
        ("Glued word[1] is text; cited [2].", "Glued word[1] is text; cited [1].", [1]),
        ("Nonsense range [1-2-3], then [2].", "Nonsense range, then [1].", [1]),
    ],
)
def test_markers_are_parsed_and_renumbered(text: str, expected_text: str, expected_sources: list[int]) -> None:
    answer = build_answer(QUESTION, text, HITS, backend="test")
    assert answer.text == expected_text
    assert cited(answer) == [HITS[i].sentence.text for i in expected_sources]
    assert [c.n for c in answer.citations] == list(range(1, len(expected_sources) + 1))


@pytest.mark.parametrize(
    ("text", "expected_text", "expected_sources"),
    [
        ("It cost 40 million euros [9].", "It cost 40 million euros.", []),
        ("Zero [0] and one [1].", "Zero and one [1].", [0]),
        ("Mixed [1, 7].", "Mixed [1].", [0]),
        ("Overlapping range [3-6].", "Overlapping range [1][2].", [2, 3]),
        ("Far [5-9] then [2].", "Far then [1].", [1]),
    ],
)
def test_numbers_never_shown_are_dropped_not_remapped(
    text: str, expected_text: str, expected_sources: list[int]
) -> None:
    answer = build_answer(QUESTION, text, HITS, backend="test")
    assert answer.text == expected_text
    assert cited(answer) == [HITS[i].sentence.text for i in expected_sources]


def test_citations_resolve_to_exact_offsets() -> None:
    answer = build_answer(QUESTION, "It cost 40 million euros [1]. The toll is disputed [2].", HITS, backend="t")
    for c in answer.citations:
        assert ARTICLE[c.start : c.end] == c.text
        assert c.doc_id == "bridge.txt"
    assert answer.citations[0].score == HITS[0].score


@pytest.mark.parametrize(
    "text",
    [
        ABSTAIN_TEXT,
        "The article does not say",
        "The sources do not contain the answer.",
        "The provided sources don't mention who designed the bridge.",
        "Unfortunately, the documents do not specify this.",
        "I don't know.",
        "I cannot find that in the sources.",
        "There is no information about the architect in the sources.",
        "The article does not say. [2]",
    ],
)
def test_abstention_is_recognised_and_has_no_citations(text: str) -> None:
    assert is_abstention(text)
    answer = build_answer(QUESTION, text, HITS, backend="test")
    assert answer.abstained and answer.citations == [] and answer.text == ABSTAIN_TEXT


@pytest.mark.parametrize(
    "text",
    [
        "The bridge cost 40 million euros [1].",
        "The article says the bridge cost 40 million euros [1].",
        "Critics do not say the bridge is unsafe [2].",
    ],
)
def test_answers_are_not_mistaken_for_abstentions(text: str) -> None:
    assert not build_answer(QUESTION, text, HITS, backend="test").abstained


def test_abstention_followed_by_a_cited_answer_is_an_answer() -> None:
    text = "The sources do not say who built it. The bridge cost 40 million euros [1]."
    answer = build_answer(QUESTION, text, HITS, backend="test")
    assert not answer.abstained and cited(answer) == [HITS[0].sentence.text]


def test_no_sources_or_empty_text_abstains() -> None:
    assert build_answer(QUESTION, "Anything [1].", [], backend="t").abstained
    assert build_answer(QUESTION, "   ", HITS, backend="t").abstained


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("One [1]. Two [2].", ["One [1].", "Two [2]."]),
        ("One. [1] Two. [2][3]", ["One. [1]", "Two. [2][3]"]),
        ("The U.S. envoy left. Then Mr. Smith spoke.", ["The U.S. envoy left.", "Then Mr. Smith spoke."]),
        ("It cost 3.5 million. Yes!", ["It cost 3.5 million.", "Yes!"]),
        ("\u201cQuoted sentence.\u201d [1] Next one.", ["\u201cQuoted sentence.\u201d [1]", "Next one."]),
        ("- first [1]\n- second [2]", ["- first [1]", "- second [2]"]),
        ("no final stop [1]", ["no final stop [1]"]),
    ],
)
def test_split_claims(text: str, pieces: list[str]) -> None:
    assert [text[s:e] for s, e in split_claims(text)] == pieces


# ----- verification (HashEmbedder: shared words mean similarity) ------------------------------


def test_supported_citation_is_kept(fake_embedder: Any) -> None:
    answer = build_answer(QUESTION, "The bridge cost 40 million euros to build [1].", HITS, backend="t",
                          embedder=fake_embedder)
    assert cited(answer) == [HITS[0].sentence.text] and answer.unsupported == []


def test_uncited_claim_is_attributed_when_support_is_strong(fake_embedder: Any) -> None:
    text = "The bridge cost 40 million euros and took three years to build."
    answer = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder)
    assert answer.text == "The bridge cost 40 million euros and took three years to build [1]."
    assert cited(answer) == [HITS[0].sentence.text] and answer.unsupported == []


def test_uncited_claim_without_support_is_listed_as_unsupported(fake_embedder: Any) -> None:
    text = "The bridge cost 40 million euros [1]. Aliens from Neptune painted it purple."
    answer = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder)
    assert answer.unsupported == ["Aliens from Neptune painted it purple."]
    assert cited(answer) == [HITS[0].sentence.text]
    assert answer.text == text  # the claim stays visible; the UI flags it


def test_wrong_citation_is_moved_to_the_supporting_sentence(fake_embedder: Any) -> None:
    text = "Critics said the toll of two euros was too high for daily commuters [1]."  # [1] is the cost sentence
    answer = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder)
    assert cited(answer) == [HITS[1].sentence.text]
    assert answer.text == "Critics said the toll of two euros was too high for daily commuters [1]."


def test_wrong_citation_with_no_support_anywhere_is_kept_and_flagged(fake_embedder: Any) -> None:
    answer = build_answer(QUESTION, "Aliens from Neptune painted it purple [2].", HITS, backend="t",
                          embedder=fake_embedder)
    assert cited(answer) == [HITS[1].sentence.text] and answer.unsupported == ["Aliens from Neptune painted it purple."]
    assert answer.text == "Aliens from Neptune painted it purple [1]."  # the reader can look; the chat flags it
    (claim,) = answer.claims
    assert (claim.supported, claim.citations, answer.text[claim.start : claim.end]) == (False, (1,), answer.text)


def test_unrelated_extra_citation_is_dropped(fake_embedder: Any) -> None:
    text = "The bridge cost 40 million euros and took three years to build [1][4]."
    answer = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder)
    assert cited(answer) == [HITS[0].sentence.text]


def test_claim_drawing_on_two_cited_sentences_keeps_both(fake_embedder: Any) -> None:
    text = "The bridge cost 40 million euros, and critics said the toll was too high [1][2]."
    answer = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder)
    assert cited(answer) == [HITS[0].sentence.text, HITS[1].sentence.text]
    assert answer.unsupported == []


def test_a_name_found_in_no_source_weakens_support(fake_embedder: Any) -> None:
    grounded = "Mayor Ana Ruiz opened the new harbour bridge on Monday."
    invented = "Mayor Boris Klee opened the new harbour bridge on Monday."
    assert build_answer(QUESTION, grounded, HITS, backend="t", embedder=fake_embedder).citations
    assert build_answer(QUESTION, invented, HITS, backend="t", embedder=fake_embedder).unsupported == [invented]


def test_questions_and_lead_ins_are_not_claims(fake_embedder: Any) -> None:
    text = "Here is what the sources say:\nThe bridge cost 40 million euros [1].\nWant to know more?"
    answer = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder)
    assert answer.unsupported == []


def test_short_answer_is_checked_together_with_the_question(fake_embedder: Any) -> None:
    answer = build_answer("What did the bridge cost to build?", "40 million euros [1].", HITS, backend="t",
                          embedder=fake_embedder)
    assert cited(answer) == [HITS[0].sentence.text] and answer.unsupported == []


def test_lexical_verification_without_an_embedder() -> None:
    text = "The bridge cost 40 million euros and took three years to build. Aliens painted it [2]."
    answer = build_answer(QUESTION, text, HITS, backend="t", check=True)
    assert cited(answer) == [HITS[0].sentence.text, HITS[1].sentence.text]
    assert answer.unsupported == ["Aliens painted it."]
    assert [(c.supported, c.citations) for c in answer.claims] == [(True, (1,)), (False, (2,))]


def test_extractive_text_is_unchanged_without_verification() -> None:
    text = f"\u201c{HITS[0].sentence.text}\u201d [1]"
    answer = build_answer(QUESTION, text, HITS, backend="extractive")
    assert answer.text == text and cited(answer) == [HITS[0].sentence.text] and answer.backend == "extractive"
    assert [(c.supported, c.score, c.citations) for c in answer.claims] == [(None, None, (1,))]


def test_check_defaults_to_whether_an_embedder_is_given(fake_embedder: Any) -> None:
    text = "Aliens from Neptune painted it purple [2]."
    checked = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder)
    assert checked.unsupported == ["Aliens from Neptune painted it purple."]
    assert [c.supported for c in checked.claims] == [False]
    unchecked = build_answer(QUESTION, text, HITS, backend="t", embedder=fake_embedder, check=False)
    assert cited(unchecked) == cited(checked) == [HITS[1].sentence.text] and unchecked.unsupported == []
    assert [c.supported for c in unchecked.claims] == [None]
    words_only = build_answer(QUESTION, text, HITS, backend="t", check=True)
    assert words_only.unsupported == checked.unsupported


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It cost 40 million euros [1]. The toll is two euros [2].", ["It cost 40 million euros [1].",
                                                                      "The toll is two euros [2]."]),
        ("Intro:\n- It cost  40 million euros [3][3]\n- The toll is two euros [2] .",
         ["- It cost 40 million euros [1]", "- The toll is two euros [2]."]),
        ("   It cost 40 million euros [1].\n\nSources:\n[1] The bridge cost 40 million euros.",
         ["It cost 40 million euros [1]."]),
    ],
)
def test_each_claims_place_in_the_final_text_is_exact(text: str, expected: list[str]) -> None:
    answer = build_answer(QUESTION, text, HITS, backend="t")
    assert [answer.text[c.start : c.end] for c in answer.claims] == expected
