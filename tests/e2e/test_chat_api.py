"""The web chat over HTTP: its API through gradio_client against a launched app, uploads, the login, and
``qa serve``'s refusals.

The app is launched once per module on 127.0.0.1 with a free port, over an in-memory pipeline of the seed
article with the extractive generator: no network beyond loopback, nothing written outside tmp_path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers.data import GALLANT, GALLANT_Q, ROOT, SEED_ID, SEEDS_DIR
from helpers.env import isolated_settings
from helpers.fake_ollama import FakeOllama
from helpers.net import free_port
from qa.ui.app import build_app
from qa.ui.server import launch, login_check

from qa import config
from qa.answer import ExtractiveGenerator
from qa.cli import main
from qa.pipeline import Pipeline
from qa.question import check_history
from qa.retrieve import standalone_query

UPLOAD_LIMIT = 200_000
HAMAS = "Hamas welcomed the resolution and expressed willingness to engage in a prisoner exchange process."


@dataclass
class RunningApp:
    url: str
    client: Client
    pipeline: Pipeline
    demo: Any


def _pipeline(embedder: Any, seed_text: str) -> Pipeline:
    return Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=ExtractiveGenerator(),
                               settings=isolated_settings())


@pytest.fixture(scope="module")
def app(embedder: Any, seed_text: str) -> Iterator[RunningApp]:
    pipeline = _pipeline(embedder, seed_text)
    demo = build_app(pipeline, max_file_bytes=UPLOAD_LIMIT)
    url = launch(demo, host="127.0.0.1", port=free_port())
    assert url.startswith("http://127.0.0.1:")
    try:
        yield RunningApp(url, Client(url, verbose=False), pipeline, demo)
    finally:
        demo.close()


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ----- the ask endpoint -------------------------------------------------------------------


def test_ask_returns_cited_answer(app: RunningApp, seed_text: str) -> None:
    result = app.client.predict(GALLANT_Q, api_name="/ask")
    assert result["abstained"] is False
    assert result["backend"] == "extractive"
    assert "[1]" in result["answer"]
    first = result["citations"][0]
    assert first["n"] == 1 and first["doc_id"] == SEED_ID
    assert first["sentence"].startswith(GALLANT)
    assert seed_text[first["start"] : first["end"]] == first["sentence"]
    assert set(result) >= {"answer", "abstained", "backend", "notice", "citations"}


def test_off_topic_question_abstains(app: RunningApp) -> None:
    result = app.client.predict("What is the boiling point of mercury in Kelvin?", api_name="/ask")
    assert result["abstained"] is True
    assert result["citations"] == []


def test_a_follow_up_resolves_its_pronoun_from_the_history(app: RunningApp) -> None:
    """ "What else did they express?" names nobody: with the history, "they" is Hamas and the
    willingness sentence is cited; without it, the same question abstains (far below the threshold)."""
    first = app.client.predict("What did Hamas welcome?", api_name="/ask")
    assert first["citations"][0]["sentence"] == HAMAS
    history = [
        {"role": "user", "content": "What did Hamas welcome?"},
        {"role": "assistant", "content": first["answer"]},
    ]
    follow_up = "What else did they express?"
    assert standalone_query(follow_up, check_history(history)) == "What else did Hamas express?"
    result = app.client.predict(follow_up, None, history, api_name="/ask")
    assert not result["abstained"] and result["citations"][0]["sentence"] == HAMAS
    assert app.client.predict(follow_up, api_name="/ask")["abstained"] is True
    with pytest.raises(AppError, match=r"history\[0\] must have a role"):
        app.client.predict(follow_up, None, [{"role": "robot", "content": "x"}], api_name="/ask")


@pytest.mark.parametrize(
    ("question", "expected"),
    [("   ", "empty"), ("x" * 100_000, "limit")],
)
def test_bad_question_is_a_clear_error(app: RunningApp, question: str, expected: str) -> None:
    with pytest.raises(AppError, match=expected):
        app.client.predict(question, api_name="/ask")


def test_unknown_doc_id_is_a_clear_error(app: RunningApp) -> None:
    with pytest.raises(AppError, match=r"Not in the index: nope\.txt"):
        app.client.predict(GALLANT_Q, ["nope.txt"], api_name="/ask")


def test_concurrent_asks_are_all_cited(app: RunningApp) -> None:
    def one(_: int) -> dict[str, Any]:
        return Client(app.url, verbose=False).predict(GALLANT_Q, api_name="/ask")  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(6)))
    assert all(not r["abstained"] and "Yoav Gallant" in r["citations"][0]["sentence"] for r in results)


# ----- uploads through the API ------------------------------------------------------------


def test_upload_adds_a_document_and_questions_can_be_restricted_to_it(app: RunningApp, tmp_path: Path) -> None:
    path = _write(
        tmp_path, "garden.txt", b"Tomatoes grow best in full sun.\nGardeners water the tomatoes every morning."
    )
    status, *_ = app.client.predict([handle_file(path)], [], api_name="/upload")
    assert "Added" in status and "garden.txt" in status
    assert "garden.txt" in app.pipeline.documents
    result = app.client.predict("When do gardeners water the tomatoes?", ["garden.txt"], api_name="/ask")
    assert not result["abstained"]
    assert {c["doc_id"] for c in result["citations"]} == {"garden.txt"}
    # restricted to the seed article, the garden is never cited
    result = app.client.predict(GALLANT_Q, [SEED_ID], api_name="/ask")
    assert {c["doc_id"] for c in result["citations"]} == {SEED_ID}


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("binary.txt", b"\x00\x01\x02\xff" * 32, "not UTF-8"),
        ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8"),
        ("blank.md", b"  \n\t\n", "no text"),
        ("scripts-only.html", b"<html><script>alert(1)</script></html>", "no text"),
    ],
)
def test_upload_rejects_bad_files_with_a_reason(
    app: RunningApp, tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    before = set(app.pipeline.documents)
    status, *_ = app.client.predict([handle_file(_write(tmp_path, name, data))], [], api_name="/upload")
    assert "Rejected" in status and name in status and reason in status
    assert set(app.pipeline.documents) == before


def test_upload_rejects_unsupported_type(app: RunningApp, tmp_path: Path) -> None:
    with pytest.raises(AppError, match="Invalid file type"):
        app.client.predict([handle_file(_write(tmp_path, "report.docx", b"PK\x03\x04"))], [], api_name="/upload")


def test_upload_over_the_size_limit_is_refused_by_the_server(app: RunningApp) -> None:
    r = httpx.post(app.url + "gradio_api/upload", files={"files": ("big.txt", b"a " * UPLOAD_LIMIT)})
    assert r.status_code == 413


def test_upload_name_with_path_uses_only_the_base_name(app: RunningApp, tmp_path: Path) -> None:
    r = httpx.post(
        app.url + "gradio_api/upload",
        files={"files": ("../../etc/passwd.txt", b"The lighthouse keeper counts ships at dawn.")},
    )
    r.raise_for_status()
    stored = r.json()[0]
    assert Path(stored).name == "passwd.txt"
    status, *_ = app.client.predict(
        [{"path": stored, "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd.txt"}], [], api_name="/upload"
    )
    assert "passwd.txt" in app.pipeline.documents and "Added" in status
    assert not any("/" in d or ".." in d for d in app.pipeline.documents)


def test_upload_cannot_name_a_server_file(app: RunningApp, tmp_path: Path) -> None:
    """Raw HTTP (gradio_client would upload the file itself): a path not uploaded is refused."""
    secret = _write(tmp_path, "secret.txt", b"The vault code is swordfish.")
    r = httpx.post(
        app.url + "gradio_api/call/upload",
        json={"data": [[{"path": secret, "meta": {"_type": "gradio.FileData"}}], []]},
    )
    r.raise_for_status()
    events = httpx.get(app.url + f"gradio_api/call/upload/{r.json()['event_id']}", timeout=30).text
    assert "event: error" in events
    assert "secret.txt" not in app.pipeline.documents


# ----- serving -----------------------------------------------------------------------------------


def test_qa_serve_refuses_remote_host_without_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from qa.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", str(free_port())]) != 0
    assert "--allow-remote" in capsys.readouterr().err


def test_qa_serve_reports_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ix = tmp_path / "ix"
    assert main(["index", str(SEEDS_DIR), "--index-dir", str(ix)]) == 0
    capsys.readouterr()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve", "--port", str(busy.getsockname()[1]), "--index-dir", str(ix)]) == 2
    assert "Choose another --port" in capsys.readouterr().err


def test_login_is_required_when_a_password_is_set(embedder: Any, seed_text: str) -> None:
    demo = build_app(_pipeline(embedder, seed_text))
    auth = login_check(config.resolve(auth_password="correct horse"))
    url = launch(demo, port=free_port(), auth=auth)
    try:
        assert httpx.get(url + "config").status_code in (401, 403)
        with pytest.raises(ValueError):
            Client(url, verbose=False)
        client = Client(url, auth=("qa", "correct horse"), verbose=False)
        assert not client.predict(GALLANT_Q, api_name="/ask")["abstained"]
    finally:
        demo.close()


def test_gradio_is_not_imported_by_the_library() -> None:
    code = "import sys, qa, qa.pipeline, qa.cli, qa.ingest; assert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ), cwd=ROOT, timeout=120)


def test_build_app_registers_the_named_ask_endpoint(app: RunningApp) -> None:
    api = app.client.view_api(return_format="dict", print_info=False)
    assert "/ask" in api["named_endpoints"] and "/upload" in api["named_endpoints"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["question", "doc_ids", "history"]
    assert "/docs" in api["named_endpoints"]


def test_docs_lists_the_indexed_documents(app: RunningApp) -> None:
    listed = app.client.predict(api_name="/docs")
    assert [d["id"] for d in listed] == list(app.pipeline.documents)
    seed = next(d for d in listed if d["id"] == SEED_ID)
    assert set(seed) == {"id", "title", "outlet", "published", "url", "sentences"}
    assert seed["sentences"] == len(app.pipeline.index.rows_of(SEED_ID)) > 5


def _raw_call(url: str, name: str, body: object) -> tuple[int, str]:
    """A script's raw HTTP call: POST the arguments, then read the event stream of the result."""
    posted = httpx.post(f"{url}gradio_api/call/{name}", json=body, timeout=60)
    if posted.status_code != 200:
        return posted.status_code, posted.json()["error"]
    result = httpx.get(f"{url}gradio_api/call/{name}/{posted.json()['event_id']}", timeout=60)
    return result.status_code, result.text


def test_raw_http_calls_missing_arguments_get_a_clear_error(app: RunningApp) -> None:
    status, error = _raw_call(app.url, "ask", {"data": []})
    assert status == 422 and error.startswith("Missing argument 'question'.") and "doc_ids" in error
    status, error = _raw_call(app.url, "ask", {})
    assert status == 422 and "Missing argument 'question'" in error
    status, stream = _raw_call(app.url, "ask", {"data": [GALLANT_Q]})  # the optional arguments may be left out
    assert status == 200 and "event: complete" in stream and GALLANT in stream
    status, stream = _raw_call(app.url, "docs", {"data": []})
    assert status == 200 and "event: complete" in stream and SEED_ID in stream


# ----- faults of the Ollama backend, seen through the running app ---------------------------


@pytest.mark.parametrize(
    ("mode", "message"), [("disconnect", "broke while it was answering"), ("hang", "did not answer")]
)
def test_ollama_failure_is_a_clear_error_and_the_app_keeps_serving(
    embedder: Any, seed_text: str, mode: str, message: str
) -> None:
    """Ollama dies mid-stream or hangs: the user gets a clear message in bounded time, then service goes on."""
    reply = "Yoav Gallant, the Israeli Defense Minister, remained in Washington for meetings [1]."
    with FakeOllama(lambda body: reply, mode=mode, disconnect_after=3) as fake:  # type: ignore[arg-type]
        settings = config.resolve(ollama_host=fake.host, ollama_timeout=1.0)
        pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, settings=settings)
        demo = build_app(pipeline, llm="ollama:llama3.2", max_file_bytes=UPLOAD_LIMIT)
        url = launch(demo, host="127.0.0.1", port=free_port())
        try:
            client = Client(url, verbose=False)
            t0 = time.monotonic()
            with pytest.raises(AppError, match=message):
                client.predict(GALLANT_Q, api_name="/ask")
            assert time.monotonic() - t0 < 30, "the failure must surface in bounded time"
            fake.mode = "ok"
            result = client.predict(GALLANT_Q, api_name="/ask")
            assert result["backend"] == "ollama:llama3.2"
            assert result["citations"][0]["sentence"].startswith(GALLANT)
        finally:
            fake.release.set()
            demo.close()
