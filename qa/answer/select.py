"""Choosing the answerer for ``llm="auto" | "extractive" | "ollama:MODEL"``, and what to tell the user."""

from __future__ import annotations

from dataclasses import dataclass

from qa.answer.base import Generator
from qa.answer.extractive import ExtractiveGenerator
from qa.answer.ollama import OllamaGenerator
from qa.answer.prompts import load_prompts
from qa.config import Settings
from qa.errors import ConfigError, LLMError, QAError


@dataclass(frozen=True)
class Selection:
    """The generator chosen for a request, and what the user should be told about the choice.

    ``auto`` marks a choice the user did not insist on: if the model fails before it has
    written anything, the pipeline may still answer extractively (with a notice).
    """

    generator: Generator
    notice: str | None = None
    auto: bool = False


def fallback_notice(problem: QAError) -> str:
    """What to tell the user when ``auto`` could not use Ollama."""
    return f"{problem} Answered extractively."


def select_generator(llm: str, settings: Settings) -> Selection:
    """Pick the generator for ``llm`` ("auto", "extractive" or "ollama:MODEL").

    ``auto`` probes the server (quickly, cached) and falls back with a notice; ``ollama:MODEL``
    probes and raises, so a missing server or model is reported before any retrieval work.
    """
    spec = (llm or "auto").strip()
    if spec.lower() == "extractive":
        return Selection(ExtractiveGenerator())
    if spec.lower() == "auto":
        generator = OllamaGenerator(
            settings.ollama_model,
            host=settings.ollama_host,
            timeout=settings.ollama_timeout,
            prompts=load_prompts(settings.prompts_dir),
            answer_timeout=settings.answer_timeout,
            max_chars=settings.max_answer_chars,
        )
        problem = generator.probe()
        if problem is None:
            return Selection(generator, auto=True)
        if not isinstance(problem, LLMError):  # a configuration mistake is not a reason to fall back
            raise problem
        return Selection(ExtractiveGenerator(), notice=fallback_notice(problem))
    kind, _, model = spec.partition(":")
    if kind.lower() == "ollama":
        generator = OllamaGenerator(
            model.strip() or settings.ollama_model,
            host=settings.ollama_host,
            timeout=settings.ollama_timeout,
            prompts=load_prompts(settings.prompts_dir),
            answer_timeout=settings.answer_timeout,
            max_chars=settings.max_answer_chars,
        )
        generator.check()
        return Selection(generator)
    raise ConfigError(f"Unknown --llm value {llm!r}: use auto, extractive or ollama:MODEL.")
