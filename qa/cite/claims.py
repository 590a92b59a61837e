"""An answer cut into claims (its sentences), and whether it says the sources do not hold the answer."""

from __future__ import annotations

import re

from qa.cite.markers import MARKER, strip_markers
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
#: A list item's bullet or number at the start of a line ("- ", "* ", "1. ", "2) ").
_BULLET = re.compile(r"[ \t]*(?:[-*+\u2022\u2013]|\d{1,3}[.)])[ \t]+")
#: "According to the article, …", "The sources say that …" (and "Laut dem Artikel", "Selon l'article", …):
#: how a model attributes, not what it claims.
_ATTRIBUTION = re.compile(
    r"""^(?:
      (?:according\s+to|based\s+on|as\s+(?:stated|reported|mentioned|noted|described)\s+in|per|in)\s+
        (?:the\s+)?(?:provided\s+|given\s+)?(?:article|sources?|texts?|reports?|documents?|passages?|context|excerpts?)
        (?:\s*\[[\d,\s-]+\])?\s*(?:provided\s*)?,\s*
    | (?:laut|gem[äa]ß|nach)\s+(?:dem|den|der)\s+(?:artikel|text|quellen?|bericht)\s*,?\s*
    | (?:selon|d['\u2019]apr[èe]s)\s+(?:l['\u2019]\s*article|le\s+texte|les\s+sources?)\s*,\s*
    | (?:seg[úu]n|de\s+acuerdo\s+con)\s+(?:el\s+art[íi]culo|el\s+texto|las\s+fuentes)\s*,\s*
    | (?:secondo|stando\s+a)\s+(?:l['\u2019]\s*articolo|il\s+testo|le\s+fonti)\s*,\s*
    | volgens\s+(?:het\s+artikel|de\s+tekst|de\s+bronnen)\s*,\s*
    | (?:the\s+)?(?:provided\s+|given\s+)?(?:article|sources?|texts?|reports?|documents?|passages?)
        (?:\s*\[[\d,\s-]+\])?\s+(?:says|say|states|state|reports|report|mentions|mention|notes|note|explains|explain|
        indicates|indicate|shows|show|confirms|confirm|adds|add)\s+(?:that\s+)?
    )""",
    re.IGNORECASE | re.VERBOSE,
)
#: A line that lists a source rather than claims something: "[2] The bridge cost…", "Sources: [1], [2]".
_REFERENCE_LINE = re.compile(
    r"^[ \t]*(?:[-*+\u2022][ \t]*)?(?:\**(?:sources?|references?|citations?)\**[ \t]*:|" + MARKER.pattern + ")",
    re.IGNORECASE,
)
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof gen sen rep gov lt col sgt capt st jr sr inc ltd co corp vs etc no fig jan feb mar apr "
    "jun jul aug sep sept oct nov dec".split()
)



def claim_text(piece: str) -> str:
    """What an answer sentence claims: without markers, bullet, emphasis, quotes and attribution lead-in.

    >>> claim_text("- **According to the article**, the bridge cost 40 million euros [1].")
    'the bridge cost 40 million euros.'
    >>> claim_text("The sources say that Ana Ruiz opened it [2].")
    'Ana Ruiz opened it.'
    """
    plain = strip_markers(piece)
    bullet = _BULLET.match(plain)
    plain = plain[bullet.end() :] if bullet else plain
    plain = plain.replace("**", "").replace("__", "").strip(" \t\"'\u201c\u201d\u2018\u2019")
    return _ATTRIBUTION.sub("", plain, count=1).strip()


#: Where one sentence joins two claims: "…, and …", "…, but …", "…; …", "…, while …", "…, whereas …".
_CLAUSE = re.compile(r"\s*(?:;|,\s+(?:and|but|while|whereas)\b)\s*", re.IGNORECASE)
#: A clause needs at least this many words to be checked on its own.
MIN_CLAUSE_WORDS = 3


def clauses(claim: str) -> list[str]:
    """The claims one sentence joins, each to be checked on its own (a sentence is supported when all are).

    >>> clauses("The bridge cost 40 million euros, and critics said the toll was too high.")
    ['The bridge cost 40 million euros', 'critics said the toll was too high.']
    >>> clauses("Salt, pepper, and oil were added.")
    ['Salt, pepper, and oil were added.']
    """
    parts: list[str] = []
    last = 0
    for m in _CLAUSE.finditer(claim):
        head = claim[last : m.start()]
        if len(head.split()) >= MIN_CLAUSE_WORDS and len(claim[m.end() :].split()) >= MIN_CLAUSE_WORDS:
            parts.append(head.strip())
            last = m.end()
    parts.append(claim[last:].strip())
    return [p for p in parts if p]


def is_reference(piece: str) -> bool:
    """Whether an answer line lists sources ("Sources: [1] …", "[2] The bridge cost …") instead of claiming.

    >>> is_reference("[2] The bridge cost 40 million euros."), is_reference("Sources: [1], [2]")
    (True, True)
    >>> is_reference("The bridge cost 40 million euros [2].")
    False
    """
    return bool(_REFERENCE_LINE.match(piece))


def drop_reference_list(text: str) -> str:
    """An answer without its trailing list of references: the last lines, when each is a "Sources:"
    heading or starts with a marker and a line that claims something comes before them.

    >>> drop_reference_list("It cost 40 million euros [1].\\n\\nSources:\\n[1] The bridge cost 40 million euros.")
    'It cost 40 million euros [1].'
    >>> drop_reference_list("[1] It cost 40 million euros.")
    '[1] It cost 40 million euros.'
    """
    lines = text.rstrip().split("\n")
    cut = len(lines)
    while cut > 0 and (not lines[cut - 1].strip() or is_reference(lines[cut - 1])):
        cut -= 1
    if cut == len(lines) or not any(line.strip() and not is_reference(line) for line in lines[:cut]):
        return text
    return "\n".join(lines[:cut]).rstrip()


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
    unless a citation marker follows or precedes it. A lower-case word after a stop continues the
    sentence, unless the whole answer is in lower case.

    >>> t = "Gallant stayed in the U.S. capital. [1] He rejected a truce [2].\\n- Hamas agreed"
    >>> [t[s:e] for s, e in split_claims(t)]
    ['Gallant stayed in the U.S. capital. [1]', 'He rejected a truce [2].', '- Hamas agreed']
    >>> t = "gallant stayed in washington [1]. he rejected a truce. hamas agreed"
    >>> [t[s:e] for s, e in split_claims(t)]
    ['gallant stayed in washington [1].', 'he rejected a truce.', 'hamas agreed']
    """
    cased = any(ch.isupper() for ch in strip_markers(text))
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        body, offset, start = line.group(), line.start(), 0
        bullet = _BULLET.match(body)  # "1. " numbers a list item; it ends no sentence
        for end in _END.finditer(body, bullet.end() if bullet else 0):
            after = body[end.end() :]
            if after and not after[0].isspace():
                continue
            cited_before = bool(re.search(r"\]\s*$", body[start : end.start()]))
            if not end.group("markers") and not cited_before:
                nxt = after.lstrip()
                if nxt and nxt[0].islower() and cased:
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
