"""Segmentation of real articles: the seed article, and every SQuAD article split exactly as pysbd splits it."""

from __future__ import annotations

import json
import random
import time

import pytest
from helpers.data import GALLANT, SEED_FILE, SEEDS_DIR, SQUAD_FILE

from qa.ingest import read_documents, segment
from qa.ingest.segment import MAX_SENTENCE_CHARS
from qa.types import Document


def test_seed_sentences_are_exact_slices(seed_text: str) -> None:
    sentences = segment(Document("seed", seed_text))
    assert len(sentences) == 14
    for i, s in enumerate(sentences):
        assert s.n == i and seed_text[s.start : s.end] == s.text and s.text == s.text.strip()
    assert sentences[7].text.startswith(GALLANT)


def test_the_seed_folder_reads_as_one_document() -> None:
    (doc,) = read_documents([SEEDS_DIR], max_bytes=10_000_000, base=SEEDS_DIR)
    assert (doc.doc_id, doc.text, doc.source) == (SEED_FILE.name, SEED_FILE.read_text(encoding="utf-8"),
                                                  str(SEED_FILE))


@pytest.fixture(scope="module")
def squad_texts() -> list[str]:
    data = json.loads(SQUAD_FILE.read_text(encoding="utf-8"))
    assert len(data["data"]) == 8
    return ["\n".join(p["context"] for p in a["paragraphs"]) for a in data["data"]]


def _ends(line: str, pieces: list[str]) -> list[int]:
    out, cursor = [], 0
    for piece in pieces:
        found = line.find(piece, cursor)
        out.append(found + len(piece))
        cursor = found + len(piece)
    return out


def test_segments_are_those_of_pysbd_itself(seed_text: str, squad_texts: list[str]) -> None:
    """The fast path (pysbd's processor on windows of a line, then ``find``) splits wherever ``pysbd.segment``
    splits whole lines (SQuAD has lines of 4,000 characters), and almost nowhere else: inside a sentence
    longer than ``MAX_SENTENCE_CHARS``, or (three times in one 3,000-character line) at a full stop before a
    capital that pysbd missed when given the whole line."""
    import pysbd

    reference = pysbd.Segmenter(language="en", clean=False, char_span=False)
    sentences = extra = 0
    for text in [seed_text, *squad_texts]:
        for line in text.split("\n"):
            if not line.strip():
                continue
            want_pieces = [p.strip() for p in reference.segment(line) if p.strip()]
            got = segment(Document("d", line))
            assert all(line[s.start : s.end] == s.text and 0 < len(s.text) <= MAX_SENTENCE_CHARS for s in got)
            want, ends = _ends(line, want_pieces), {s.end for s in got}
            assert set(want) <= ends, "a sentence boundary of pysbd's was lost"
            long_spans = [(e - len(p), e) for p, e in zip(want_pieces, want, strict=True)
                          if len(p) > MAX_SENTENCE_CHARS]
            for end in ends - set(want):
                inside_long = any(lo < end < hi for lo, hi in long_spans)
                missed_stop = line[end - 1] == "." and line[end : end + 2].strip()[:1].isupper()
                assert inside_long or missed_stop, line[max(0, end - 40) : end + 20]
                extra += not inside_long
            sentences += len(want)
    assert sentences > 1_600 and extra <= 3


def _prose(chars: int, *, stop: str = ".", seed: int = 0) -> str:
    """News-like sentences (each ending in ``stop``) on one line."""
    rng = random.Random(seed)
    words = ("the council vote on the resolution was delayed again as ministers met bankers over rates bonds "
             "and the bridge toll while the river rose near the harbour and trains ran late").split()
    parts, size = [], 0
    while size < chars:
        part = " ".join(rng.choice(words) for _ in range(rng.randint(8, 24))).capitalize() + stop
        parts.append(part)
        size += len(part) + 1
    return " ".join(parts)[:chars]


def test_segmenting_a_long_line_takes_as_long_as_short_lines() -> None:
    """pysbd is quadratic in the length of what it is given (a 200,000-character line took 62 s); a long
    line costs about what the same text costs in paragraph-sized lines."""
    text = _prose(200_000)
    lines = "\n".join(text[i : i + 800] for i in range(0, len(text), 800))
    t0 = time.process_time()
    assert len(segment(Document("lines", lines))) > 1_000
    short = time.process_time() - t0
    t0 = time.process_time()
    assert len(segment(Document("line", text))) > 1_000
    long = time.process_time() - t0
    assert long < 3 * short + 1.0, f"one 200,000-character line: {long:.1f} s; the same text in lines: {short:.1f} s"


@pytest.mark.parametrize(
    ("case", "text", "first_ends_with"),
    [
        ("clauses", ("Officials said the vote would go ahead as planned " * 8 + "; ") * 4, ";"),
        ("a dash", ("Officials said the vote would go ahead as planned " * 8 + "\u2014 ") * 4, "planned"),
        ("commas", ("Officials said the vote would go ahead as planned " * 8 + ", ") * 4, ","),
        ("words only", "Officials said the vote would go ahead as planned " * 40, "planned"),
        ("no spaces", "x" * 3_000, "x"),
    ],
)
def test_a_sentence_without_full_stops_is_cut_into_readable_pieces(case: str, text: str, first_ends_with: str) -> None:
    """An article without full stops was one 23 KB "sentence", cited whole. It is cut at clause boundaries
    (then commas, then between words, then every ``MAX_SENTENCE_CHARS``), each piece an exact slice."""
    sentences = segment(Document(case, text))
    assert len(sentences) >= len(text.strip()) // MAX_SENTENCE_CHARS
    assert all(0 < len(s.text) <= MAX_SENTENCE_CHARS for s in sentences)
    assert all(text[s.start : s.end] == s.text == s.text.strip() for s in sentences)
    assert sentences[0].text.endswith(first_ends_with)
    assert "".join(s.text for s in sentences).replace(" ", "") == text.replace(" ", "")


def test_a_23_kb_article_without_full_stops_reads_in_pieces() -> None:
    text = _prose(23_000, stop=",")
    sentences = segment(Document("no-stops", text))
    assert 23_000 // MAX_SENTENCE_CHARS <= len(sentences) <= 23_000 // (MAX_SENTENCE_CHARS // 2) + 1
    assert all(s.text.endswith(",") for s in sentences[:-1])  # cut after a comma, never inside a word
    assert "".join(s.text for s in sentences).replace(" ", "") == text.replace(" ", "")


def test_a_header_line_longer_than_the_cap_is_cut_too() -> None:
    """A page whose title is 2,000 characters (no full stops): each header line is one sentence, and a long
    one is cut like any other, so no citation is longer than the cap."""
    from qa.ingest.header import with_header

    title = " ".join(f"word{i}, and more" for i in range(150))
    text = with_header("The council met on Monday. It voted.", title=title, outlet="The Post")
    doc = Document(doc_id="page.html", text=text, title=title, outlet="The Post")
    sentences = segment(doc)
    assert max(s.end - s.start for s in sentences) <= MAX_SENTENCE_CHARS
    assert all(doc.text[s.start : s.end] == s.text for s in sentences)
    assert "".join(s.text for s in sentences).replace(" ", "") == text.replace("\n", "").replace(" ", "")
