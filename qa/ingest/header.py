"""The short header an article's canonical text begins with, and the one-line label of a document.

The header is part of the text, so questions about the article itself ("Who wrote it?", "When was it
published?", "Which outlet reported it?") are answered by citing it, with exact offsets, like any
sentence. Each line is one sentence (``segment`` keeps header lines whole)::

    Zambia's president fires finance minister          <- title line
    By Jane Doe and John Roe.                          <- byline (when the authors are known)
    Published by Lusaka Times on 6 February 2018.      <- dateline (outlet and/or dates, when known)

    First paragraph of the article ...

Nothing is written that the source does not say: no author, no byline; no date, no date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from qa.types import Document

HEADER_KINDS = ("title", "byline", "dateline")
_MONTHS = (
    "January February March April May June July August September October November December".split()
)


def parse_date(value: str | None) -> date | None:
    """The calendar date of an ISO 8601 date or datetime string (as the source wrote it), or None.

    >>> parse_date("2018-02-06T10:00:00Z"), parse_date("2018-02-06"), parse_date("February 2018")
    (datetime.date(2018, 2, 6), datetime.date(2018, 2, 6), None)
    """
    if not value:
        return None
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})", value.strip())
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def long_date(value: str | None) -> str | None:
    """``6 February 2018`` for an ISO date (the day as the source wrote it, time zone not converted).

    >>> long_date("2018-02-06T23:30:00-05:00"), long_date(None)
    ('6 February 2018', None)
    """
    d = parse_date(value)
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}" if d else None


def short_date(value: str | None) -> str | None:
    """``6 Feb 2018``, for labels.

    >>> short_date("2018-02-06")
    '6 Feb 2018'
    """
    d = parse_date(value)
    return f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}" if d else None


def _names(authors: Sequence[str]) -> str:
    names = [a for a in authors if a]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def header_lines(
    *,
    title: str | None = None,
    authors: Sequence[str] = (),
    published: str | None = None,
    modified: str | None = None,
    outlet: str | None = None,
) -> list[tuple[str, str]]:
    """The header's ``(kind, line)`` pairs for this metadata (kinds from ``HEADER_KINDS``).

    >>> header_lines(title="Vote", authors=["Ann Lee", "Bo Li"], published="2018-02-06", outlet="The Post")
    [('title', 'Vote'), ('byline', 'By Ann Lee and Bo Li.'), ('dateline', 'Published by The Post on 6 February 2018.')]
    >>> header_lines(modified="2018-02-07")
    [('dateline', 'Updated on 7 February 2018.')]
    """
    lines: list[tuple[str, str]] = []
    if title:
        lines.append(("title", _one_line(title)))
    if any(authors):
        lines.append(("byline", f"By {_one_line(_names(authors))}."))
    pub, mod = long_date(published), long_date(modified)
    if outlet or pub:
        line = "Published" + (f" by {_one_line(outlet)}" if outlet else "") + (f" on {pub}" if pub else "")
        if mod and mod != pub:
            line += f"; updated on {mod}"
        lines.append(("dateline", line + "."))
    elif mod:
        lines.append(("dateline", f"Updated on {mod}."))
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def with_header(body: str, **meta: object) -> str:
    """The canonical text: the header lines, a blank line, then the body.

    A body that already begins with the title (a Markdown heading, a text file's first line) keeps it
    as the header's title line instead of repeating it.

    >>> with_header("Vote\\n\\nThe vote passed.", title="Vote", outlet="The Post")
    'Vote\\nPublished by The Post.\\n\\nThe vote passed.'
    >>> with_header("Only text.")
    'Only text.'
    """
    lines = header_lines(**meta)  # type: ignore[arg-type]
    if not lines:
        return body
    if lines[0][0] == "title":
        first, _, rest = body.lstrip().partition("\n")
        if _one_line(first) == lines[0][1]:
            body = rest
    return "\n".join(line for _, line in lines) + "\n\n" + body.strip("\n")


def header_spans(doc: Document) -> dict[str, tuple[int, int]]:
    """Where each header line of ``doc`` is in its text: ``{kind: (start, end)}``; empty for a text
    without the header its metadata gives (text given as is, an index written before headers)."""
    spans: dict[str, tuple[int, int]] = {}
    pos = 0
    text = doc.text
    for kind, line in header_lines(
        title=doc.title, authors=doc.authors, published=doc.published, modified=doc.modified, outlet=doc.outlet
    ):
        if not text.startswith(line + "\n", pos):
            return {}
        spans[kind] = (pos, pos + len(line))
        pos += len(line) + 1
    return spans if text.startswith("\n", pos) else {}


def label(title: str | None, outlet: str | None, published: str | None, fallback: str) -> str:
    """How a document is named to people: ``Title — Outlet, 6 Feb 2018``; its id when it has no title.

    >>> label("Vote", "The Post", "2018-02-06", "a.html"), label(None, None, None, "a.txt")
    ('Vote — The Post, 6 Feb 2018', 'a.txt')
    >>> label(None, "The Post", None, "https://post.example/vote")
    'https://post.example/vote — The Post'
    """
    tail = ", ".join(p for p in (outlet, short_date(published)) if p)
    head = title or fallback
    return f"{head} \u2014 {tail}" if tail else head


def document_label(doc: Document) -> str:
    return label(doc.title, doc.outlet, doc.published, doc.doc_id)
