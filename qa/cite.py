"""Stage 6: turn generated text into an ``Answer`` whose citations resolve to exact sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.generate import ABSTAIN_TEXT
from qa.types import Answer, Citation, Hit

_MARKER = re.compile(r"\[(\s*\d+\s*(?:(?:,|-|\u2013)\s*\d+\s*)*)\]")


def parse_numbers(inside: str) -> list[int]:
    """Numbers named inside one bracket: ``3``, ``3, 5`` or ``3-5``.

    >>> parse_numbers("3, 5")
    [3, 5]
    >>> parse_numbers("3-5")
    [3, 4, 5]
    """
    out: list[int] = []
    for part in inside.split(","):
        part = part.strip()
        bounds = re.split(r"\s*[-\u2013]\s*", part)
        if len(bounds) == 2:
            lo, hi = int(bounds[0]), int(bounds[1])
            if lo <= hi and hi - lo < 50:
                out.extend(range(lo, hi + 1))
        elif part:
            out.append(int(part))
    return out


def is_abstention(text: str) -> bool:
    """Did the generator say the sources do not hold the answer?"""
    t = text.strip().lower()
    return t.startswith(ABSTAIN_TEXT.lower().rstrip(".")) or bool(
        re.match(r"^(the )?(article|sources?|documents?|text) (does|do) not (say|contain|mention)", t)
    )


def build_answer(
    question: str,
    text: str,
    sources: Sequence[Hit],
    *,
    backend: str,
    notice: str | None = None,
) -> Answer:
    """Renumber valid markers in order of first appearance; drop numbers never shown to the model."""
    if is_abstention(text) or not sources:
        return Answer(question=question, text=ABSTAIN_TEXT, abstained=True, backend=backend, notice=notice)
    order: list[int] = []

    def renumber(match: re.Match[str]) -> str:
        valid = [n for n in parse_numbers(match.group(1)) if 1 <= n <= len(sources)]
        new: list[int] = []
        for n in valid:
            if n not in order:
                order.append(n)
            m = order.index(n) + 1
            if m not in new:
                new.append(m)
        return "".join(f"[{m}]" for m in new)

    rewritten = _MARKER.sub(renumber, text)
    rewritten = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", rewritten)).strip()
    citations = []
    for new_n, old_n in enumerate(order, start=1):
        hit = sources[old_n - 1]
        s = hit.sentence
        citations.append(Citation(n=new_n, doc_id=s.doc_id, text=s.text, start=s.start, end=s.end, score=hit.score))
    return Answer(
        question=question, text=rewritten, abstained=False, citations=citations, backend=backend, notice=notice
    )
