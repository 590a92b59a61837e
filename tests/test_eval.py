"""``qa eval``: the harness on a tiny hand-made SQuAD file, the seed set end to end, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_DATA, load_seed_qa

from qa import errors
from qa import eval as ev
from qa.embed import SentenceTransformerEmbedder
from qa.pipeline import Pipeline
from qa.retrieve import FEATURES, ScorerWeights

# Four articles, two paragraphs each. Every answerable question shares its rare words with exactly
# one sentence, which holds the answer, so BM25 must get all of them right (checked by hand).
ARTICLES: list[tuple[str, list[str], list[tuple[str, str | None]]]] = [
    (
        "Volcanoes",
        [
            "Mount Etna is a volcano on the island of Sicily. It erupted violently in 1669. "
            "The lava flows of that eruption destroyed much of the town of Catania.",
            "Vesuvius buried Pompeii in the year 79. Pliny the Younger described the eruption in two letters.",
        ],
        [
            ("On which island is the volcano Mount Etna?", "Sicily"),
            ("Which town did the lava flows destroy?", "Catania"),
            ("Who described the eruption in two letters?", "Pliny the Younger"),
            ("How tall is Mount Etna?", None),
        ],
    ),
    (
        "Coffee",
        [
            "Coffee was first cultivated in Yemen. Arabica beans grow best at high altitudes. "
            "Brazil is the largest producer of coffee today.",
            "Espresso was invented in Italy in 1884. Baristas press finely ground beans.",
        ],
        [
            ("Where was coffee first cultivated?", "Yemen"),
            ("Which country is the largest producer of coffee?", "Brazil"),
            ("In which year was espresso invented?", "1884"),
            ("Who invented the cappuccino?", None),
        ],
    ),
    (
        "Railways",
        [
            "The Stockton and Darlington Railway opened in 1825. George Stephenson engineered the line.",
            "Steam locomotives were replaced by diesel engines in the 1960s. Electric trains now run on many routes.",
        ],
        [
            ("When did the Stockton and Darlington Railway open?", "1825"),
            ("Who engineered the line?", "George Stephenson"),
            ("What replaced steam locomotives?", "diesel engines"),
            ("How fast were the first trains?", None),
        ],
    ),
    (
        "Chess",
        [
            "Chess originated in India as chaturanga. The queen became the strongest piece in the 15th century.",
            "Garry Kasparov lost to the computer Deep Blue in 1997. Magnus Carlsen became world champion in 2013.",
        ],
        [
            ("In which country did chess originate?", "India"),
            ("Which computer did Garry Kasparov lose to?", "Deep Blue"),
            ("When did Magnus Carlsen become world champion?", "2013"),
            ("Who invented the chess clock?", None),
        ],
    ),
]


def _squad_file(path: Path) -> Path:
    data: list[dict[str, Any]] = []
    for title, paragraphs, questions in ARTICLES:
        paras: list[dict[str, Any]] = [{"context": p, "qas": []} for p in paragraphs]
        for i, (q, answer) in enumerate(questions):
            ctx = next((j for j, p in enumerate(paragraphs) if answer and answer in p), 0)
            qa_row: dict[str, Any] = {"id": f"{title}-{i}", "question": q, "is_impossible": answer is None}
            qa_row["answers"] = [{"text": answer, "answer_start": paragraphs[ctx].index(answer)}] if answer else []
            paras[ctx]["qas"].append(qa_row)
        data.append({"title": title, "paragraphs": paras})
    path.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    return path


def _rates(node: object) -> list[float]:
    """Every rate in a result tree (floats other than seconds)."""
    if isinstance(node, dict):
        return [x for k, v in node.items() if k != "seconds" for x in _rates(v)]
    if isinstance(node, list):
        return [x for v in node for x in _rates(v)]
    return [node] if isinstance(node, float) else []


def test_squad_harness_on_a_tiny_file(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _squad_file(tmp_path / "tiny.json")
    out = tmp_path / "out" / "result.json"
    assert ev.main(str(data), str(out), embedder=embedder) == 0
    printed = capsys.readouterr().out
    assert "| hybrid + rerank, held-out folds |" in printed and "baseline: BM25" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["format"] == "squad2" and result["reranks"] is True
    assert result["counts"] == {"answerable": 12, "unanswerable": 4, "off_topic": 16}
    assert result["folds"] == [["Volcanoes", "Railways"], ["Coffee", "Chess"]]
    systems = result["systems"]
    assert set(systems) == {"hybrid_heldout", "stage1_heldout", "bm25", "dense", "rrf", "hybrid_insample"}
    for name in ("hybrid_heldout", "stage1_heldout", "hybrid_insample"):
        assert systems[name]["answerable"]["n"] == 12
        assert systems[name]["unanswerable"]["n"] == 4 and systems[name]["off_topic"]["n"] == 16
        assert set(systems[name]["answerable"]) >= {"hit_at_1", "recall_at_5", "mrr_at_10", "wrongly_abstained"}
    bm25 = systems["bm25"]["answerable"]
    assert (bm25["n"], bm25["hit_at_1"], bm25["recall_at_5"], bm25["mrr_at_10"]) == (12, 1.0, 1.0, 1.0)
    assert bm25["wrongly_abstained"] is None and "off_topic" not in systems["bm25"]
    assert systems["hybrid_heldout"]["answerable"]["recall_at_5"] == 1.0  # two-paragraph articles: trivially
    assert all(0.0 <= r <= 1.0 for r in _rates(systems))
    assert set(result["per_article"]) == {"Volcanoes", "Coffee", "Railways", "Chess"}
    assert len(result["fold_weights"]) == 2
    assert set(result["insample_weights"]["stage1"]) == set(FEATURES)


def test_fit_writes_loadable_weights(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    data = _squad_file(tmp_path / "tiny.json")
    target = tmp_path / "weights.json"
    emb, note = ev.eval_embedder(embedder)
    result = ev.run_squad(data, emb, token_note=note, fit_out=target)
    weights = ScorerWeights.load(target)
    assert "all 4 articles" in weights.meta["fitted_on"]
    assert weights.to_json()["stage1"] == result["insample_weights"]["stage1"]


@pytest.mark.parametrize("row", load_seed_qa(), ids=lambda r: str(r["question"])[:40])
def test_seed_set_through_the_real_pipeline(seed_pipeline: Pipeline, row: dict[str, Any]) -> None:
    """Every answerable seed question's first citation is a support sentence; off-topic ones abstain."""
    res = seed_pipeline.ask(str(row["question"]))
    if row["answerable"]:
        assert not res.abstained, res.text
        first = res.citations[0].text
        assert any(s in first for s in row["support"]), first
    else:
        assert res.abstained and res.citations == []


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "How tall is the Eiffel Tower?",
        "Who is the CEO of Apple?",
        "When did World War II end?",
        "What is the weather like today?",
    ],
)
def test_more_off_topic_questions_abstain(seed_pipeline: Pipeline, question: str) -> None:
    assert seed_pipeline.ask(question).abstained


@pytest.mark.parametrize(
    ("question", "support"),
    [
        ("Where did Gallant stay?", "Yoav Gallant remained in Washington"),
        ("Did the US vote for the resolution?", "the U.S. representative abstained"),
        ("Why were far-right Israelis angry?", "sparked anger among far-right"),
        ("Tell me about the hostages", "release of hostages"),
    ],
)
def test_paraphrased_questions_are_answered(seed_pipeline: Pipeline, question: str, support: str) -> None:
    res = seed_pipeline.ask(question)
    assert not res.abstained and support in res.citations[0].text


def test_seed_protocol_reports_every_question(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    out = tmp_path / "seed.json"
    assert ev.main(str(SHARED_DATA / "seed-qa-dev.jsonl"), str(out), embedder=embedder) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["all_ok"] is True
    assert result["answerable_cited_right"] == "11/11" and result["unanswerable_abstained"] == "3/3"
    pipeline = result["systems"]["pipeline"]
    assert pipeline["answerable"]["hit_at_1"] == 1.0 and pipeline["off_topic"]["abstained"] == 1.0
    assert len(result["questions"]) == 14


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.MissingFileError):
        ev.main(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [{"title": "x"}]}', encoding="utf-8")
    with pytest.raises(ev.EvalDataError, match=r"not SQuAD 2\.0"):
        ev.load_squad(broken)
    bad_lines = tmp_path / "bad.jsonl"
    bad_lines.write_text('{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(ev.EvalDataError, match="line 1"):
        ev.load_seed_qa(bad_lines)
    with pytest.raises(ev.EvalDataError, match="fitted on SQuAD"):
        ev.main(str(bad_lines), fit=True)
