"""The pipeline's wiring, in memory with fakes: question and history checks first, retrieval, the
generator's markers renumbered, claims checked when the generator writes free text, abstention."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from helpers.fakes import HashEmbedder, QuotingGenerator, ScriptedGenerator

from qa import config, errors
from qa.answer import ExtractiveGenerator, Generator
from qa.index import FaissIndex
from qa.pipeline import Pipeline
from qa.types import ABSTAIN_TEXT, Answer, Document, Hit, Retrieval, Turn

TEXTS = {
    "pets.txt": "The cat sat on the warm mat all day. The dog barked at the mailman.",
    "markets.txt": "Markets fell sharply on Monday. Investors sold bonds and bought gold.",
}


ALIENS = "Aliens from Neptune painted the mat [1]."


def pipe(generator: Generator | None = None, **settings: object) -> Pipeline:
    return Pipeline.from_texts(TEXTS, embedder=HashEmbedder(), generator=generator or ExtractiveGenerator(),
                               settings=config.resolve(**settings))  # type: ignore[arg-type]


class Failing(Generator):
    writes_free_text: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return "failing"

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        yield "Half an ans"
        raise errors.GenerationInterruptedError("http://127.0.0.1:9", "gone")


def test_in_memory_pipeline_writes_nothing(tmp_path: Path) -> None:
    p = pipe()
    assert p.index_dir is None and isinstance(p.index, FaissIndex)
    assert sorted(p.documents) == ["markets.txt", "pets.txt"]
    p.add([Document("c.txt", "A third story about trains.")])
    assert "c.txt" in p.documents
    assert p.retrieve("story about trains").hits[0].sentence.doc_id == "c.txt"
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("texts", [{}, {"a": ""}, {"a": "   "}, {"a": "fine", "b": "\n"}])
def test_empty_documents_are_refused(texts: dict[str, str]) -> None:
    with pytest.raises(errors.EmptyDocumentError):
        Pipeline.from_texts(texts, embedder=HashEmbedder())


def test_retrieve_returns_a_retrieval_restricted_to_documents() -> None:
    p = pipe(top_k=2)
    result = p.retrieve("Who sold bonds and gold?")
    assert isinstance(result, Retrieval) and len(result.hits) == 2
    assert result.hits[0].sentence.text == "Investors sold bonds and bought gold."
    only_pets = p.retrieve("Who sold bonds and gold?", 5, doc_ids=["pets.txt"])
    assert only_pets.hits and {h.sentence.doc_id for h in only_pets.hits} == {"pets.txt"}
    with pytest.raises(errors.UnknownDocumentError, match=r"Not in the index: nowhere\.txt"):
        p.ask("Who sold bonds and gold?", doc_ids=["nowhere.txt"])


def test_a_date_filter_keeps_the_articles_published_then() -> None:
    p = Pipeline.from_documents([Document("old.txt", "Markets fell on Monday. Investors sold bonds.",
                                          published="2023-05-02"),
                                 Document("new.txt", "Markets rose on Friday. Investors sold gold.",
                                          published="2024-03-08T09:00Z"),
                                 Document("undated.txt", "Markets were calm. Investors sold nothing.")],
                                embedder=HashEmbedder(), generator=ExtractiveGenerator())
    assert {h.sentence.doc_id for h in p.retrieve("What did investors sell?", 6).hits} == {
        "old.txt", "new.txt", "undated.txt"}
    assert {h.sentence.doc_id for h in p.retrieve("What did investors sell?", 6, since="2024-01-01").hits} == {
        "new.txt"}
    assert {h.sentence.doc_id for h in p.retrieve("What did investors sell?", 6, until="2023-12-31").hits} == {
        "old.txt"}
    assert {h.sentence.doc_id for h in p.retrieve("What did investors sell?", 6, doc_ids=["old.txt", "new.txt"],
                                                  since="2023-01-01", until="2023-12-31").hits} == {"old.txt"}
    with pytest.raises(errors.InputError, match="No indexed article was published from 2025-01-01 to now"):
        p.ask("What did investors sell?", since="2025-01-01")
    with pytest.raises(errors.InputError, match="since must be a date"):
        p.ask("What did investors sell?", since="last week")


@pytest.mark.parametrize(
    ("question", "error", "message"),
    [
        ("", errors.EmptyQuestionError, "The question is empty"),
        ("  \n", errors.EmptyQuestionError, "The question is empty"),
        ("w" * 51, errors.QuestionTooLongError, "51 characters long; the limit is 50"),
    ],
)
def test_questions_are_checked_before_anything_runs(question: str, error: type[Exception], message: str) -> None:
    gen = ScriptedGenerator("never")
    p = pipe(gen, max_question_chars=50)
    for call in (lambda: p.ask(question), lambda: p.retrieve(question), lambda: list(p.stream(question))):
        with pytest.raises(error, match=message):
            call()
    assert gen.calls == []


@pytest.mark.parametrize("history", [5, "text", [None], [{"role": "robot", "content": "x"}]])
def test_a_bad_history_is_refused_before_anything_runs(history: object) -> None:
    gen = ScriptedGenerator("never")
    with pytest.raises(errors.InputError, match="history"):
        pipe(gen).ask("Who sold bonds?", history)  # type: ignore[arg-type]
    assert gen.calls == []


def test_the_history_reaches_the_generator_as_turns() -> None:
    gen = QuotingGenerator("Investors sold bonds [1].")
    history = [("Hi", "Hello"), {"role": "user", "content": "More?"}]
    pipe(gen).ask("Which investors sold bonds and bought gold?", history)
    (_, _, history), = gen.calls
    assert history == (Turn("user", "Hi"), Turn("assistant", "Hello"), Turn("user", "More?"))


def test_markers_are_renumbered_in_order_of_first_appearance() -> None:
    gen = QuotingGenerator("First claim [3]. ", "Second claim [1]. Again [3].")
    answer = pipe(gen).ask("Who sold bonds and gold on Monday?")
    (_, sources, _), = gen.calls
    assert len(sources) >= 3
    assert answer.text == "First claim [1]. Second claim [2]. Again [1]."
    assert [c.n for c in answer.citations] == [1, 2]
    assert [c.text for c in answer.citations] == [sources[2].sentence.text, sources[0].sentence.text]
    assert all(TEXTS[c.doc_id][c.start : c.end] == c.text for c in answer.citations)
    assert answer.backend == "fake-llm" and answer.unsupported == []


@pytest.mark.parametrize(
    ("generator", "supported", "unsupported"),
    [
        (ScriptedGenerator(ALIENS), False, ["Aliens from Neptune painted the mat."]),
        (QuotingGenerator(ALIENS), None, []),
    ],
    ids=["free text is checked", "quotes are not"],
)
def test_claims_are_checked_when_the_generator_writes_free_text(
    generator: Generator, supported: bool | None, unsupported: list[str]
) -> None:
    answer = pipe(generator).ask("What sat on the mat?")
    assert [c.supported for c in answer.claims] == [supported] and answer.unsupported == unsupported
    assert len(answer.citations) == 1  # an unsupported claim keeps its citation, flagged


def test_stream_yields_the_text_then_the_answer() -> None:
    p = pipe()
    items = list(p.stream("Which investors sold bonds and bought gold?"))
    *deltas, final = items
    assert isinstance(final, Answer) and all(isinstance(d, str) for d in deltas)
    # two articles in the index: the quote names its article
    assert "".join(deltas) == final.text == "\u201cInvestors sold bonds and bought gold.\u201d [1] (markets.txt)"
    top = p.retrieve("Which investors sold bonds and bought gold?").hits[0]
    assert final.citations[0].text == top.sentence.text


def test_an_abstention_never_calls_the_generator() -> None:
    gen = ScriptedGenerator("Made up [1].")
    p = pipe(gen)
    assert p.retrieve("Quantum zebra xylophones?").abstains
    items = list(p.stream("Quantum zebra xylophones?"))
    assert items[0] == ABSTAIN_TEXT and isinstance(items[-1], Answer)
    assert items[-1].abstained and items[-1].citations == [] and items[-1].text == ABSTAIN_TEXT
    assert gen.calls == []


def test_a_chosen_generator_that_fails_is_an_error_not_a_fallback() -> None:
    with pytest.raises(errors.GenerationInterruptedError, match="broke while it was answering"):
        pipe(Failing()).ask("Which investors sold bonds and bought gold?")


def test_llm_extractive_overrides_the_pipelines_generator() -> None:
    gen = ScriptedGenerator("Never [1].")
    answer = pipe(gen).ask("Who sold bonds and gold?", llm="extractive")
    assert answer.backend == "extractive" and gen.calls == []
