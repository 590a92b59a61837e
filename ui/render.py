"""HTML and Markdown for the chat, kept free of Gradio so it can be unit-tested.

Every piece of text that comes from a document, a file name, a question or a model
goes through ``html.escape`` here: an article's HTML or ``<script>`` is shown, never run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from qa.cite.markers import find_markers, strip_markers
from qa.ingest import document_label
from qa.ingest.header import label, long_date
from qa.types import Answer, Citation, Document

# Longer documents are shown as excerpts around the cited sentences, so a 10 MB upload
# does not become a 10 MB HTML update on every answer.
FULL_TEXT_LIMIT = 30_000
EXCERPT_CONTEXT = 600

BACKEND_HINTS = {
    "extractive": "quoting sentences, no language model",
    "ollama": "Ollama",
}
#: Shown once per conversation when the answer could not come from Ollama.
OLLAMA_HINT = (
    "Answers quote the articles because no language model is running on this computer. For written answers, "
    'install Ollama from <a href="https://ollama.com" target="_blank" rel="noopener noreferrer">ollama.com</a>, '
    "start it and download a model, then ask again."
)
_DOUBLE_OPEN = re.compile("\u201c\\s*\u201c")
_DOUBLE_CLOSE = re.compile("\u201d\\s*\u201d")

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~>$])")
_LIST_NUMBER = re.compile(r"^(\s*\d+)\.", re.MULTILINE)
#: A web address in an article or a reply; what follows it (a full stop, a closing bracket) is not part of it.
_URL = re.compile(r"\bhttps?://[^\s<>\"'`\\]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?'\")]}*_~"

EMPTY_SOURCES_HTML = (
    '<div class="qa-sources qa-empty"><div class="qa-sources-title">Sources</div>'
    "<p>Ask a question: the article appears here with the sentences the answer cites "
    "highlighted and numbered.</p></div>"
)


def escape(text: str) -> str:
    """HTML-escape untrusted text (quotes too, so it is also safe inside attributes)."""
    return html.escape(text, quote=True)


def _escape_plain(text: str) -> str:
    """Markdown syntax shown literally; a line that opens with a number and a full stop ("2017. “The
    company…”", an answer's lead) would otherwise start a numbered list."""
    return _LIST_NUMBER.sub(r"\1\\.", _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False)))


def _link(url: str) -> str:
    """A web address as a link: the address is escaped for HTML, never for Markdown (no stray backslashes),
    and its text is written with character references so Markdown finds nothing in it to format."""
    shown = "".join(f"&#{ord(c)};" if c in "\\`*_{}[]()#+-!|~>$" else c for c in html.escape(url, quote=True))
    return f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer nofollow">{shown}</a>'


def _split_url(match: str) -> str:
    """The address in a match, without the punctuation that ends the sentence around it (a closing bracket
    stays when the address opened one, as in Wikipedia's addresses)."""
    url = match
    while url and url[-1] in _URL_TAIL:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def escape_markdown(text: str) -> str:
    """Escape text for the chat's Markdown: HTML is neutralised, Markdown syntax shown literally, and web
    addresses become links that work (escaping them for Markdown left backslashes inside the link).

    >>> escape_markdown("<b>$5</b> [x](y)")
    '&lt;b&gt;\\\\$5&lt;/b&gt; \\\\[x\\\\]\\\\(y\\\\)'
    >>> escape_markdown("See https://example.com/a_b.")  # doctest: +ELLIPSIS
    'See <a href="https://example.com/a_b" ...>https://example.com/a&#95;b</a>.'
    """
    parts: list[str] = []
    last = 0
    for m in _URL.finditer(text):
        url = _split_url(m.group())
        if len(url) <= len("https://"):
            continue
        parts.append(_escape_plain(text[last : m.start()]))
        parts.append(_link(url))
        last = m.start() + len(url)
    parts.append(_escape_plain(text[last:]))
    return "".join(parts)


def collapse_quotes(text: str) -> str:
    """One opening or closing curly quote where a quoted sentence that itself begins or ends with one would
    show two (``““Two people…”``).

    >>> collapse_quotes("\u201c\u201cTwo people left,\u201d he said.\u201d [1]")
    '“Two people left,” he said.” [1]'
    """
    return _DOUBLE_CLOSE.sub("\u201d", _DOUBLE_OPEN.sub("\u201c", text))


def _linked(text: str, link_markers: bool) -> str:
    text = collapse_quotes(text)
    parts: list[str] = []
    last = 0
    for m, numbers in find_markers(text):
        parts.append(escape_markdown(text[last : m.start()]))
        for n in numbers:
            parts.append(f'<a class="qa-ref" href="#qa-cite-{n}">[{n}]</a>' if link_markers else f"\\[{n}\\]")
        last = m.end()
    parts.append(escape_markdown(text[last:]))
    return "".join(parts)


def answer_markdown(text: str, *, link_markers: bool = True, flags: Sequence[tuple[int, int, str]] = ()) -> str:
    """The answer text for the chat: escaped, with ``[n]`` markers as links to the source panel, and each
    ``(start, end, tooltip)`` in ``flags`` marked as not verified."""
    parts: list[str] = []
    cursor = 0
    for start, end, title in sorted(flags):
        if start < cursor or end <= start:
            continue
        parts.append(_linked(text[cursor:start], link_markers))
        parts.append(
            f'<span class="qa-unverified" title="{escape(title)}">{_linked(text[start:end], link_markers)}</span>'
            f'<sup class="qa-flag" title="{escape(title)}">\u26a0 not verified</sup>'
        )
        cursor = end
    parts.append(_linked(text[cursor:], link_markers))
    return "".join(parts)


def claim_flags(answer: Answer) -> list[tuple[int, int, str]]:
    """Where the answer's unsupported claims are, and what their flag says."""
    out = []
    for c in answer.claims:
        if c.supported is False:
            why = "not supported by the cited sentence" if c.citations else "not supported by any source sentence"
            score = f" (check score {c.score:.2f})" if c.score is not None else ""
            out.append((c.start, c.end, f"Not verified: {why}{score}"))
    return out


def references_html(citations: Sequence[Citation], extra: str = "") -> str:
    """The compact reference list under an answer, one line per cited article: its numbers (each links to the
    highlighted sentence, which it shows on hover), then "Title — Outlet, 6 Feb 2018" (the id when untitled)."""
    by_doc: dict[str, list[Citation]] = {}
    for c in citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    items = "".join(
        "<li>"
        + "".join(f'<a class="qa-ref" href="#qa-cite-{c.n}" title="{escape(collapse_quotes(c.text))}">[{c.n}]</a> '
                  for c in cites)
        + f'<span class="qa-ref-doc" title="{escape(doc_id)}">'
        f"{escape(label(cites[0].title, cites[0].outlet, cites[0].published, doc_id))}</span></li>"
        for doc_id, cites in by_doc.items()
    )
    return f'<div class="qa-refs">{extra}<ul>{items}</ul></div>'


def related_html(related: Sequence[Citation]) -> str:
    """Passages on the topic that do not answer it, folded (one HTML block: no blank line inside)."""
    if not related:
        return ""
    items = "".join(
        f'<li><span class="qa-ref-text">{escape(collapse_quotes(chr(0x201c) + c.text + chr(0x201d)))}</span> '
        f'<span class="qa-ref-doc">\u2014 {escape(label(c.title, c.outlet, c.published, c.doc_id))}</span></li>'
        for c in related
    )
    return (f'<details class="qa-related"><summary>Related passages ({len(related)}), not an answer</summary>'
            f"<ul>{items}</ul></details>")


def message_markdown(answer: Answer) -> str:
    """The whole assistant message for a finished answer: the text (unsupported claims flagged in place),
    then its compact references; an abstention says so plainly instead of repeating the pipeline's sentence,
    with the related passages folded underneath."""
    if answer.abstained:
        return (
            '<div class="qa-abstain"><strong>Not in the articles.</strong> No sentence in the indexed articles '
            f"answers this. Try other words, or add the article that would.{related_html(answer.related)}</div>"
        )
    flags = claim_flags(answer)
    body = answer_markdown(answer.text, flags=flags)
    copy = '<a class="qa-copy" href="#copy" title="Copy the answer and its references as text">Copy</a>'
    if answer.citations:
        body += "\n\n" + references_html(answer.citations, copy)
    else:
        body += f'\n\n<div class="qa-refs qa-refs-bare">{copy}</div>'
    shown = {strip_markers(answer.text[a:b]) for a, b, _ in flags}
    rest = [span for span in answer.unsupported if span not in shown]  # flagged in the text already
    if rest:
        items = "".join(f"<li>{escape(span)}</li>" for span in rest)
        body += (
            '\n\n<div class="qa-unsupported"><div class="qa-refs-title">Not supported by the sources</div>'
            f"<ul>{items}</ul></div>"
        )
    if answer.related:
        body += "\n\n" + related_html(answer.related)
    return body


def backend_label(backend: str) -> str:
    """The backend chip's words: the Ollama model that answered, or what the extractive answerer does.

    >>> backend_label("ollama:llama3.2"), backend_label("extractive")
    ('Ollama · llama3.2', 'quoting sentences, no language model')
    """
    kind, _, model = backend.partition(":")
    if kind == "ollama":
        return f"Ollama \u00b7 {model}" if model else "Ollama"
    return BACKEND_HINTS.get(kind, backend)


def status_html(answer: Answer | None = None, *, error: str | None = None, hint: bool = True) -> str:
    """The line under the chat: a chip naming the backend that answered and, when Ollama could not be used
    and ``hint`` (once per conversation), how to start it, in words for the web (no command-line flags)."""
    if error is not None:
        return f'<div class="qa-status qa-error" role="alert"><strong>Error:</strong> {escape(error)}</div>'
    if answer is None:
        return '<div class="qa-status">Ready. Answers cite the exact sentences they come from.</div>'
    chip = (f'<span class="qa-backend qa-chip" title="{escape(answer.backend)}">'
            f"{escape(backend_label(answer.backend))}</span>")
    html_out = f'<div class="qa-status">{chip}</div>'
    if answer.notice and hint:
        html_out += (
            f'<div class="qa-status qa-notice" role="status" title="{escape(answer.notice)}">{OLLAMA_HINT}</div>'
        )
    return html_out


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    numbers: tuple[int, ...]


def _locate(doc: Document, c: Citation) -> tuple[int, int] | None:
    """The citation's offsets, checked against the text (a document may have been re-uploaded)."""
    if 0 <= c.start < c.end <= len(doc.text) and doc.text[c.start : c.end] == c.text:
        return c.start, c.end
    found = doc.text.find(c.text) if c.text else -1
    return (found, found + len(c.text)) if found >= 0 else None


def _spans(doc: Document, citations: Iterable[Citation]) -> list[_Span]:
    """Cited spans in text order; a sentence cited under several numbers is marked once."""
    located: dict[tuple[int, int], list[int]] = {}
    for c in citations:
        where = _locate(doc, c)
        if where is not None:
            located.setdefault(where, []).append(c.n)
    spans: list[_Span] = []
    for (start, end), numbers in sorted(located.items()):
        if spans and start < spans[-1].end:  # overlapping spans: fold into the previous one
            prev = spans[-1]
            spans[-1] = _Span(prev.start, max(prev.end, end), prev.numbers + tuple(numbers))
        else:
            spans.append(_Span(start, end, tuple(sorted(numbers))))
    return spans


def _windows(text: str, spans: Sequence[_Span]) -> list[tuple[int, int]]:
    """The parts of a long text to show: whole lines around each cited span, merged."""
    if len(text) <= FULL_TEXT_LIMIT:
        return [(0, len(text))]
    windows: list[tuple[int, int]] = []
    for s in spans:
        lo = max(0, s.start - EXCERPT_CONTEXT)
        hi = min(len(text), s.end + EXCERPT_CONTEXT)
        nl = text.rfind("\n", lo, s.start)
        lo = nl + 1 if nl >= 0 else lo
        nl = text.find("\n", s.end, hi)
        hi = nl if nl >= 0 else hi
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], hi))
        else:
            windows.append((lo, hi))
    return windows or [(0, min(len(text), 2 * EXCERPT_CONTEXT))]


def highlight_document(doc: Document, citations: Sequence[Citation]) -> str:
    """One document as escaped HTML with its cited sentences in numbered ``<mark>`` elements."""
    spans = _spans(doc, citations)
    text = doc.text
    out: list[str] = []
    windows = _windows(text, spans)
    for wi, (lo, hi) in enumerate(windows):
        if lo > 0 or wi > 0:
            out.append('<span class="qa-gap">\u2026</span>\n')
        cursor = lo
        for s in spans:
            if s.end <= lo or s.start >= hi:
                continue
            out.append(escape(text[cursor : s.start]))
            first = s.numbers[0]
            badges = "".join(f'<sup class="qa-num">{n}</sup>' for n in s.numbers)
            out.append(
                f'<mark class="qa-cite" id="qa-cite-{first}" data-cite="{" ".join(map(str, s.numbers))}">'
                f"{badges}{escape(text[s.start : s.end])}</mark>"
            )
            cursor = s.end
        out.append(escape(text[cursor:hi]))
    if windows and windows[-1][1] < len(text):
        out.append('\n<span class="qa-gap">\u2026</span>')
    return "".join(out)


def render_sources(documents: Mapping[str, Document], answer: Answer | None) -> str:
    """The source panel: each cited document with the cited sentences highlighted and numbered."""
    if answer is None:
        return EMPTY_SOURCES_HTML
    if answer.abstained or not answer.citations:
        return (
            '<div class="qa-sources qa-empty"><div class="qa-sources-title">Sources</div>'
            "<p>No sentence in the indexed articles supports an answer to this question, "
            "so nothing is highlighted.</p></div>"
        )
    by_doc: dict[str, list[Citation]] = {}
    for c in answer.citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    sections = []
    for doc_id, cites in by_doc.items():
        numbers = ", ".join(f"[{c.n}]" for c in cites)
        doc = documents.get(doc_id)
        head = document_header(doc, cites[0], numbers)
        if doc is None:
            body = "".join(
                f'<p><mark class="qa-cite" id="qa-cite-{c.n}"><sup class="qa-num">{c.n}</sup>'
                f"{escape(c.text)}</mark></p>"
                for c in cites
            )
            body += (
                '<p class="qa-gap">(This document is no longer in the index; only the cited sentences are shown.)</p>'
            )
        else:
            body = f'<div class="qa-doc-text">{highlight_document(doc, cites)}</div>'
        sections.append(f'<section class="qa-doc" data-doc-id="{escape(doc_id)}">{head}{body}</section>')
    title = '<div class="qa-sources-title">Sources</div>'
    return '<div class="qa-sources">' + title + "".join(sections) + "</div>"


def _safe_link(url: str | None) -> str | None:
    """Only http(s) addresses become links (never ``javascript:``)."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


def document_header(doc: Document | None, first: Citation, numbers: str) -> str:
    """The source panel's header for one document: its title, then outlet, authors, dates and link."""
    title = (doc.title if doc else first.title) or first.doc_id
    outlet = doc.outlet if doc else first.outlet
    published = doc.published if doc else first.published
    url = _safe_link(doc.url if doc else first.url)
    parts = [escape(outlet)] if outlet else []
    if doc is not None and doc.authors:
        parts.append("by " + escape(", ".join(doc.authors)))
    if long_date(published):
        parts.append(f"published {escape(long_date(published) or '')}")
    if doc is not None and long_date(doc.modified) and long_date(doc.modified) != long_date(published):
        parts.append(f"updated {escape(long_date(doc.modified) or '')}")
    if url:
        parts.append(f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer nofollow">source</a>')
    joined = " \u00b7 ".join(parts)
    meta = f'<div class="qa-doc-meta">{joined}</div>' if parts else ""
    doc_id = f'<div class="qa-doc-id">{escape(first.doc_id)}</div>' if title != first.doc_id else ""
    return (f'<div class="qa-doc-title">{escape(title)} <span class="qa-doc-refs">{numbers}</span>{meta}{doc_id}'
            "</div>")


def documents_summary(documents: Mapping[str, Document]) -> str:
    """A one-line count for the document list."""
    n = len(documents)
    return f"{n} document{'s' if n != 1 else ''} indexed. Tick some to search only those; none ticked searches all."


def filter_chip(documents: Mapping[str, Document], selected: Sequence[str]) -> str:
    """The chip next to the input while questions are restricted to some documents; empty when all are searched."""
    names = [document_label(documents[d]) for d in selected if d in documents]
    if not names:
        return ""
    shown = ", ".join(escape(n) for n in names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
    return f'<span class="qa-chip qa-filter" title="{escape("; ".join(names))}">Searching only: {shown}</span>'
