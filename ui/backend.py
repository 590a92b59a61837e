"""The answerer picker next to the backend chip: automatic, quoting, or one of the models Ollama reports."""

from __future__ import annotations

from typing import Any

import gradio as gr

from qa.answer.ollama import list_models

AUTO = ("Automatic", "auto")  # the picker's info line says what it means
QUOTE = ("Quote sentences", "extractive")
INFO = "Automatic: Ollama's model when it runs, else quoting sentences."


def model_choices(current: str, ollama_host: str) -> list[tuple[str, str]]:
    """``(label, llm)`` pairs: automatic, quoting, then each pulled model (``GET /api/tags``), and ``current``
    when it is none of those (a model configured but not pulled: choosing it explains the problem)."""
    choices = [AUTO, QUOTE] + [(f"Ollama \u00b7 {m}", f"ollama:{m}") for m in list_models(ollama_host) or []]
    if current not in {value for _, value in choices}:
        choices.append((current, current))
    return choices


def picker_update(current: str, ollama_host: str) -> Any:
    """The picker's choices as the page loads (Ollama may have started or pulled a model since)."""
    return gr.update(choices=model_choices(current, ollama_host), value=current)
