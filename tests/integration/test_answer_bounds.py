"""A whole answer is bounded, in time and in characters, whatever the model sends; and what a reasoning model
sends is never lost to an unclosed ``<think>``. The model is a fake Ollama server on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from helpers.fake_ollama import FakeOllama

from qa import config
from qa.answer import select_generator
from qa.answer.prompts import load_prompts
from qa.errors import AnswerTimeoutError, AnswerTooLongError
from qa.ingest import segment
from qa.types import Document, Hit

PROMPTS = load_prompts(config.asset_dir("prompts"))
SENTENCES = segment(Document("bridge.txt", "The bridge cost 40 million euros. It took three years to build."))
HITS = [Hit(s, score=1.0 - i / 10, rank=i) for i, s in enumerate(SENTENCES)]


def _stream(host: str, **limits: float) -> str:
    generator = select_generator("ollama:llama3.2", config.resolve(ollama_host=host, ollama_timeout=5, **limits))
    return "".join(generator.generator.stream("What did the bridge cost?", HITS))


def test_a_slow_model_is_stopped_at_the_answer_deadline(fake_ollama: Callable[..., FakeOllama]) -> None:
    """One word every 0.3 s for 60 words: each read is quick, so ``QA_OLLAMA_TIMEOUT`` never fired and the
    answer ran to the end (a model sending a token a second ran 150 s). ``QA_ANSWER_TIMEOUT`` bounds it."""
    fake = fake_ollama("The bridge cost 40 million euros [1]. " * 10, delay=0.3)
    t0 = time.monotonic()
    with pytest.raises(AnswerTimeoutError, match=r"still answering after 2 s.*QA_ANSWER_TIMEOUT"):
        _stream(fake.host, answer_timeout=2)
    assert time.monotonic() - t0 < 6


def test_an_endless_reply_is_stopped_at_the_character_limit(fake_ollama: Callable[..., FakeOllama]) -> None:
    """A 200,000-character reply was accepted whole."""
    fake = fake_ollama(["The bridge cost 40 million euros [1]. " * 50] * 110)  # ~209,000 characters
    with pytest.raises(AnswerTooLongError, match=r"more than 20,000 characters.*QA_MAX_ANSWER_CHARS"):
        _stream(fake.host)
    short = "The bridge cost 40 million euros [1]."
    assert _stream(fake_ollama([short]).host) == short


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        (["<think>", "The bridge cost ", "40 million euros [1]."], "The bridge cost 40 million euros [1]."),
        (["<think>\n\n", "The bridge cost 40 million euros [1]."], "The bridge cost 40 million euros [1]."),
        (["<think>hmm", "</think>", "The bridge cost 40 million euros [1]."], "The bridge cost 40 million euros [1]."),
        (["<thi"], "<thi"),
    ],
)
def test_an_unterminated_think_keeps_the_answer(
    fake_ollama: Callable[..., FakeOllama], reply: list[str], answer: str
) -> None:
    """A ``<think>`` that is never closed swallowed the whole answer."""
    assert _stream(fake_ollama(reply).host) == answer


@pytest.mark.parametrize(
    ("env", "message"),
    [("QA_ANSWER_TIMEOUT", "answer_timeout must be a finite positive number"),
     ("QA_MAX_ANSWER_CHARS", "max_answer_chars must be a finite positive number")],
)
def test_the_bounds_are_settings(monkeypatch: pytest.MonkeyPatch, env: str, message: str) -> None:
    monkeypatch.setenv(env, "7")
    settings = config.resolve()
    assert (settings.answer_timeout, settings.max_answer_chars)[env == "QA_MAX_ANSWER_CHARS"] == 7
    monkeypatch.setenv(env, "nan")
    with pytest.raises(config.ConfigError, match=message):
        config.resolve()
