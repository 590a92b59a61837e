"""Answer slots: a model's answer can take minutes (up to ``QA_ANSWER_TIMEOUT``), so answers written by the
model may hold only some of the chat's answer slots; the others stay free for requests that need no model
(an extractive answer, an abstention, a refused question). With ``--llm auto``, a question that finds every
model slot taken is answered extractively at once, with a notice, instead of waiting; with an explicit
``ollama:MODEL`` it waits a few seconds for a slot, then says the model is busy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from qa.errors import ModelBusyError
from qa.pipeline import Pipeline

#: Answer slots kept free of model answers.
RESERVED = 2
BUSY_WAIT = 5.0  # how long an explicit ``ollama:MODEL`` request waits for a model slot


def busy_notice(slots: int) -> str:
    return (f"All {slots} model slots were answering other questions, so this answer was written extractively "
            "instead of waiting.")


class ModelSlots:
    """At most ``slots`` answers written by a model at once, shared by every session of one app."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self._free = threading.BoundedSemaphore(self.slots)

    @contextmanager
    def choose(self, pipeline: Pipeline, llm: str | None) -> Iterator[tuple[str | None, str | None]]:
        """Hold a model slot while answering, if the answer needs one: yields the ``llm`` to answer with
        and a notice for the user (when it could not be the model)."""
        if llm is None and pipeline.generator is not None:
            uses_model, auto = pipeline.generator.writes_free_text, False
        else:
            spec = (llm or pipeline.settings.llm).strip().lower()
            uses_model, auto = spec != "extractive", spec == "auto"
        if not uses_model:
            yield llm, None
            return
        if self._free.acquire(timeout=0 if auto else BUSY_WAIT):
            try:
                yield llm, None
            finally:
                self._free.release()
            return
        if not auto:
            raise ModelBusyError(self.slots)
        yield "extractive", busy_notice(self.slots)
