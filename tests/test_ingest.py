"""Ingest: reading files and cutting exact-offset sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from qa import errors
from qa.ingest import decode, document_from_bytes, html_to_text, read_document, read_documents, segment
from qa.types import Document


def test_seed_sentences_are_exact_slices(seed_text: str) -> None:
    doc = Document("seed", seed_text)
    sentences = segment(doc)
    assert len(sentences) == 14
    for i, s in enumerate(sentences):
        assert s.n == i
        assert seed_text[s.start : s.end] == s.text
        assert s.text == s.text.strip()
    assert sentences[7].text.startswith("Despite the cancellation, Israeli Defense Minister Yoav Gallant")


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
        ("“Quoted,” he said. Then he left.", ["“Quoted,” he said.", "Then he left."]),
        ("One sentence only", ["One sentence only"]),
    ],
)
def test_segmentation_table(text: str, expected: list[str]) -> None:
    doc = Document("d", text)
    sentences = segment(doc)
    assert [s.text for s in sentences] == expected
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_repeated_sentences_get_distinct_offsets() -> None:
    text = "It rained. It rained. It rained."
    sentences = segment(Document("d", text))
    assert [s.start for s in sentences] == [0, 11, 22]


def test_html_is_reduced_to_visible_text() -> None:
    html = (
        "<html><head><title>Vote</title><style>p{color:red}</style></head><body>"
        "<h1>U.N. vote</h1><p>The U.S. abstained &amp; the <b>resolution</b> passed.</p>"
        "<script>alert('x')</script><p>Hamas welcomed it.</p></body></html>"
    )
    text = html_to_text(html)
    assert text == "Vote\nU.N. vote\nThe U.S. abstained & the resolution passed.\nHamas welcomed it."
    assert "alert" not in text and "color" not in text


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("a.pdf", b"%PDF-1.4", errors.UnsupportedFileTypeError),
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


def test_bom_and_crlf_are_normalised() -> None:
    assert decode(b"\xef\xbb\xbfOne.\r\nTwo.", "a.txt") == "One.\nTwo."


def test_read_document_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.MissingFileError, match="No such file"):
        read_document(tmp_path / "missing.txt", max_bytes=1000)
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 2000)
    with pytest.raises(errors.FileTooLargeError, match="limit"):
        read_document(big, max_bytes=1000)


def test_read_documents_expands_folders_and_keeps_ids_unique(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "story.txt").write_text("First story.")
    (tmp_path / "b" / "story.txt").write_text("Second story.")
    (tmp_path / "b" / "notes.md").write_text("# Notes\nSome notes.")
    (tmp_path / "b" / "ignored.bin").write_bytes(b"\x00")
    docs = read_documents([tmp_path], max_bytes=10_000)
    assert len(docs) == 3
    assert len({d.doc_id for d in docs}) == 3


def test_one_bad_file_fails_the_batch(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Fine.")
    with pytest.raises(errors.MissingFileError):
        read_documents([good, tmp_path / "missing.txt"], max_bytes=10_000)


def test_segments_are_those_of_pysbd_itself(seed_text: str) -> None:
    """The fast path (pysbd's processor, then ``find``) splits exactly where ``pysbd.segment`` does."""
    import pysbd

    squad = json.loads((SHARED_DATA / "squad-v2-dev.json").read_text(encoding="utf-8"))
    texts = [seed_text] + ["\n".join(p["context"] for p in a["paragraphs"]) for a in squad["data"]]
    reference = pysbd.Segmenter(language="en", clean=False, char_span=False)
    for text in texts:
        want = [piece.strip() for line in text.split("\n") if line.strip()
                for piece in reference.segment(line) if piece.strip()]
        assert [s.text for s in segment(Document("d", text))] == want
