"""The chat's pure parts: rendering (everything from a document is escaped), reading uploads (only the
base name of an upload is used), and the serving rules (loopback by default, a login from the settings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from qa.ui import render
from qa.ui.server import check_host, is_loopback, login_check
from qa.ui.uploads import base_name, read_upload, read_uploads

from qa import config
from qa.errors import ConfigError, DocumentError, EmptyDocumentError, FileTooLargeError, UnsupportedFileTypeError
from qa.types import Answer, Citation, ClaimCheck, Document


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ----- rendering -----------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("url", "linked"),
    [("https://news.example/a?b=1&c=2", True), ("javascript:alert(1)", False), (None, False)],
)
def test_source_header_shows_metadata_escaped_and_links_only_http(url: str | None, linked: bool) -> None:
    doc = Document(doc_id="a.html", text="Vote <b>passes</b>\nBy Ann.\n\nIt passed.", title="Vote <b>passes</b>",
                   authors=("Ann <i>Lee</i>",), published="2018-02-06T10:00:00Z", modified="2018-02-07",
                   outlet="The <Post>", url=url)
    cite = Citation(n=1, doc_id="a.html", text="It passed.", start=28, end=38, score=1.0, title=doc.title,
                    published=doc.published, url=url, outlet=doc.outlet)
    html_out = render.render_sources({doc.doc_id: doc}, Answer("q", "It passed [1].", False, [cite]))
    head = html_out[html_out.index('<div class="qa-doc-title">') :]
    assert head.startswith('<div class="qa-doc-title">Vote &lt;b&gt;passes&lt;/b&gt;')
    assert "The &lt;Post&gt;" in head and "by Ann &lt;i&gt;Lee&lt;/i&gt;" in head
    assert "published 6 February 2018" in head and "updated 7 February 2018" in head
    assert ("href=" in head) is linked and "javascript" not in head
    refs = render.references_html([cite])
    assert 'title="a.html">Vote &lt;b&gt;passes&lt;/b&gt; \u2014 The &lt;Post&gt;, 6 Feb 2018</span>' in refs


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


def test_an_unsupported_claim_is_flagged_in_place_with_a_tooltip() -> None:
    text = "The bridge cost 40 million euros [1]. It cost <b>90</b> million [1]. It rose."
    claims = [
        ClaimCheck("The bridge cost 40 million euros.", 0, 37, (1,), True, 0.8),
        ClaimCheck("It cost <b>90</b> million.", 38, 68, (1,), False, 0.31),
        ClaimCheck("It rose.", 69, 77, (), False, 0.2),
    ]
    answer = Answer(question="q", text=text, abstained=False, unsupported=["It cost <b>90</b> million.", "It rose."],
                    claims=claims)
    md = render.message_markdown(answer)
    flag = md[md.index('<span class="qa-unverified"') :]
    assert flag.startswith('<span class="qa-unverified" title="Not verified: not supported by the cited sentence '
                           '(check score 0.31)">It cost &lt;b&gt;90&lt;/b&gt; million ')
    assert '<a class="qa-ref" href="#qa-cite-1">[1]</a>.</span><sup class="qa-flag"' in flag
    assert "\u26a0 not verified</sup>" in flag and "<b>" not in md
    assert md.count('class="qa-unverified"') == 2 and "not supported by any source sentence (check score 0.20)" in md
    assert md.index("The bridge cost") < md.index('class="qa-unverified"')  # the supported claim is not flagged
    assert "qa-unsupported" not in md  # flagged in place, so no separate list


def test_status_shows_backend_chip_and_a_web_worded_hint() -> None:
    answer = Answer(question="q", text="t", abstained=False, backend="extractive",
                    notice="Ollama <down>: run `ollama serve` or use --llm extractive. Answered extractively.")
    out = render.status_html(answer)
    assert '">quoting sentences, no language model</span>' in out and "qa-notice" in out
    shown = re.sub(r'title="[^"]*"', "", out)  # the pipeline's own words stay in a tooltip only
    assert "--llm" not in shown and "ollama.com" in shown and "Ollama &lt;down&gt;" in out
    assert "qa-notice" not in render.status_html(answer, hint=False)
    model = Answer(question="q", text="t", abstained=False, backend="ollama:llama3.2")
    assert '">Ollama \u00b7 llama3.2</span>' in render.status_html(model)


def test_references_are_compact_one_line_per_article() -> None:
    a1 = Citation(n=1, doc_id="a.txt", text="One.", start=0, end=4, score=1.0, title="Vote", outlet="Post",
                  published="2018-02-06")
    b2 = Citation(n=2, doc_id="b.txt", text="Two.", start=0, end=4, score=1.0)
    a3 = Citation(n=3, doc_id="a.txt", text="Three.", start=5, end=11, score=1.0, title="Vote", outlet="Post",
                  published="2018-02-06")
    answer = Answer(question="q", text="\u201c\u201cOne,\u201d she said.\u201d [1] Two [2]. Three [3].",
                    abstained=False, citations=[a1, b2, a3])
    md = render.message_markdown(answer)
    items = re.findall(r"<li>(.*?)</li>", md)
    assert len(items) == 2  # one line per article, numbers first
    assert re.sub(r"<[^>]+>", "", items[0]) == "[1] [3] Vote \u2014 Post, 6 Feb 2018"
    assert re.sub(r"<[^>]+>", "", items[1]) == "[2] b.txt"
    assert "One." not in re.sub(r'title="[^"]*"', "", md.split('<div class="qa-refs">')[1])
    assert "\u201c\u201c" not in md and "\u201d\u201d" not in md
    assert md.startswith("\u201cOne,\u201d she said.\u201d")


def test_an_abstention_says_not_in_the_articles() -> None:
    md = render.message_markdown(Answer(question="q", text="The article does not say.", abstained=True))
    assert "Not in the articles." in md and "does not say" not in md and "<details" not in md
    near = Citation(n=1, doc_id="a.txt", text="\u201cA <b>near</b> one.\u201d", start=0, end=9, score=0.5,
                    title="Vote", outlet="Post")
    md = render.message_markdown(Answer(question="q", text="x", abstained=True, related=[near]))
    folded = md[md.index("<details"):]
    assert "Related passages (1), not an answer</summary>" in folded and "\n\n" not in md
    assert "\u201cA &lt;b&gt;near&lt;/b&gt; one.\u201d</span>" in folded and "\u2014 Vote \u2014 Post" in folded


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


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("::")


def test_remote_host_needs_allow_remote() -> None:
    check_host("127.0.0.1", allow_remote=False)
    check_host("0.0.0.0", allow_remote=True)
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_host("0.0.0.0", allow_remote=False)


@pytest.mark.parametrize(
    ("password", "user", "accepted", "refused"),
    [
        ("s3cret", None, [("qa", "s3cret")], [("qa", "wrong"), ("admin", "s3cret"), ("qa", ""), ("", "")]),
        ("pw", "alice", [("alice", "pw")], [("qa", "pw"), ("alice", "PW")]),
        ("p\u00e4ss w\u00f6rd", None, [("qa", "p\u00e4ss w\u00f6rd")], [("qa", "pass word")]),
    ],
)
def test_login_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, password: str, user: str | None,
    accepted: list[tuple[str, str]], refused: list[tuple[str, str]],
) -> None:
    monkeypatch.setenv("QA_AUTH_PASSWORD", password)
    if user is not None:
        monkeypatch.setenv("QA_AUTH_USER", user)
    check = login_check(config.resolve())
    assert check is not None
    assert all(check(u, p) for u, p in accepted)
    assert not any(check(u, p) for u, p in refused)


def test_no_password_means_no_login() -> None:
    assert login_check(config.resolve()) is None
    assert login_check(config.resolve(auth_password="")) is None


def test_server_paths_are_hidden_in_citations_and_related_passages() -> None:
    from qa.ui.names import PublicNames

    docs = {i: Document(i, "One sentence.", i) for i in ("/srv/a/story.txt", "/srv/b/story.txt")}
    names = PublicNames(docs)
    cite = Citation(1, "/srv/b/story.txt", "One sentence.", 0, 13, 1.0)
    answer = Answer("q", "\u201cOne sentence.\u201d [1]", False, [cite])
    assert [c.doc_id for c in names.answer(answer).citations] == ["b/story.txt"]
    abstained = Answer("q", "The article does not say.", True, related=[cite])
    assert [c.doc_id for c in names.answer(abstained).related] == ["b/story.txt"]
