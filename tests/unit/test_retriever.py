"""The retriever over an in-memory index with fake embedders: what runs depends on what the embedder
declares, the rerank reads stored tokens, and the work per question is bounded by the candidates."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.fakes import CountingTokenEmbedder, HashEmbedder, TokenHashEmbedder

from qa.index import FaissIndex
from qa.ingest import SEGMENTER_NAME
from qa.retrieve import RetrievalConfig, Retriever
from qa.types import Document, Retrieval

SENTENCES = [
    "The cat sat on the mat.",
    "Markets fell sharply on Monday.",
    "The central bank raised rates in 2023.",
    "Investors sold bonds and bought gold.",
]
DOC = Document("d", " ".join(SENTENCES))


def _without_tokens(index: FaissIndex) -> FaissIndex:
    """The same index as one written before token codes were stored."""
    return FaissIndex(list(index.documents.values()), index.sentences, index.vectors, model=index.model,
                      segmenter=index.segmenter, chunking=index.chunking, index=index.index)


def test_without_token_embeddings_stage_one_decides(fake_embedder: HashEmbedder) -> None:
    index = FaissIndex.build([DOC], fake_embedder)
    retriever = Retriever(index, fake_embedder)
    assert not fake_embedder.can_encode_tokens and not retriever.reranks and index.tokens is None
    result = retriever.search("Who sold bonds?", 3)
    assert isinstance(result, Retrieval) and result.query == "Who sold bonds?"
    assert [h.rank for h in result.hits] == [0, 1, 2]
    assert result.hits[0].sentence.text == SENTENCES[3]
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert result.abstains is (result.confidence < result.threshold)


def test_with_token_embeddings_the_rerank_runs_on_stored_tokens() -> None:
    embedder = CountingTokenEmbedder()
    index = FaissIndex.build([DOC], embedder)
    assert index.tokens is not None and len(index.tokens) == len(index)
    embedder.token_texts.clear()
    retriever = Retriever(index, embedder)
    assert retriever.reranks
    result = retriever.search("Who sold bonds?", 3)
    assert result.hits[0].sentence.text == SENTENCES[3]
    assert embedder.token_texts == ["Who sold bonds?"]  # only the question: the sentences' tokens are stored


def test_without_stored_tokens_the_rerank_encodes_only_what_it_rescores() -> None:
    text = "\n".join(f"Sentence number {i} talks about topic {i % 97} and item {i}." for i in range(2000))
    embedder = CountingTokenEmbedder()
    index = _without_tokens(FaissIndex.build([Document("big", text)], embedder))
    config = RetrievalConfig(candidates=50)
    retriever = Retriever(index, embedder, config)
    embedder.token_texts.clear()
    result = retriever.search("What about topic 42 and item 1242?", 5)
    assert result.hits[0].sentence.text == "Sentence number 1242 talks about topic 78 and item 1242."
    rescored = config.rerank_top + config.rerank_next
    assert 1 < len(embedder.token_texts) <= 1 + 3 * rescored  # the question, the rescored rows and their neighbours
    embedder.token_texts.clear()
    retriever.search("What about topic 42 and item 1242?", 5)
    assert embedder.token_texts == ["What about topic 42 and item 1242?"]  # sentence tokens are cached


def test_the_rerank_can_be_turned_off() -> None:
    embedder = CountingTokenEmbedder()
    index = FaissIndex.build([DOC], embedder)
    embedder.token_texts.clear()
    retriever = Retriever(index, embedder, RetrievalConfig(rerank=False))
    assert not retriever.reranks
    assert retriever.search("Who sold bonds?", 2).hits[0].sentence.text == SENTENCES[3]
    assert embedder.token_texts == []


def test_per_query_work_is_bounded_by_the_candidates(fake_embedder: HashEmbedder) -> None:
    text = "\n".join(f"Sentence number {i} talks about topic {i % 97} and item {i}." for i in range(5000))
    index = FaissIndex.build([Document("big", text)], fake_embedder)
    retriever = Retriever(index, fake_embedder, RetrievalConfig(candidates=50))
    cand = retriever.candidates("What about topic 42 and item 4242?", 5)
    assert len(cand) <= 2 * 50 + 10 < len(index)  # dense top, BM25 top, and the sentence after the best few
    assert cand.features.shape[0] == len(cand.rows) == len(cand.next_index)
    assert retriever.search("What about topic 42 and item 4242?", 5).hits


def test_doc_filter_ranks_only_allowed_documents(fake_embedder: HashEmbedder) -> None:
    index = FaissIndex.build([Document("a", SENTENCES[0]), Document("b", " ".join(SENTENCES[1:]))], fake_embedder)
    retriever = Retriever(index, fake_embedder)
    hits = retriever.search("cat mat", 5, doc_ids=["b"]).hits
    assert hits and {h.sentence.doc_id for h in hits} == {"b"}
    assert retriever.search("cat mat", 5).hits[0].sentence.doc_id == "a"
    assert retriever.search("cat mat", 5, doc_ids=["nowhere"]).abstains


def test_an_empty_index_abstains(fake_embedder: HashEmbedder) -> None:
    empty = FaissIndex([], [], np.zeros((0, fake_embedder.dim), dtype=np.float32), model=fake_embedder.name,
                       segmenter=SEGMENTER_NAME, chunking={})
    result = Retriever(empty, fake_embedder).search("Anything?", 5)
    assert result.hits == () and result.abstains


def test_with_index_keeps_the_token_cache() -> None:
    embedder = TokenHashEmbedder()
    first = Retriever(FaissIndex.build([DOC], embedder), embedder)
    grown_index = first.index.with_documents([Document("e", "Gold prices rose.")], embedder)
    grown = first.with_index(grown_index)
    assert grown.tokens is first.tokens and grown.index is grown_index and grown.config is first.config
    assert {h.sentence.doc_id for h in grown.search("gold prices", 5).hits} >= {"e"}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_k_bounds_the_hits(fake_embedder: HashEmbedder, k: int) -> None:
    index = FaissIndex.build([DOC], fake_embedder)
    assert len(Retriever(index, fake_embedder).search("markets bank bonds", k).hits) == min(k, len(SENTENCES))
