"""The claim checker's pure parts: words, features and the verdict logic, on sentences written for these tests.

Token vectors come from ``TokenHashEmbedder`` (one hashed vector per word, no context): a word aligns
with a source only where the source has the same word, so these tables pin the lexical side of the
check; ``tests/integration/test_claim_check_real.py`` runs the same kinds of claims with the real model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.data import ROOT
from helpers.fakes import TokenHashEmbedder

from qa.cite import ClaimChecker, ClaimModel, check_claim
from qa.cite.checker import VETO_LOGIT, WEIGHTS_FILE, Expert, default_model, judge, sigmoid
from qa.cite.claims import claim_text, drop_reference_list
from qa.cite.features import FEATURE_NAMES, Claim, claim_features, copy_runs, prepare_sources
from qa.cite.words import canonical_number, looks_english, numbers_in, words
from qa.errors import ConfigError
from qa.ingest import segment
from qa.types import Document, Hit

ARTICLE = [
    "Mayor Ana Ruiz opened the new harbour bridge in Porto Vale on Monday.",
    "The bridge cost 40 million euros and took three years to build.",
    "Critics said the toll of two euros was too high for daily commuters.",
    "The city council will review the toll in March.",
]
EMB = TokenHashEmbedder()


def features(claim: str, sources: list[str] = ARTICLE) -> dict[str, float]:
    vectors = EMB.encode([claim, *sources])
    tokens = EMB.encode_tokens([claim, *sources])
    prepared = prepare_sources(sources, vectors[1:], [t for t, _ in tokens[1:]])
    f = claim_features(Claim(claim, vectors[0], *tokens[0]), prepared, lambda s: 0.5)
    return dict(zip(FEATURE_NAMES, f.values.tolist(), strict=True))


# ----- words --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("It cost 5,000 euros", {"5000"}),
        ("It cost five thousand euros", {"5", "1000"}),
        ("at 21:45 on day 3", {"21:45", "21", "45", "3"}),
        ("a rise of 1.50 points", {"1.5", "1", "50"}),
        ("viewed more than 235, 000 times", {"235000"}),  # tokenised text splits a number after its separator
        ("in 98. 7 per cent of cases", {"98.7"}),
    ],
)
def test_numbers_are_canonical(text: str, numbers: set[str]) -> None:
    assert numbers <= numbers_in(words(text), text.lower())


def test_canonical_numbers_do_not_confuse_magnitudes() -> None:
    assert canonical_number("5,000") != canonical_number("500")
    assert canonical_number("4.0") == "4"


def test_names_are_capitalised_words_after_the_first() -> None:
    assert [w.text for w in words("Yesterday Ana Ruiz met the mayor") if w.name] == ["ana", "ruiz"]
    assert [w.text for w in words("ana ruiz met the mayor") if w.name] == []  # lower-cased text has none


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("The bridge cost 40 million euros and took three years to build.", True),
        ("the bridge cost 40 million euros and took three years to build.", True),
        ("Die Brücke kostete 40 Millionen Euro und wurde in drei Jahren gebaut.", False),
        ("Le pont a coûté 40 millions d'euros et a été construit en trois ans.", False),
        ("El puente costó 40 millones de euros y se construyó en tres años.", False),
    ],
)
def test_english_is_told_from_other_languages(text: str, english: bool) -> None:
    assert looks_english(words(text)) is english


def test_copy_runs_find_the_longest_verbatim_run() -> None:
    runs = copy_runs(["x", "a", "b", "c", "d"], [["a", "b"], ["a", "b", "c", "d"]])
    assert [(r.claim_start, r.length, r.sentence) for r in runs] == [(1, 4, 1)]


# ----- features -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "name", "value"),
    [
        ("The bridge cost 40 million euros.", "num_missing", 0.0),
        ("The bridge cost 90 million euros.", "num_missing", np.log1p(1)),
        ("The bridge cost 90 million euros.", "lex_align_min", 0.0),  # a number the sources lack scores 0
        ("Mayor Ana Ruiz opened the bridge.", "name_missing", 0.0),
        ("Mayor Boris Klee opened the bridge.", "name_missing", np.log1p(2)),
        ("The council will not review the toll.", "neg_mismatch", 1.0),
        ("The council will review the toll.", "neg_mismatch", 0.0),
        ("The council may scrap the toll.", "modal_mismatch", 1.0),
        ("The bridge cost 40 million euros and took three years to build.", "max_run", 12 / 12),
        ("The bridge cost 40 million euros.", "lex_all", 1.0),
        ("Aliens painted the bridge purple.", "novel_mass", 3 / 4),
    ],
)
def test_feature_table(claim: str, name: str, value: float) -> None:
    assert features(claim)[name] == pytest.approx(value, abs=1e-6)


def test_lower_cased_text_gets_the_same_features_except_names() -> None:
    claim = "Mayor Ana Ruiz opened the new harbour bridge on Monday."
    cased = features(claim)
    lowered = features(claim.lower(), [s.lower() for s in ARTICLE])
    for name in FEATURE_NAMES:
        assert lowered[name] == pytest.approx(cased[name], abs=1e-5), name


# ----- verdicts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "supported"),
    [
        ("The bridge cost 40 million euros and took three years to build.", True),
        ("The bridge cost 40 million euros.", True),
        ("The bridge cost 90 million euros.", False),  # a number missing
        ("Mayor Boris Klee opened the bridge.", False),  # names missing
        ("Aliens from Neptune painted it purple.", False),
        ("the bridge cost 40 million euros.", True),  # lower-cased
        ("THE BRIDGE COST 40 MILLION EUROS.", True),
    ],
)
def test_verdict_table(claim: str, supported: bool) -> None:
    v = check_claim(claim, ARTICLE, embedder=EMB)
    assert v.supported is supported and (v.score >= 0.5) is supported
    assert bool(v.support) is supported


GERMAN = [
    "Bürgermeisterin Ana Ruiz hat am Montag die neue Hafenbrücke in Porto Vale eröffnet.",
    "Die Brücke hat 40 Millionen Euro gekostet und wurde in drei Jahren gebaut.",
    "Kritiker sagten, die Maut von zwei Euro sei für Pendler zu hoch.",
]


@pytest.mark.parametrize(
    ("claim", "supported"),
    [
        ("Die Hafenbrücke in Porto Vale kostete 40 Millionen Euro.", True),
        ("Ana Ruiz eröffnete die Brücke in Porto Vale am Montag.", True),
        ("Die Brücke kostete 90 Millionen Euro und wurde von Boris Klee eröffnet.", False),
    ],
)
def test_other_languages_are_held_to_their_numbers_and_names(claim: str, supported: bool) -> None:
    assert check_claim(claim, GERMAN, embedder=EMB).supported is supported


def test_outside_english_coverage_counts_names_only() -> None:
    f = features("Die Hafenbrücke in Porto Vale kostete 40 Millionen Euro.", GERMAN)  # "kostete" is not in it
    assert f["lex_all"] == 1.0 and f["name_missing"] == 0.0
    assert features("Boris Klee eröffnete die Hafenbrücke in Porto Vale am Montag.", GERMAN)["lex_all"] == 0.8  # Klee


def test_a_missing_number_or_name_fails_an_abstractive_claim_whatever_its_other_words() -> None:
    accept_all = Expert(("lex_all",), (0.0,), 5.0, 0.0)
    model = ClaimModel(7, accept_all, accept_all)
    col = FEATURE_NAMES.index
    rows = np.zeros((4, len(FEATURE_NAMES)))
    rows[1, col("num_missing")] = rows[2, col("name_missing")] = rows[3, col("num_missing")] = np.log1p(1)
    rows[3, col("max_run")] = 8 / 12  # a long verbatim copy is judged by its alignment alone
    assert model.logit(rows).tolist() == [5.0, VETO_LOGIT, VETO_LOGIT, 5.0]


def test_cited_sentences_are_judged_first_then_the_claim_is_reattributed() -> None:
    claim = "Critics said the toll of two euros was too high for daily commuters."
    kept = check_claim(claim, ARTICLE, cited=[2], embedder=EMB)
    assert kept.supported and kept.kept_citation and kept.support == (2,)
    moved = check_claim(claim, ARTICLE, cited=[1], embedder=EMB)
    assert moved.supported and not moved.kept_citation and moved.support[0] == 2
    nowhere = check_claim("Aliens from Neptune painted it purple.", ARTICLE, cited=[1], embedder=EMB)
    assert not nowhere.supported and nowhere.support == ()


def test_a_claim_drawing_on_two_sentences_is_attributed_to_both() -> None:
    v = check_claim("The bridge cost 40 million euros, and critics said the toll was too high.", ARTICLE, embedder=EMB)
    assert v.supported and set(v.support) == {1, 2}


def test_without_an_embedder_the_check_is_lexical() -> None:
    assert check_claim("The bridge cost 40 million euros.", ARTICLE).supported
    assert not check_claim("The bridge was expensive.", ARTICLE).supported  # no paraphrase without a model


def test_no_sources_or_an_empty_claim_is_unsupported() -> None:
    assert not check_claim("The bridge cost 40 million euros.", [], embedder=EMB).supported
    empty = prepare_sources(ARTICLE, np.zeros((4, 1), np.float32), None)
    assert judge(Claim("  ", np.zeros(1, np.float32)), empty) .supported is False


# ----- the checker bound to sources, and the model file -------------------------------------------


def test_the_checker_resolves_support_to_sentences() -> None:
    doc = Document("bridge.txt", " ".join(ARTICLE))
    hits = [Hit(s, 1.0, i) for i, s in enumerate(segment(doc))]
    checked = ClaimChecker(EMB).check(["The bridge cost 40 million euros.", "Aliens painted it."], [[2], []], hits)
    assert checked[0].verdict.supported and checked[0].sentences == (hits[1].sentence,)
    assert not checked[1].verdict.supported and checked[1].sentences == ()


def test_the_shipped_model_loads_and_scores_around_its_threshold() -> None:
    model = default_model()
    assert model.gate >= 2 and set(model.extractive.names) | set(model.abstractive.names) <= set(FEATURE_NAMES)
    assert sigmoid(0.0) == 0.5
    package_data = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"qa.cite" = ["claim_weights.json"]' in package_data


def test_a_model_file_for_other_features_is_refused(tmp_path: Path) -> None:
    raw = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert ClaimModel.from_json(raw) == default_model()
    assert ClaimModel.from_json(default_model().to_json()) == default_model()
    raw["feature_names"] = [*raw["feature_names"], "something_new"]
    (tmp_path / "w.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="other features"):
        ClaimModel.load(tmp_path / "w.json")


# ----- the answer's shapes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("piece", "claim"),
    [
        ("The bridge cost 40 million euros [1].", "The bridge cost 40 million euros."),
        ("- The toll is two euros [2]", "The toll is two euros"),
        ("2. **The toll** is two euros [2].", "The toll is two euros."),
        ("According to the article, the toll is two euros [2].", "the toll is two euros."),
        ("Based on the sources [1], the toll is two euros.", "the toll is two euros."),
        ("The article says that the toll is two euros [2].", "the toll is two euros."),
        ("\u201cThe toll is two euros.\u201d [2]", "The toll is two euros."),
        ("Laut dem Artikel kostete die Brücke 40 Millionen Euro [1].", "kostete die Brücke 40 Millionen Euro."),
        ("Selon l'article, le pont a coûté 40 millions d'euros [1].", "le pont a coûté 40 millions d'euros."),
    ],
)
def test_what_an_answer_sentence_claims(piece: str, claim: str) -> None:
    assert claim_text(piece) == claim


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("It cost 40 million euros [1].\n\nSources:\n[1] The bridge cost 40 million euros.",
         "It cost 40 million euros [1]."),
        ("It cost 40 million euros [1].\n**References:**\n- [1] The bridge cost…", "It cost 40 million euros [1]."),
        ("It cost 40 million euros [1].\n[1] The bridge cost 40 million euros.", "It cost 40 million euros [1]."),
        ("It cost 40 million euros [1].", "It cost 40 million euros [1]."),
        ("[1] It cost 40 million euros.", "[1] It cost 40 million euros."),  # all of it is the answer
    ],
)
def test_a_trailing_reference_list_is_dropped(text: str, kept: str) -> None:
    assert drop_reference_list(text) == kept
