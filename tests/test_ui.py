"""The web chat: its API through gradio_client against a launched app, plus its pure parts.

The app is launched once per module on 127.0.0.1 with an ephemeral port, over an in-memory
pipeline of the seed article with the extractive generator: no network, nothing on disk.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from qa.errors import ConfigError, DocumentError, EmptyDocumentError, FileTooLargeError, UnsupportedFileTypeError
from qa.types import Answer, Citation, Document
from ui import render
from ui.app import ChatHandlers, auth_from_env, build_app, check_host, is_loopback, launch
from ui.uploads import base_name, read_upload, read_uploads

ROOT = Path(__file__).resolve().parent.parent
SEED_ID = "us-israel-un-ceasefire-resolution.txt"
UPLOAD_LIMIT = 200_000
GALLANT_Q = "Who stayed in Washington despite the cancellation?"


def free_port() -> int:
    """An ephemeral port on loopback (Gradio reports port 0 literally, so pick one first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningApp:
    url: str
    client: Client
    pipeline: Any
    demo: Any


def _pipeline(embedder: Any, seed_text: str) -> Any:
    from qa.generate import ExtractiveGenerator
    from qa.pipeline import Pipeline

    return Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=ExtractiveGenerator())


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
    assert "Yoav Gallant" in first["sentence"]
    assert seed_text[first["start"] : first["end"]] == first["sentence"]
    assert set(result) >= {"answer", "abstained", "backend", "notice", "citations"}


def test_off_topic_question_abstains(app: RunningApp) -> None:
    result = app.client.predict("What is the boiling point of mercury in Kelvin?", api_name="/ask")
    assert result["abstained"] is True
    assert result["citations"] == []


def test_follow_up_uses_history(app: RunningApp) -> None:
    history = [
        {"role": "user", "content": GALLANT_Q},
        {"role": "assistant", "content": "Yoav Gallant [1]"},
    ]
    result = app.client.predict("What did he reiterate?", None, history, api_name="/ask")
    assert not result["abstained"]
    assert result["citations"]


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


def test_auto_mode_without_ollama_shows_a_notice(embedder: Any, seed_text: str) -> None:
    """conftest points OLLAMA_HOST at a closed port: auto mode must answer anyway and say why."""
    from qa.pipeline import Pipeline

    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder)
    h = ChatHandlers(pipeline, llm="auto", max_file_bytes=UPLOAD_LIMIT)
    result = h.ask(GALLANT_Q)
    assert result["notice"] and result["citations"]
    *_, (_, _, _turns, _, status) = h.respond(GALLANT_Q, [], [])
    assert "qa-notice" in status and render.escape(str(result["notice"])) in status
    assert result["backend"] in status


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
        app.client.predict([handle_file(_write(tmp_path, "report.pdf", b"%PDF-1.4"))], [], api_name="/upload")


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


# ----- handlers, without the server -------------------------------------------------------


def _handlers(embedder: Any, seed_text: str) -> ChatHandlers:
    return ChatHandlers(_pipeline(embedder, seed_text), llm=None, max_file_bytes=UPLOAD_LIMIT)


def test_respond_streams_then_shows_sources(embedder: Any, seed_text: str) -> None:
    h = _handlers(embedder, seed_text)
    steps = list(h.respond(GALLANT_Q, [], []))
    assert steps[0][0] == ""  # the question box is cleared at once
    _box, chat, turns, sources, status = steps[-1]
    assert [t["role"] for t in turns] == ["user", "assistant"]
    answer = turns[1]["answer"]
    assert answer is not None and "Yoav Gallant" in answer.citations[0].text
    assert "[1]" in chat[-1]["content"]
    assert 'id="qa-cite-1"' in sources and "Yoav Gallant" in sources
    assert "extractive" in status
    # a follow-up carries the history
    *_, (_, _chat2, turns2, _, _) = h.respond("What did he reiterate?", turns, [])
    assert len(turns2) == 4 and turns2[3]["answer"] is not None


def test_respond_streams_partial_answers(embedder: Any, seed_text: str) -> None:
    from qa.pipeline import Pipeline

    class ThreeParts:
        name = "fake-llm"

        def stream(self, question: str, sources: Any, history: Any = ()) -> Iterator[str]:
            yield from ("Yoav Gallant ", "remained in Washington ", "[1].")

    pipeline = Pipeline.from_texts({SEED_ID: seed_text}, embedder=embedder, generator=ThreeParts())
    steps = list(ChatHandlers(pipeline, llm=None, max_file_bytes=UPLOAD_LIMIT).respond(GALLANT_Q, [], []))
    partial = [step[1][-1]["content"] for step in steps[1:-1]]
    assert len(partial) == 3 and all(p.endswith("\u258c") for p in partial)
    assert partial[0].startswith("Yoav Gallant") and "Washington" in partial[1]
    final = steps[-1][1][-1]["content"]
    assert "\u258c" not in final and "[1]</a>" in final and "fake-llm" in steps[-1][4]


def test_respond_shows_errors_in_the_chat(embedder: Any, seed_text: str) -> None:
    h = _handlers(embedder, seed_text)
    *_, (_, chat, turns, _, status) = h.respond("x" * 100_000, [], [])
    assert turns[-1]["error"] and "limit" in chat[-1]["content"]
    assert "qa-error" in status
    assert len(chat[0]["content"]) < 3_000  # a huge question is shown truncated
    (only,) = list(h.respond("   ", [], []))
    assert "Type a question" in only[4]
    # failed turns are not sent as history: the next answer is unaffected
    *_, (_, _, turns2, _, _) = h.respond(GALLANT_Q, turns, [])
    assert turns2[-1]["answer"] is not None


def test_old_answer_sources_can_be_shown_again(embedder: Any, seed_text: str) -> None:
    h = _handlers(embedder, seed_text)
    *_, (_, _, turns, _, _) = h.respond(GALLANT_Q, [], [])

    class Evt:
        index = 1

    sources, _ = h.show_message_sources(turns, Evt())  # type: ignore[arg-type]
    assert "Yoav Gallant" in sources


# ----- rendering: everything from a document is escaped --------------------------------------


def _cite(doc: Document, sentence: str, n: int = 1) -> Citation:
    start = doc.text.index(sentence)
    return Citation(n=n, doc_id=doc.doc_id, text=sentence, start=start, end=start + len(sentence), score=1.0)


def test_source_panel_escapes_script_and_highlights_the_cited_sentence() -> None:
    sentence = 'The mayor wrote <img src=x onerror="alert(2)"> on the board.'
    doc = Document(
        doc_id='<b onmouseover="x()">evil</b>.txt',
        text=f"Intro <script>alert(1)</script> text.\n{sentence}\nOutro & more.",
    )
    answer = Answer(question="q", text="He wrote it [1].", abstained=False, citations=[_cite(doc, sentence)])
    html_out = render.render_sources({doc.doc_id: doc}, answer)
    assert "<script" not in html_out and "<img" not in html_out and "<b " not in html_out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_out
    assert "&amp; more" in html_out
    mark = html_out[html_out.index('<mark class="qa-cite" id="qa-cite-1"') :]
    mark = mark[: mark.index("</mark>")]
    assert render.escape(sentence) in mark and '<sup class="qa-num">1</sup>' in mark


def test_highlight_uses_offsets_and_numbers_each_citation() -> None:
    doc = Document(doc_id="d.txt", text="Alpha one. Beta two. Gamma three. Beta two.")
    second = Citation(n=2, doc_id="d.txt", text="Beta two.", start=34, end=43, score=1.0)  # the later copy
    first = _cite(doc, "Alpha one.", n=1)
    out = render.highlight_document(doc, [first, second])
    assert out.index('id="qa-cite-1"') < out.index('id="qa-cite-2"')
    assert out.startswith('<mark class="qa-cite" id="qa-cite-1"')
    assert out.endswith("Beta two.</mark>")  # offsets decide, not the first textual match
    assert out.count("<mark") == 2


def test_highlight_survives_stale_offsets_and_repeated_sentences() -> None:
    doc = Document(doc_id="d.txt", text="Zero. One. Two.")
    stale = Citation(n=1, doc_id="d.txt", text="Two.", start=0, end=4, score=1.0)
    again = Citation(n=2, doc_id="d.txt", text="Two.", start=11, end=15, score=1.0)
    out = render.highlight_document(doc, [stale, again])
    assert out.count("<mark") == 1 and 'data-cite="1 2"' in out


def test_long_documents_are_excerpted_around_citations() -> None:
    filler = "Filler sentence here.\n" * 5_000
    doc = Document(doc_id="long.txt", text=filler + "The needle is here.\n" + filler)
    out = render.highlight_document(doc, [_cite(doc, "The needle is here.")])
    assert "The needle is here." in out and len(out) < 5_000 and out.count("qa-gap") == 2


def test_source_panel_for_abstention_and_missing_document() -> None:
    assert "No sentence" in render.render_sources({}, Answer(question="q", text="x", abstained=True))
    gone = Citation(n=1, doc_id="gone<x>.txt", text="A <b>quote</b>.", start=0, end=15, score=1.0)
    out = render.render_sources({}, Answer(question="q", text="y [1]", abstained=False, citations=[gone]))
    assert "gone&lt;x&gt;.txt" in out and "A &lt;b&gt;quote&lt;/b&gt;." in out


def test_chat_message_escapes_html_and_markdown() -> None:
    c = Citation(
        n=1, doc_id="a<i>.txt", text="Costs $5 <script>x</script> [link](javascript:x)", start=0, end=5, score=1
    )
    answer = Answer(question="q", text="It says <script>alert(1)</script> [1].", abstained=False, citations=[c])
    md = render.message_markdown(answer)
    assert "<script" not in md and "<i>" not in md
    text, refs = md.split('<div class="qa-refs">')
    assert "](javascript" not in text  # Markdown is escaped; the references are one raw-HTML block
    assert "\n\n" not in refs  # a blank line would end the HTML block and let Markdown in
    assert '<a class="qa-ref" href="#qa-cite-1">[1]</a>' in md


def test_unsupported_claims_are_listed_escaped() -> None:
    answer = Answer(question="q", text="Claim.", abstained=False, unsupported=["The <b>moon</b> is cheese."])
    md = render.message_markdown(answer)
    assert "Not supported by the sources" in md and "The &lt;b&gt;moon&lt;/b&gt; is cheese." in md


def test_status_shows_backend_and_notice() -> None:
    answer = Answer(question="q", text="t", abstained=False, backend="ollama:llama3.2", notice="Ollama <down>")
    out = render.status_html(answer)
    assert "ollama:llama3.2" in out and "Ollama &lt;down&gt;" in out and "qa-notice" in out


# ----- uploads, without the server --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("a/b/c.txt", "c.txt"),
        ("..", "upload"),
        ("/", "upload"),
        ("ok.md", "ok.md"),
    ],
)
def test_base_name(name: str, expected: str) -> None:
    assert base_name(name) == expected


def test_read_upload_uses_only_the_base_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "stored.txt", b"Some text.")
    doc = read_upload(path, "../../etc/passwd.txt", max_bytes=1_000)
    assert doc.doc_id == "passwd.txt" and doc.text == "Some text."
    with pytest.raises(UnsupportedFileTypeError, match="passwd") as exc:
        read_upload(path, "../../etc/passwd", max_bytes=1_000)
    assert "/etc" not in str(exc.value)


def test_read_upload_limits(tmp_path: Path) -> None:
    with pytest.raises(FileTooLargeError, match="limit"):
        read_upload(_write(tmp_path, "big.txt", b"a" * 2_001), None, max_bytes=2_000)
    with pytest.raises(EmptyDocumentError):
        read_upload(_write(tmp_path, "empty.txt", b""), None, max_bytes=2_000)
    with pytest.raises(DocumentError, match="Unsupported"):
        read_upload(_write(tmp_path, "x.exe", b"MZ"), None, max_bytes=2_000)
    html_doc = read_upload(_write(tmp_path, "a.html", b"<p>Hi <script>x()</script>there.</p>"), None, max_bytes=2_000)
    assert html_doc.text == "Hi there."


def test_read_uploads_reports_each_file(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.md", b"# Title\nBody.")
    bad = _write(tmp_path, "bad.txt", b"\xff\xfe\x00")
    report = read_uploads([(good, None), (bad, None), (str(tmp_path / "gone.txt"), None)], max_bytes=1_000)
    assert [d.doc_id for d in report.accepted] == ["good.md"]
    assert [name for name, _ in report.rejected] == ["bad.txt", "gone.txt"]


# ----- serving: loopback by default, remote only on request, login from the environment -------


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("::")


def test_remote_host_needs_allow_remote() -> None:
    check_host("127.0.0.1", allow_remote=False)
    check_host("0.0.0.0", allow_remote=True)
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_host("0.0.0.0", allow_remote=False)


def test_qa_serve_refuses_remote_host_without_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from qa.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", str(free_port())]) != 0
    assert "--allow-remote" in capsys.readouterr().err


def test_qa_serve_reports_a_busy_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], embedder: Any, seed_text: str
) -> None:
    from qa.cli import main
    from qa.pipeline import Pipeline

    pipeline = _pipeline(embedder, seed_text)
    monkeypatch.setattr(Pipeline, "default", classmethod(lambda cls, **kwargs: pipeline))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve", "--port", str(busy.getsockname()[1])]) != 0
    assert "Choose another --port" in capsys.readouterr().err


def test_auth_from_env() -> None:
    assert auth_from_env({}) is None
    check = auth_from_env({"QA_AUTH_PASSWORD": "s3cret"})
    assert check is not None and check("qa", "s3cret") and not check("qa", "wrong") and not check("admin", "s3cret")
    check = auth_from_env({"QA_AUTH_PASSWORD": "pw", "QA_AUTH_USER": "alice"})
    assert check is not None and check("alice", "pw") and not check("qa", "pw")


def test_login_is_required_when_a_password_is_set(embedder: Any, seed_text: str) -> None:
    demo = build_app(_pipeline(embedder, seed_text))
    auth = auth_from_env({"QA_AUTH_PASSWORD": "correct horse"})
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
    code = "import sys, qa.pipeline, qa.cli, qa.ingest; assert 'gradio' not in sys.modules, 'gradio imported'"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, timeout=120)


def test_build_app_registers_the_named_ask_endpoint(app: RunningApp) -> None:
    api = app.client.view_api(return_format="dict", print_info=False)
    assert "/ask" in api["named_endpoints"] and "/upload" in api["named_endpoints"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["question", "doc_ids", "history"]


# ----- faults of the Ollama backend, seen through the running app ---------------------------


@pytest.mark.parametrize(
    ("mode", "message"), [("disconnect", "broke while it was answering"), ("hang", "did not answer")]
)
def test_ollama_failure_is_a_clear_error_and_the_app_keeps_serving(
    embedder: Any, seed_text: str, mode: str, message: str
) -> None:
    """Ollama dies mid-stream or hangs: the user gets a clear message in bounded time, then service goes on."""
    import time

    from fake_ollama import FakeOllama

    from qa import config
    from qa.generate import clear_probe_cache
    from qa.pipeline import Pipeline

    reply = "Yoav Gallant, the Israeli Defense Minister, remained in Washington for meetings [1]."
    with FakeOllama(lambda body: reply, mode=mode, disconnect_after=3) as fake:  # type: ignore[arg-type]
        clear_probe_cache()
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
            assert "Yoav Gallant" in result["citations"][0]["sentence"]
        finally:
            fake.release.set()
            demo.close()
            clear_probe_cache()
