"""Metadata of a web page: dates, authors, outlet, canonical URL and language from JSON-LD, ``<meta>`` and
``<html lang>``. Dates are never invented: a page without one gets none (a footer's copyright year is no date).
"""

from __future__ import annotations

import copy
import email.utils
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qa.ingest.html.text import WORD_RE, clean

if TYPE_CHECKING:  # pragma: no cover
    from lxml.html import HtmlElement

_DATE_PUBLISHED_META = (
    "article:published_time",
    "og:published_time",
    "article:published",
    "datepublished",
    "publishdate",
    "pubdate",
    "publish-date",
    "publish_date",
    "date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
)
_DATE_MODIFIED_META = (
    "article:modified_time",
    "og:updated_time",
    "article:modified",
    "og:modified_time",
    "datemodified",
    "last-modified",
    "lastmod",
    "dcterms.modified",
    "dc.date.modified",
)


def parse(html: str) -> HtmlElement | None:
    import lxml.html

    if not html or not html.strip():
        return None
    try:
        return lxml.html.fromstring(html)
    except ValueError:  # a str with an XML encoding declaration: parse its UTF-8 bytes
        parser = lxml.html.HTMLParser(encoding="utf-8")
        try:
            return lxml.html.fromstring(html.encode("utf-8", "replace"), parser=parser)
        except Exception:
            return None
    except Exception:
        return None


def _json_ld_objects(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.xpath('//script[contains(translate(@type, "LDJSON", "ldjson"), "ld+json")]'):
        raw = script.text_content().strip()
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            try:
                data = json.loads(raw.replace("\n", " ").replace("\t", " "), strict=False)
            except ValueError:
                continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                yield item
                graph = item.get("@graph")
                if isinstance(graph, list):
                    stack.extend(reversed(graph))
                main = item.get("mainEntity") or item.get("mainEntityOfPage")
                if isinstance(main, dict):
                    stack.append(main)


def _is_article_type(obj: dict[str, Any]) -> bool:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return any(isinstance(k, str) and ("Article" in k or k in {"BlogPosting", "Report"}) for k in kinds)


def _meta_values(tree: HtmlElement) -> dict[str, str]:
    values: dict[str, str] = {}
    for meta in tree.xpath("//meta[@content]"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if key and key not in values:
            content = clean(meta.get("content"))
            if content:
                values[key] = content
        equiv = (meta.get("http-equiv") or "").strip().lower()
        if equiv and equiv not in values:
            content = clean(meta.get("content"))
            if content:
                values[equiv] = content
    return values


def page_metadata(tree: HtmlElement | None) -> dict[str, Any]:
    """Dates, canonical URL, language and fallbacks from JSON-LD, meta tags and <html lang>."""
    result: dict[str, Any] = {}
    if tree is None:
        return result
    objects = list(_json_ld_objects(tree))
    articles = [o for o in objects if _is_article_type(o)] or objects
    meta = _meta_values(tree)

    def first_ld(key: str) -> str | None:
        for obj in articles:
            value = obj.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None

    published = iso_date(first_ld("datePublished")) or _first_iso(meta.get(k) for k in _DATE_PUBLISHED_META)
    if not published:
        published = _first_iso(
            t.get("datetime") or t.get("content") for t in tree.xpath('//*[@itemprop="datePublished"]')
        )
    modified = iso_date(first_ld("dateModified")) or _first_iso(meta.get(k) for k in _DATE_MODIFIED_META)
    if not modified:
        modified = _first_iso(
            t.get("datetime") or t.get("content") for t in tree.xpath('//*[@itemprop="dateModified"]')
        )
    result["published"] = published
    result["modified"] = modified

    canonical = tree.xpath('//link[translate(@rel, "CANONICAL", "canonical")="canonical"]/@href')
    url = next((u.strip() for u in canonical if u.strip().startswith("http")), None)
    result["url"] = url or (meta.get("og:url") if (meta.get("og:url") or "").startswith("http") else None)

    lang = tree.get("lang") or tree.get("xml:lang") or meta.get("content-language")
    in_language = next((o["inLanguage"] for o in [*articles, *objects] if isinstance(o.get("inLanguage"), str)), None)
    lang = lang or in_language or meta.get("og:locale") or meta.get("language")
    result["language"] = language_tag(lang)

    result["title"] = meta.get("og:title") or clean(first_ld("headline"))
    publisher = next((o.get("publisher") for o in articles if o.get("publisher")), None)
    if isinstance(publisher, list):
        publisher = publisher[0] if publisher else None
    publisher_name = clean(publisher.get("name") if isinstance(publisher, dict) else publisher)
    site_name = meta.get("og:site_name")
    if site_name and site_name.startswith("@"):  # a social handle, not a name
        site_name = None
    result["outlet"] = site_name or publisher_name or meta.get("application-name")
    people: list[str] = []  # authors typed Person (or plain strings)
    others: list[str] = []  # authors typed Organization and the like
    for obj in articles:
        value = obj.get("author")
        for item in value if isinstance(value, list) else [value]:
            name = clean(item.get("name") if isinstance(item, dict) else item)
            if not name:
                continue
            kind = item.get("@type") if isinstance(item, dict) else None
            (people if kind in (None, "Person") else others).append(name)
        if people or others:
            break
    result["authors"] = people
    result["author_orgs"] = others

    og_type = (meta.get("og:type") or "").lower()
    result["declared_article"] = "article" in og_type or any(_is_article_type(o) for o in objects)
    anchors: dict[str, list[tuple[str, ...]]] = {}
    for link in tree.iter("a"):
        seq = tuple(WORD_RE.findall(link.text_content()))
        if seq and seq not in anchors.get(seq[0], ()):
            anchors.setdefault(seq[0], []).append(seq)
    for seqs in anchors.values():
        seqs.sort(key=len, reverse=True)
    result["anchors"] = anchors
    return result


_DATE_WORDS = (
    "monday tuesday wednesday thursday friday saturday sunday january february march april may "
    "june july august september october november december"
).split()
_AUTHOR_TAIL_RE = re.compile(r"\s+(?:(?:" + "|".join(_DATE_WORDS) + r")\b.*|is\s+an?\s+.*|\|.*)$", re.IGNORECASE)
_AUTHOR_HEAD_RE = re.compile(r"^(?:(?:analysis|story|text|words|reporting)\s+)?by\s+", re.IGNORECASE)


def author_names(trafilatura_author: object, meta: dict[str, Any]) -> tuple[str, ...]:
    """Author names: the page's JSON-LD people, else trafilatura's, else JSON-LD organisations."""
    names: list[str] = list(meta.get("authors") or [])
    if not names and isinstance(trafilatura_author, str):
        names = [n for n in (clean(p) for p in trafilatura_author.split(";")) if n]
    if not names:
        names = list(meta.get("author_orgs") or [])
    seen: dict[str, str] = {}
    for raw in names:
        name = _AUTHOR_HEAD_RE.sub("", _AUTHOR_TAIL_RE.sub("", raw)).strip(" ,;")
        if not name or name.lower() in _DATE_WORDS or "@" in name or len(name) > 80:
            continue
        seen.setdefault(name.lower(), name)
    return tuple(seen.values())


_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_date(value: object) -> str | None:
    """``value`` as an ISO 8601 date or datetime string (kept as written when it already is
    one), or None when it is not a date."""
    text = clean(value)
    if not text:
        return None
    if _ISO_DATE_RE.match(text):
        try:
            datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            return None
        return text
    if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text):
        text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)  # +0000 -> +00:00
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return text
    candidate = text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d{2}-\d{2} \d", text) else text
    candidate = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", candidate)  # +0000 -> +00:00
    try:
        return datetime.fromisoformat(candidate.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text).isoformat()  # RFC 2822 dates
    except (TypeError, ValueError, IndexError):
        return None


def date_in_text(tree: HtmlElement | None, url: str | None) -> str | None:
    """A publication date written in the page's text ("published on 25 September 2018"), by
    htmldate's extensive search; a bare 1 January is refused (that is how a copyright year
    such as "(c) 2024" comes out)."""
    if tree is None:
        return None
    try:
        from htmldate import find_date

        found = find_date(copy.deepcopy(tree), url=url, original_date=True, extensive_search=True)
    except Exception:
        return None
    date = iso_date(found)
    return None if date is None or date.endswith("-01-01") else date


def _first_iso(values: Iterable[str | None]) -> str | None:
    for value in values:
        iso = iso_date(value)
        if iso:
            return iso
    return None


_LANG_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}|\d{3}))?\b")


def language_tag(value: object) -> str | None:
    """A BCP 47 style tag ("en", "en-US") from a page's language declaration."""
    text = clean(value)
    if not text:
        return None
    match = _LANG_RE.match(text)
    if not match:
        return None
    primary, region = match.group(1).lower(), match.group(2)
    return f"{primary}-{region.upper()}" if region else primary
