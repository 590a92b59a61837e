"""One validation, one message: a refused question reads the same through every interface: ``qa ask`` (exit
2), ``Pipeline.ask``, the chat's answer handler and its ``/ask`` API."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from helpers.env import isolated_settings
from helpers.fakes import HashEmbedder, ScriptedGenerator
from helpers.net import free_port
from qa.ui.app import ChatHandlers, build_app
from qa.ui.server import launch

from qa import errors
from qa.pipeline import Pipeline

CASES = [
    ("empty", " ", str(errors.EmptyQuestionError())),
    ("whitespace", "\n\t ", str(errors.EmptyQuestionError())),
    ("too long", "w" * 2_001, str(errors.QuestionTooLongError(2_001, 2_000))),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pipeline, Client]]:
    settings = isolated_settings(index_dir=tmp_path_factory.mktemp("ix"))
    pipeline = Pipeline.from_texts({"a.txt": "The cat sat on the mat."}, embedder=HashEmbedder(),
                                   generator=ScriptedGenerator("Never [1]."), settings=settings)
    demo = build_app(pipeline)
    url = launch(demo, port=free_port())
    try:
        yield pipeline, Client(url, verbose=False)
    finally:
        demo.close()


def _cli(question: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "never-built")}
    return subprocess.run([sys.executable, "-m", "qa", "ask", question], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize(("case", "question", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_refused_question_reads_the_same_everywhere(
    served: tuple[Pipeline, Client], tmp_path: Path, case: str, question: str, message: str
) -> None:
    pipeline, client = served

    proc = _cli(question, tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: {message}\n"
    assert not (tmp_path / "never-built").exists()  # refused before any index is opened or built

    with pytest.raises(errors.InputError) as err:
        pipeline.ask(question)
    assert str(err.value) == message

    (step,) = list(ChatHandlers(pipeline, llm=None, max_file_bytes=1_000).respond(question, [], []))
    status: Any = step[4]
    assert html.escape(message) in status and "qa-error" in status

    with pytest.raises(AppError) as app_err:
        client.predict(question, api_name="/ask")
    assert str(app_err.value) == message
    generator = pipeline.generator
    assert isinstance(generator, ScriptedGenerator) and generator.calls == []
