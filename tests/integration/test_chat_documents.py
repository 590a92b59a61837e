"""The chat's document handlers without a browser: add by link (private addresses refused when the chat is
served to other machines, unless the operator allows them), uploads that would replace a document wait for
confirmation, removal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.env import isolated_settings
from helpers.fakes import HashEmbedder
from helpers.web import Route, WebServer, benchmark_page
from qa.ui.app import ChatHandlers

from qa.pipeline import Pipeline


class NoProgress:
    def __call__(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        server.routes["/omar"] = Route(benchmark_page("7a457a4f"))
        yield server


def _handlers(remote: bool, **settings: object) -> ChatHandlers:
    pipeline = Pipeline.from_texts({"seed.txt": "The council met on Monday. It approved the bridge."},
                                   embedder=HashEmbedder(), settings=isolated_settings(**settings))
    return ChatHandlers(pipeline, llm="extractive", max_file_bytes=1_000_000, remote=remote)


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
