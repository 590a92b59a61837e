"""A chat served to other machines with a login (``qa serve --host 0.0.0.0 --allow-remote``, ``QA_AUTH_PASSWORD``):
its library is read-only for the people who log in unless the operator passes ``--allow-uploads``, and every
change is in the server's log with the user's name. The real command in its own process, the real login page in
Chromium, and the named API over HTTP as a script would call it.

``QA_SCREENSHOT_DIR=dir`` keeps the screenshot (``shared-read-only.png``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file
from helpers.browser import CHROMIUM
from helpers.data import SEED_ID
from helpers.net import free_port
from helpers.procs import stop, until_serving
from test_browser import TIMEOUT_MS, _screenshot

USER, PASSWORD = "alice", "correct horse battery"
NOTICE = "The library on Elm Street closes at six on Saturdays."


def _serve(port: int, log: Path, *flags: str) -> subprocess.Popen[str]:
    """``qa serve`` beyond loopback with a login, its stderr (the server's log) into ``log``, once it answers."""
    env = {**os.environ, "QA_AUTH_USER": USER, "QA_AUTH_PASSWORD": PASSWORD}
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--host", "0.0.0.0", "--allow-remote",
                                 "--port", str(port), "--llm", "extractive", *flags],
                                stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
    return until_serving(proc, f"http://127.0.0.1:{port}/", log.read_text)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start ``qa serve`` (stopped at the end of the test); the index is the seed article's, in the test's folder."""
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    started: list[subprocess.Popen[str]] = []

    def start(log: Path, *flags: str) -> str:
        port = free_port()
        started.append(_serve(port, log, *flags))
        return f"http://127.0.0.1:{port}/"

    yield start
    for proc in started:
        stop(proc)


def _upload(client: Client, path: Path) -> str:
    status, *_ = client.predict([handle_file(str(path))], [], api_name="/upload")
    return str(status)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium")
def test_without_allow_uploads_the_library_is_read_only_for_logged_in_users(
    server: Any, browser: Any, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    url = server(log)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#qa-question textarea")
        note = page.locator("#qa-read-only")
        note.scroll_into_view_if_needed()
        assert "Read-only." in note.inner_text() and "has not allowed adding or removing" in note.inner_text()
        assert page.locator("#qa-doc-filter label").count() == 1  # the list is still there, for filtering
        for hidden in ("#qa-upload", "#qa-link", "#qa-add-link", "#qa-remove"):
            assert page.locator(hidden).count() == 0 or not page.locator(hidden).is_visible(), hidden
        _screenshot(page, tmp_path, "shared-read-only.png")
    finally:
        context.close()

    # a script skips the page: the server itself refuses
    upload = tmp_path / "notice.txt"
    upload.write_text(NOTICE, encoding="utf-8")
    client = Client(url, auth=(USER, PASSWORD), verbose=False)
    assert "Not changed" in _upload(client, upload)
    status, *_ = client.predict([SEED_ID], api_name="/remove")
    assert "Not changed" in status
    assert [d["id"] for d in client.predict(api_name="/docs")] == [SEED_ID]
    text = log.read_text()
    assert "refused: alice tried to upload 1 file(s)" in text and "refused: alice tried to remove documents" in text
    assert "the documents are read-only for its users (--allow-uploads lets them add and remove)" in text


def test_with_allow_uploads_a_logged_in_user_adds_and_removes_and_the_log_names_them(
    server: Any, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    url = server(log, "--allow-uploads")
    upload = tmp_path / "notice.txt"
    upload.write_text(NOTICE, encoding="utf-8")
    client = Client(url, auth=(USER, PASSWORD), verbose=False)
    assert "Added <strong>notice.txt" in _upload(client, upload)
    answer = client.predict("When does the library on Elm Street close?", api_name="/ask")
    assert answer["citations"][0]["doc_id"] == "notice.txt"
    status, *_ = client.predict(["notice.txt"], api_name="/remove")
    assert "Removed" in status
    assert [d["id"] for d in client.predict(api_name="/docs")] == [SEED_ID]
    lines = log.read_text().splitlines()
    changes = [line.split(" qa.ui.library: ", 1)[1] for line in lines if " qa.ui.library: " in line]
    assert changes == ["added by alice: 'notice.txt' (notice.txt)", "removed by alice: 'notice.txt' (notice.txt)"]
    assert any("INFO qa.ui.library: added by alice" in line for line in lines)  # with the time, one line each
