"""Stage 5: write the answer text from the retrieved sentences. The generator is the second swappable edge.

A generator sees the question, the sources numbered ``[1]…[k]`` in the order given, and the
conversation so far; it yields text deltas that may contain ``[n]`` markers. ``qa.cite``
turns that text into a checked ``Answer``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from qa.config import Settings
from qa.errors import ConfigError
from qa.types import Hit, Turn

ABSTAIN_TEXT = "The article does not say."


@runtime_checkable
class Generator(Protocol):
    """Anything that streams answer text for a question and numbered sources."""

    @property
    def name(self) -> str: ...

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]: ...


class ExtractiveGenerator:
    """No LLM: quote the best-supporting sentence. Never touches the network."""

    name = "extractive"

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        if not sources:
            yield ABSTAIN_TEXT
            return
        yield f"\u201c{sources[0].sentence.text}\u201d [1]"


@dataclass(frozen=True)
class Selection:
    """The generator chosen for a request, and what the user should be told about the choice."""

    generator: Generator
    notice: str | None = None


def select_generator(llm: str, settings: Settings) -> Selection:
    """Pick the generator for ``llm`` ("auto", "extractive" or "ollama:MODEL")."""
    if llm == "extractive":
        return Selection(ExtractiveGenerator())
    if llm == "auto":
        return Selection(ExtractiveGenerator(), notice="Ollama support is not available yet; answered extractively.")
    raise ConfigError(f"Unknown --llm value {llm!r}: use auto, extractive or ollama:MODEL.")
