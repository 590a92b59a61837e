"""Articles as read: page metadata from JSON-LD, OpenGraph and ``<meta>`` (never invented), the canonical
text's header and its exact spans, Markdown and PDF reduced to text, and which questions ask for the header."""

from __future__ import annotations

import pytest
from helpers.pdf import scanned_pdf, text_pdf

from qa import errors
from qa.ingest import document_from_bytes, document_label, header_spans, segment
from qa.ingest.fetch import is_link, normalize_url
from qa.ingest.header import header_lines, with_header
from qa.ingest.html import extract_article
from qa.retrieve.about import asked_line, named_article
from qa.types import Document

BODY = "".join(
    f"<p>Paragraph {i}: the city council debated the new river bridge budget for a long time again today.</p>"
    for i in range(6)
)
NAV = "<nav>" + "".join(f'<a href="/s{i}">Section {i}</a>' for i in range(8)) + "</nav>"


def _page(head: str, body: str = BODY, footer: str = "") -> str:
    return f"<html{head[:0]}><head>{head}</head><body>{NAV}<article><h1>Bridge budget</h1>{body}</article>" \
           f"<footer>{footer}</footer></body></html>"


JSON_LD = _page(
    '<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle",'
    '"headline":"Bridge budget approved","datePublished":"2024-03-05T09:30:00+01:00",'
    '"dateModified":"2024-03-06T11:00:00+01:00","author":[{"@type":"Person","name":"Jane Doe"},'
    '{"@type":"Person","name":"Bo Li"}],"publisher":{"@type":"Organization","name":"Springfield Gazette"},'
    '"inLanguage":"en-GB"}</script>'
)
OPEN_GRAPH = _page(
    '<meta property="og:title" content="Bridge budget approved"><meta property="og:site_name" content="The Post">'
    '<meta property="og:type" content="article"><meta property="article:published_time" content="2024-03-05">'
    '<meta property="og:url" content="https://post.example/bridge">'
)
META = _page(
    '<title>Bridge budget approved</title><meta name="author" content="Ann Lee">'
    '<meta name="date" content="2024-03-05T08:00:00Z"><meta http-equiv="Content-Language" content="fr">'
    '<meta name="application-name" content="Le Courrier">'
)
NONE = _page("<title>Bridge budget</title>", footer="<p>\u00a9 2024 Example Media. All rights reserved.</p>")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (JSON_LD, {"title": "Bridge budget approved", "authors": ("Jane Doe", "Bo Li"),
                   "published": "2024-03-05T09:30:00+01:00", "modified": "2024-03-06T11:00:00+01:00",
                   "outlet": "Springfield Gazette", "language": "en-GB"}),
        (OPEN_GRAPH, {"title": "Bridge budget approved", "authors": (), "published": "2024-03-05", "modified": None,
                      "outlet": "The Post", "url": "https://post.example/bridge"}),
        (META, {"authors": ("Ann Lee",), "published": "2024-03-05T08:00:00Z", "modified": None,
                "outlet": "Le Courrier", "language": "fr"}),
        (NONE, {"authors": (), "published": None, "modified": None, "outlet": None, "url": None, "language": None}),
    ],
    ids=["JSON-LD", "OpenGraph", "meta", "none: no date invented from the copyright year"],
)
def test_page_metadata(html: str, expected: dict[str, object]) -> None:
    found = extract_article(html)
    assert found.found_article and "Paragraph 5" in found.text and "Section 3" not in found.text
    got = {k: getattr(found, k) for k in expected}
    assert got == expected


def test_a_page_read_as_a_document_begins_with_its_header() -> None:
    doc = document_from_bytes(JSON_LD.encode(), "bridge.html")
    header = "Bridge budget approved\nBy Jane Doe and Bo Li.\nPublished by Springfield Gazette on 5 March 2024; " \
             "updated on 6 March 2024.\n\n"
    assert doc.text.startswith(header) and "\n\nParagraph 1:" in doc.text  # paragraph breaks kept
    spans = header_spans(doc)
    assert [doc.text[s:e] for s, e in spans.values()] == header.strip().split("\n")
    sentences = segment(doc)
    assert [s.text for s in sentences[:3]] == header.strip().split("\n")  # each header line one sentence
    assert all(doc.text[s.start : s.end] == s.text for s in sentences)
    assert document_label(doc) == "Bridge budget approved \u2014 Springfield Gazette, 5 Mar 2024"


@pytest.mark.parametrize(
    ("meta", "lines"),
    [
        ({}, []),
        ({"title": "T"}, ["T"]),
        ({"authors": ["A"]}, ["By A."]),
        ({"authors": ["A", "B", "C"], "outlet": "O"}, ["By A, B and C.", "Published by O."]),
        ({"published": "2020-01-02", "modified": "2020-01-02T10:00"}, ["Published on 2 January 2020."]),
        ({"published": "not a date", "outlet": "O"}, ["Published by O."]),
        ({"title": "Two\nlines", "modified": "2020-01-03"}, ["Two lines", "Updated on 3 January 2020."]),
    ],
)
def test_header_lines(meta: dict[str, object], lines: list[str]) -> None:
    assert [line for _, line in header_lines(**meta)] == lines  # type: ignore[arg-type]


def test_header_spans_need_the_header_the_metadata_gives() -> None:
    text = with_header("Body.", title="T", outlet="O")
    assert header_spans(Document("d", text, title="T", outlet="O")) == {"title": (0, 1), "dateline": (2, 17)}
    assert header_spans(Document("d", text, title="Other", outlet="O")) == {}
    assert header_spans(Document("d", "Plain text.")) == {}


@pytest.mark.parametrize(
    ("markdown", "text", "title"),
    [
        ("# Vote *passes*\n\nThe **U.N.** vote [passed](http://x.example).\n", "Vote passes\n\nThe U.N. vote passed.",
         "Vote passes"),
        ("---\ntitle: Vote\nauthor: Ann Lee and Bo Li\ndate: 2024-03-05\nsource: The Post\n---\nIt passed.\n",
         "Vote\nBy Ann Lee and Bo Li.\nPublished by The Post on 5 March 2024.\n\nIt passed.", "Vote"),
        ("- one\n- two\n\n> quoted `code`\n", "one\n\ntwo\n\nquoted code", None),
        ("| a | b |\n|---|---|\n| 1 | 2 |\n", "a b\n\n1 2", None),
    ],
    ids=["heading and emphasis", "front matter", "lists and quotes", "table"],
)
def test_markdown_is_reduced_to_text(markdown: str, text: str, title: str | None) -> None:
    doc = document_from_bytes(markdown.encode(), "a.md")
    assert (doc.text, doc.title) == (text, title)
    assert not any(mark in doc.text for mark in ("#", "**", "](", "`"))


def test_pdf_with_a_text_layer_is_read_and_one_without_is_refused() -> None:
    lines = ["Council approves bridge", "The city council approved a budget of 12 million euros for the",
             "new bridge on Tuesday.", "Work starts in spring."]
    doc = document_from_bytes(text_pdf(lines, title="Bridge budget"), "bridge.pdf")
    assert doc.title == "Bridge budget"
    assert doc.text == ("Bridge budget\n\nCouncil approves bridge\n\nThe city council approved a budget of 12 million "
                        "euros for the new bridge on Tuesday.\n\nWork starts in spring.")
    with pytest.raises(errors.NoTextLayerError, match=r"scan\.pdf has no text layer .* OCR"):
        document_from_bytes(scanned_pdf(), "scan.pdf")
    with pytest.raises(errors.UndecodableDocumentError, match="could not be read as a PDF"):
        document_from_bytes(b"%PDF-1.4 truncated", "broken.pdf")


@pytest.mark.parametrize(
    ("question", "line"),
    [
        ("Who wrote it?", "byline"),
        ("Who is the author of the bridge story?", "byline"),
        ("When was this published?", "dateline"),
        ("When was Bridge budget approved published?", "dateline"),
        ("What is the publication date?", "dateline"),
        ("Which outlet reported it?", "dateline"),
        ("Which newspaper ran the story?", "dateline"),
        ("Who published the article?", "dateline"),
        ("What is the headline?", "title"),
        ("Who approved the budget?", None),
        ("When did the council vote?", None),
        ("Who wrote the letter?", "byline"),  # asks for a byline; answered from one only if it names an article
    ],
)
def test_questions_about_the_article_itself(question: str, line: str | None) -> None:
    assert asked_line(question) == line


def test_the_article_a_question_names() -> None:
    docs = [Document("a", "x", title="Bridge budget approved"), Document("b", "y", title="Tram strike ends in Lyon")]
    assert named_article("When was the Lyon tram strike ends story published?", docs) is docs[1]
    assert named_article("Who wrote Bridge budget approved?", docs) is docs[0]
    assert named_article("Who wrote the letter?", docs) is None


@pytest.mark.parametrize(
    ("text", "link", "normal"),
    [
        ("https://News.example/a#x", True, "https://news.example/a"),
        ("http://x.example", True, "http://x.example/"),
        ("news/a.html", False, None),
        ("C:/news/a.html", False, None),
    ],
)
def test_links_and_paths(text: str, link: bool, normal: str | None) -> None:
    assert is_link(text) is link
    if normal is not None:
        assert normalize_url(text) == normal


@pytest.mark.parametrize(
    ("second", "duplicate"),
    [
        ("{story}", True),
        ("{story} One more closing sentence from the second outlet.", True),
        ("A different opening paragraph. {half}", False),
        ("Completely unrelated words about trams and bridges in another city entirely.", False),
    ],
)
def test_near_identical_articles_are_recognised(second: str, duplicate: bool) -> None:
    from qa.ingest.dedupe import near_duplicates

    sentences = [f"Sentence {i} tells part {i} of the wire story about the harbour strike in Marseille."
                 for i in range(40)]
    story, half = " ".join(sentences), " ".join(sentences[:15])
    first = Document("a", with_header(story, title="Harbour strike", outlet="Le Wire"), title="Harbour strike",
                     outlet="Le Wire")
    other = Document("b", second.format(story=story, half=half))
    assert near_duplicates([other], {"a": first}) == ([("b", "a")] if duplicate else [])
    assert near_duplicates([first], {"a": first}) == []  # a document is no duplicate of the version it replaces
