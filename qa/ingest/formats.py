"""One reader per format, each giving the article's body and whatever metadata the format carries.

HTML goes through article extraction (``qa.ingest.html``); Markdown is rendered by markdown-it (CommonMark)
and reduced to its text, with any front matter as metadata; PDF text layers are read with pypdf. The
libraries load only when a file of their format is read.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass

from qa.errors import EmptyDocumentError, NoTextLayerError, UndecodableDocumentError
from qa.ingest.html.meta import iso_date

#: Formats and the file suffixes that select them.
SUFFIX_FORMATS = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
                  ".pdf": "pdf"}
#: Formats and the HTTP content types that select them (feeds are told apart by ``qa.ingest.sources``).
CONTENT_TYPE_FORMATS = {
    "text/html": "html", "application/xhtml+xml": "html", "text/plain": "text", "text/markdown": "markdown",
    "text/x-markdown": "markdown", "application/pdf": "pdf",
}
NO_ARTICLE_NOTICE = "No article was found on the page (a home page or a list of links?); its visible text was indexed."


@dataclass(frozen=True)
class Parsed:
    """A body and the metadata its format gave (empty where it says nothing)."""

    body: str
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None
    modified: str | None = None
    outlet: str | None = None
    url: str | None = None
    language: str | None = None
    notice: str | None = None
    header: bool = True  # whether the canonical text gets the metadata header


def decode(data: bytes, name: str, charset: str | None = None) -> str:
    """Decode text: the declared charset when there is one, else strict UTF-8 (with or without BOM);
    binary data (a NUL byte anywhere, not only near the start) is refused, not guessed at. Line endings become
    ``\\n``."""
    if b"\x00" in data:
        raise UndecodableDocumentError(name)
    encoding = "utf-8-sig"
    if charset:
        try:
            encoding = codecs.lookup(charset).name
        except LookupError:
            encoding = "utf-8-sig"
        if encoding == "utf-8" or data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise UndecodableDocumentError(name) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


def html_charset(data: bytes) -> str | None:
    """The charset an HTML page declares in its first 4 KB (``<meta charset>`` or ``http-equiv``).

    >>> html_charset(b'<meta charset="windows-1251"><p>'), html_charset(b"<p>none</p>")
    ('windows-1251', None)
    """
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def read_html(text: str, name: str, url: str | None = None) -> Parsed:
    """The article of a web page and its metadata; a page without one gives its visible text and says so."""
    from qa.ingest.html import extract_article

    found = extract_article(text, url)
    if not found.text.strip():
        raise EmptyDocumentError(name)
    return Parsed(
        body=found.text, title=_without_outlet(found.title, found.outlet), authors=found.authors,
        published=found.published,
        modified=found.modified, outlet=found.outlet, url=found.url or url, language=found.language,
        notice=None if found.found_article else NO_ARTICLE_NOTICE,
    )


def _without_outlet(title: str | None, outlet: str | None) -> str | None:
    """A page title without the site name pages append to it ("Vote passes - The Post" -> "Vote passes").

    >>> _without_outlet("Vote passes | The Post", "The Post"), _without_outlet("The Post", "The Post")
    ('Vote passes', 'The Post')
    """
    if not title or not outlet:
        return title
    for sep in (" - ", " | ", " – ", " — ", " :: ", " : "):
        if title.endswith(sep + outlet) and len(title) > len(sep + outlet):
            return title[: -len(sep + outlet)].strip()
    return title


def read_text(text: str) -> Parsed:
    r"""Plain text is kept as it is (no header); its first line is the title when it reads like one: not a
    sentence, and not a dateline ending in a dash ("Minneapolis CNN Business —"), which names the article
    as badly in a citation as no title at all.

    >>> read_text("Flood plan approved\nThe council approved it.").title
    'Flood plan approved'
    >>> read_text("Minneapolis CNN Business \u2014\nPrices rose.").title is None
    True
    """
    first = text.strip().split("\n", 1)[0].strip()
    reads = 0 < len(first) <= 150 and "\n" in text.strip() and not first.endswith((".", ":", "\u2014", "\u2013", "-"))
    return Parsed(body=text, title=first if reads else None, header=False)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_KEYS = {
    "title": "title", "headline": "title", "author": "authors", "authors": "authors", "by": "authors",
    "date": "published", "published": "published", "pubdate": "published", "updated": "modified",
    "modified": "modified", "lastmod": "modified", "outlet": "outlet", "publisher": "outlet", "source": "outlet",
    "site": "outlet", "url": "url", "link": "url", "canonical": "url", "lang": "language", "language": "language",
}


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``key: value`` lines of a front matter block (YAML's simple case), and the text after it."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    meta: dict[str, str] = {}
    for line in m.group(1).split("\n"):
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in _FRONT_KEYS and _FRONT_KEYS[key] not in meta:
            value = value.strip().strip("\"'").strip()
            if value:
                meta[_FRONT_KEYS[key]] = value
    return meta, text[m.end() :]


def read_markdown(text: str) -> Parsed:
    """Markdown rendered (CommonMark) and reduced to its text: no ``#``, ``**`` or link targets remain.
    A front matter block gives metadata; else the first heading is the title."""
    from markdown_it import MarkdownIt

    from qa.ingest.html import visible_text

    meta, rest = _front_matter(text)
    body = visible_text(MarkdownIt("commonmark").enable("table").render(rest))
    title = meta.get("title")
    if title is None:
        m = re.match(r"\s*#{1,2}[ \t]+(.+?)[ \t#]*(?:\n|$)", rest)
        title = visible_text(MarkdownIt("commonmark").render(m.group(1))) if m else None
    authors = tuple(a.strip() for a in re.split(r"\s*(?:,|;|\band\b)\s*", meta.get("authors", "")) if a.strip())
    return Parsed(
        body=body, title=title or None, authors=authors, published=iso_date(meta.get("published")),
        modified=iso_date(meta.get("modified")), outlet=meta.get("outlet"), url=meta.get("url"),
        language=meta.get("language"),
    )


def read_pdf(data: bytes, name: str) -> Parsed:
    """The text layer of a PDF (pypdf), lines reflowed into paragraphs; a PDF without one is refused."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title = str(info.title).strip() if info is not None and info.title else None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UndecodableDocumentError(name, f"it could not be read as a PDF ({exc})") from exc
    body = "\n\n".join(reflow(p) for p in pages if p.strip())
    if not re.search(r"\w", body):
        raise NoTextLayerError(name)
    return Parsed(body=body, title=title or None)


def reflow(text: str) -> str:
    r"""Join the hard-wrapped lines of a PDF page into paragraphs. A blank line ends a paragraph, and so does
    a line well short of the page's width that ends a sentence or comes before a capitalised line (a
    heading). Words hyphenated across lines are joined.

    >>> reflow("Vote passes\nThe vote was held on a\nrainy Monday. It passed.\n\nA new para-\ngraph.")
    'Vote passes\n\nThe vote was held on a rainy Monday. It passed.\n\nA new paragraph.'
    """
    lines = [" ".join(line.split()) for line in text.split("\n")]
    width = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current = ""
    for i, line in enumerate(lines):
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if current.endswith("-") and line[:1].islower():
            current = current[:-1] + line
        else:
            current = f"{current} {line}" if current else line
        following = lines[i + 1] if i + 1 < len(lines) else ""
        short = len(line) < 0.6 * width
        ends = line.endswith((".", "!", "?", ":", "\u201d", '"'))
        if short and (ends or following[:1].isupper()):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)
