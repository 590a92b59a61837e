"""Stage 6: turn generated text into an ``Answer`` whose citations resolve to exact sentences.

Markers ``[3]``, ``[3, 5]``, ``[3-5]`` and ``[3][5]`` are parsed; a number that was never shown
to the model is dropped, never mapped to another sentence; the survivors are renumbered in order
of first appearance and resolve to ``Citation`` objects.

With ``verify`` (the pipeline turns it on for LLM answers), every answer sentence ("claim") is
scored against the sources: ``support = 0.5·cosine + 0.5·lexical`` (lexical = the share of the
claim's stemmed content words found in the source; cosine only when an embedder is given), times
a grounding factor that halves the score of a claim whose names and numbers appear in none of the
retrieved sentences (a cheap guard against "vetoed by Russia" passing as "vetoed"). The rule:

* A claim whose cited sentences support it (``support ≥ SUPPORTED``, each alone or together)
  keeps them, minus any cited sentence that is plainly unrelated (``< IRRELEVANT``).
* A claim whose citations do not support it, or that has none, is attributed to the best
  retrieved sentence when that one supports it strongly (``≥ ATTRIBUTE``); otherwise its
  citations are removed (a citation promises support) and it is listed in ``Answer.unsupported``.
* Questions, lead-ins ending in ":" and "the sources do not say" sentences are not claims (markers
  on the last are dropped). An answer that opens with such a sentence and cites nothing else abstains.
  Claims of fewer than four content words ("Yoav Gallant.") are scored together with the question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.generate import ABSTAIN_TEXT
from qa.types import Answer, Citation, Hit

if TYPE_CHECKING:
    from qa.embed import Embedder

SUPPORTED = 0.45
IRRELEVANT = 0.2
ATTRIBUTE = 0.6
SHORT_CLAIM_WORDS = 4

_MARKER = re.compile(
    r"\[\s*(?:(?:sources?|refs?)\.?\s*:?\s*)?(\d+\s*(?:(?:,|;|-|\u2013|\u2014)\s*\d+\s*)*)\]", re.IGNORECASE
)
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
_END = re.compile(r"[.!?]+[\"\u201d\u2019')]*(?P<markers>(?:[ \t]*" + _MARKER.pattern + r")*)", re.IGNORECASE)
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof gen sen rep gov lt col sgt capt st jr sr inc ltd co corp vs etc no fig jan feb mar apr "
    "jun jul aug sep sept oct nov dec".split()
)


def parse_numbers(inside: str) -> list[int]:
    """Numbers named inside one bracket: ``3``, ``3, 5`` or ``3-5``.

    >>> parse_numbers("3, 5")
    [3, 5]
    >>> parse_numbers("3-5")
    [3, 4, 5]
    """
    out: list[int] = []
    for part in re.split(r"[,;]", inside):
        part = part.strip()
        bounds = re.split(r"\s*[-\u2013\u2014]\s*", part)
        if len(bounds) == 2:
            lo, hi = int(bounds[0]), int(bounds[1])
            if lo <= hi and hi - lo < 50:
                out.extend(range(lo, hi + 1))
        elif part:
            out.append(int(part))
    return out


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


# ----- verification --------------------------------------------------------------------------


@dataclass
class _Claim:
    start: int
    end: int
    text: str  # the sentence as written, markers included
    cited: list[int]  # valid source numbers (1-based) in order of appearance
    check: bool  # is it a claim to verify (not a question, lead-in or abstention)?


def _strip_markers(text: str) -> str:
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", _MARKER.sub("", text)).strip()


def _dedupe(numbers: Sequence[int]) -> list[int]:
    out: list[int] = []
    for n in numbers:
        if n not in out:
            out.append(n)
    return out


def _entities(text: str) -> list[str]:
    """Names (capitalised words that do not start the sentence) and numbers a claim asserts."""
    words = re.findall(r"[\w\u2019'.\-]+", text)
    out = []
    for i, raw in enumerate(words):
        w = raw.strip(".'\u2019-")
        if not w:
            continue
        if any(ch.isdigit() for ch in w) or (i > 0 and w[0].isupper() and not w.isupper() and len(w) > 1):
            out.append(w.lower())
    return out


def _tokens(texts: Sequence[str]) -> list[set[str]]:
    from qa.retrieve import tokenize

    return [set(t) for t in tokenize(texts)] if texts else []


def _support_matrix(
    claims: Sequence[str], sources: Sequence[str], embedder: Embedder | None, grounding_text: str
) -> np.ndarray:
    """Rows: claims; columns: sources; values: the support score of the module docstring."""
    if not claims or not sources:
        return np.zeros((len(claims), len(sources)), dtype=np.float32)
    ctoks, stoks = _tokens(claims), _tokens(sources)
    lexical = np.array(
        [[len(c & s) / len(c) if c else 0.0 for s in stoks] for c in ctoks], dtype=np.float32
    )
    if embedder is not None:
        vectors = embedder.encode([*claims, *sources])
        dense = np.clip(vectors[: len(claims)] @ vectors[len(claims) :].T, 0.0, 1.0)
        score = 0.5 * dense + 0.5 * lexical
    else:
        score = lexical
    haystack = grounding_text.lower()
    for i, claim in enumerate(claims):
        names = _entities(claim)
        if names:
            found = sum(1 for n in names if n in haystack)
            score[i] *= 0.5 + 0.5 * found / len(names)
    return np.asarray(score, dtype=np.float32)


def _verify(
    question: str, claims: list[_Claim], sources: Sequence[Hit], embedder: Embedder | None
) -> tuple[list[list[int]], list[str]]:
    """Decide each claim's final source numbers, and which claims are unsupported."""
    final = [list(c.cited) for c in claims]
    checked = [i for i, c in enumerate(claims) if c.check]
    if not checked:
        return final, []
    texts: list[str] = []
    for i in checked:
        plain = _strip_markers(claims[i].text).strip("-*\u2022 \t\"\u201c\u201d")
        if len(_tokens([plain])[0]) < SHORT_CLAIM_WORDS:
            plain = f"{question} {plain}"
        texts.append(plain)
    source_texts = [h.sentence.text for h in sources]
    unions: list[str] = []
    union_of: dict[int, int] = {}
    for row, i in enumerate(checked):
        if len(claims[i].cited) > 1:
            union_of[row] = len(source_texts) + len(unions)
            unions.append(" ".join(source_texts[n - 1] for n in claims[i].cited))
    grounding = " ".join([question, *source_texts])
    matrix = _support_matrix(texts, [*source_texts, *unions], embedder, grounding)
    unsupported: list[str] = []
    for row, i in enumerate(checked):
        scores = matrix[row, : len(source_texts)]
        cited = claims[i].cited
        together = float(matrix[row, union_of[row]]) if row in union_of else 0.0
        if cited and max(together, *(float(scores[n - 1]) for n in cited)) >= SUPPORTED:
            final[i] = [n for n in cited if scores[n - 1] >= IRRELEVANT] or cited
            continue
        best = int(np.argmax(scores))
        if float(scores[best]) >= ATTRIBUTE:
            final[i] = [best + 1]
        else:
            final[i] = []
            unsupported.append(_strip_markers(claims[i].text))
    return final, unsupported


def _rewrite_claim(text: str, keep: Sequence[int]) -> str:
    """Keep only the numbers in ``keep`` in the claim's markers; append any not written there."""
    present: list[int] = []

    def sub(match: re.Match[str]) -> str:
        nums = [n for n in _dedupe(parse_numbers(match.group(1))) if n in keep and n not in present]
        present.extend(nums)
        return "".join(f"[{n}]" for n in nums)

    out = _MARKER.sub(sub, text)
    added = [n for n in keep if n not in present]
    if added:
        tail = "".join(f"[{n}]" for n in added)
        m = re.search(r"[.!?]+[\"\u201d\u2019')]*\s*$", out)
        out = f"{out[: m.start()].rstrip()} {tail}{out[m.start():]}" if m else f"{out.rstrip()} {tail}"
    return out


def build_answer(
    question: str,
    text: str,
    sources: Sequence[Hit],
    *,
    backend: str,
    notice: str | None = None,
    embedder: Embedder | None = None,
    verify: bool | None = None,
) -> Answer:
    """Check and renumber the generator's markers; ``verify`` (default: when an embedder is given)."""
    if not sources or not text.strip():
        return Answer(question=question, text=ABSTAIN_TEXT, abstained=True, backend=backend, notice=notice)
    k = len(sources)
    claims: list[_Claim] = []
    for start, end in split_claims(text):
        piece = text[start:end]
        cited = _dedupe([n for m in _MARKER.finditer(piece) for n in parse_numbers(m.group(1)) if 1 <= n <= k])
        plain = _strip_markers(piece)
        is_claim = bool(plain) and not plain.endswith(("?", ":"))
        if is_claim and is_abstention(plain):  # "the sources do not say" is no claim; a marker on it means nothing
            is_claim, cited = False, []
        claims.append(_Claim(start, end, piece, cited, is_claim))
    if is_abstention(text) and not any(c.cited for c in claims):
        return Answer(question=question, text=ABSTAIN_TEXT, abstained=True, backend=backend, notice=notice)

    if verify if verify is not None else embedder is not None:
        final, unsupported = _verify(question, claims, sources, embedder)
    else:
        final, unsupported = [c.cited for c in claims], []

    pieces: list[str] = []
    cursor = 0
    for claim, keep in zip(claims, final, strict=True):
        pieces.append(text[cursor : claim.start])
        pieces.append(_rewrite_claim(claim.text, keep))
        cursor = claim.end
    pieces.append(text[cursor:])
    checked_text = "".join(pieces)

    order: list[int] = []

    def renumber(match: re.Match[str]) -> str:
        valid = [n for n in parse_numbers(match.group(1)) if 1 <= n <= k]
        new: list[int] = []
        for n in valid:
            if n not in order:
                order.append(n)
            m = order.index(n) + 1
            if m not in new:
                new.append(m)
        return "".join(f"[{m}]" for m in new)

    rewritten = _MARKER.sub(renumber, checked_text)
    rewritten = re.sub(r"(\[\d+\])\1+", r"\1", rewritten)
    rewritten = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", rewritten)).strip()
    citations = []
    for new_n, old_n in enumerate(order, start=1):
        hit = sources[old_n - 1]
        s = hit.sentence
        citations.append(Citation(n=new_n, doc_id=s.doc_id, text=s.text, start=s.start, end=s.end, score=hit.score))
    return Answer(
        question=question,
        text=rewritten,
        abstained=False,
        citations=citations,
        backend=backend,
        notice=notice,
        unsupported=unsupported,
    )
