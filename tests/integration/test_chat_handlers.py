"""The chat's event handlers without a server, over the seed article with the real embedder: streamed
answers, their sources, errors shown in the chat, follow-up questions, and the Ollama notice."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.data import GALLANT, GALLANT_Q, SEED_ID
from helpers.env import isolated_settings
from helpers.fakes import ScriptedGenerator
from qa.ui import render
from qa.ui.app import ChatHandlers
from qa.ui.backend import AUTO, QUOTE, model_choices

from qa import config
from qa.answer import ExtractiveGenerator, Generator
from qa.errors import GenerationInterruptedError
from qa.pipeline import Pipeline

UPLOAD_LIMIT = 200_000
RELATED_Q = "What did Hamas say about the hostages in Rafah on Tuesday?"  # not answered, but on the topic
HAMAS = "Hamas welcomed the resolution and expressed willingness to engage in a prisoner exchange process."


def _handlers(embedder: Any, seed_text: str, generator: Generator | None = None) -> ChatHandlers:
    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder,
                                   generator=generator or ExtractiveGenerator(), settings=isolated_settings())
    return ChatHandlers(pipeline, llm=None, max_file_bytes=UPLOAD_LIMIT)


@pytest.fixture(scope="module")
def handlers(embedder: Any, seed_text: str) -> ChatHandlers:
    return _handlers(embedder, seed_text)


def _final(h: ChatHandlers, question: str, turns: list[Any] | None = None, selected: list[str] | None = None) -> Any:
    *_, last = h.respond(question, turns or [], selected or [])
    return last


def test_respond_streams_then_shows_sources(handlers: ChatHandlers) -> None:
    steps = list(handlers.respond(GALLANT_Q, [], []))
    assert steps[0][0] == ""  # the question box is cleared at once
    _box, chat, turns, sources, status = steps[-1]
    assert [t["role"] for t in turns] == ["user", "assistant"]
    answer = turns[1]["answer"]
    assert answer is not None and answer.citations[0].text.startswith(GALLANT)
    assert turns[1]["content"] == answer.text and not turns[1]["error"]
    assert "[1]" in chat[-1]["content"] and chat[0]["content"] == render.escape_markdown(GALLANT_Q)
    assert 'id="qa-cite-1"' in sources and "Yoav Gallant" in sources
    assert "extractive" in status


def test_a_follow_up_resolves_its_pronoun_from_the_chat(handlers: ChatHandlers) -> None:
    """ "What else did they express?" only makes sense after "What did Hamas welcome?": with the history
    the pronoun becomes Hamas and the willingness sentence is cited; alone, the question abstains (its
    confidence is far below the threshold, not at its edge, so the test does not hang on a rounding)."""
    *_, (_, _, turns, _, _) = handlers.respond("What did Hamas welcome?", [], [])
    assert turns[1]["answer"].citations[0].text == HAMAS
    *_, (_, _, turns2, sources, _) = handlers.respond("What else did they express?", turns, [])
    assert len(turns2) == 4
    follow_up = turns2[3]["answer"]
    assert not follow_up.abstained and follow_up.citations[0].text == HAMAS
    assert "expressed willingness" in sources
    *_, (_, _, alone, _, _) = handlers.respond("What else did they express?", [], [])
    assert alone[1]["answer"].abstained


def test_respond_streams_partial_answers(embedder: Any, seed_text: str) -> None:
    h = _handlers(embedder, seed_text, ScriptedGenerator("Yoav Gallant ", "remained in Washington ", "[1]."))
    steps = list(h.respond(GALLANT_Q, [], []))
    partial = [step[1][-1]["content"] for step in steps[1:-1]]
    assert len(partial) == 3 and all(p.endswith("\u258c") for p in partial)
    assert partial[0].startswith("Yoav Gallant") and "Washington" in partial[1]
    final = steps[-1][1][-1]["content"]
    assert "\u258c" not in final and "[1]</a>" in final and "fake-llm" in steps[-1][4]


@pytest.mark.parametrize(
    ("question", "message"),
    [("   ", "The question is empty. Type a question"), ("x" * 100_000, "100,000 characters long; the limit is 2,000")],
)
def test_a_refused_question_is_an_error_under_the_chat(handlers: ChatHandlers, question: str, message: str) -> None:
    """Checked before anything is shown: the chat is unchanged and the question stays in the box to be fixed."""
    (only,) = list(handlers.respond(question, [], []))
    box, chat, turns, _, status = only
    assert turns == [] and box != "" and chat == {"__type__": "update"} and box == {"__type__": "update"}
    assert "qa-error" in status and message in status


def test_a_failed_answer_is_shown_in_the_chat_and_not_sent_as_history(embedder: Any, seed_text: str) -> None:
    class Broken(ScriptedGenerator):
        def stream(self, question: str, sources: Any, history: Any = ()) -> Any:
            yield "Half"
            raise GenerationInterruptedError("http://127.0.0.1:9", "gone")

    h = _handlers(embedder, seed_text, Broken())
    *_, (_, chat, turns, _, status) = h.respond(GALLANT_Q, [], [])
    assert [t["error"] for t in turns] == [True, True] and "qa-error" in status
    assert chat[-1]["content"].startswith("**Error:** The connection to Ollama")
    ok = _handlers(embedder, seed_text, ScriptedGenerator("Yoav Gallant remained in Washington [1]."))
    gen = ok.pipeline.generator
    *_, (_, _, turns2, _, _) = ok.respond(GALLANT_Q, turns, [])
    assert turns2[-1]["answer"] is not None and not turns2[-1]["error"]
    assert isinstance(gen, ScriptedGenerator) and gen.calls[0][2] == ()  # failed turns are not history


def test_a_long_question_is_shown_truncated(embedder: Any, seed_text: str) -> None:
    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=ExtractiveGenerator(),
                                   settings=config.resolve(max_question_chars=100_000))
    h = ChatHandlers(pipeline, llm=None, max_file_bytes=UPLOAD_LIMIT)
    *_, (_, chat, turns, _, _) = h.respond(GALLANT_Q + " " + "x" * 10_000, [], [])
    assert len(turns[0]["content"]) > 10_000 and len(chat[0]["content"]) < 3_000


def test_an_unknown_document_filter_is_an_error_in_the_chat(handlers: ChatHandlers) -> None:
    *_, (_, chat, turns, _, status) = handlers.respond(GALLANT_Q, [], ["nope.txt"])
    assert turns[-1]["error"] and "Not in the index: nope.txt" in chat[-1]["content"] and "qa-error" in status
    *_, (_, _, ok, _, _) = handlers.respond(GALLANT_Q, [], [SEED_ID])
    assert ok[-1]["answer"].citations[0].doc_id == SEED_ID


def test_old_answer_sources_can_be_shown_again(handlers: ChatHandlers) -> None:
    *_, (_, _, turns, _, _) = handlers.respond(GALLANT_Q, [], [])

    class Evt:
        index = 1

    class UserMessage:
        index = (0, 0)

    sources, status = handlers.show_message_sources(turns, Evt())  # type: ignore[arg-type]
    assert "Yoav Gallant" in sources and "extractive" in status
    assert handlers.show_message_sources(turns, UserMessage()) == (  # type: ignore[arg-type]
        handlers.show_message_sources([], Evt())  # type: ignore[arg-type]
    )


def test_auto_mode_without_ollama_shows_a_notice(embedder: Any, seed_text: str) -> None:
    """conftest points OLLAMA_HOST at a closed port: auto mode must answer anyway and say why."""
    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder)
    h = ChatHandlers(pipeline, llm="auto", max_file_bytes=UPLOAD_LIMIT)
    result = h.ask(GALLANT_Q)
    assert result["backend"] == "extractive" and result["citations"]
    assert result["notice"].startswith("Ollama is not reachable at http://127.0.0.1:9")
    *_, (_, _, turns, _, status) = h.respond(GALLANT_Q, [], [])
    assert "qa-notice" in status and render.OLLAMA_HINT in status and "--llm" not in render.OLLAMA_HINT
    assert render.escape(str(result["notice"])) in status  # the details, as the hint's tooltip
    assert "quoting sentences, no language model" in status
    *_, (_, _, _, _, again) = h.respond(GALLANT_Q, turns, [])
    assert "qa-notice" not in again  # the hint is shown once per conversation


def test_the_answerer_picked_in_the_page_is_used(embedder: Any, seed_text: str, fake_ollama: Any) -> None:
    """The picker lists what Ollama reports; left as it was, the app's own answerer answers (here the pipeline's
    scripted one); a model picked there answers through Ollama."""
    server = fake_ollama("Gallant stayed in Washington [1].", models=("llama3.2:latest", "qwen2.5:3b"))
    assert model_choices("auto", server.host) == [
        AUTO, QUOTE, ("Ollama \u00b7 llama3.2:latest", "ollama:llama3.2:latest"),
        ("Ollama \u00b7 qwen2.5:3b", "ollama:qwen2.5:3b"),
    ]
    assert model_choices("ollama:gone", config.resolve().ollama_host) == [AUTO, QUOTE, ("ollama:gone", "ollama:gone")]
    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=ScriptedGenerator("Own [1]."),
                                   settings=isolated_settings(ollama_host=server.host))
    h = ChatHandlers(pipeline, llm=None, max_file_bytes=UPLOAD_LIMIT)
    *_, (_, _, turns, _, _) = h.respond(GALLANT_Q, [], [], h.picked_by_default)
    assert turns[-1]["answer"].text.startswith("Own") and not server.chat_requests
    *_, (_, _, turns, _, status) = h.respond(GALLANT_Q, [], [], "ollama:qwen2.5:3b")
    assert turns[-1]["answer"].backend == "ollama:qwen2.5:3b" and "Ollama \u00b7 qwen2.5:3b" in status
    assert [r["model"] for r in server.chat_requests] == ["qwen2.5:3b"]


def test_an_abstention_shows_related_passages_folded(handlers: ChatHandlers) -> None:
    *_, (_, chat, turns, _, _) = handlers.respond(RELATED_Q, [], [])
    answer = turns[-1]["answer"]
    assert answer.abstained and answer.related
    shown = chat[-1]["content"]
    assert shown.startswith('<div class="qa-abstain"><strong>Not in the articles.</strong>')
    assert f"Related passages ({len(answer.related)}), not an answer" in shown
    assert shown.count("<li>") == len(answer.related) and answer.related[0].text in shown
    *_, (_, chat, turns, _, _) = handlers.respond("What is the boiling point of mercury?", [], [])
    assert turns[-1]["answer"].abstained and "<details" not in chat[-1]["content"]  # nothing on the topic
