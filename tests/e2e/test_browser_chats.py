"""Saved conversations in a real browser: ask, reload, restart the server, open a past conversation and
click its citation; rename and delete; the compact references under an answer.

The browser keeps only an anonymous id; the conversations are in a SQLite file under ``tmp_path``. The
restarted server listens on the same port, as ``qa serve`` would, since the browser's storage is per origin.
``QA_SCREENSHOT_DIR=dir`` keeps the screenshots (``chats-1-answer.png`` ... ``chats-6-deleted.png``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.browser import BROWSER_TESTS
from helpers.data import GALLANT_Q, SEED_ID
from helpers.env import isolated_settings
from helpers.fake_ollama import number_of
from helpers.net import free_port
from helpers.procs import stop, until_serving
from qa.ui.app import build_app
from qa.ui.server import launch
from test_browser import TIMEOUT_MS, _ask, _screenshot, _wait_answered

from qa.answer import ExtractiveGenerator
from qa.pipeline import Pipeline

pytestmark = BROWSER_TESTS
HAMAS_Q = "How did Hamas react to the resolution?"
VOTE_Q = "What did the U.S. representative do during the vote?"
RELATED_Q = "What did Hamas say about the hostages in Rafah on Tuesday?"  # not answered, but on the topic
BOTS = '#qa-chat [data-testid="bot"]'


@pytest.fixture(scope="module")
def pipeline(embedder: Any, seed_text: str) -> Pipeline:
    return Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=ExtractiveGenerator(),
                               settings=isolated_settings())


def _listed(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#qa-conversations label").all_inner_texts()]


def _wait_listed(page: Any, n: int) -> None:
    page.wait_for_function("n => document.querySelectorAll('#qa-conversations label').length === n", arg=n)


def _wait_bots(page: Any, n: int) -> None:
    page.wait_for_function(f"n => document.querySelectorAll('{BOTS}').length === n", arg=n)


def test_conversations_survive_reload_and_restart(browser: Any, pipeline: Pipeline, tmp_path: Path) -> None:
    db = tmp_path / "chats.sqlite3"
    port = free_port()
    demo = build_app(pipeline, chats_db=db)
    url = launch(demo, host="127.0.0.1", port=port)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        _ask(page, GALLANT_Q)
        expected = pipeline.ask(GALLANT_Q).citations[0]
        bot = page.locator(BOTS).last
        # the reply, then one compact reference naming the article; the quoted sentence is not repeated
        assert bot.inner_text().count(expected.text) == 1
        refs = bot.locator(".qa-refs li")
        assert refs.count() == 1 and refs.first.inner_text().startswith("[1] ")
        assert SEED_ID in refs.first.inner_text()
        assert bot.locator(".qa-refs a.qa-ref").first.get_attribute("title") == expected.text
        assert "quoting sentences, no language model" in page.inner_text("#qa-status .qa-chip")
        _ask(page, HAMAS_Q)
        _wait_listed(page, 1)
        assert _listed(page) == [GALLANT_Q]
        _screenshot(page, tmp_path, "chats-1-answer.png")

        page.reload()
        _wait_bots(page, 2)
        assert GALLANT_Q in page.inner_text("#qa-chat") and "Hamas welcomed" in page.locator(BOTS).last.inner_text()
        assert page.locator("#qa-sources mark.qa-cite", has_text="Hamas welcomed").count() == 1  # its sources
        _wait_listed(page, 1)
        _screenshot(page, tmp_path, "chats-2-reloaded.png")
    finally:
        page.close()  # (an open page would reload itself when the server comes back, racing ours)
        demo.close()

    demo = build_app(pipeline, chats_db=db)  # a new server process would see the same file and port
    launch(demo, host="127.0.0.1", port=port)
    page = context.new_page()  # the same browser profile, so the same stored id
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        _wait_bots(page, 2)
        assert _listed(page) == [GALLANT_Q]
        _screenshot(page, tmp_path, "chats-3-restarted.png")

        page.click("#qa-new-chat")
        _wait_bots(page, 0)
        _ask(page, VOTE_Q)
        _wait_listed(page, 2)
        assert _listed(page) == [VOTE_Q, GALLANT_Q]  # most recent first

        # open the first conversation and click the first answer's citation
        page.locator("#qa-conversations label", has_text=GALLANT_Q).click()
        page.wait_for_function(
            "q => document.querySelector('#qa-chat').innerText.includes(q)", arg=GALLANT_Q
        )
        _wait_bots(page, 2)
        page.locator(BOTS).first.locator(".qa-refs a.qa-ref").first.click()
        page.wait_for_function(
            "t => { const m = document.querySelector('#qa-sources mark#qa-cite-1');"
            " return m !== null && m.innerText.includes(t); }",
            arg=expected.text[:40],
        )
        assert page.locator("#qa-sources mark#qa-cite-1").is_visible()
        _screenshot(page, tmp_path, "chats-4-opened.png")

        page.click("#qa-conv-edit button")  # the "Rename or delete" fold
        renamed = "() => document.querySelector('#qa-conversations').innerText.includes('Gallant in Washington')"
        for attempt in (1, 2):
            # The fold mounts its title box on first opening and sets its value a few frames later: in about one
            # run in five the test's typing came first and was overwritten with the old title (read back from the
            # box 30 ms after the fill; a person starts typing far later). A second try always took; the rename
            # itself is what is checked here. Waiting for the box's title before typing did not close the race.
            page.fill("#qa-conv-title input, #qa-conv-title textarea", "Gallant in Washington")
            page.click("#qa-conv-rename")
            try:
                page.wait_for_function(renamed, timeout=10_000 if attempt == 1 else TIMEOUT_MS)
                break
            except Exception:
                if attempt == 2:
                    raise
        assert _listed(page) == [VOTE_Q, "Gallant in Washington"]
        _screenshot(page, tmp_path, "chats-5-renamed.png")

        page.click("#qa-conv-delete")
        _wait_listed(page, 1)
        _wait_bots(page, 0)
        assert _listed(page) == [VOTE_Q]
        page.reload()
        _wait_listed(page, 1)
        _wait_bots(page, 1)  # the remaining conversation opens after a reload
        _screenshot(page, tmp_path, "chats-6-deleted.png")
    finally:
        context.close()
        demo.close()


def test_other_browsers_do_not_see_a_conversation(browser: Any, pipeline: Pipeline, tmp_path: Path) -> None:
    demo = build_app(pipeline, chats_db=tmp_path / "chats.sqlite3")
    url = launch(demo, host="127.0.0.1", port=free_port())
    first, second = (browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2))
    try:
        one = first.new_page()
        one.set_default_timeout(TIMEOUT_MS)
        one.goto(url)
        one.wait_for_selector("#qa-question textarea")
        _ask(one, GALLANT_Q)
        _wait_listed(one, 1)
        two = second.new_page()
        two.set_default_timeout(TIMEOUT_MS)
        two.goto(url)
        two.wait_for_selector("#qa-question textarea")
        _ask(two, HAMAS_Q)
        _wait_listed(two, 1)
        assert _listed(two) == [HAMAS_Q]
        two.reload()
        _wait_answered(two, 1)
        assert GALLANT_Q not in two.inner_text("#qa-chat")

        # ticking a document shows, next to the input, that questions search only it
        assert two.locator("#qa-filter-chip").is_hidden()
        two.locator("#qa-doc-filter label", has_text=SEED_ID).click()
        two.wait_for_selector("#qa-filter-chip .qa-filter")
        assert two.inner_text("#qa-filter-chip") == f"Searching only: {SEED_ID}"
        _screenshot(two, tmp_path, "chats-9-filter-chip.png")
        two.click("#qa-search-all")
        two.wait_for_selector("#qa-filter-chip", state="hidden")
        assert two.locator("#qa-doc-filter input:checked").count() == 0

        # a question the article does not answer: said plainly, the nearest passages folded underneath
        near = pipeline.ask(RELATED_Q).related
        assert near  # on the topic, not an answer
        _ask(two, RELATED_Q)
        bot = two.locator(BOTS).last
        assert bot.inner_text().startswith("Not in the articles.")
        related = bot.locator("details.qa-related")
        assert related.locator("li").first.is_hidden()
        related.locator("summary").click()
        assert related.locator("li").count() == len(near) and related.locator("li").first.is_visible()
        assert near[0].text in related.locator("li").first.inner_text()
        _screenshot(two, tmp_path, "chats-10-abstention.png")
    finally:
        first.close()
        second.close()
        demo.close()


def test_stop_ask_again_and_copy_with_references(
    browser: Any, embedder: Any, seed_text: str, fake_ollama: Any, tmp_path: Path
) -> None:
    """A model on loopback that writes slowly (the fake Ollama spaces its chunks out): Stop keeps what was written,
    Ask again answers anew, Copy puts the answer and its references on the clipboard."""
    words = " ".join(f"Word{i}." for i in range(40))

    def reply(request: dict[str, Any]) -> str:
        n = number_of(request, "Gallant")
        return f"Yoav Gallant remained in Washington for meetings with top U.S. officials [{n}]. {words}"

    server = fake_ollama(reply, delay=0.15)
    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder,
                                   settings=isolated_settings(ollama_host=server.host))
    demo = build_app(pipeline, llm="ollama:llama3.2:latest", chats_db=tmp_path / "chats.sqlite3")
    url = launch(demo, host="127.0.0.1", port=free_port())
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        page.fill("#qa-question textarea", GALLANT_Q)
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => document.querySelector('{BOTS}')?.innerText.includes('Word3.')")
        assert page.locator("#qa-stop").is_visible() and not page.locator("#qa-send").is_visible()
        page.click("#qa-stop")
        page.wait_for_function(f"() => document.querySelector('{BOTS}')?.innerText.includes('Stopped.')")
        page.wait_for_selector("#qa-send", state="visible")
        stopped = page.locator(BOTS).last.inner_text()
        assert "Yoav Gallant remained" in stopped and "Word39" not in stopped and "\u258c" not in stopped
        assert page.locator("#qa-stop").is_hidden()
        _screenshot(page, tmp_path, "chats-7-stopped.png")
        page.reload()  # the stopped exchange was saved as it was
        _wait_bots(page, 1)
        assert "Stopped." in page.locator(BOTS).last.inner_text()

        page.click("#qa-again")
        page.wait_for_function(f"() => document.querySelector('{BOTS}')?.innerText.includes('Word39.')")
        _wait_answered(page, 1)
        assert page.inner_text("#qa-chat").count(GALLANT_Q) == 1  # the question was asked again, not added
        assert page.inner_text("#qa-status .qa-chip") == "Ollama \u00b7 llama3.2:latest"
        bot = page.locator(BOTS).last
        assert "Stopped." not in bot.inner_text()
        bot.locator("a.qa-copy").click()
        page.wait_for_function(f"() => document.querySelector('{BOTS} a.qa-copy').innerText === 'Copied'")
        copied = page.evaluate("navigator.clipboard.readText()")
        first, _, refs = copied.partition("\n\n")
        # the filler sentences support nothing: the copy keeps the check's verdict on each, in words
        assert first.startswith("Yoav Gallant remained in Washington") and first.endswith("Word39. (not verified)")
        assert "officials [1]. Word0. (not verified)" in first, copied
        assert refs.startswith(f"[1] {SEED_ID}: \u201c") and "Yoav Gallant remained in Washington" in refs, copied
        _screenshot(page, tmp_path, "chats-8-asked-again.png")
    finally:
        context.close()
        demo.close()


_OVERLAPS = """() => {
  const sel = "button, textarea, input:not([type=checkbox]):not([type=radio]), select, a.qa-ref, a.qa-copy, "
    + "#qa-conversations label, #qa-doc-filter label, [data-testid=bot], [data-testid=user], .qa-chip";
  const items = Array.from(document.querySelectorAll(sel)).filter(e => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 1 && r.height > 1 && r.right > 0 && s.visibility !== "hidden" && s.display !== "none";
  });
  const found = [];
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      const a = items[i], b = items[j];
      if (a.contains(b) || b.contains(a)) continue;
      const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 1 && h > 1) {
        const name = e => e.tagName + (e.id ? "#" + e.id : "") + "." + String(e.className).split(" ")[0]
          + " " + (e.innerText || e.getAttribute("aria-label") || "").slice(0, 30);
        found.push(name(a) + " | " + name(b));
      }
    }
  }
  return {count: items.length, found: found};
}"""


# the sidebar slides: wait until it is fully in or out of the screen
_SIDEBAR_AT_REST = """() => { const r = document.querySelector("#qa-sidebar").getBoundingClientRect();
  return r.right <= 1 || r.left >= -1; }"""


def _phone_shot(page: Any, tmp_path: Path, name: str) -> None:
    """What the phone's screen shows (a full-page picture misplaces the sliding sidebar)."""
    page.screenshot(path=str(tmp_path / name))
    extra = os.environ.get("QA_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(extra) / name)


def test_a_phone_sized_screen_has_no_overlapping_controls(
    browser: Any, pipeline: Pipeline, tmp_path: Path
) -> None:
    demo = build_app(pipeline, chats_db=tmp_path / "chats.sqlite3")
    url = launch(demo, host="127.0.0.1", port=free_port())
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        page.wait_for_selector("#qa-sidebar:not(.open)")  # the conversation list starts folded on a phone
        _ask(page, GALLANT_Q)
        _ask(page, HAMAS_Q)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
        boxes = page.evaluate(_OVERLAPS)
        assert boxes["count"] > 15 and boxes["found"] == []
        page.locator("#qa-chat").scroll_into_view_if_needed()
        _phone_shot(page, tmp_path, "phone-1-chat.png")

        page.click("#qa-sidebar .toggle-button")
        page.wait_for_selector("#qa-sidebar.open")
        page.wait_for_selector("#qa-conversations label")
        page.wait_for_function(_SIDEBAR_AT_REST)
        _phone_shot(page, tmp_path, "phone-2-conversations.png")
        page.click("#qa-new-chat")  # choosing closes the list again, showing the (new, empty) chat
        page.wait_for_selector("#qa-sidebar:not(.open)")
        page.wait_for_function(_SIDEBAR_AT_REST)
        _wait_bots(page, 0)
        _phone_shot(page, tmp_path, "phone-3-new-chat.png")
    finally:
        context.close()
        demo.close()


def _serve(port: int) -> subprocess.Popen[str]:
    """``qa serve`` in its own process (index and conversations under the test's QA_INDEX_DIR), once it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--port", str(port), "--llm", "extractive"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return until_serving(proc, f"http://127.0.0.1:{port}/", lambda: proc.stderr.read() if proc.stderr else "")


def test_qa_serve_keeps_conversations_across_a_process_restart(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real command, stopped and started again: the browser's conversation comes back."""
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    port = free_port()
    proc = _serve(port)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#qa-question textarea")
        _ask(page, GALLANT_Q)
        _wait_listed(page, 1)
        page.close()  # (an open page would reload itself when the server comes back, racing ours)
        stop(proc)
        assert (tmp_path / "index" / "chats.sqlite3").is_file()
        proc = _serve(port)
        page = context.new_page()  # the same browser profile, so the same stored id
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"http://127.0.0.1:{port}/")
        _wait_bots(page, 1)
        assert _listed(page) == [GALLANT_Q] and "Yoav Gallant" in page.locator(BOTS).last.inner_text()
        _screenshot(page, tmp_path, "chats-11-qa-serve-restarted.png")
    finally:
        context.close()
        stop(proc)
