"""Pipeline: the public contract, persistence and incremental re-indexing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CountingEmbedder, HashEmbedder

import qa
from qa import Answer, Citation, Pipeline, errors
from qa.generate import ExtractiveGenerator
from qa.pipeline import normalize_history
from qa.types import Document, Turn


def test_public_surface() -> None:
    assert set(qa.__all__) >= {"answer", "Pipeline", "Answer", "Citation", "Hit", "Sentence"}
    assert callable(qa.answer)


def test_seed_question_cites_gallant(seed_pipeline: Pipeline, seed_text: str) -> None:
    res = seed_pipeline.ask("Who stayed in Washington despite the cancellation?")
    assert isinstance(res, Answer)
    assert not res.abstained
    assert "[1]" in res.text
    first = res.citations[0]
    assert isinstance(first, Citation)
    assert first.n == 1
    assert "Yoav Gallant remained in Washington" in first.text
    assert seed_text[first.start : first.end] == first.text
    assert first.doc_id == "us-israel-un-ceasefire-resolution.txt"


def test_citations_numbered_in_order_of_appearance(seed_pipeline: Pipeline) -> None:
    res = seed_pipeline.ask("How did Hamas react to the resolution?")
    numbers = [int(n) for n in __import__("re").findall(r"\[(\d+)\]", res.text)]
    assert numbers and numbers[0] == 1
    assert [c.n for c in res.citations] == list(range(1, len(res.citations) + 1))


def test_off_topic_abstains_without_citations(seed_pipeline: Pipeline) -> None:
    res = seed_pipeline.ask("How do I bake sourdough bread?")
    assert res.abstained
    assert res.citations == []
    assert res.text == "The article does not say."


def test_stream_yields_text_then_answer(seed_pipeline: Pipeline) -> None:
    items = list(seed_pipeline.stream("Who had requested the meetings?"))
    assert isinstance(items[-1], Answer)
    assert all(isinstance(i, str) for i in items[:-1])
    assert "".join(i for i in items[:-1] if isinstance(i, str))


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_refused(seed_pipeline: Pipeline, question: str) -> None:
    with pytest.raises(errors.EmptyQuestionError, match="empty"):
        seed_pipeline.ask(question)


def test_huge_question_is_refused(seed_pipeline: Pipeline) -> None:
    with pytest.raises(errors.QuestionTooLongError, match=r"100,000 characters.*limit is 2,000"):
        seed_pipeline.ask("w" * 100_000)


def test_restrict_to_documents(embedder: object) -> None:
    pipe = Pipeline.from_texts(
        {"cats": "The cat sat on the warm mat all day.", "dogs": "The dog sat on the porch all day."},
        embedder=embedder,  # type: ignore[arg-type]
        generator=ExtractiveGenerator(),
    )
    hits = pipe.retrieve("Where did the animal sit?", doc_ids=["dogs"])
    assert hits and {h.sentence.doc_id for h in hits} == {"dogs"}


def test_from_texts_persists_and_loads(tmp_path: Path) -> None:
    emb = HashEmbedder()
    pipe = Pipeline.from_texts({"a": "One fact here. Another fact there."}, index_dir=tmp_path / "ix", embedder=emb)
    assert (tmp_path / "ix" / "manifest.json").is_file()
    again = Pipeline.load(tmp_path / "ix", embedder=emb)
    assert [s.text for s in again.store.sentences] == [s.text for s in pipe.store.sentences]


def test_from_texts_in_memory_writes_nothing(tmp_path: Path) -> None:
    Pipeline.from_texts({"a": "One fact here."}, embedder=HashEmbedder())
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("texts", [{}, {"a": ""}, {"a": "   "}])
def test_empty_documents_are_refused(texts: dict[str, str]) -> None:
    with pytest.raises(errors.EmptyDocumentError):
        Pipeline.from_texts(texts, embedder=HashEmbedder())


def test_reindex_embeds_only_changed_documents(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    ix = tmp_path / "ix"
    Pipeline.from_texts({"a": "Alpha one. Alpha two.", "b": "Beta one."}, index_dir=ix, embedder=emb)
    assert sum(emb.calls) == 3
    emb.calls.clear()
    Pipeline.from_texts({"a": "Alpha one. Alpha two.", "b": "Beta one."}, index_dir=ix, embedder=emb)
    assert sum(emb.calls) == 0, "an unchanged corpus must not be embedded again"
    Pipeline.from_texts({"b": "Beta one. Beta two, changed."}, index_dir=ix, embedder=emb)
    assert sum(emb.calls) == 2
    pipe = Pipeline.load(ix, embedder=emb)
    assert sorted(pipe.documents) == ["a", "b"]
    assert [s.text for s in pipe.store.sentences if s.doc_id == "b"] == ["Beta one.", "Beta two, changed."]
    # the reused rows still hold the right vectors
    fresh = HashEmbedder().encode([s.text for s in pipe.store.sentences])
    assert np.allclose(pipe.store.vectors, fresh, atol=1e-6)


def test_add_updates_the_live_pipeline(tmp_path: Path) -> None:
    emb = HashEmbedder()
    pipe = Pipeline.from_texts({"a": "Alpha one."}, index_dir=tmp_path / "ix", embedder=emb)
    pipe.add([Document("b", "Bravo talks about submarines.")])
    assert sorted(pipe.documents) == ["a", "b"]
    assert sorted(Pipeline.load(tmp_path / "ix", embedder=emb).documents) == ["a", "b"]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (None, []),
        (
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            [Turn("user", "Hi"), Turn("assistant", "Hello")],
        ),
        ([("Q1", "A1")], [Turn("user", "Q1"), Turn("assistant", "A1")]),
        ([Turn("user", "x")], [Turn("user", "x")]),
        ([{"role": "user", "content": None}], []),
    ],
)
def test_normalize_history(history: object, expected: list[Turn]) -> None:
    assert normalize_history(history) == expected  # type: ignore[arg-type]
