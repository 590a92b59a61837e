"""The one grammar of citation markers: ``[3]``, ``[3, 5]``, ``[3-5]``, ``[3][5]``, ``[source 3]``.

Every module that reads, writes, removes or defangs markers uses this one: the answer builder
parsing a model's reply, the prompt neutralising marker look-alikes in article text, follow-up
rewriting and the chat history dropping them, the chat rendering them as links. A bracket glued
to a word (``word[1]``, a wiki link, code) is not a citation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

#: Numbers inside one bracket: ``3``, ``3, 5``, ``3-5`` (hyphen, en or em dash), ``3; 5``.
_NUMBERS = r"(\d+\s*(?:(?:,|;|-|\u2013|\u2014)\s*\d+\s*)*)"
_BODY = r"\[\s*(?:(?:sources?|refs?)\.?\s*:?\s*)?" + _NUMBERS + r"\]"
#: A citation marker: not glued to the word before it (``[1][2]`` is two markers).
MARKER = re.compile(r"(?<![^\W_])" + _BODY, re.IGNORECASE)
#: Anything that could pass for a marker, glued or not: what article text must not contain when shown to a model.
MARKER_LIKE = re.compile(_BODY, re.IGNORECASE)
#: Most numbers one range may name (``[1-999999]`` is not a citation of a million sentences).
MAX_RANGE = 50


def parse_numbers(inside: str) -> list[int]:
    """Numbers named inside one bracket: ``3``, ``3, 5`` or ``3-5``.

    >>> parse_numbers("3, 5")
    [3, 5]
    >>> parse_numbers("3-5")
    [3, 4, 5]
    >>> parse_numbers("5-3"), parse_numbers("1-2-3")
    ([], [])
    """
    out: list[int] = []
    for part in re.split(r"[,;]", inside):
        part = part.strip()
        bounds = re.split(r"\s*[-\u2013\u2014]\s*", part)
        if len(bounds) == 2:
            lo, hi = int(bounds[0]), int(bounds[1])
            if lo <= hi and hi - lo < MAX_RANGE:
                out.extend(range(lo, hi + 1))
        elif len(bounds) == 1 and part:  # "1-2-3" is no range: it names nothing (it used to crash int())
            out.append(int(part))
    return out


def find_markers(text: str) -> Iterator[tuple[re.Match[str], list[int]]]:
    """Each marker in ``text`` with the numbers it names, in order.

    >>> [(m.group(0), n) for m, n in find_markers("A [1] b [2-3]. c[4]")]
    [('[1]', [1]), ('[2-3]', [2, 3])]
    """
    for match in MARKER.finditer(text):
        yield match, parse_numbers(match.group(1))


def cited_numbers(text: str) -> list[int]:
    """The distinct numbers ``text`` cites, in order of first appearance.

    >>> cited_numbers("A [2][1]. B [1, 3].")
    [2, 1, 3]
    """
    return dedupe(n for _, numbers in find_markers(text) for n in numbers)


def strip_markers(text: str) -> str:
    """``text`` without markers, and without the space they leave before punctuation.

    >>> strip_markers("Gallant stayed [1]. He left [2, 3]!")
    'Gallant stayed. He left!'
    """
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", MARKER.sub("", text)).strip()


def neutralize(text: str) -> str:
    """Marker look-alikes as parentheses, so article text shown to a model cannot forge a citation.

    >>> neutralize("See [2] and word[1, 2].")
    'See (2) and word(1, 2).'
    """
    return MARKER_LIKE.sub(lambda m: f"({m.group(1).strip()})", text)


def format_markers(numbers: Iterable[int]) -> str:
    """The canonical form of a citation: one bracket per number.

    >>> format_markers([1, 3])
    '[1][3]'
    """
    return "".join(f"[{n}]" for n in numbers)


def dedupe(numbers: Iterable[int]) -> list[int]:
    """Numbers in order of first appearance, each once.

    >>> dedupe([3, 1, 3, 2, 1])
    [3, 1, 2]
    """
    return list(dict.fromkeys(numbers))


def renumber(text: str, valid: Sequence[int], order: list[int] | None = None) -> tuple[str, list[int]]:
    """Rewrite every marker to canonical ``[n]`` numbered by first appearance; numbers not in ``valid``
    are dropped. Returns the text and the original numbers in their new order (``order``, when given,
    is the order so far and is extended: a text renumbered piece by piece).

    >>> renumber("A [3]. B [1, 3]. C [9].", [1, 3])
    ('A [1]. B [2][1]. C .', [3, 1])
    >>> renumber("D [1].", [1, 3], [3])
    ('D [2].', [3, 1])
    """
    allowed = set(valid)
    order = order if order is not None else []

    def sub(match: re.Match[str]) -> str:
        new: list[int] = []
        for n in parse_numbers(match.group(1)):
            if n not in allowed:
                continue
            if n not in order:
                order.append(n)
            m = order.index(n) + 1
            if m not in new:
                new.append(m)
        return format_markers(new)

    return MARKER.sub(sub, text), order
