"""In a real browser (Debian's Chromium through Playwright): a web address in an answer is a link to that
address (no stray backslashes), and the page runs under its Content-Security-Policy without violations."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest
from helpers.browser import BROWSER_TESTS, CHROMIUM
from helpers.env import isolated_settings
from helpers.net import free_port
from qa.ui.app import build_app
from qa.ui.server import launch

from qa.answer import Generator
from qa.pipeline import Pipeline
from qa.types import Hit, Turn

URL = "https://example.org/news/some_story-2024_03.html?id=7&ref=a_b"
ARTICLE = f"The full report is at {URL} for everyone.\nThe council met on Tuesday to vote on the budget.\n"

pytestmark = BROWSER_TESTS


class LinkingReply(Generator):
    """A model's reply that gives the address, as a model would."""

    writes_free_text: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return "linking"

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        yield f"The report is at {URL}. [1]"


def test_addresses_in_answers_are_working_links_and_nothing_breaks_the_policy(embedder: Any) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    pipeline = Pipeline.from_texts({"report.txt": ARTICLE}, embedder=embedder, generator=LinkingReply(),
                                   settings=isolated_settings())
    demo = build_app(pipeline)
    url = launch(demo, host="127.0.0.1", port=free_port())
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.set_default_timeout(60_000)
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(url)
            page.wait_for_selector("#qa-question textarea")
            page.fill("#qa-question textarea", "Where is the full report?")
            page.keyboard.press("Enter")
            page.wait_for_selector('#qa-chat [data-testid="bot"] a[href^="https://example.org"]')
            hrefs = page.eval_on_selector_all('#qa-chat [data-testid="bot"] a[href^="https://example.org"]',
                                              "links => links.map(a => a.getAttribute('href'))")
            texts = page.eval_on_selector_all('#qa-chat [data-testid="bot"] a[href^="https://example.org"]',
                                              "links => links.map(a => a.textContent)")
            assert set(hrefs) == {URL} and set(texts) == {URL}
            assert "\\" not in page.inner_text('#qa-chat [data-testid="bot"]')
            assert violations == []
            browser.close()
    finally:
        demo.close()
