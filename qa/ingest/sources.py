"""What ``qa index`` and the chat's link box read: files, folders, links to pages, and RSS/Atom feeds.

Files and links given directly are all-or-nothing: one that cannot be read fails the batch before
anything is indexed. A feed is a list of links: each entry's article is fetched and read with the
entry's metadata (its title, authors and dates first, the page's where the entry says nothing); an
entry that fails is skipped with a note, and an entry already indexed whose id, link, title and dates
are unchanged is not fetched again (``Document.revision``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qa.errors import DocumentError, EmptyDocumentError, LinkContentTypeError
from qa.ingest.fetch import Fetched, FetchPolicy, fetch, is_link, normalize_url
from qa.ingest.formats import CONTENT_TYPE_FORMATS, SUFFIX_FORMATS, Parsed
from qa.ingest.html.meta import iso_date
from qa.ingest.read import make_document, parse_bytes, read_documents
from qa.types import Document

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml",
              "application/feed+json")


@dataclass
class SourceReport:
    """What reading the sources gave: documents to index, ids left as they are, and notes for the user."""

    documents: list[Document] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # feed entries already indexed: not fetched again
    notes: list[str] = field(default_factory=list)


def read_sources(
    sources: Iterable[str | Path],
    *,
    max_bytes: int,
    policy: FetchPolicy,
    known: Mapping[str, Document] | None = None,
    base: Path | None = None,
) -> SourceReport:
    """Read paths (files or folders) and links (pages or feeds); ``known`` are the documents already
    indexed, so unchanged feed entries are not fetched again."""
    report = SourceReport()
    paths = [s for s in sources if not (isinstance(s, str) and is_link(s))]
    links = [s for s in sources if isinstance(s, str) and is_link(s)]
    seen: set[str] = set()
    for doc in read_documents(paths, max_bytes=max_bytes, base=base) if paths else []:
        seen.add(doc.doc_id)
        report.documents.append(doc)
    for link in links:
        fetched = fetch(link, policy)
        if is_feed(fetched):
            _read_feed(fetched, report, policy, known or {}, seen)
            continue
        doc = document_from_fetched(fetched)
        if doc.doc_id not in seen:
            seen.add(doc.doc_id)
            report.documents.append(doc)
    for doc in report.documents:
        if doc.notice:
            report.notes.append(f"{doc.doc_id}: {doc.notice}")
    return report


def is_feed(fetched: Fetched) -> bool:
    """An RSS or Atom feed, by its content type, or by its first element when served as plain XML or text."""
    if fetched.content_type in FEED_TYPES[:3]:
        return True
    if fetched.content_type in ("", *FEED_TYPES[3:], "text/plain"):
        head = fetched.data[:2048].lstrip().lower()
        return any(tag in head for tag in (b"<rss", b"<feed", b"<rdf:rdf"))
    return False


def link_format(fetched: Fetched) -> str:
    """The format of what a link returned, by its content type (or, without one, its first bytes)."""
    fmt = CONTENT_TYPE_FORMATS.get(fetched.content_type)
    if fmt is None and fetched.content_type in ("", "application/octet-stream", "binary/octet-stream"):
        head = fetched.data[:1024].lstrip().lower()
        if head.startswith(b"%pdf"):
            fmt = "pdf"
        elif head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
            fmt = "html"
        else:
            fmt = SUFFIX_FORMATS.get(Path(fetched.final_url.split("?", 1)[0]).suffix.lower())
    if fmt is None:
        raise LinkContentTypeError(fetched.final_url, fetched.content_type)
    return fmt


def document_from_fetched(fetched: Fetched, *, doc_id: str | None = None, entry: Parsed | None = None,
                          source: str | None = None, revision: str | None = None) -> Document:
    """The Document of a fetched page; a feed entry's metadata (``entry``) comes first where it has any."""
    parsed = parse_bytes(fetched.data, fetched.final_url, link_format(fetched), url=fetched.final_url,
                         charset=fetched.charset)
    if parsed.url is None:
        parsed = replace(parsed, url=fetched.final_url)
    if entry is not None:
        parsed = replace(
            parsed,
            title=entry.title or parsed.title,
            authors=entry.authors or parsed.authors,
            published=entry.published or parsed.published,
            modified=entry.modified or parsed.modified,
            outlet=parsed.outlet or entry.outlet,
            language=parsed.language or entry.language,
        )
    return make_document(doc_id or fetched.url, parsed, source=source or fetched.url, name=fetched.final_url,
                         revision=revision)


def _entry_meta(entry: Any, outlet: str | None, language: str | None) -> Parsed:
    authors = [str(a.get("name")) for a in entry.get("authors") or [] if isinstance(a, Mapping) and a.get("name")]
    if not authors and entry.get("author"):
        authors = [str(entry.get("author"))]
    published = iso_date(entry.get("published")) or iso_date(entry.get("created"))
    modified = iso_date(entry.get("updated"))
    return Parsed(
        body="", title=(entry.get("title") or "").strip() or None, authors=tuple(authors), published=published,
        modified=modified if modified != published else None, outlet=outlet, language=language,
    )


def entry_revision(entry: Any) -> str:
    """A fingerprint of what the feed says about an entry: re-fetched only when it changes."""
    keys = ("id", "link", "title", "published", "updated")
    return hashlib.sha256(json.dumps([str(entry.get(k) or "") for k in keys]).encode()).hexdigest()[:16]


def _read_feed(fetched: Fetched, report: SourceReport, policy: FetchPolicy, known: Mapping[str, Document],
               seen: set[str]) -> None:
    import feedparser

    parsed = feedparser.parse(fetched.data)  # bytes: feedparser never fetches anything itself
    if not parsed.entries:
        raise EmptyDocumentError(f"{fetched.url} (a feed without entries)")
    outlet = (parsed.feed.get("title") or "").strip() or None
    language = parsed.feed.get("language") or None
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            report.notes.append(f"{fetched.url}: skipped the entry {entry.get('title')!r}: it has no link")
            continue
        doc_id = normalize_url(link)
        revision = entry_revision(entry)
        if doc_id in seen:
            continue
        seen.add(doc_id)
        old = known.get(doc_id)
        if old is not None and old.revision == revision:
            report.unchanged.append(doc_id)
            continue
        meta = _entry_meta(entry, outlet, language)
        try:
            page = fetch(doc_id, policy)
            doc = document_from_fetched(page, doc_id=doc_id, entry=meta, source=f"{fetched.url}#entry",
                                        revision=revision)
        except DocumentError as exc:  # one entry's page failing does not stop the others
            report.notes.append(f"skipped the feed entry {doc_id}: {exc}")
            continue
        report.documents.append(doc)
