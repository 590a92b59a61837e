"""Sentences that are exact slices of their document: pysbd within lines, lines as hard boundaries.

Two bounds keep this linear and the citations readable:

* pysbd's time grows with the square of the text it is given (a 100,000-character line took 27 s), so a long
  line is given to it in windows of ``WINDOW`` characters: every sentence of a window but the last is kept,
  and the next window starts where that last sentence starts. Each character is segmented about once, and
  the sentences are pysbd's own except where its choice depends on text more than a window away.
* A sentence longer than ``MAX_SENTENCE_CHARS`` (an article without full stops is one "sentence") is cut at
  clause boundaries (``;``, ``:``, dashes, then commas), else between words, else every
  ``MAX_SENTENCE_CHARS`` characters. Every piece is still an exact slice of the document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

from qa.ingest.header import header_spans
from qa.types import Document, Sentence

if TYPE_CHECKING:
    import pysbd

SEGMENTER_NAME = "pysbd-en+lines+cap600"
WINDOW = 1_000  # characters of a line pysbd sees at once (its cost per character grows with this)
MAX_SENTENCE_CHARS = 600  # longer sentences are cut into pieces this long at most (less than WINDOW)
#: Where a long sentence is cut, best first: after a clause mark, around a dash, after a comma, between words.
_CUTS = (re.compile(r"[;:](?=\s)|\s(?=[\u2014\u2013-]\s)|(?=\u2014)"), re.compile(r",(?=\s)"), re.compile(r"\s"))


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def _pysbd(text: str) -> list[tuple[int, int]]:
    """pysbd's sentences of ``text`` as (start, end), stripped."""
    out: list[tuple[int, int]] = []
    cursor = 0
    # pysbd's own ``segment`` finds each sentence again with a fresh regex per sentence, which thrashes
    # ``re``'s cache (40 % of segmentation time); a plain ``find`` gives the same spans
    for piece in _segmenter().processor(text).process():
        stripped = piece.strip()
        if not stripped:
            continue
        found = text.find(stripped, cursor)
        if found < 0:  # altered by the segmenter: skipped, as pysbd's ``segment`` skips it
            continue
        out.append((found, found + len(stripped)))
        cursor = found + len(stripped)
        if cursor >= len(text):
            break
    return out


def _line_sentences(body: str) -> Iterator[tuple[int, int]]:
    """pysbd's sentences of one line, a window at a time (see the module docstring)."""
    pos = 0
    while pos < len(body):
        window = body[pos : pos + WINDOW]
        spans = _pysbd(window)
        if pos + WINDOW >= len(body):  # the rest of the line fits
            for s, e in spans:
                yield pos + s, pos + e
            return
        if len(spans) >= 2:  # keep the sentences before the last; it may go on past the window
            for s, e in spans[:-1]:
                yield pos + s, pos + e
            pos += spans[-1][0]
            continue
        # one sentence fills the window (or none: only spaces, or text pysbd altered): it is long and will be
        # cut anyway, so its pieces are cut here, and the window after starts with what is left over
        first = pos + (spans[0][0] if spans else 0)
        stop = pos + WINDOW
        if stop - first <= MAX_SENTENCE_CHARS:  # mostly leading spaces: move on to the text
            pos = first
            continue
        pieces, rest = _cut(body, first, stop, open_end=True)
        yield from pieces
        pos = rest


def _cut(text: str, start: int, end: int, *, open_end: bool = False) -> tuple[list[tuple[int, int]], int]:
    """``text[start:end]`` in stripped pieces of at most ``MAX_SENTENCE_CHARS``, each cut at the best boundary,
    and where the text left over starts (with ``open_end``, the last piece is left over: the text goes on)."""
    pieces: list[tuple[int, int]] = []
    while True:
        while start < end and text[start].isspace():
            start += 1
        if end - start <= MAX_SENTENCE_CHARS:
            if open_end:
                return pieces, start
            stop = end
            while stop > start and text[stop - 1].isspace():
                stop -= 1
            if stop > start:
                pieces.append((start, stop))
            return pieces, end
        lo, hi = start + MAX_SENTENCE_CHARS // 2, start + MAX_SENTENCE_CHARS
        cut = hi  # no boundary at all: a fixed window
        for pattern in _CUTS:
            found = [m.end() for m in pattern.finditer(text, lo, hi + 1) if m.end() <= hi]
            if found:
                cut = found[-1]
                break
        stop = cut
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        pieces.append((start, stop))
        start = cut


def _spans(text: str, start: int = 0) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of each sentence from ``start`` on; lines are hard boundaries (headlines, paragraphs)."""
    for line in re.compile(r"[^\n]+").finditer(text, start):
        body = line.group()
        if not body.strip():
            continue
        for s, e in _line_sentences(body):
            yield from _cut(text, line.start() + s, line.start() + e)[0]


def segment(doc: Document) -> list[Sentence]:
    """Split a document into sentences, each an exact slice ``doc.text[start:end]``; each line of the
    header (title, byline, dateline) is one sentence, whatever its abbreviations."""
    lines = sorted(header_spans(doc).values())
    header = [piece for s, e in lines for piece in _cut(doc.text, s, e)[0]]  # a 2,000-character title too
    rest = _spans(doc.text, lines[-1][1] if lines else 0)
    return [
        Sentence(doc_id=doc.doc_id, n=i, start=s, end=e, text=doc.text[s:e])
        for i, (s, e) in enumerate([*header, *rest])
    ]
