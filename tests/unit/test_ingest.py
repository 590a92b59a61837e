"""Ingest: reading files and bytes (every refusal before anything is indexed), HTML, Markdown and PDF to
text, ids that are paths relative to where indexing started, exact-offset sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import errors
from qa.ingest import SUPPORTED_SUFFIXES, document_from_bytes, expand_paths, read_document, read_documents, segment
from qa.ingest.formats import NO_ARTICLE_NOTICE
from qa.ingest.html import visible_text
from qa.ingest.read import decode
from qa.types import Document


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The U.N. vote passed. The U.S. abstained.", ["The U.N. vote passed.", "The U.S. abstained."]),
        (
            "Mr. Smith met Dr. Jones in Washington, D.C. on Monday.",
            ["Mr. Smith met Dr. Jones in Washington, D.C. on Monday."],
        ),
        (
            "Headline without a period\nFirst sentence. Second one!",
            ["Headline without a period", "First sentence.", "Second one!"],
        ),
        ("  Leading spaces. \n\n\n Trailing too.  ", ["Leading spaces.", "Trailing too."]),
        ("Prices rose 3.5 percent. Analysts were surprised?", ["Prices rose 3.5 percent.", "Analysts were surprised?"]),
        ("\u201cQuoted,\u201d he said. Then he left.", ["\u201cQuoted,\u201d he said.", "Then he left."]),
        ("One sentence only", ["One sentence only"]),
        ("\n\n  \n", []),
    ],
)
def test_segmentation_table(text: str, expected: list[str]) -> None:
    sentences = segment(Document("d", text))
    assert [s.text for s in sentences] == expected
    assert all(text[s.start : s.end] == s.text for s in sentences)
    assert [s.n for s in sentences] == list(range(len(expected)))
    assert {s.doc_id for s in sentences} <= {"d"}


def test_repeated_sentences_get_distinct_offsets() -> None:
    sentences = segment(Document("d", "It rained. It rained. It rained."))
    assert [s.start for s in sentences] == [0, 11, 22]


def test_html_is_reduced_to_visible_text() -> None:
    html = (
        "<html><head><title>Vote</title><style>p{color:red}</style></head><body>"
        "<h1>U.N. vote</h1><p>The U.S. abstained &amp; the <b>resolution</b> passed.</p>"
        "<script>alert('x')</script><p>Hamas welcomed it.</p>"
        "<template><p>hidden</p></template></body></html>"
    )
    text = visible_text(html)
    assert text == "U.N. vote\n\nThe U.S. abstained & the resolution passed.\n\nHamas welcomed it."
    assert "alert" not in text and "color" not in text and "hidden" not in text
    # too short to be an article: the visible text is indexed, and the document says so
    doc = document_from_bytes(html.encode(), "vote.html")
    assert doc.notice == NO_ARTICLE_NOTICE and doc.title == "U.N. vote"  # the headline, not repeated
    assert doc.text == "U.N. vote\n\nThe U.S. abstained & the resolution passed.\n\nHamas welcomed it."


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("a.pdf", b"%PDF-1.4", errors.UndecodableDocumentError),
        ("a.docx", b"PK\x03\x04", errors.UnsupportedFileTypeError),
        ("noext", b"text", errors.UnsupportedFileTypeError),
        ("a.txt", b"", errors.EmptyDocumentError),
        ("a.txt", b"   \n\t ", errors.EmptyDocumentError),
        ("a.html", b"<script>only()</script>", errors.EmptyDocumentError),
        ("a.txt", b"caf\xe9 latin-1", errors.UndecodableDocumentError),
        ("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", errors.UndecodableDocumentError),
    ],
)
def test_bad_documents_are_refused(name: str, data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        document_from_bytes(data, name)
    assert name in str(info.value)
    assert isinstance(info.value, errors.DocumentError)


@pytest.mark.parametrize(
    ("name", "data", "text"),
    [
        ("a.txt", b"\xef\xbb\xbfOne.\r\nTwo.\rThree.", "One.\nTwo.\nThree."),  # BOM and line endings normalised
        ("A.MD", b"# Title\nBody **bold**.", "Title\n\nBody bold."),  # suffixes in any case; Markdown reduced
        ("page.htm", b"<p>Caf\xc3\xa9 <i>au</i> lait.</p>", "Caf\u00e9 au lait."),
    ],
)
def test_good_documents(name: str, data: bytes, text: str) -> None:
    doc = document_from_bytes(data, name, source="somewhere")
    assert (doc.doc_id, doc.text, doc.source) == (name, text, "somewhere")
    assert decode(b"\xef\xbb\xbfOne.\r\nTwo.", "a.txt") == "One.\nTwo."


def test_read_document_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.MissingFileError, match="No such file"):
        read_document(tmp_path / "missing.txt", max_bytes=1000)
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(errors.MissingFileError):
        read_document(tmp_path / "folder.txt", max_bytes=1000)
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 2000)
    with pytest.raises(errors.FileTooLargeError, match=r"0\.0 MB; the limit is 0\.0 MB"):
        read_document(big, max_bytes=1000)
    (tmp_path / "notes.docx").write_bytes(b"PK")
    with pytest.raises(errors.UnsupportedFileTypeError, match=r"notes\.docx"):
        read_document(tmp_path / "notes.docx", max_bytes=1000)


def test_read_document_under_another_name(tmp_path: Path) -> None:
    """An upload is stored under a server name; the user's name picks the format and is what messages show."""
    stored = tmp_path / "upload-8f3a"  # no suffix on disk
    stored.write_bytes(b"<p>Hi <script>x()</script>there.</p>")
    doc = read_document(stored, max_bytes=1000, name="page.html", doc_id="page.html", source="upload:page.html")
    assert (doc.doc_id, doc.text, doc.source) == ("page.html", "Hi there.", "upload:page.html")
    with pytest.raises(errors.UnsupportedFileTypeError, match=r"report\.docx") as err:
        read_document(stored, max_bytes=1000, name="report.docx")
    assert str(stored) not in str(err.value)
    plain = read_document(tmp_path / "upload-8f3a", max_bytes=1000, name="a.txt")
    assert plain.doc_id == "a.txt" and plain.source == str(stored)


def test_read_documents_expands_folders_and_keeps_ids_unique(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "story.txt").write_text("First story.")
    (tmp_path / "b" / "story.txt").write_text("Second story.")
    (tmp_path / "b" / "notes.md").write_text("# Notes\nSome notes.")
    (tmp_path / "b" / "ignored.bin").write_bytes(b"\x00")
    assert [p.relative_to(tmp_path).as_posix() for p in expand_paths([tmp_path])] == [
        "a/story.txt", "b/notes.md", "b/story.txt"
    ]
    docs = read_documents([tmp_path], max_bytes=10_000, base=tmp_path)
    assert [d.text for d in docs] == ["First story.", "Notes\n\nSome notes.", "Second story."]
    assert [d.doc_id for d in docs] == ["a/story.txt", "b/notes.md", "b/story.txt"]
    # without a base, ids are relative to the current directory (absolute when outside it): still distinct
    assert [d.doc_id for d in read_documents([tmp_path], max_bytes=10_000)] == [
        (tmp_path / p).as_posix() for p in ("a/story.txt", "b/notes.md", "b/story.txt")
    ]


def test_a_folder_without_articles_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only.bin").write_bytes(b"\x00")
    with pytest.raises(errors.EmptyDocumentError, match="a directory with no"):
        read_documents([tmp_path], max_bytes=10_000)


def test_one_bad_file_fails_the_batch(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Fine.")
    with pytest.raises(errors.MissingFileError):
        read_documents([good, tmp_path / "missing.txt"], max_bytes=10_000)
    (tmp_path / "empty.md").write_text("  ")
    with pytest.raises(errors.EmptyDocumentError):
        read_documents([good, tmp_path / "empty.md"], max_bytes=10_000)
