"""The extractive answerer: no model, no network; it quotes the best-supporting sentence."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

from qa.answer.base import Generator
from qa.types import ABSTAIN_TEXT, Hit, Turn


class ExtractiveGenerator(Generator):
    """No LLM: quote the best-supporting sentence. Never touches the network."""

    writes_free_text: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return "extractive"

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        if not sources:
            yield ABSTAIN_TEXT
            return
        yield f"\u201c{sources[0].sentence.text}\u201d [1]"
