"""The answerers without a server: the extractive one, choosing one, and a reasoning model's thoughts."""

from __future__ import annotations

import pytest

from qa import config
from qa.answer import ExtractiveGenerator, Generator, fallback_notice, select_generator
from qa.answer.ollama import OllamaGenerator, ThinkFilter
from qa.answer.prompts import load_prompts
from qa.errors import ConfigError, OllamaUnavailableError
from qa.types import ABSTAIN_TEXT, Hit, Sentence


def _hits(*texts: str, gap: float = 3.0) -> list[Hit]:
    return [Hit(Sentence("d", i, 0, len(t), t), score=10.0 - gap * i, rank=i) for i, t in enumerate(texts)]


def test_extractive_quotes_the_best_sentence() -> None:
    gen = ExtractiveGenerator()
    assert isinstance(gen, Generator) and gen.name == "extractive" and not gen.writes_free_text
    assert list(gen.stream("Q?", _hits("Best one.", "Second."))) == ["\u201cBest one.\u201d [1]"]
    assert list(gen.stream("Q?", [])) == [ABSTAIN_TEXT]


def test_extractive_cites_a_runner_up_that_scores_nearly_as_well() -> None:
    text = "".join(ExtractiveGenerator().stream("Q?", _hits("Best one.", "Second.", "Third.", gap=0.5)))
    assert text == "\u201cBest one.\u201d [1] \u201cSecond.\u201d [2]"


@pytest.mark.parametrize("spec", ["extractive", "Extractive", "  extractive "])
def test_selecting_extractive_needs_no_server(spec: str) -> None:
    selection = select_generator(spec, config.resolve())
    assert isinstance(selection.generator, ExtractiveGenerator)
    assert selection.notice is None and not selection.auto


@pytest.mark.parametrize("spec", ["gpt-4", "openai:gpt-4", "ollama-ish"])
def test_unknown_llm_value(spec: str) -> None:
    with pytest.raises(ConfigError, match="auto, extractive or ollama:MODEL"):
        select_generator(spec, config.resolve())


def test_an_empty_model_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="QA_MODEL"):
        OllamaGenerator("  ", host="http://127.0.0.1:9", timeout=1, prompts=load_prompts(config.asset_dir("prompts")))


def test_ollama_declares_free_text() -> None:
    gen = OllamaGenerator("llama3.2", host="http://127.0.0.1:9", timeout=1,
                          prompts=load_prompts(config.asset_dir("prompts")))
    assert gen.writes_free_text and gen.name == "ollama:llama3.2"


def test_fallback_notice_says_what_happened() -> None:
    notice = fallback_notice(OllamaUnavailableError("http://127.0.0.1:9", "connection refused"))
    assert notice.startswith("Ollama is not reachable at http://127.0.0.1:9 (connection refused).")
    assert notice.endswith("Answered extractively.")


@pytest.mark.parametrize(
    ("chunks", "answer"),
    [
        (["<think>", "The user wants the cost.", "</think>", "\n\nIt cost 40 million euros [2]."],
         "It cost 40 million euros [2]."),
        (["  <thi", "nk>cost?</thi", "nk>It cost", " a lot [2]."], "It cost a lot [2]."),
        (["<think>a</think>", "\n", "\n", "Answer."], "Answer."),
        (["<b>Bold</b> ", "claim [2]."], "<b>Bold</b> claim [2]."),
        (["<th"], "<th"),  # only looked like the start of a think block
        (["No thoughts. ", "<think>later</think> stays"], "No thoughts. <think>later</think> stays"),
        (["<think>never closed"], "never closed"),  # never closed: not a block, what follows is the answer
    ],
)
def test_a_leading_think_block_is_not_part_of_the_answer(chunks: list[str], answer: str) -> None:
    f = ThinkFilter()
    assert "".join(f.feed(c) for c in chunks) + f.flush() == answer
