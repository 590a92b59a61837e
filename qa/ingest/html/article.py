"""Article extraction from a web page: the main text, paragraph by paragraph, plus the page's metadata.

Engine: trafilatura extracts the article body. Two independent extractors (readability-lxml and
newspaper4k) act as a second opinion: the paragraphs at the head and tail of trafilatura's output
that neither of them contains (titles, standfirsts, bylines, related links, newsletter boxes,
copyright lines) are trimmed. Lines of common page furniture ("Read more: ...", "Advertisement",
"Share", "Don't miss", photo credits, ...) are dropped anywhere; weaker patterns (bylines,
copyright, "click here") only where no reference has the line. When trafilatura keeps much less
than readability and readability's text contains it, readability's text is used instead, keeping
only its paragraphs that trafilatura or newspaper4k also have. Measured with ``qa eval`` on the
article-extraction benchmark (README, "Article extraction").

A page without an article (too few words, or mostly link text: a home page, an index of links)
gives ``found_article=False`` and the page's visible text.

The extraction libraries are imported inside the functions: only indexing pays for them, never
``qa ask``. Nothing touches the network (newspaper4k's image fetching is turned off); a library
failing on a page counts as that extractor finding nothing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qa.ingest.html.meta import author_names, date_in_text, iso_date, language_tag, page_metadata, parse
from qa.ingest.html.text import (
    WORD_RE,
    ShingleIndex,
    best_support,
    clean,
    join_paragraphs,
    merge_fragments,
    split_paragraphs,
    strict_support,
    support_of,
)


@dataclass(frozen=True)
class Extracted:
    """What was extracted from one page."""

    text: str  # article body, paragraphs separated by "\n\n"
    title: str | None
    authors: tuple[str, ...]
    published: str | None  # ISO date/datetime as on the page; None if absent
    modified: str | None
    outlet: str | None  # site name
    url: str | None
    language: str | None
    found_article: bool  # False: no article was found; text is then the page's visible text


@dataclass(frozen=True)
class Options:
    """Tunable choices of the pipeline (the defaults are the chosen ones)."""

    # second-opinion extractors: any of "readability", "newspaper"
    references: tuple[str, ...] = ("readability", "newspaper")
    # a paragraph is "supported" when this share of its shingles is in some reference
    support_threshold: float = 0.8
    trim_head: bool = True
    trim_tail: bool = True
    # drop boilerplate lines (patterns below): the strong patterns anywhere (when ungated)
    # or where unsupported, the weak patterns only where unsupported
    drop_boilerplate: bool = True
    boilerplate_ungated: bool = True
    # use readability's text when trafilatura's is this many times smaller and contained in it,
    # keeping only its paragraphs that trafilatura or another reference also has (0 disables)
    fallback_ratio: float = 1.6
    fallback_containment: float = 0.8
    # trafilatura settings
    favor_precision: bool = False
    favor_recall: bool = False
    trafilatura_links: bool = True  # extract with links kept, then drop the link targets
    # no-article detection: fewer words than this, or too much of the text is link text
    min_words: int = 25
    max_link_share: float = 0.5  # share of words inside links (page declares no article)
    max_link_lines: float = 0.4  # share of paragraphs that are all link (ditto)
    max_link_share_declared: float = 0.85  # share of words, page declares an article


DEFAULT_OPTIONS = Options()

# Lines that are page furniture rather than article text, in any news site's wording.
# Strong ones are dropped wherever they are (see Options.boilerplate_ungated) ...
_BOILERPLATE_STRONG_RE = re.compile(
    r"""^(?:
        (?:read|see|watch|listen)\s+(?:more|also|next)\b
      | related(?:\s+(?:stories|articles|coverage|content|links|posts|reading|topics))?\s*:
      | more\s+(?:on|from|about)\s*:
      | don'?t\s+miss\b.{0,40}$
      | (?:recommended|trending|popular|top\s+stories|most\s+read)(?:\s+\w+)?\s*:?$
      | advertisement\b.{0,20}$ | sponsored(?:\s+content)?\s*:?$ | ad$
      | (?:share|tweet|email|print|save|comment)s?(?:\s+(?:this|on|via))?(?:\s+\w+)?\s*[:!]?$
      | (?:sign\s+up|subscribe|register)\b.{0,80}newsletter
      | (?:follow|like)\s+us\b.{0,60}$
      | like\s+(?:this:|loading)
      | (?:photo|image|picture)s?\s*(?:credit)?\s*:.{0,60}$
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# ... weak ones only where no reference extractor supports the paragraph.
_BOILERPLATE_WEAK_RE = re.compile(
    r"""^(?:
        (?:click|tap)\s+here\b
      | (?:sign\s+up|subscribe|register|join)\b.{0,80}(?:inbox|updates|free|app)
      | (?:credit|source)s?\s*:.{0,80}$
      | (?:getty\s+images|ap\s+photo|reuters|afp|shutterstock)\b.{0,40}$
      | (?:copyright|\u00a9|all\s+rights\s+reserved).{0,120}$
      | (?:by|written\s+by|posted\s+by|reporting\s+by)\s+[\w.'\- ]{2,60}$
      | (?:published|updated|posted|last\s+updated)(?:\s+on)?\s*:?.{0,60}$
      | (?:write\s+to|contact)\s+.{0,60}@.{0,60}$
    )""",
    re.IGNORECASE | re.VERBOSE,
)


#: Elements whose content a page does not show. Left open (``<iframe>`` with no ``</iframe>``), a parser puts the
#: rest of the page inside them, and dropping them would drop it too.
_HIDING_TAG = re.compile(r"<(/?)(iframe|object|svg|template)\b[^>]*>", re.IGNORECASE)


def without_unclosed_hiding_tags(html: str) -> str:
    """``html`` without the opening tags of ``<iframe>``, ``<object>``, ``<svg>`` or ``<template>`` elements that
    are never closed: what follows them is the page, not their hidden content. Closed ones stay (hidden).

    >>> without_unclosed_hiding_tags("<p>A.</p><iframe src=x><p>B.</p>")
    '<p>A.</p><p>B.</p>'
    >>> without_unclosed_hiding_tags("<iframe>fallback</iframe><object><p>B.")
    '<iframe>fallback</iframe><p>B.'
    """
    stack: list[tuple[str, int, int]] = []
    unclosed: list[tuple[int, int]] = []
    for m in _HIDING_TAG.finditer(html):  # one pass, no recursion: linear in the page
        name = m.group(2).lower()
        if not m.group(1):
            if not m.group(0).endswith("/>"):
                stack.append((name, m.start(), m.end()))
        elif any(open_name == name for open_name, _, _ in stack):
            while stack:
                open_name, start, end = stack.pop()
                if open_name == name:
                    break
                unclosed.append((start, end))
    unclosed.extend((start, end) for _, start, end in stack)
    if not unclosed:
        return html
    pieces, pos = [], 0
    for start, end in sorted(unclosed):
        pieces.append(html[pos:start])
        pos = end
    pieces.append(html[pos:])
    return "".join(pieces)


def extract_article(html: str, url: str | None = None) -> Extracted:
    """Extract the main article text and metadata of a saved web page."""
    return extract_with(html, url, DEFAULT_OPTIONS)


def visible_text(html: str) -> str:
    """The page's visible text (scripts, styles, the ``<head>`` and ``<template>`` contents dropped), paragraphs
    split by blank lines."""
    import html_text

    tree = parse(without_unclosed_hiding_tags(html))
    if tree is None:
        return ""
    for hidden in tree.xpath("//head | //template | //svg | //iframe | //object"):
        if hidden.getparent() is not None:
            hidden.getparent().remove(hidden)
    try:
        raw = html_text.extract_text(tree, guess_layout=True)
    except Exception:  # html-text failing on a page is a page without visible text
        return ""
    return join_paragraphs(raw.split("\n"))


def extract_with(html: str, url: str | None, options: Options) -> Extracted:
    """Same as :func:`extract_article` with explicit pipeline options."""
    html = without_unclosed_hiding_tags(html)
    tree = parse(html)
    meta = page_metadata(tree)
    doc = _trafilatura_document(html, url, options) if tree is not None else {}
    paragraphs = _trafilatura_paragraphs(doc, options)
    refs: dict[str, str] = {}
    if tree is not None:
        refs = {name: _reference_text(name, html, url) for name in options.references}
    kept = _clean_paragraphs(paragraphs, refs, options)

    words = sum(len(WORD_RE.findall(p)) for p in kept)
    # judged on trafilatura's own paragraphs, before "Read more" and the like are dropped
    found = words >= options.min_words and not _looks_like_index(
        paragraphs or kept, meta.get("anchors") or {}, bool(meta.get("declared_article")), options
    )
    text = join_paragraphs(merge_fragments(kept)) if found else visible_text(html)

    return Extracted(
        text=text,
        title=clean(doc.get("title")) or meta.get("title"),
        authors=author_names(doc.get("author"), meta),
        published=meta.get("published") or iso_date(doc.get("date")) or date_in_text(tree, url),
        modified=meta.get("modified"),
        outlet=meta.get("outlet") or clean(doc.get("sitename")),
        url=meta.get("url") or clean(doc.get("url")) or url,
        language=meta.get("language") or language_tag(doc.get("language")),
        found_article=found,
    )


def _trafilatura_document(html: str, url: str | None, options: Options) -> dict[str, Any]:
    """trafilatura's extraction result (body and metadata) as a dict; empty when it finds nothing."""
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            include_comments=False,
            include_tables=True,
            include_links=options.trafilatura_links,
            with_metadata=True,
            favor_precision=options.favor_precision,
            favor_recall=options.favor_recall,
            # no free-text date search: it turns a footer's copyright year into a date
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception:  # trafilatura failing on a page is trafilatura finding nothing
        return {}
    if doc is None:
        return {}
    return doc if isinstance(doc, dict) else dict(doc.as_dict())


def _trafilatura_paragraphs(doc: dict[str, Any], options: Options) -> list[str]:
    """The body's paragraphs, laid out by trafilatura's own text serialiser (one per line)."""
    body = doc.get("body")
    text = doc.get("text") or ""
    if options.trafilatura_links and body is not None:
        from lxml import etree

        try:
            from trafilatura.xml import xmltotxt
        except ImportError:  # pragma: no cover  (another trafilatura layout)
            return split_paragraphs(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text))
        plain = copy.deepcopy(body)
        etree.strip_tags(plain, "ref")  # link texts stay, link targets go
        text = xmltotxt(plain, False)
    return split_paragraphs(text)


def _clean_paragraphs(paragraphs: list[str], refs: dict[str, str], options: Options) -> list[str]:
    """Check trafilatura's paragraphs against the reference extractors' texts.

    ``refs`` maps a reference extractor's name to its text of the page.
    """
    original = paragraphs
    ref_read = refs.get("readability", "")
    strict = False  # drop every unsupported paragraph, not only those at the edges

    # fall back to readability's text when trafilatura kept much less of the same article
    if options.fallback_ratio > 0 and ref_read:
        n_traf = sum(len(WORD_RE.findall(p)) for p in paragraphs)
        n_read = len(WORD_RE.findall(ref_read))
        if n_read > options.fallback_ratio * max(n_traf, 1):
            contained = support_of(" ".join(paragraphs), ShingleIndex(ref_read)) if n_traf else 1.0
            if contained is not None and contained >= options.fallback_containment:
                paragraphs = split_paragraphs(ref_read)
                others = [t for n, t in refs.items() if n != "readability"]
                refs = {"trafilatura": "\n".join(original)}
                refs.update((f"other{i}", t) for i, t in enumerate(others))
                strict = True

    indexes = [ShingleIndex(t) for t in refs.values() if len(WORD_RE.findall(t)) >= 20]
    if strict:
        support = strict_support(paragraphs, indexes)
    else:
        support = [best_support(p, indexes) for p in paragraphs] if indexes else []
    ok = [s is None or s >= options.support_threshold for s in support]
    supported = [i for i, s in enumerate(support) if s is not None and s >= options.support_threshold]
    lo, hi = 0, len(paragraphs) - 1
    if not supported:  # no reference, or none has any of it: only the boilerplate rule applies
        ok = [True] * len(paragraphs)
    else:
        lo = supported[0] if options.trim_head else lo
        hi = supported[-1] if options.trim_tail else hi
    kept: list[str] = []
    for i in range(lo, hi + 1):
        para = paragraphs[i]
        if strict and not ok[i]:
            continue
        if options.drop_boilerplate:
            bare = para.lstrip("-•*|> ")
            if _BOILERPLATE_STRONG_RE.match(bare) and (options.boilerplate_ungated or not ok[i]):
                continue
            if not ok[i] and _BOILERPLATE_WEAK_RE.match(bare):
                continue
        kept.append(para)
    return kept


def _looks_like_index(
    paragraphs: Sequence[str],
    anchors: dict[str, list[tuple[str, ...]]],
    declared_article: bool,
    options: Options,
) -> bool:
    """True when the text is mostly link text: a home page or a list of links, not an article."""
    share, link_lines = _link_stats(paragraphs, anchors)
    if declared_article:
        return share > options.max_link_share_declared
    return share > options.max_link_share or link_lines > options.max_link_lines


def _link_stats(paragraphs: Sequence[str], anchors: dict[str, list[tuple[str, ...]]]) -> tuple[float, float]:
    """Share of words inside the page's links, and share of paragraphs that are (almost) all link."""
    total = covered_all = link_lines = counted = 0
    for para in paragraphs:
        tokens = WORD_RE.findall(para)
        if not tokens:
            continue
        covered = _covered_by_anchors(tokens, anchors)
        total += len(tokens)
        covered_all += covered
        counted += 1
        link_lines += covered >= 0.8 * len(tokens)
    if not total:
        return 0.0, 0.0
    return covered_all / total, link_lines / counted


def _covered_by_anchors(tokens: Sequence[str], anchors: dict[str, list[tuple[str, ...]]]) -> int:
    """How many of ``tokens`` lie inside a run that is the text of some link on the page."""
    covered = i = 0
    while i < len(tokens):
        step = 1
        for seq in anchors.get(tokens[i], ()):  # longest first
            if tuple(tokens[i : i + len(seq)]) == seq:
                covered += len(seq)
                step = len(seq)
                break
        i += step
    return covered


def _reference_text(name: str, html: str, url: str | None) -> str:
    """Text of a second-opinion extractor; empty when it fails."""
    try:
        if name == "readability":
            import html_text
            from readability import Document

            summary = Document(html).summary(html_partial=True)
            return str(html_text.extract_text(summary, guess_layout=True))
        if name == "newspaper":
            return _newspaper_text(html, url)
    except Exception:
        return ""
    raise ValueError(f"unknown reference extractor {name!r}")


def _newspaper_text(html: str, url: str | None) -> str:
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import newspaper

    logging.getLogger("newspaper").setLevel(logging.ERROR)
    config = newspaper.Config()
    config.fetch_images = False  # never touch the network
    config.memoize_articles = False
    article = newspaper.Article(url or "http://localhost/", config=config)
    article.download(input_html=html)
    article.parse()
    return str(article.text or "")


