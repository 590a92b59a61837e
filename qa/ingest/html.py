"""HTML reduced to its visible text: scripts, styles and other hidden elements are dropped, never kept."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody td tfoot th thead title tr ul".split()
)
_RAW_TAGS = frozenset("script style".split())  # their text is code: dropped, closed or not (as browsers do)
#: Not shown when closed; an element left open (``<iframe>`` with no ``</iframe>``) hides nothing, or the rest
#: of the page would be lost.
_HIDDEN_TAGS = frozenset("noscript template head svg iframe object".split())


class _TextExtractor(HTMLParser):
    """Collects visible text; scripts and styles are dropped, never executed or kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.open: list[tuple[str, int]] = []  # hidden elements still open, and where their text starts
        self.raw = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _RAW_TAGS:
            self.raw += 1
        elif tag in _HIDDEN_TAGS:
            self.open.append((tag, len(self.parts)))
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _RAW_TAGS and self.raw:
            self.raw -= 1
        elif any(name == tag for name, _ in self.open):  # closed: what it held was hidden after all
            while self.open:
                name, start = self.open.pop()
                if name == tag:
                    del self.parts[start:]
                    break
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.raw:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Reduce HTML to its visible text, one block element a line.

    >>> html_to_text("<h1>Title</h1><p>One &amp; two.</p><script>alert(1)</script>")
    'Title\\nOne & two.'
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.title) + "\n" + "".join(parser.parts)
    lines = (re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
