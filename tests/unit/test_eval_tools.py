"""``qa eval``'s machinery with fake embedders: the caching embedders, stage 1 only without token
embeddings, the summary arithmetic, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.fakes import CountingEmbedder, CountingTokenEmbedder, HashEmbedder, TokenHashEmbedder
from helpers.squad import COUNTS, FOLDS, write_squad

from qa import config, errors
from qa.tools import eval as ev
from qa.tools.eval.data import BUNDLED_SEED_QA, EvalDataError, Question, load_seed_qa, load_squad
from qa.tools.eval.embedder import CachingEmbedder, CachingTokenEmbedder, eval_embedder
from qa.tools.eval.fit import abstain_threshold, abstain_thresholds, fit_logistic, held_out_confidence, source_balance
from qa.tools.eval.news import Scored, lead_of, load_news, score_answer
from qa.tools.eval.news import summarise as news_summary
from qa.tools.eval.report import Outcome, summarise
from qa.types import Answer, Citation


def test_caching_embedder_embeds_each_text_once() -> None:
    inner = CountingEmbedder()
    cached = CachingEmbedder(inner)
    assert not cached.can_encode_tokens and cached.name == inner.name and cached.dim == inner.dim
    first = cached.encode(["a b", "c d", "a b"])
    again = cached.encode(["c d", "a b"])
    assert inner.calls == [2]
    assert np.array_equal(first[0], again[1]) and np.array_equal(first, inner.encode(["a b", "c d", "a b"]))
    assert cached.encode([]).shape == (0, inner.dim)
    with pytest.raises(NotImplementedError):
        cached.encode_tokens(["a b"])


def test_caching_token_embedder_caches_tokens_and_needs_them() -> None:
    inner = CountingTokenEmbedder()
    cached = CachingTokenEmbedder(inner)
    assert cached.can_encode_tokens
    cached.prime(["one two", "three"])
    assert sorted(inner.token_texts) == ["one two", "three"]
    tokens = cached.encode_tokens(["three", "one two"])
    assert sorted(inner.token_texts) == ["one two", "three"]  # nothing encoded twice
    assert [len(v) for v, _ in tokens] == [1, 2]
    with pytest.raises(ValueError, match="gives no token embeddings"):
        CachingTokenEmbedder(HashEmbedder())


@pytest.mark.parametrize(
    ("inner", "kind", "note"),
    [
        (HashEmbedder(), CachingEmbedder, "none: the embedder gives no token embeddings"),
        (TokenHashEmbedder(), CachingTokenEmbedder, "the product's embedder"),
    ],
)
def test_eval_embedder_follows_the_declaration(inner: Any, kind: type, note: str) -> None:
    emb, said = eval_embedder(config.resolve(), inner)
    assert type(emb) is kind and said.startswith(note)
    assert eval_embedder(config.resolve(), emb) == (emb, "as given")


@pytest.mark.parametrize(
    ("inner", "reranks", "systems"),
    [
        (HashEmbedder(), False, {"hybrid_heldout", "bm25", "dense", "rrf", "hybrid_insample"}),
        (TokenHashEmbedder(), True, {"hybrid_heldout", "stage1_heldout", "bm25", "dense", "rrf", "hybrid_insample"}),
    ],
    ids=["without token embeddings: stage 1 only", "with token embeddings: the rerank too"],
)
def test_squad_protocol_runs_with_any_embedder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inner: Any, reranks: bool, systems: set[str]
) -> None:
    """An embedder without token embeddings runs stage 1 only; it must not fail asking for tokens."""
    data = write_squad(tmp_path / "tiny.json")
    out = tmp_path / "result.json"
    assert ev.main(str(data), str(out), embedder=inner) == 0
    printed = capsys.readouterr().out
    assert f"rerank {'on' if reranks else 'off'}" in printed and "| baseline: BM25" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["reranks"] is reranks and set(result["systems"]) == systems
    assert result["counts"] == COUNTS and result["folds"] == FOLDS
    assert result["embedder"] == inner.name
    bm25 = result["systems"]["bm25"]["answerable"]
    assert (bm25["n"], bm25["hit_at_1"], bm25["recall_at_5"]) == (12, 1.0, 1.0)  # the file is built so BM25 is right


def test_summarise_counts_abstention_as_a_miss() -> None:
    pairs: list[tuple[Any, Outcome]] = [
        ("answerable", Outcome([True, False], False)),
        ("answerable", Outcome([True], True)),  # right, but abstained
        ("answerable", Outcome([False, False, True], False)),
        ("answerable", Outcome([], False)),
        ("off_topic", Outcome([], True)),
        ("off_topic", Outcome([True], False)),
        ("unanswerable", Outcome([], True)),
    ]
    s = summarise(pairs)
    a = s["answerable"]
    assert (a["n"], a["hit_at_1"], a["top1_ignoring_abstention"]) == (4, 0.25, 0.5)
    assert a["recall_at_5"] == 0.75 and a["mrr_at_10"] == pytest.approx((1 + 1 + 1 / 3) / 4)
    assert a["wrongly_abstained"] == 0.25
    assert s["off_topic"] == {"n": 2, "abstained": 0.5} and s["unanswerable"] == {"n": 1, "abstained": 1.0}
    assert "off_topic" not in summarise(pairs, abstains=False)


def test_the_bundled_seed_questions() -> None:
    rows = load_seed_qa(BUNDLED_SEED_QA)
    assert len(rows) == 14 and sum(r.answerable for r in rows) == 11
    assert all(r.support for r in rows if r.answerable)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.json", '{"data": [{"title": "x"}]}', r"not SQuAD 2\.0"),
        ("notjson.json", "{", r"not SQuAD 2\.0"),
        ("empty.json", '{"data": []}', "holds no article"),
    ],
)
def test_bad_squad_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(EvalDataError, match=message):
        load_squad(_write(tmp_path, name, text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"question": "q"}\n', "line 1"),
        ('\n\n{"question": "q", "answerable": true}\n[]', "line 4"),
        ("\n", "holds no question"),
    ],
)
def test_bad_seed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(EvalDataError, match=message):
        load_seed_qa(_write(tmp_path, "bad.jsonl", text))


def test_bad_input_to_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(errors.MissingFileError):
        ev.main(str(tmp_path / "missing.json"))
    seed = _write(tmp_path, "seed.jsonl", '{"question": "q", "answerable": false}\n')
    with pytest.raises(EvalDataError, match="fitted on SQuAD"):
        ev.main(str(seed), fit=True)
    assert ev.cli([str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith("error: No such file")


@pytest.mark.parametrize(
    "sources",
    [["squad", "squad", "squad", "news"], ["a", "b"], ["only"] * 5, ["a"] * 7 + ["b"] * 2 + ["c"]],
    ids=["three to one", "one each", "one source", "three sources"],
)
def test_each_source_weighs_the_same_in_the_abstention_fit(sources: list[str]) -> None:
    """SQuAD's many adversarial unanswerable questions must not decide alone what news abstention looks like."""
    w = source_balance(sources)
    totals = {s: float(w[[x == s for x in sources]].sum()) for s in set(sources)}
    assert w.mean() == pytest.approx(1.0)
    assert all(t == pytest.approx(len(sources) / len(totals)) for t in totals.values())


@pytest.mark.parametrize(
    ("confidence", "sources", "threshold"),
    [
        (np.linspace(0.0, 1.0, 101), None, 0.03),  # one source: its 3 % point
        # the small source's lowest question sets it: that source must not lose more than 3 %
        (np.array([0.05, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90]), ["news", "news"] + ["squad"] * 6, 0.0575),
        # the other source's 3 % point is lower: it sets the threshold instead
        (np.array([0.85, 0.90, 0.10, 0.30, 0.40, 0.50, 0.60, 0.70]), ["news", "news"] + ["squad"] * 6, 0.1300),
    ],
    ids=["one source", "small source lowest", "large source lowest"],
)
def test_the_abstention_threshold_holds_every_source_to_its_share(
    confidence: np.ndarray, sources: list[str] | None, threshold: float
) -> None:
    assert abstain_threshold(confidence, sources) == pytest.approx(threshold)
    held = [sources[i] if sources else "" for i in range(len(confidence))]
    for s in set(held):  # no source loses more than 3 % of its answerable questions (interpolated point)
        own = confidence[[h == s for h in held]]
        assert abstain_threshold(confidence, sources) <= np.quantile(own, 0.03) + 1e-9


@pytest.mark.parametrize(
    ("dated", "expected"),
    [
        # news (dated) answerable questions score higher: each kind gets its own 3 % point
        ([False] * 6 + [True] * 6, (0.1750, 0.7150)),
        ([False] * 12, (0.1750, 0.1750)),  # no dated article in training: the undated point serves both
        ([True] * 12, (0.1750, 0.1750)),  # only dated: its point (the lower source's) serves both
    ],
    ids=["both kinds", "only undated", "only dated"],
)
def test_dated_and_undated_articles_each_get_their_own_threshold(
    dated: list[bool], expected: tuple[float, float]
) -> None:
    confidence = np.array([0.10, 0.60, 0.62, 0.64, 0.66, 0.68, 0.70, 0.80, 0.82, 0.84, 0.86, 0.88])
    sources = ["squad"] * 6 + ["news"] * 6
    got = abstain_thresholds(confidence, sources, np.array(dated))
    assert got == pytest.approx(expected, abs=1e-4)


def test_the_threshold_reads_confidences_of_models_that_never_saw_the_article() -> None:
    """Article 0's questions go against the rest: a model fitted on the rest doubts its answerable ones,
    which the model fitted on everything (article 0 included) does not reveal as much."""
    rng = np.random.default_rng(0)
    articles = np.repeat(np.arange(8), 20)
    y = np.tile(np.array([True, False] * 10), 8)
    x = np.where(y, 1.0, -1.0) + rng.normal(0.0, 0.3, len(y))
    x[articles == 0] *= -1.0
    x = x[:, None]
    coef, bias = fit_logistic(x, y)
    held = held_out_confidence(x, y, np.ones(len(y)), articles, coef, bias)
    mine = (articles == 0) & y
    assert held[mine].max() < 0.5 < held[(articles != 0) & (articles % 4 != 0) & y].min()
    everything = 1.0 / (1.0 + np.exp(-(x[:, 0] * coef[0] + bias)))
    assert held[mine].mean() < everything[mine].mean()


def test_the_loaders_record_where_each_article_came_from(tmp_path: Path) -> None:
    data = write_squad(tmp_path / "tiny.json")
    assert {a.source for a in load_squad(data)} == {"tiny.json"}
    news = tmp_path / "quiz.jsonl"
    row = {"doc_id": "d1", "text": "Acme hired 12 people.", "questions": [{"question": "How many?", "answers": ["12"]}]}
    news.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert [a.source for a in load_news(news)] == ["quiz.jsonl"]


_SENTENCE = "The storm caused more than $50 billion in damages, economists said."


@pytest.mark.parametrize(
    ("text", "abstained", "gold", "lead", "right"),
    [
        (f"More than $50 billion. \u201c{_SENTENCE}\u201d [1]", False, ("$50 billion",), "More than $50 billion.",
         True),
        (f"$5. \u201c{_SENTENCE}\u201d [1]", False, ("$50 billion",), "$5.", False),  # the old truncated lead
        (f"19th century. \u201c{_SENTENCE}\u201d [1]", False, ("late 19th century",), "19th century.", True),
        (f"\u201c{_SENTENCE}\u201d [1]", False, ("$50 billion",), "", False),  # opens with the quote: no lead
        (f"Storm story: \u201c{_SENTENCE}\u201d [1]", False, ("$50 billion",), "", False),  # an article's name
        ("I could not find this in the article.", True, ("$50 billion",), "", False),
    ],
)
def test_the_lead_an_answer_opens_with_is_scored(
    text: str, abstained: bool, gold: tuple[str, ...], lead: str, right: bool
) -> None:
    citations = [] if abstained else [Citation(1, "storm", _SENTENCE, 0, len(_SENTENCE), 1.0)]
    answer = Answer("How much damage?", text, abstained, citations)
    scored = score_answer("answerable", Question("q", "How much damage?", gold, True), answer, [_SENTENCE], "storm")
    assert (lead_of(answer), scored.lead, scored.lead_hit) == (lead, lead, right)


def test_leads_are_summarised_over_answered_questions_and_baselines_have_none() -> None:
    def scored(lead: str | None, hit: bool, abstained: bool = False) -> Scored:
        return Scored("answerable", abstained, True, True, True, True, 1, 10, lead, hit)

    s = news_summary([scored("Three.", True), scored("Four.", False), scored("", False), scored("", False, True)])
    assert (s["led"], s["lead_right"]) == (round(2 / 3, 4), 0.5)
    baseline = news_summary([scored(None, False)])
    assert (baseline["led"], baseline["lead_right"]) == (None, None)
