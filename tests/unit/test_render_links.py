"""Web addresses in articles and model replies are links that work in the chat (escaping them for Markdown
left backslashes inside them), and brackets glued to a word are text, not citations."""

from __future__ import annotations

import re

import pytest
from qa.ui.render import answer_markdown, escape_markdown

LINKS = [
    ("See https://example.com/some_path-to/page_1.html.", "https://example.com/some_path-to/page_1.html"),
    ("(https://en.wikipedia.org/wiki/Foo_(bar))", "https://en.wikipedia.org/wiki/Foo_(bar)"),
    ("Read http://a.example/q?x=1&y=2#top, then stop.", "http://a.example/q?x=1&amp;y=2#top"),
    ("at https://example.com/*star*/~tilde~/$5!", "https://example.com/*star*/~tilde~/$5"),
    ("[https://example.com/x_y]", "https://example.com/x_y"),
]


@pytest.mark.parametrize(("text", "href"), LINKS)
def test_addresses_become_links_without_backslashes(text: str, href: str) -> None:
    out = escape_markdown(text)
    links = re.findall(r'<a href="([^"]*)"[^>]*>([^<]*)</a>', out)
    assert [h for h, _ in links] == [href]
    assert "\\" not in links[0][0] and "\\" not in links[0][1]
    assert "_" not in links[0][1] and "*" not in links[0][1]  # the shown text cannot turn into emphasis


@pytest.mark.parametrize(
    "text",
    ["javascript:alert(1)", 'https://x.example/"onmouseover="alert(1)', "https://x.example/<script>", "https://"],
)
def test_only_web_addresses_are_linked_and_nothing_escapes_the_attribute(text: str) -> None:
    out = escape_markdown(text)
    tags = re.findall(r"<[^>]*>", out)
    assert all(re.fullmatch(r'<a href="https?://[^"<>]+" target="_blank" rel="noopener noreferrer nofollow">|</a>', t)
               for t in tags), tags
    assert "<script>" not in out


def test_markers_and_addresses_together() -> None:
    out = answer_markdown("The report https://example.com/r_1 says so [1], unlike word[2] or x[3]y.")
    assert '<a class="qa-ref" href="#qa-cite-1">[1]</a>' in out
    assert "qa-cite-2" not in out and "qa-cite-3" not in out  # a bracket glued to a word is text
    assert "word\\[2\\]" in out and '<a href="https://example.com/r_1"' in out


@pytest.mark.parametrize(
    "answer",
    ["2017. \u201cFord invested in Argo AI back in 2017.\u201d [1]", "15. \u201cOnly 15 were alive.\u201d [1]",
     "More than 300. \u201cIt killed more than 300.\u201d [1]\n12. A second line."],
)
def test_a_lead_that_is_a_number_is_not_a_numbered_list(answer: str) -> None:
    """"2017. \u201c…\u201d" opens with what Markdown reads as a list item: the chat showed "2017." outside the
    answer's bubble, as a list number, with the quote indented after it."""
    from markdown_it import MarkdownIt

    shown = MarkdownIt().render(answer_markdown(answer))
    assert "<ol" not in shown and "<li" not in shown
    assert re.sub(r"<[^>]+>", "", shown).startswith(answer.split("\u201c")[0])
