"""An answer cut into claims (its sentences), and whether it says the sources do not hold the answer."""

from __future__ import annotations

import re

from qa.cite.markers import MARKER
from qa.types import ABSTAIN_TEXT

_ABSTAIN = re.compile(
    r"""(
      \b(provided\s+|given\s+|available\s+|retrieved\s+)?(article|sources?|documents?|texts?|context|passages?|excerpts?)
        \s+(provided\s+|given\s+)?(does|do|did)(\s+not|n[’']t)\s+
        (say|state|contain|mention|specify|include|provide|answer|address|indicate|discuss|cover|give|tell|reveal)
    | \b(i|we)\s+(do\s+not|don[’']t|cannot|can[’']t|could\s+not|couldn[’']t|am\s+unable\s+to)\s+
        (know|find|answer|determine|tell|say)
    | \b(there\s+is|there[’']s)\s+no\s+(information|mention|answer|indication)
    | \bno\s+information\s+(about|on|regarding)
    | \bnot\s+(mentioned|stated|specified|found)\s+in\s+the\s+(article|sources?|documents?|texts?|context)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_END = re.compile(r"[.!?]+[\"\u201d\u2019')]*(?P<markers>(?:[ \t]*" + MARKER.pattern + r")*)", re.IGNORECASE)
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof gen sen rep gov lt col sgt capt st jr sr inc ltd co corp vs etc no fig jan feb mar apr "
    "jun jul aug sep sept oct nov dec".split()
)



def _first_sentence(text: str) -> str:
    spans = split_claims(text)
    return text[spans[0][0] : spans[0][1]] if spans else ""


def is_abstention(text: str) -> bool:
    """Did the generator say the sources do not hold the answer (in its first sentence)?

    >>> is_abstention("The article does not say.")
    True
    >>> is_abstention("Unfortunately, the provided sources don't mention who won.")
    True
    >>> is_abstention("Gallant stayed in Washington [1].")
    False
    """
    t = text.strip()
    if t.lower().startswith(ABSTAIN_TEXT.lower().rstrip(".")):
        return True
    return bool(_ABSTAIN.search(_first_sentence(t)))


def split_claims(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of an answer; markers right after a full stop stay with it.

    Line breaks always end a sentence; a full stop after an abbreviation ("U.S.", "Mr.") does not,
    unless a citation marker follows it.

    >>> t = "Gallant stayed in the U.S. capital. [1] He rejected a truce [2].\\n- Hamas agreed"
    >>> [t[s:e] for s, e in split_claims(t)]
    ['Gallant stayed in the U.S. capital. [1]', 'He rejected a truce [2].', '- Hamas agreed']
    """
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        body, offset, start = line.group(), line.start(), 0
        for end in _END.finditer(body):
            after = body[end.end() :]
            if after and not after[0].isspace():
                continue
            if not end.group("markers"):
                nxt = after.lstrip()
                if nxt and nxt[0].islower():
                    continue
                word = body[start : end.start()].rsplit(None, 1)[-1] if body[start : end.start()].split() else ""
                word = word.strip("\"'(\u201c")
                if nxt and ((_INITIALS.fullmatch(word) and "." in word) or word.lower() in _ABBREVIATIONS):
                    continue
            piece = body[start : end.end()]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append((offset + start + lead, offset + end.end()))
            start = end.end()
        rest = body[start:]
        if rest.strip():
            lead = len(rest) - len(rest.lstrip())
            spans.append((offset + start + lead, offset + start + len(rest.rstrip())))
    return spans
