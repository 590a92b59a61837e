"""Segmentation of real articles: the seed article, and every SQuAD article split exactly as pysbd splits it."""

from __future__ import annotations

import json

import pytest
from helpers.data import GALLANT, SEED_FILE, SEEDS_DIR, SQUAD_FILE

from qa.ingest import read_documents, segment
from qa.types import Document


def test_seed_sentences_are_exact_slices(seed_text: str) -> None:
    sentences = segment(Document("seed", seed_text))
    assert len(sentences) == 14
    for i, s in enumerate(sentences):
        assert s.n == i and seed_text[s.start : s.end] == s.text and s.text == s.text.strip()
    assert sentences[7].text.startswith(GALLANT)


def test_the_seed_folder_reads_as_one_document() -> None:
    (doc,) = read_documents([SEEDS_DIR], max_bytes=10_000_000, base=SEEDS_DIR)
    assert (doc.doc_id, doc.text, doc.source) == (SEED_FILE.name, SEED_FILE.read_text(encoding="utf-8"),
                                                  str(SEED_FILE))


@pytest.fixture(scope="module")
def squad_texts() -> list[str]:
    data = json.loads(SQUAD_FILE.read_text(encoding="utf-8"))
    assert len(data["data"]) == 8
    return ["\n".join(p["context"] for p in a["paragraphs"]) for a in data["data"]]


def test_segments_are_those_of_pysbd_itself(seed_text: str, squad_texts: list[str]) -> None:
    """The fast path (pysbd's processor, then ``find``) splits exactly where ``pysbd.segment`` does."""
    import pysbd

    reference = pysbd.Segmenter(language="en", clean=False, char_span=False)
    for text in [seed_text, *squad_texts]:
        want = [piece.strip() for line in text.split("\n") if line.strip()
                for piece in reference.segment(line) if piece.strip()]
        got = segment(Document("d", text))
        assert [s.text for s in got] == want
        assert all(text[s.start : s.end] == s.text for s in got)
