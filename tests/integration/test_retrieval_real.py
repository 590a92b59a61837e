"""Retrieval with the real embedder on the seed article: the seed questions, abstention, the rerank, and
stored token codes that rank exactly like encoding per question."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.data import GALLANT, SEED_ID, seed_questions
from helpers.env import isolated_settings

from qa.answer import ExtractiveGenerator
from qa.embed import make_embedder
from qa.index import FaissIndex
from qa.pipeline import Pipeline
from qa.retrieve import Retriever
from qa.retrieve.answerability import PROBE_FEATURES, RUNNER_FEATURES, unknown_focus
from qa.retrieve.scorer import Probe, rank, rerank_set
from qa.tools.eval.data import Question, SeedQuestion
from qa.tools.eval.harness import Record
from qa.tools.eval.report import apply_weights
from qa.types import Document


@pytest.mark.parametrize("row", seed_questions(), ids=lambda r: r.text[:40])
def test_seed_set_through_the_real_pipeline(seed_pipeline: Pipeline, row: SeedQuestion) -> None:
    """Every answerable seed question's first citation is a support sentence; off-topic ones abstain."""
    res = seed_pipeline.ask(row.text)
    if row.answerable:
        assert not res.abstained, res.text
        first = res.citations[0].text
        assert any(s in first for s in row.support), first
    else:
        assert res.abstained and res.citations == [] and res.text == "The article does not say."


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "How tall is the Eiffel Tower?",
        "Who is the CEO of Apple?",
        "When did World War II end?",
        "What is the weather like today?",
        "How do I bake sourdough bread?",
    ],
)
def test_more_off_topic_questions_abstain(seed_pipeline: Pipeline, question: str) -> None:
    result = seed_pipeline.retrieve(question)
    assert result.abstains and result.confidence < result.threshold
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


def test_real_embedder_reranks_and_search_matches_the_harness(seed_pipeline: Pipeline) -> None:
    """What ``qa eval`` measures is what ``search`` returns: both go through ``qa.retrieve.scorer.rank``."""
    index = seed_pipeline.index
    retriever = Retriever(index, seed_pipeline.embedder)
    assert retriever.reranks
    question = Question("q", "Who stayed in Washington despite the cancellation?", ("Gallant",), True)
    cand = retriever.candidates(question.text, 10)
    record = Record(0, question, "answerable", cand, np.zeros(len(cand), dtype=np.bool_))

    class Extras:
        def late(self, rec: Record, selected: np.ndarray) -> np.ndarray | None:
            return retriever.late_features(rec.cand, selected)

        def probe(self, rec: Record) -> Probe:
            return retriever.probe(rec.question.text, rec.cand)

    extras = Extras()
    cfg, w = retriever.config, retriever.weights
    sel = rerank_set(cand.features @ np.asarray(w.stage1, dtype=np.float32), cand.next_index,
                     cfg.rerank_top, cfg.rerank_next)
    expected = rank(cand, w, extras.late(record, sel), sel, extras.probe(record))
    assert expected.reranked
    result = retriever.search(question.text, 5)
    assert [h.sentence for h in result.hits] == [index.sentences[int(cand.rows[j])] for j in expected.order[:5]]
    assert result.hits[0].sentence.text.startswith(GALLANT)
    assert result.confidence == pytest.approx(expected.confidence) and result.threshold == expected.threshold
    outcome = apply_weights(record, w, extras, cfg, rerank=True)
    assert outcome.abstained is expected.abstains is result.abstains is False


# ----- the rerank reads stored tokens instead of running the model per question ----------------------------


@pytest.fixture(scope="module")
def onnx_seed(seed_text: str) -> Pipeline:
    """The seed article indexed by the product's embedder (ONNX int8), with its stored tokens."""
    settings = isolated_settings(embed_runtime="onnx-int8")
    return Pipeline.from_texts({SEED_ID: seed_text}, embedder=make_embedder(settings=settings),
                               generator=ExtractiveGenerator(), settings=settings)


def test_stored_tokens_approximate_the_tokens_the_model_gives_per_query(onnx_seed: Pipeline) -> None:
    """The compressed codes (coarse centroid + PQ residual, ~50 bytes a token) decode close to the model's
    tokens: every token still matches itself best within its sentence."""
    index = onnx_seed.index
    assert index.tokens is not None
    live = onnx_seed.embedder.encode_tokens([s.text for s in index.sentences])
    cosines = []
    for (want, _), got in zip(live, index.tokens.get(range(len(index))), strict=True):
        assert want.shape == got.shape
        assert np.array_equal((got @ want.T).argmax(axis=1), np.arange(len(want)))
        cosines.append(np.sum(want * got, axis=1))
    assert np.mean(np.concatenate(cosines)) > 0.9


def test_stored_tokens_rank_like_encoding_per_query(onnx_seed: Pipeline) -> None:
    """The same first citation and abstention as the on-the-fly rerank for every seed question; the codes
    are lossy, so lower ranks whose scores are within a few percent may swap."""
    index = onnx_seed.index
    assert isinstance(index, FaissIndex)
    stored = Retriever(index, onnx_seed.embedder)
    without = FaissIndex(list(index.documents.values()), index.sentences, index.vectors, model=index.model,
                         segmenter=index.segmenter, chunking=index.chunking, index=index.index)
    live = Retriever(without, onnx_seed.embedder)
    assert stored.reranks and live.reranks and without.tokens is None
    questions = [q.text for q in seed_questions()]
    assert len(questions) >= 10
    for q in questions:
        a, b = stored.search(q, 5), live.search(q, 5)
        assert a.hits[0].sentence == b.hits[0].sentence, q
        assert len({h.sentence for h in a.hits} & {h.sentence for h in b.hits}) >= 4, q
        # scores (~3-12) within 5 % of those from the model's own tokens (measured: 0.4-2.6 % lower, as a
        # best match over approximate tokens is a little weaker)
        assert a.hits[0].score == pytest.approx(b.hits[0].score, rel=0.05), q
        assert a.abstains == b.abstains, q


def test_a_paraphrase_counts_less_as_an_unknown_word_than_a_missing_fact(seed_pipeline: Pipeline) -> None:
    """"stayed" is not in the article, "remained" is: the passage's tokens discount it, "ate" much less."""
    index = seed_pipeline.index
    retriever = Retriever(index, seed_pipeline.embedder)
    row = next(i for i, s in enumerate(index.sentences) if s.text.startswith(GALLANT))
    passage = np.vstack(retriever.sentence_tokens([row]))

    def unknown(question: str) -> float:
        return unknown_focus(question, index.lexical, retriever.candidates(question, 10).query_tokens, passage)

    assert unknown("Who remained in Washington?") == 0.0
    stayed, ate = unknown("Who stayed in Washington?"), unknown("Who ate in Washington?")
    without_tokens = unknown_focus("Who stayed in Washington?", index.lexical)
    assert stayed < 0.6 * without_tokens and stayed < 0.6 * ate


FLOOD_PLAN = (
    "Officials drafted a new flood plan for the river towns on Monday. "
    "The plan was drafted after heavy rain damaged bridges and roads across the county. "
    "Engineers said repairs would take most of the summer."
)


def test_in_a_library_a_word_only_another_article_uses_still_counts_as_unknown(
    seed_pipeline: Pipeline, seed_text: str, tmp_path: Path
) -> None:
    """"Who drafted the cease-fire resolution?": the seed never says "drafted"; a flood story in the same
    library does. The seed's top sentence must not look like an answer because the library knows the word."""
    settings = isolated_settings(index_dir=tmp_path / "library")
    library = Pipeline.from_texts({SEED_ID: seed_text, "flood-plan.txt": FLOOD_PLAN},
                                  embedder=seed_pipeline.embedder, generator=ExtractiveGenerator(), settings=settings)
    question = "Who drafted the cease-fire resolution?"

    def focus_unknown(pipe: Pipeline) -> float:
        retriever = Retriever(pipe.index, pipe.embedder)
        cand = retriever.candidates(question, 10)
        top = int(retriever.rank(cand, question).order[0])
        assert pipe.index.sentences[int(cand.rows[top])].doc_id == SEED_ID
        return float(retriever.probe(question, cand).top(top)[PROBE_FEATURES.index("focus_unknown")])

    assert focus_unknown(seed_pipeline) > 0.15
    assert focus_unknown(library) > 0.15  # it was 0: the library's vocabulary held "drafted"


def test_the_late_minimum_reads_the_asking_clause_not_its_context(seed_pipeline: Pipeline) -> None:
    """News-quiz questions open with context from elsewhere in the article ("… Who stayed…?"): a context word
    the answering passage lacks is no sign that the passage does not answer."""
    retriever = Retriever(seed_pipeline.index, seed_pipeline.embedder)

    def late_min(question: str) -> float:
        cand = retriever.candidates(question, 10)
        top = int(retriever.rank(cand, question).order[0])
        assert seed_pipeline.index.sentences[int(cand.rows[top])].text.startswith(GALLANT)
        return float(retriever.probe(question, cand).top(top)[PROBE_FEATURES.index("late_min")])

    asked = late_min("Who stayed in Washington despite the cancellation?")
    with_context = late_min("Farmers harvested pumpkins in Oregon. Who stayed in Washington despite the cancellation?")
    # the context's tokens shift the asking clause's embeddings a little (0.69 of it here); counting the
    # context's own words, "pumpkins" and "Oregon", gave 0.29 of it
    assert with_context > 0.6 * asked


@pytest.mark.parametrize(
    "question",
    ["Who stayed in Washington despite the cancellation?", "How many members voted for the resolution?",
     "When did the Security Council vote?", "Which country abstained, and why?"],
)
def test_the_runner_up_probe_is_the_text_part_of_the_full_one(seed_pipeline: Pipeline, question: str) -> None:
    """The runner-up's evidence skips the token and whole-article lookups; what it reads must be what the
    full probe reads of the same candidate, or the runner-up's weights would be fitted on other values."""
    retriever = Retriever(seed_pipeline.index, seed_pipeline.embedder)
    cand = retriever.candidates(question, 10)
    probe = retriever.probe(question, cand)
    columns = [PROBE_FEATURES.index(name) for name in RUNNER_FEATURES]
    for position in range(min(8, len(cand))):
        assert probe.runner(position).tolist() == probe.top(position)[columns].tolist()


@pytest.mark.parametrize(
    ("published", "question", "missing"),
    [
        ("2024-03-11", "Who drafted a new flood plan for the river towns in March 2024?", 0.0),
        (None, "Who drafted a new flood plan for the river towns in March 2024?", 1.0),  # no date: 2024 is unknown
        ("2024-03-11", "Who drafted a new flood plan for the river towns in March 2019?", 1.0),
        ("2024-03-11", "Who drafted 12 new flood plans for the river towns?", 1.0),
    ],
)
def test_a_year_the_article_is_dated_is_not_a_missing_number(
    seed_pipeline: Pipeline, published: str | None, question: str, missing: float
) -> None:
    """News is written in days ("on Monday"), quizzes in dates ("in March 2024"): the article's own year is
    known to it, any other number the passage lacks is still missing."""
    doc = Document(doc_id="flood-plan.txt", text=FLOOD_PLAN, published=published)
    assert _top_probe(seed_pipeline, doc, question, "number_missing") == missing


def _dated_pipeline(seed_pipeline: Pipeline, doc: Document) -> Pipeline:
    return Pipeline.from_documents([doc], embedder=seed_pipeline.embedder, generator=ExtractiveGenerator(),
                                   settings=isolated_settings())


def _top_probe(seed_pipeline: Pipeline, doc: Document, question: str, feature: str) -> float:
    """One ``PROBE_FEATURES`` value of the top-ranked candidate, with ``doc`` as the only article."""
    pipe = _dated_pipeline(seed_pipeline, doc)
    retriever = Retriever(pipe.index, pipe.embedder)
    cand = retriever.candidates(question, 10)
    top = int(retriever.rank(cand, question).order[0])
    return float(retriever.probe(question, cand).top(top)[PROBE_FEATURES.index(feature)])


QUAKE = (
    "A magnitude 5.9 earthquake struck eastern Afghanistan on Wednesday, killing at least 1,000 people. "
    "Rescuers searched collapsed mud houses in Paktika province through the night. "
    "It was the deadliest quake in the country in two decades. "
    "In 2015, a quake in the north-east of the country killed more than 300 people."
)


@pytest.mark.parametrize(
    ("published", "question", "unknown"),
    [
        ("2022-06-22", "How many people died in the Afghanistan earthquake in June 2019?", 1.0),
        ("2022-06-22", "How many people died in the Afghanistan earthquake in June 2022?", 0.0),
        (None, "How many people died in the Afghanistan earthquake in June 2022?", 1.0),  # no date: unknown
        ("2022-06-22", "How many people died in the Paktika earthquake, the worst since 2015?", 0.0),  # said once
        ("2022-06-22", "How many people died in the Afghanistan earthquake?", 0.0),
    ],
)
def test_a_year_the_article_never_mentions_is_unknown(
    seed_pipeline: Pipeline, published: str | None, question: str, unknown: float
) -> None:
    """"…in June 2019?" of a 2022 article that speaks of 2015: the article is not about that year, however
    well its sentences match. A year the article mentions anywhere, or is dated, is known."""
    doc = Document(doc_id="quake.txt", text=QUAKE, published=published)
    assert _top_probe(seed_pipeline, doc, question, "year_unknown") == unknown


def test_a_question_about_a_year_the_article_never_mentions_is_not_answered(seed_pipeline: Pipeline) -> None:
    """The hands-on case: "…in June 2019?" of a 2022 quake story was answered with its 2015 sentence."""
    pipe = _dated_pipeline(seed_pipeline, Document(doc_id="quake.txt", text=QUAKE, published="2022-06-22"))
    assert pipe.ask("How many people died in the Afghanistan earthquake in June 2019?", llm="extractive").abstained
    answered = pipe.ask("How many people died in the Afghanistan earthquake in June 2022?", llm="extractive")
    assert not answered.abstained and "1,000" in answered.citations[0].text


STARTUP = (
    "The carmaker said on Wednesday it would stop funding the self-driving startup it invested $1 billion in "
    "back in 2017. "
    "The startup will shut down, and two carmakers will offer jobs to many of its 2,000 engineers. "
    "The carmaker's chief executive said fully driverless cars were still years away."
)


@pytest.mark.parametrize(
    ("question", "feature", "value"),
    [
        # the top sentence holds numbers, but none counts employees: the asked slot stays empty
        ("How many employees did the self-driving startup have?", "slot_filled", 0.0),
        ("How many engineers did the self-driving startup have?", "slot_filled", 1.0),
        ("Why did the carmaker stop funding the startup?", "slot_filled", 1.0),  # no slot to check
        # the asking clause's words the top sentence lacks: "founded", not the context's
        ("The carmaker invested $1 billion in the startup. Who founded the startup?", "focus_lacks", 1.0),
        ("When did the carmaker invest $1 billion in the startup?", "focus_lacks", 0.0),
    ],
)
def test_the_top_sentence_is_checked_against_what_the_asking_clause_asks(
    seed_pipeline: Pipeline, question: str, feature: str, value: float
) -> None:
    """An on-topic question the article does not answer matches its topic, not its slot or its words."""
    doc = Document(doc_id="startup.txt", text=STARTUP, published="2022-10-26")
    assert _top_probe(seed_pipeline, doc, question, feature) == value
