"""The chat's document handlers without a browser: add by link (private addresses refused when the chat is
served to other machines, unless the operator allows them), uploads that would replace a document wait for
confirmation, removal."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from helpers.env import isolated_settings
from helpers.fakes import HashEmbedder
from helpers.web import Route, WebServer, benchmark_page
from qa.ui.app import ChatHandlers
from qa.ui.uploads import read_uploads

from qa.pipeline import Pipeline


class NoProgress:
    def __call__(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        server.routes["/omar"] = Route(benchmark_page("7a457a4f"))
        yield server


def _handlers(remote: bool, allow_uploads: bool = True, **settings: object) -> ChatHandlers:
    pipeline = Pipeline.from_texts({"seed.txt": "The council met on Monday. It approved the bridge."},
                                   embedder=HashEmbedder(), settings=isolated_settings(**settings))
    return ChatHandlers(pipeline, llm="extractive", max_file_bytes=1_000_000, remote=remote,
                        allow_uploads=allow_uploads)


@pytest.mark.parametrize(
    ("remote", "allow", "added"),
    [(False, None, True), (True, None, False), (True, True, True)],
    ids=["loopback chat", "remote chat refuses private links", "remote chat, QA_ALLOW_PRIVATE_LINKS=1"],
)
def test_add_by_link_and_private_addresses(web: WebServer, remote: bool, allow: bool | None, added: bool) -> None:
    h = _handlers(remote, allow_private_links=allow)
    status, choices, _summary, pending, _row, _ask = h.add_link(web.url("/omar"), [], NoProgress())  # type: ignore[arg-type]
    assert (web.url("/omar") in h.pipeline.documents) is added and pending is None
    if added:
        assert "Added <strong>New York man pleads guilty" in status and "NBC News, 19 Nov 2019" in status
        assert ("New York man pleads guilty to threatening to kill Rep. Ilhan Omar \u2014 NBC News, 19 Nov 2019",
                web.url("/omar")) in choices["choices"]
    else:
        assert "Refusing to fetch" in status and "QA_ALLOW_PRIVATE_LINKS=1" in status
        assert web.requests == []  # refused before connecting


def test_a_replacing_upload_waits_for_confirmation_then_removal(tmp_path: Path) -> None:
    h = _handlers(False)
    upload = tmp_path / "seed.txt"
    upload.write_text("The council met on Tuesday instead.", encoding="utf-8")
    status, _, _, pending, row, ask = h.upload([str(upload)], [], NoProgress())  # type: ignore[arg-type]
    assert [d.doc_id for d in pending or []] == ["seed.txt"] and row["visible"] and "Replace" in ask
    assert "Monday" in h.pipeline.documents["seed.txt"].text  # not replaced yet
    status, _, _, pending, row, _ = h.docs.cancel(pending, [])
    assert "Kept the indexed version" in status and pending is None and not row["visible"]
    _, _, _, pending, _, _ = h.upload([str(upload)], [], NoProgress())  # type: ignore[arg-type]
    status, *_ = h.docs.confirm(pending, [])
    assert "Replaced" in status and "Tuesday" in h.pipeline.documents["seed.txt"].text
    other = tmp_path / "other.txt"
    other.write_text("A different story about trams.", encoding="utf-8")
    status, *_ = h.upload([str(other)], [], NoProgress())  # type: ignore[arg-type]
    assert "Added" in status
    status, *_ = h.docs.remove(["other.txt"])
    assert "Removed" in status and set(h.pipeline.documents) == {"seed.txt"}
    status, *_ = h.docs.remove(["seed.txt"])
    assert "cannot be removed" in status and set(h.pipeline.documents) == {"seed.txt"}


# ----- who may change the library, and the log of changes ------------------------------------------------


def _files(tmp_path: Path) -> tuple[Path, Path]:
    new, changed = tmp_path / "new" / "trams.txt", tmp_path / "changed" / "seed.txt"
    for path, text in ((new, "The trams run every ten minutes."), (changed, "The council met on Friday.")):
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
    return new, changed


@pytest.mark.filterwarnings("ignore:Not changed:UserWarning")  # gr.Warning's toast, outside a page
def test_a_chat_served_to_others_refuses_every_change_without_allow_uploads(
    web: WebServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The page hides the buttons, but the handlers are what refuse: the API reaches them directly."""
    h = _handlers(True, allow_uploads=False, allow_private_links=True)
    assert not h.docs.writable
    new, changed = _files(tmp_path)
    alice = gr.Request(username="alice")
    before = dict(h.pipeline.documents)
    caplog.set_level(logging.INFO, logger="qa.ui.library")
    panels = [
        h.upload([str(new)], [], NoProgress(), alice),  # type: ignore[arg-type]
        h.add_link(web.url("/omar"), [], NoProgress(), alice),  # type: ignore[arg-type]
        h.docs.confirm(read_uploads([(str(changed), None)], max_bytes=1_000).accepted, [], alice),
        h.docs.remove(["seed.txt"], alice),
    ]
    for status, *_ in panels:
        assert "Not changed" in status and "has not allowed adding" in status
    assert h.pipeline.documents == before and web.requests == []
    refusals = [r.getMessage() for r in caplog.records if r.name == "qa.ui.library"]
    assert [m.split(" tried to ")[0] for m in refusals] == ["refused: alice"] * 4
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "qa.ui.library")


@pytest.mark.parametrize(
    ("remote", "allow", "request_user", "logged"),
    [(False, False, None, "local"), (True, True, "alice", "alice"), (True, True, None, "anonymous")],
    ids=["loopback: local", "served to others with allow_uploads: the login name", "no login: anonymous"],
)
def test_every_change_is_logged_with_the_user_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, remote: bool, allow: bool, request_user: str | None,
    logged: str,
) -> None:
    h = _handlers(remote, allow_uploads=allow)
    request = gr.Request(username=request_user) if request_user else None
    new, changed = _files(tmp_path)
    caplog.set_level(logging.INFO, logger="qa.ui.library")
    status, *_ = h.upload([str(new), str(changed)], [], NoProgress(), request)  # type: ignore[arg-type]
    assert "Added <strong>trams.txt" in status
    _, _, _, pending, _, _ = h.upload([str(changed)], [], NoProgress(), request)  # type: ignore[arg-type]
    status, *_ = h.docs.confirm(pending, [], request)
    assert "Replaced" in status
    h.upload([str(new)], [], NoProgress(), request)  # type: ignore[arg-type]  # unchanged: no change, no line
    status, *_ = h.docs.remove(["trams.txt"], request)
    assert "Removed" in status
    lines = [r.getMessage() for r in caplog.records if r.name == "qa.ui.library"]
    assert lines == [f"added by {logged}: 'trams.txt' (trams.txt)", f"replaced by {logged}: 'seed.txt' (seed.txt)",
                     f"removed by {logged}: 'trams.txt' (trams.txt)"]
