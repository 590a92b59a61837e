"""The chat's documents in a real browser: titles, outlets and dates in the list, the references and the source
panel; adding an article by its link (served on loopback), confirming before replacing it, and removing it.

``QA_SCREENSHOT_DIR=dir`` keeps the screenshots (``metadata.png``, ``add-by-link.png``, ``replace.png``,
``remove.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.browser import BROWSER_TESTS
from helpers.env import isolated_settings
from helpers.net import free_port
from helpers.web import Route, WebServer, benchmark_page
from qa.ui.app import build_app
from qa.ui.server import launch
from test_browser import TIMEOUT_MS, _ask, _screenshot

from qa.answer import ExtractiveGenerator
from qa.ingest.fetch import FetchPolicy
from qa.ingest.sources import read_sources
from qa.pipeline import Pipeline

pytestmark = BROWSER_TESTS
OMAR = "New York man pleads guilty to threatening to kill Rep. Ilhan Omar"
PGE = "PG&E begins new mass power shutoff over fire danger"


@pytest.fixture(scope="module")
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        server.routes["/news/omar"] = Route(benchmark_page("7a457a4f"))
        server.routes["/news/wework"] = Route(benchmark_page("06e5123e"))
        server.routes["/news/pge"] = Route(benchmark_page("d0382c0d"))
        yield server


@pytest.fixture(scope="module")
def served(embedder: Any, web: WebServer) -> Iterator[tuple[str, Pipeline]]:
    policy = FetchPolicy()
    docs = read_sources([web.url("/news/omar"), web.url("/news/wework")], max_bytes=10_000_000,
                        policy=policy).documents
    pipeline = Pipeline.from_documents(docs, embedder=embedder, generator=ExtractiveGenerator(),
                                       settings=isolated_settings())
    demo = build_app(pipeline)
    url = launch(demo, host="127.0.0.1", port=free_port())
    try:
        yield url, pipeline
    finally:
        demo.close()


@pytest.fixture
def page(browser: Any, served: tuple[str, Pipeline]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(served[0])
    pg.wait_for_selector("#qa-question textarea")
    try:
        yield pg
    finally:
        context.close()


def test_titles_outlets_and_dates_are_shown(page: Any, tmp_path: Path) -> None:
    listed = page.inner_text("#qa-doc-filter")
    assert f"{OMAR} \u2014 NBC News, 19 Nov 2019" in listed and "VentureBeat, 19 Nov 2019" in listed
    _ask(page, f"Who wrote {OMAR}?")
    bot = page.locator('#qa-chat [data-testid="bot"]').last
    assert "By Phil Helsel." in bot.inner_text()
    assert f"{OMAR} \u2014 NBC News, 19 Nov 2019" in bot.locator(".qa-ref-doc").first.inner_text()
    header = page.inner_text("#qa-sources .qa-doc-title")
    assert OMAR in header and "NBC News" in header and "by Phil Helsel" in header
    assert "published 19 November 2019" in header
    assert page.locator("#qa-sources .qa-doc-meta a").get_attribute("href").startswith("https://www.nbcnews.com/")
    assert page.inner_text("#qa-sources mark#qa-cite-1").endswith("By Phil Helsel.")
    _screenshot(page, tmp_path, "metadata.png")


def test_add_by_link_confirm_replace_and_remove(page: Any, web: WebServer, served: tuple[str, Pipeline],
                                                tmp_path: Path) -> None:
    _, pipeline = served
    link = web.url("/news/pge")
    page.fill("#qa-link textarea, #qa-link input", link)
    page.click("#qa-add-link")
    page.wait_for_selector("#qa-upload-status :text('Added')")
    assert f"{PGE} \u2014 Times Union, 20 Nov 2019" in page.inner_text("#qa-upload-status")
    page.wait_for_function("t => document.querySelector('#qa-doc-filter').innerText.includes(t)", arg=PGE)
    assert link in pipeline.documents
    _ask(page, f"When was {PGE} published?")
    answer = page.locator('#qa-chat [data-testid="bot"]').last.inner_text()
    assert "Published by Times Union on 20 November 2019." in answer
    _screenshot(page, tmp_path, "add-by-link.png")

    # the page changed: adding the link again asks before replacing the indexed version
    web.routes["/news/pge"] = Route(benchmark_page("d0382c0d").replace(b"power", b"electricity"))
    page.fill("#qa-link textarea, #qa-link input", link)
    page.click("#qa-add-link")
    page.wait_for_selector("#qa-confirm :text('Already indexed with other content')")
    assert "electricity" not in pipeline.documents[link].text
    _screenshot(page, tmp_path, "replace.png")
    page.click("#qa-replace")
    page.wait_for_selector("#qa-upload-status :text('Replaced')")
    assert "electricity" in pipeline.documents[link].text

    page.locator("#qa-doc-filter label", has_text="PG&E begins new mass").click()  # its title changed too
    page.click("#qa-remove")
    page.wait_for_selector("#qa-upload-status :text('Removed')")
    page.wait_for_function("t => !document.querySelector('#qa-doc-filter').innerText.includes(t)", arg="PG&E")
    assert link not in pipeline.documents and len(pipeline.documents) == 2
    _screenshot(page, tmp_path, "remove.png")


LIGHTHOUSE = "The lighthouse keeper on Skerry Point wrote a poem about gannets in the logbook on Sunday."
LIGHTHOUSE_Q = "What did the lighthouse keeper on Skerry Point write in the logbook?"


def _cited_documents(page: Any) -> str:
    """What the last answer cites: its references and the documents shown in the source panel."""
    refs = page.locator('#qa-chat [data-testid="bot"]').last.locator(".qa-refs")
    return (refs.inner_text() if refs.count() else "") + "\n" + page.inner_text("#qa-sources")


def test_a_removed_document_is_gone_from_answers(page: Any, served: tuple[str, Pipeline], tmp_path: Path) -> None:
    """Asked before and after its removal, a question only one document answers: first it is cited, then not."""
    _, pipeline = served
    article = tmp_path / "skerry-point.txt"
    article.write_text(LIGHTHOUSE + "\n", encoding="utf-8")
    page.set_input_files("#qa-upload input[type=file]", str(article))
    page.wait_for_selector("#qa-upload-status :text('Added')")
    # the result shows where the eye is: a toast, and the first line of the panel
    assert "Added skerry-point.txt" in page.locator('[data-testid="toast-body"]').first.inner_text()
    assert page.evaluate("""() => {
        const s = document.querySelector('#qa-upload-status').getBoundingClientRect();
        const list = document.querySelector('#qa-doc-filter').getBoundingClientRect();
        return s.bottom <= list.top; }""")
    _ask(page, LIGHTHOUSE_Q)
    assert "skerry-point.txt" in _cited_documents(page) and "gannets" in page.inner_text("#qa-sources mark")
    _screenshot(page, tmp_path, "remove-1-cited.png")

    page.locator("#qa-doc-filter label", has_text="skerry-point.txt").click()
    page.locator("#qa-remove").scroll_into_view_if_needed()
    _screenshot(page, tmp_path, "remove-2-ticked.png")
    page.click("#qa-remove")
    page.wait_for_selector("#qa-upload-status :text('Removed')")
    page.wait_for_function("() => !document.querySelector('#qa-doc-filter').innerText.includes('skerry-point')")
    assert "skerry-point.txt" not in pipeline.documents
    page.wait_for_selector("#qa-filter-row", state="hidden")  # the removed document no longer restricts questions
    _screenshot(page, tmp_path, "remove-3-removed.png")

    _ask(page, LIGHTHOUSE_Q)
    cited = _cited_documents(page)
    assert "skerry-point.txt" not in cited and "gannets" not in cited
    assert "gannets" not in page.locator('#qa-chat [data-testid="bot"]').last.inner_text()
    _screenshot(page, tmp_path, "remove-4-gone-from-answers.png")
