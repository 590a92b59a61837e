"""What a generator is: it streams answer text, with ``[n]`` markers, for a question and numbered sources.

Two exist: ``ExtractiveGenerator`` (no model, never touches the network) and ``OllamaGenerator``
(a local LLM through the official ``ollama`` client). What they can do is declared:
``writes_free_text`` says the text is a model's own words, so every claim in it is checked
against the sources; the extractive answerer only quotes them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import ClassVar

from qa.types import Hit, Turn


class Generator(ABC):
    """Streams answer text for a question and the numbered sources ``[1]…[k]`` in the order given."""

    #: Whether the text is written by a model (and so must be checked claim by claim against the sources).
    writes_free_text: ClassVar[bool] = True

    @property
    @abstractmethod
    def name(self) -> str:
        """What answered, as shown to the user: ``extractive`` or ``ollama:MODEL``."""

    @abstractmethod
    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        """Text deltas of the answer; they may contain ``[n]`` markers pointing at ``sources``."""
