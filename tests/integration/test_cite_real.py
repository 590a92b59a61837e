"""Citations with the real embedder on the seed article: extractive answers cite the best hit, and the
claim check tells supported claims from invented ones."""

from __future__ import annotations

import pytest

from qa.cite import build_answer
from qa.embed.sbert import SentenceTransformerEmbedder
from qa.pipeline import Pipeline


@pytest.mark.parametrize(
    "question",
    [
        "Who stayed in Washington despite the cancellation?",
        "Why did Netanyahu cancel the delegation to Washington?",
        "What did Hamas welcome?",
    ],
)
def test_seed_answers_cite_the_best_hit_first(seed_pipeline: Pipeline, question: str) -> None:
    answer = seed_pipeline.ask(question, llm="extractive")
    best = seed_pipeline.retrieve(question).hits[0].sentence
    assert answer.backend == "extractive" and answer.unsupported == []
    assert (answer.citations[0].text, answer.citations[0].start) == (best.text, best.start)
    assert answer.text == f"\u201c{best.text}\u201d [1]"


@pytest.mark.parametrize(
    ("claim", "supported"),
    [
        ("Israeli Defense Minister Yoav Gallant remained in Washington despite the cancellation.", True),
        ("Yoav Gallant stayed in Washington.", True),
        ("The U.S. representative abstained, which allowed the resolution to pass.", True),
        ("Gallant met the Chinese foreign minister in Beijing.", False),
        ("The stock market rose sharply on Tuesday.", False),
        ("The resolution was vetoed by Russia.", False),
    ],
)
def test_real_embedder_separates_supported_from_invented_claims(
    seed_pipeline: Pipeline, embedder: SentenceTransformerEmbedder, claim: str, supported: bool
) -> None:
    hits = seed_pipeline.retrieve("Who stayed in Washington, and how did the resolution pass?", 8).hits
    answer = build_answer("Who stayed in Washington?", claim, hits, backend="t", embedder=embedder)
    assert (answer.unsupported == []) is supported
    assert bool(answer.citations) is supported
    assert answer.unsupported == ([] if supported else [claim])
