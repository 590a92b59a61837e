"""The pipeline's public contract with the real embedder, and its indexes on disk (built, reused, updated)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.data import GALLANT, GALLANT_Q, SEED_FILE, SEED_ID
from helpers.fakes import CountingEmbedder, HashEmbedder

from qa import Answer, Citation, Pipeline, config, errors
from qa.answer import ExtractiveGenerator
from qa.embed.sbert import SentenceTransformerEmbedder
from qa.types import Document


def test_seed_question_cites_gallant(seed_pipeline: Pipeline, seed_text: str) -> None:
    res = seed_pipeline.ask(GALLANT_Q)
    assert isinstance(res, Answer) and not res.abstained
    assert (res.backend, res.notice, res.unsupported, res.question) == ("extractive", None, [], GALLANT_Q)
    (first,) = res.citations
    assert isinstance(first, Citation) and first.n == 1 and first.doc_id == SEED_ID
    assert first.text.startswith(GALLANT) and seed_text[first.start : first.end] == first.text
    assert res.text == f"\u201c{first.text}\u201d [1]"
    best = seed_pipeline.retrieve(GALLANT_Q).hits[0]
    assert (first.text, first.start, first.score) == (best.sentence.text, best.sentence.start, best.score)
    assert res.to_json()["citations"][0] == {"n": 1, "doc_id": SEED_ID, "sentence": first.text,
                                             "start": first.start, "end": first.end, "score": round(first.score, 4),
                                             "title": None, "published": None, "url": None, "outlet": None}


def test_off_topic_abstains_without_citations(seed_pipeline: Pipeline) -> None:
    res = seed_pipeline.ask("How do I bake sourdough bread?")
    assert res.abstained and res.citations == [] and res.text == "The article does not say."
    assert res.to_json()["abstained"] is True and res.to_json()["citations"] == []


def test_stream_yields_the_text_then_the_answer(seed_pipeline: Pipeline) -> None:
    *deltas, final = list(seed_pipeline.stream("Who had requested the meetings?"))
    assert isinstance(final, Answer) and deltas and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == final.text
    assert "President Biden had requested the meetings" in final.citations[0].text


def test_restrict_to_documents(embedder: SentenceTransformerEmbedder) -> None:
    pipe = Pipeline.from_texts(
        {"cats": "The cat sat on the warm mat all day.", "dogs": "The dog sat on the porch all day."},
        embedder=embedder, generator=ExtractiveGenerator(),
    )
    assert pipe.retrieve("Where did the cat sit?").hits[0].sentence.doc_id == "cats"
    hits = pipe.retrieve("Where did the cat sit?", doc_ids=["dogs"]).hits
    assert hits and {h.sentence.doc_id for h in hits} == {"dogs"}


# ----- on disk --------------------------------------------------------------------------------------------


def test_from_texts_persists_and_loads(tmp_path: Path) -> None:
    emb = HashEmbedder()
    pipe = Pipeline.from_texts({"a": "One fact here. Another fact there."}, index_dir=tmp_path / "ix", embedder=emb)
    assert (tmp_path / "ix" / "manifest.json").is_file() and pipe.index_dir == tmp_path / "ix"
    again = Pipeline.load(tmp_path / "ix", embedder=emb)
    assert again.index.sentences == pipe.index.sentences and again.documents == pipe.documents
    assert np.array_equal(again.index.vectors, pipe.index.vectors)
    assert again.retrieve("another fact").hits[0].sentence.text == "Another fact there."


def test_reindex_embeds_only_changed_documents(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    ix = tmp_path / "ix"
    Pipeline.from_texts({"a": "Alpha one. Alpha two.", "b": "Beta one."}, index_dir=ix, embedder=emb)
    assert emb.embedded == 3
    emb.calls.clear()
    Pipeline.from_texts({"a": "Alpha one. Alpha two.", "b": "Beta one."}, index_dir=ix, embedder=emb)
    assert emb.embedded == 0, "an unchanged corpus must not be embedded again"
    Pipeline.from_texts({"b": "Beta one. Beta two, changed."}, index_dir=ix, embedder=emb)
    assert emb.embedded == 2
    pipe = Pipeline.load(ix, embedder=emb)
    assert sorted(pipe.documents) == ["a", "b"]
    assert [s.text for s in pipe.index.sentences if s.doc_id == "b"] == ["Beta one.", "Beta two, changed."]
    fresh = HashEmbedder().encode([s.text for s in pipe.index.sentences])  # the reused rows hold the right vectors
    assert np.allclose(pipe.index.vectors, fresh, atol=1e-6)
    emb.calls.clear()
    rebuilt = Pipeline.from_texts({"b": "Beta one. Beta two, changed."}, index_dir=ix, embedder=emb, rebuild=True)
    assert sorted(rebuilt.documents) == ["b"] and emb.embedded == 2


def test_add_updates_the_live_pipeline_and_the_disk(tmp_path: Path) -> None:
    emb = HashEmbedder()
    pipe = Pipeline.from_texts({"a": "Alpha one."}, index_dir=tmp_path / "ix", embedder=emb)
    pipe.add([Document("b", "Bravo talks about submarines.")])
    assert sorted(pipe.documents) == ["a", "b"]
    assert pipe.retrieve("submarines").hits[0].sentence.doc_id == "b"
    assert sorted(Pipeline.load(tmp_path / "ix", embedder=emb).documents) == ["a", "b"]
    pipe.add([Document("a", "Alpha was replaced.")])
    loaded = Pipeline.load(tmp_path / "ix", embedder=emb)
    assert loaded.documents["a"].text == "Alpha was replaced." and len(loaded.index) == 2


def test_from_paths_reads_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "story.md").write_text("# Trains\nThe new line opened in Lyon.", encoding="utf-8")
    (tmp_path / "page.html").write_text("<p>The <b>bridge</b> cost a lot.</p><script>x()</script>", encoding="utf-8")
    pipe = Pipeline.from_paths([tmp_path / "in", tmp_path / "page.html"], embedder=HashEmbedder(), base=tmp_path)
    assert sorted(pipe.documents) == ["in/story.md", "page.html"]  # paths relative to where indexing started
    assert pipe.documents["page.html"].text == "The bridge cost a lot."
    assert pipe.documents["in/story.md"].text == "Trains\n\nThe new line opened in Lyon."  # no Markdown left
    assert pipe.documents["in/story.md"].title == "Trains"
    big = tmp_path / "big.txt"
    big.write_text("word " * 300, encoding="utf-8")
    with pytest.raises(errors.FileTooLargeError):
        Pipeline.from_paths([big], embedder=HashEmbedder(), settings=config.resolve(max_file_mb=0.001))


def test_default_builds_the_seed_index_once_then_loads_it(tmp_path: Path) -> None:
    settings = config.resolve(index_dir=tmp_path / "default")
    emb = CountingEmbedder()
    first = Pipeline.default(settings=settings, embedder=emb)
    assert list(first.documents) == [SEED_ID] and first.documents[SEED_ID].text == SEED_FILE.read_text()
    assert (tmp_path / "default" / "manifest.json").is_file() and emb.embedded == len(first.index)
    emb.calls.clear()
    again = Pipeline.default(settings=settings, embedder=emb)
    assert emb.embedded == 0 and again.index.sentences == first.index.sentences
    manifest = json.loads((tmp_path / "default" / "manifest.json").read_text())
    assert manifest["model"] == HashEmbedder.name


def test_an_index_from_another_embedder_is_refused(tmp_path: Path) -> None:
    Pipeline.from_texts({"a": "Alpha one."}, index_dir=tmp_path / "ix", embedder=HashEmbedder())

    class Other(HashEmbedder):
        name = "another-model"

    with pytest.raises(errors.IndexMismatchError, match="another-model") as err:
        Pipeline.load(tmp_path / "ix", embedder=Other())
    assert HashEmbedder.name in str(err.value) and "--rebuild" in str(err.value)
    with pytest.raises(errors.IndexNotFoundError):
        Pipeline.load(tmp_path / "nothing", embedder=HashEmbedder())
