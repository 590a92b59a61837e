"""Retrieval's parts without an index: features, answer-type cues, BM25 on a few sentences, the rerank's
selection, the two scoring stages, abstention, and the weights file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa import errors
from qa.index import LexicalIndex
from qa.retrieve import RetrievalConfig, ScorerWeights, default_weights
from qa.retrieve.answerability import PROBE_FEATURES, RUNNER_FEATURES, held_terms
from qa.retrieve.candidates import Candidates
from qa.retrieve.features import FEATURES, question_types, type_cues
from qa.retrieve.scorer import (
    ABSTAIN_FEATURES,
    LATE_FEATURES,
    RERANK_FEATURES,
    WEIGHTS_FILE,
    AbstainModel,
    rank,
    rerank_set,
)

SENTENCES = [
    "The cat sat on the mat.",
    "Markets fell sharply on Monday.",
    "The central bank raised rates in 2023.",
    "Investors sold bonds and bought gold.",
]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many people were there?", (True, False, False, False)),
        ("how much did it cost", (True, False, False, False)),
        ("What percentage voted?", (True, False, False, False)),
        ("When did the war end?", (False, True, False, False)),
        ("In what year was it founded?", (False, True, False, False)),
        ("Who founded it?", (False, False, True, False)),
        ("Where is Rafah?", (False, False, False, True)),
        ("Which city hosted it?", (False, False, False, True)),
        ("Why did he resign?", (False, False, False, False)),
    ],
)
def test_question_types(question: str, expected: tuple[bool, bool, bool, bool]) -> None:
    assert question_types(question) == expected


def test_type_cues_want_new_information() -> None:
    cues = type_cues(
        "When did Rollo come to Normandy in 911?",
        ["Rollo came to Normandy in 911.", "The treaty was signed in 912.", "Rollo came by sea."],
    )
    assert cues[:, 1].tolist() == [0.0, 1.0, 0.0]  # 911 is in the question already; 912 is new
    assert not cues[:, [0, 2, 3]].any()


def test_lexical_scores_coverage_and_presence() -> None:
    lex = LexicalIndex(SENTENCES)
    lq = lex.query("Which investors bought gold?")
    assert lq.mass == pytest.approx(lq.known_mass)  # "what" and "did" are the question's frame, not terms
    scores = lex.scores(lq)
    assert int(np.argmax(scores)) == 3
    rows = np.arange(len(SENTENCES), dtype=np.int64)
    presence = lex.term_presence(lq, rows)
    assert presence.shape == (4, len(lq.term_ids))
    assert presence[3].all() and not presence[:3].any()
    unknown = lex.query("zebra bonds")
    assert unknown.known_mass < unknown.mass  # "zebra" is not in the corpus: it counts, and is missed


def test_lexical_index_of_nothing() -> None:
    lex = LexicalIndex([])
    assert lex.scores("anything").shape == (0,)
    assert lex.query("anything").term_ids.size == 0


@pytest.mark.parametrize(
    ("stage1", "next_index", "top", "nxt", "expected"),
    [
        ([0.1, 0.9, 0.5], [1, 2, -1], 1, 1, [1, 2]),  # the best, then the sentence after it
        ([0.1, 0.9, 0.5], [1, 2, -1], 2, 1, [1, 2]),  # already chosen: not twice
        ([0.1, 0.9, 0.5], [1, 2, -1], 3, 0, [1, 2, 0]),
        ([0.9, 0.1], [-1, -1], 1, 2, [0]),  # no next sentence
    ],
)
def test_rerank_set(stage1: list[float], next_index: list[int], top: int, nxt: int, expected: list[int]) -> None:
    got = rerank_set(np.array(stage1, dtype=np.float32), np.array(next_index, dtype=np.int64), top, nxt)
    assert got.tolist() == expected


def _weights(below: float = 0.5, below_dated: float | None = None) -> ScorerWeights:
    stage1 = tuple(1.0 if f == "dense" else 0.0 for f in FEATURES)
    rerank_w = tuple(1.0 if f == "late" else 0.0 for f in RERANK_FEATURES)
    model = AbstainModel(tuple(10.0 if f == "dense_max" else 0.0 for f in ABSTAIN_FEATURES), -5.0, below,
                         below if below_dated is None else below_dated)
    return ScorerWeights(stage1, rerank_w, model, model)


def _candidates(dense: list[float]) -> Candidates:
    features = np.zeros((len(dense), len(FEATURES)), dtype=np.float32)
    features[:, FEATURES.index("dense")] = dense
    return Candidates(np.arange(len(dense), dtype=np.int64), features, np.full(len(dense), -1), 1.0)


def test_rank_puts_the_reranked_head_first_and_keeps_scores_decreasing() -> None:
    cand = _candidates([0.9, 0.8, 0.7, 0.1])
    selected = np.array([0, 1], dtype=np.int64)
    late = np.zeros((2, len(LATE_FEATURES)), dtype=np.float32)
    late[:, 0] = [0.2, 0.6]  # the rerank prefers the stage-1 second
    ranking = rank(cand, _weights(), late, selected)
    assert ranking.order.tolist() == [1, 0, 2, 3]
    assert np.all(np.diff(ranking.scores) <= 0)
    assert ranking.reranked and not ranking.abstains
    alone = rank(cand, _weights(), None, None)
    assert alone.order.tolist() == [0, 1, 2, 3] and not alone.reranked


def test_rank_abstains_below_the_threshold() -> None:
    weak = _candidates([0.3, 0.2])  # confidence sigmoid(10·0.3 − 5) ≈ 0.12
    assert rank(weak, _weights(below=0.5), None, None).abstains
    assert not rank(weak, _weights(below=0.1), None, None).abstains


@pytest.mark.parametrize(
    ("dated", "below", "below_dated", "abstains"),
    [
        (1.0, 0.1, 0.5, True),  # a news article's answer is held to the dated threshold
        (0.0, 0.1, 0.5, False),  # undated text to the other one
        (1.0, 0.5, 0.1, False),
        (0.0, 0.5, 0.1, True),
    ],
)
def test_the_threshold_is_that_of_the_top_sentences_kind_of_article(
    dated: float, below: float, below_dated: float, abstains: bool
) -> None:
    weak = _candidates([0.3, 0.2])  # confidence sigmoid(10·0.3 − 5) ≈ 0.12
    class Dated:
        def top(self, position: int) -> np.ndarray:
            return np.array([dated if name == "dated" else 0.0 for name in PROBE_FEATURES])

        def runner(self, position: int) -> np.ndarray:
            return np.zeros(len(RUNNER_FEATURES))

    ranking = rank(weak, _weights(below, below_dated), None, None, Dated())
    assert ranking.abstains is abstains
    assert ranking.threshold == (below_dated if dated else below)


def test_the_evidence_reads_the_runner_up_too() -> None:
    """The answer is often cited second: the abstention evidence holds the runner-up's slot and focus."""
    cand = _candidates([0.9, 0.8, 0.7])

    class Slots:  # each candidate fills a slot numbered after its position
        def top(self, position: int) -> np.ndarray:
            return np.array([float(position + 1) if n == "slot_filled" else 0.0 for n in PROBE_FEATURES])

        def runner(self, position: int) -> np.ndarray:
            return np.array([float(position + 1) if n == "slot_filled" else 0.0 for n in RUNNER_FEATURES])

    probe = Slots()

    for late, selected in ((None, None), (np.zeros((3, len(LATE_FEATURES)), dtype=np.float32), np.arange(3))):
        ranking = rank(cand, _weights(), late, selected, probe)
        ev = dict(zip(ABSTAIN_FEATURES, ranking.evidence, strict=True))
        assert ev["slot_filled"] == ranking.order[0] + 1 and ev["runner_slot_filled"] == ranking.order[1] + 1
    alone = rank(_candidates([0.9]), _weights(), None, None, probe)  # no runner-up: the top one stands for it
    assert dict(zip(ABSTAIN_FEATURES, alone.evidence, strict=True))["runner_slot_filled"] == 1.0


def test_weights_round_trip_and_refuse_other_features(tmp_path: Path) -> None:
    w = _weights()
    assert ScorerWeights.from_json(json.loads(json.dumps(w.to_json()))) == w
    raw = w.to_json()
    raw["stage1"]["a_feature_from_elsewhere"] = 1.0
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(errors.ConfigError, match="Refit"):
        ScorerWeights.load(bad)


def test_shipped_weights_are_fitted_and_documented() -> None:
    w = default_weights()
    assert w == ScorerWeights.load(WEIGHTS_FILE)
    assert "8 articles" in str(w.meta.get("fitted_on"))
    assert "--fit" in str(w.meta.get("command"))
    assert all(0.0 < m.below < 1.0 and 0.0 < m.below_dated < 1.0 for m in (w.abstain, w.abstain_stage1))


def test_rank_without_candidates_abstains() -> None:
    ranking = rank(_candidates([]), _weights(), None, None)
    assert ranking.abstains and not len(ranking.order)


def test_weights_must_match_the_feature_lists() -> None:
    with pytest.raises(ValueError, match="feature lists"):
        ScorerWeights((1.0,), (1.0,) * len(RERANK_FEATURES), _weights().abstain, _weights().abstain)


def test_the_weights_file_ships_inside_the_package() -> None:
    from qa.retrieve import scorer

    assert WEIGHTS_FILE == Path(scorer.__file__).with_name("weights.json")
    assert WEIGHTS_FILE.is_file()
    assert RetrievalConfig().resolved_weights() is default_weights()
    own = _weights()
    assert RetrievalConfig(weights=own).resolved_weights() is own


_LIBRARY = [
    "Gallant remained in Washington.",  # article A: rows 0-1
    "Hamas welcomed the resolution.",
    "The governor signed the trade bill.",  # article B: rows 2-3
    "Farmers welcomed the law.",
]


@pytest.mark.parametrize(
    ("rows", "held"),
    [
        ([0, 1], {"remain", "washington", "welcom", "resolut"}),  # a run: one binary search per term
        ([2, 3], {"sign", "welcom"}),
        ([1, 3], {"welcom", "resolut"}),  # not a run: each row looked up
        ([3], {"welcom"}),
        ([], set()),
    ],
    ids=["article A", "article B", "scattered rows", "one row", "no rows"],
)
def test_the_terms_a_document_holds(rows: list[int], held: set[str]) -> None:
    """``unknown_focus`` asks which of the question's words the top sentence's article uses, not the library."""
    lex = LexicalIndex(_LIBRARY)
    asked = ["remain", "washington", "welcom", "resolut", "sign", "unseen"]
    assert held_terms(lex, asked, rows) == held & set(asked)
    assert held_terms(lex, asked, rows) <= {s for s in asked if lex.knows(s)}
