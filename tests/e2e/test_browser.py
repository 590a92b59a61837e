"""End to end in a real browser: Playwright drives Debian's Chromium against a launched chat.

Playwright's own browser download does not work here, so the system Chromium is used; the
test is skipped (with the reason) only when ``/usr/bin/chromium`` is absent.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers.browser import BROWSER_TESTS
from helpers.data import GALLANT_Q, SEED_ID
from helpers.env import isolated_settings
from helpers.net import free_port
from qa.ui.app import build_app
from qa.ui.server import launch

from qa.answer import ExtractiveGenerator, Generator
from qa.pipeline import Pipeline
from qa.types import Hit, Turn

QUESTION = GALLANT_Q
TIMEOUT_MS = 60_000

pytestmark = BROWSER_TESTS


class WordByWord(Generator):
    """The extractive answer, streamed a word at a time like an LLM, so streaming is visible."""

    writes_free_text: ClassVar[bool] = False  # it quotes, like the extractive answerer

    def __init__(self, delay: float = 0.04) -> None:
        self.inner = ExtractiveGenerator()
        self.delay = delay

    @property
    def name(self) -> str:
        return "extractive"

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        for chunk in self.inner.stream(question, sources, history):
            for word in chunk.split(" "):
                time.sleep(self.delay)
                yield word + " "


@pytest.fixture(scope="module")
def served(embedder: Any, seed_text: str) -> Iterator[tuple[str, Any]]:
    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=WordByWord(),
                                   settings=isolated_settings())
    demo = build_app(pipeline)
    url = launch(demo, host="127.0.0.1", port=free_port())
    try:
        yield url, pipeline
    finally:
        demo.close()


@pytest.fixture
def page(browser: Any, served: tuple[str, Any]) -> Iterator[Any]:
    url, _ = served
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
    pg.qa_outside = outside  # inspected by the tests: a private app loads nothing from elsewhere
    pg.goto(url)
    pg.wait_for_selector("#qa-question textarea")
    try:
        yield pg
    finally:
        context.close()


def _screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("QA_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


_ANSWERED = """n => {
  const bots = document.querySelectorAll('#qa-chat [data-testid="bot"]');
  if (bots.length !== n) return false;
  const last = bots[bots.length - 1].innerText;
  return !last.includes("\u258c") && !last.includes("Searching the articles")
    && document.querySelector("#qa-status .qa-backend") !== null;
}"""


def _bot_count(page: Any) -> int:
    return int(page.locator('#qa-chat [data-testid="bot"]').count())


def _wait_answered(page: Any, n: int) -> None:
    """Wait until the n-th answer has finished streaming (no cursor, backend shown)."""
    page.wait_for_function(_ANSWERED, arg=n)


@contextmanager
def _chat_page(browser: Any, pipeline: Pipeline, **app: Any) -> Iterator[Any]:
    """A chat of its own over ``pipeline``, served on a free port and open in a fresh browser context."""
    demo = build_app(pipeline, **app)
    url = launch(demo, port=free_port())
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(url)
        pg.wait_for_selector("#qa-question textarea")
        yield pg
    finally:
        context.close()
        demo.close()


def _ask(page: Any, question: str) -> None:
    n = _bot_count(page) + 1
    page.fill("#qa-question textarea", question)
    page.keyboard.press("Enter")
    _wait_answered(page, n)


def test_question_gets_streamed_cited_answer_with_highlighted_sentence(
    page: Any, served: tuple[str, Any], tmp_path: Path
) -> None:
    _, pipeline = served
    expected = pipeline.ask(QUESTION).citations[0]

    page.fill("#qa-question textarea", QUESTION)
    page.keyboard.press("Enter")
    # the answer arrives in pieces: a partial answer with the typing cursor is shown first
    page.wait_for_function(
        """() => { const b = document.querySelectorAll('#qa-chat [data-testid="bot"]');
                   return b.length === 1 && b[0].innerText.includes("\u258c"); }"""
    )
    _wait_answered(page, 1)

    bot = page.locator('#qa-chat [data-testid="bot"]').last
    bot_text = bot.inner_text()
    assert "[1]" in bot_text
    assert "Yoav Gallant" in bot_text
    assert page.locator("#qa-question textarea").input_value() == ""

    # the reference under the answer names the article and shows the exact cited sentence on hover ...
    ref = bot.locator(".qa-refs a.qa-ref").first
    assert ref.get_attribute("title") == expected.text and ref.inner_text() == "[1]"
    assert bot.inner_text().count(expected.text) == 1  # ... without repeating it under the answer
    # ... and the source panel highlights that same sentence, numbered 1
    mark = page.locator("#qa-sources mark#qa-cite-1")
    assert mark.locator("sup.qa-num").inner_text() == "1"
    highlighted = mark.evaluate(
        "m => Array.from(m.childNodes).filter(n => n.nodeName !== 'SUP').map(n => n.textContent).join('')"
    )
    assert highlighted == expected.text
    assert page.locator("#qa-sources mark.qa-cite").count() == len(pipeline.ask(QUESTION).citations)
    assert page.inner_text("#qa-status .qa-chip") == "quoting sentences, no language model"

    shot = _screenshot(page, tmp_path, "chat.png")
    assert shot.stat().st_size > 10_000

    # clicking the marker in the answer brings the highlighted sentence into view
    bot.locator("a.qa-ref").first.click()
    page.wait_for_timeout(700)
    assert mark.is_visible()
    assert len(page.context.pages) == 1  # the link did not open a tab
    assert page.qa_outside == []


def test_example_question_one_click_and_follow_up(page: Any) -> None:
    page.get_by_role("button", name="How did Hamas react to the resolution?").click()
    _wait_answered(page, 1)
    assert page.locator("#qa-sources mark.qa-cite", has_text="Hamas welcomed").count() == 1
    _ask(page, "What else did they express?")  # "they" is Hamas only because of the first question
    bots = page.locator('#qa-chat [data-testid="bot"]')
    assert bots.count() == 2
    assert "[1]" in bots.last.inner_text() and "expressed willingness" in bots.last.inner_text()
    assert page.locator("#qa-sources mark.qa-cite", has_text="expressed willingness").count() == 1


def test_uploaded_article_html_is_shown_as_text_never_run(page: Any, served: tuple[str, Any], tmp_path: Path) -> None:
    article = tmp_path / "lighthouse.txt"
    article.write_text(
        'The lighthouse keeper wrote <img src=x onerror="window.__qa_pwned=1"> in the logbook.\n'
        "He also wrote <script>window.__qa_pwned=2</script> beside the tide table.\n",
        encoding="utf-8",
    )
    page.set_input_files("#qa-upload input[type=file]", str(article))
    page.wait_for_selector("#qa-upload-status :text('Added')")
    assert "lighthouse.txt" in page.inner_text("#qa-doc-filter")

    page.locator("#qa-doc-filter label", has_text="lighthouse.txt").click()  # restrict to the upload
    _ask(page, "What did the lighthouse keeper write in the logbook?")
    panel = page.inner_text("#qa-sources")
    assert "<img src=x onerror=" in panel
    assert page.locator("#qa-sources img").count() == 0
    assert page.evaluate("window.__qa_pwned") is None
    _screenshot(page, tmp_path, "upload.png")


def test_notice_is_visible_when_ollama_is_unreachable(
    browser: Any, embedder: Any, seed_text: str, tmp_path: Path
) -> None:
    """conftest points OLLAMA_HOST at a closed port; in auto mode the page must say so."""
    with _chat_page(browser, Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder), llm="auto") as pg:
        assert pg.locator(".qa-example").all_inner_texts()[0] == QUESTION  # the seed article's own examples
        _ask(pg, QUESTION)
        notice = pg.locator("#qa-status .qa-notice")
        assert notice.is_visible()
        assert "Ollama" in notice.inner_text() and "--llm" not in notice.inner_text()
        assert "[1]" in pg.locator('#qa-chat [data-testid="bot"]').last.inner_text()
        _screenshot(pg, tmp_path, "notice.png")
        _ask(pg, "How did Hamas react to the resolution?")
        assert pg.locator("#qa-status .qa-notice").count() == 0  # once per conversation is enough


_STORY = (
    "Officials approved a new flood plan for the river towns on Monday. "
    "The plan follows heavy rain that damaged bridges and roads across the county in March. "
    "Engineers said the repairs would cost about $4 million and take most of the summer. "
    "Residents of the lower town will be moved to higher ground while the levees are rebuilt."
)


def test_examples_fit_a_library_without_the_seed_article(browser: Any, embedder: Any, tmp_path: Path) -> None:
    """The seed's questions would abstain over someone's own articles: the examples ask for the gist, which
    the article answers with cited sentences; they follow the library when an article is added."""
    pipeline = Pipeline.from_texts({"flood-plan.txt": _STORY}, embedder=embedder, generator=ExtractiveGenerator(),
                                   settings=isolated_settings())
    with _chat_page(browser, pipeline) as pg:
        assert pg.locator(".qa-example").all_inner_texts() == ["What is this article about?", "What happened?"]
        pg.locator(".qa-example").first.click()
        _wait_answered(pg, 1)
        answer = pg.locator('#qa-chat [data-testid="bot"]').last.inner_text()
        assert "[1]" in answer and "flood plan" in answer
        assert "does not say" not in answer

        second = tmp_path / "ferry-strike.txt"
        second.write_text("Ferry crews walked out on Friday over pay, stranding hundreds of island commuters.\n")
        pg.set_input_files("#qa-upload input[type=file]", str(second))
        pg.wait_for_selector("#qa-upload-status :text('Added')")
        pg.wait_for_selector(".qa-example:text('What are these articles about?')")
        assert pg.locator(".qa-example:visible").all_inner_texts() == [
            "What are these articles about?", "What happened?"]
