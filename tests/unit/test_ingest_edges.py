"""Ingest edges an attack found: links out of the folder being indexed, NUL bytes past the first 8 KB, HTML
elements left open, and upload names that display as something else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from qa.ui.uploads import base_name, read_upload

from qa import errors
from qa.ingest import document_from_bytes, read_document, read_documents

SECRET = "root:x:0:0:root:/root:/bin/bash\n"
ARTICLE = "The lighthouse keeper counts ships at dawn.\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``articles/`` with one real article, and a secret outside it."""
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "passwd.txt").write_text(SECRET)
    (tmp_path / "private" / "notes").mkdir()
    (tmp_path / "private" / "notes" / "diary.txt").write_text(SECRET)
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "real.txt").write_text(ARTICLE)
    return tmp_path


def _link(tree: Path, name: str, target: str) -> Path:
    link = tree / "articles" / name
    link.symlink_to(tree / target)
    return link


#: (link in articles/ -> target, what is read, what indexing articles/ (the folder) or the link itself does)
LINKS = {
    "a file outside": ("article.txt", "private/passwd.txt", "refused", "refused"),
    "a folder outside": ("more", "private/notes", "refused", "refused"),
    "a file in the same folder": ("alias.txt", "articles/real.txt", "skipped", "read"),
}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_links_are_not_followed_out_of_the_folder_being_indexed(tree: Path, case: str) -> None:
    """A link named ``article.txt`` pointing to a password file was indexed and quoted back. Scanning a
    folder, a link out of it is refused; a link within it is skipped (its target is indexed under its own
    name). A link given directly is read only when it points into its own folder."""
    name, target, scanned, direct = LINKS[case]
    link = _link(tree, name, target)
    if scanned == "refused":
        with pytest.raises(errors.LinkedFileError, match="outside the folder it is in"):
            read_documents([tree / "articles"], max_bytes=10_000)
    else:
        assert [d.text for d in read_documents([tree / "articles"], max_bytes=10_000)] == [ARTICLE]
    if direct == "refused":
        with pytest.raises(errors.LinkedFileError) as info:
            read_documents([link], max_bytes=10_000)
        assert SECRET not in str(info.value)
    else:
        assert read_document(link, max_bytes=10_000).text == ARTICLE


def test_an_upload_that_is_a_link_is_refused(tree: Path) -> None:
    link = _link(tree, "upload.txt", "articles/real.txt")
    with pytest.raises(errors.LinkedFileError, match="an upload must be the file itself"):
        read_upload(link, "upload.txt", max_bytes=10_000)
    assert read_upload(tree / "articles" / "real.txt", "upload.txt", max_bytes=10_000).text == ARTICLE


@pytest.mark.parametrize("offset", [0, 8_191, 8_192, 100_000])
def test_a_nul_byte_anywhere_is_binary(offset: int) -> None:
    """Only the first 8 KB were looked at: a NUL byte after them was indexed."""
    data = bytearray(b"x" * 120_000)
    data[offset] = 0
    with pytest.raises(errors.UndecodableDocumentError):
        document_from_bytes(bytes(data), "doc.txt")


@pytest.mark.parametrize(
    ("html", "kept", "dropped"),
    [
        ("<p>Before.</p><iframe src='x'><p>After the frame.</p><p>More.</p>", ["Before.", "After the frame.", "More."],
         []),
        ("<p>Before.</p><object data='x'><p>After the object.</p>", ["Before.", "After the object."], []),
        ("<html><head><title>T</title><body><p>Body text.</p>", ["T", "Body text."], []),
        ("<p>A.</p><iframe>fallback</iframe><p>B.</p>", ["A.", "B."], ["fallback"]),
        ("<p>A.</p><object><p>fallback</p></object><p>B.</p>", ["A.", "B."], ["fallback"]),
        ("<p>A.</p><svg><text>label</text></svg><iframe><p>B.</p>", ["A.", "B."], ["label"]),
        ("<p>A.</p><script>var x = 1;<p>never text</p>", ["A."], ["never text", "var x"]),
    ],
)
def test_an_element_left_open_does_not_hide_the_rest_of_the_page(
    html: str, kept: list[str], dropped: list[str]
) -> None:
    """An unclosed ``<iframe>`` or ``<object>`` dropped everything after it; closed, its content is still
    hidden, and an unclosed ``<script>`` is still code (as in a browser)."""
    text = document_from_bytes(html.encode(), "page.html").text
    assert [line for line in text.splitlines() if line] == kept
    assert not any(word in text for word in dropped)


def test_an_article_with_an_iframe_left_open_is_read_whole() -> None:
    """The same through the article extractor (a page long enough to hold an article): the paragraphs after an
    unclosed ``<iframe>`` were lost."""
    para = "The harbour council voted on the new ferry toll after a long debate about the timetable. " * 4
    html = (f"<html><body><article><h1>Ferry toll</h1><p>{para}</p><iframe src='https://example.com/ad'>"
            f"<p>{para.replace('harbour', 'island')}</p><p>The mayor said the vote was final.</p></article>"
            "</body></html>")
    text = document_from_bytes(html.encode(), "page.html").text
    assert "island council" in text and "The mayor said the vote was final." in text


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("invoice\u202etxt.exe.html", "invoicetxt.exe.html"),  # shown as "invoicelmth.exe.txt" with the override
        ("\u2067report\u2069.txt", "report.txt"),
        ("a\u200fb\u200e.md", "ab.md"),
        ("tab\there\x85.txt", "tabhere.txt"),
        ("plain name.txt", "plain name.txt"),
    ],
)
def test_upload_names_lose_their_direction_and_control_characters(name: str, shown: str) -> None:
    assert base_name(name) == shown


def test_links_are_checked_before_anything_is_read(tree: Path) -> None:
    """The refusal names the link and its target, never the content."""
    link = _link(tree, "article.txt", "private/passwd.txt")
    with pytest.raises(errors.LinkedFileError) as info:
        read_document(link, max_bytes=10_000)
    assert str(link) in str(info.value) and os.fspath(tree / "private" / "passwd.txt") in str(info.value)
