"""Turn generated text into an ``Answer`` whose citations resolve to exact sentences.

Markers are parsed with the one grammar (``qa.cite.markers``); a number that was never shown to the
model is dropped, never mapped to another sentence; the survivors are renumbered in order of first
appearance and resolve to ``Citation`` objects. With ``verify`` (the pipeline turns it on for model
answers) every claim is checked against its sources (``qa.cite.support``). Questions, lead-ins
ending in ":" and "the sources do not say" sentences are not claims (markers on the last are
dropped). An answer that opens with such a sentence and cites nothing else abstains.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from qa.cite.claims import is_abstention, split_claims
from qa.cite.markers import MARKER, cited_numbers, dedupe, format_markers, parse_numbers, renumber, strip_markers
from qa.cite.support import Claim, verify
from qa.types import ABSTAIN_TEXT, Answer, Citation, Document, Hit

if TYPE_CHECKING:
    from qa.embed import Embedder


def _rewrite_claim(text: str, keep: Sequence[int]) -> str:
    """Keep only the numbers in ``keep`` in the claim's markers; append any not written there."""
    present: list[int] = []

    def sub(match: re.Match[str]) -> str:
        nums = [n for n in dedupe(parse_numbers(match.group(1))) if n in keep and n not in present]
        present.extend(nums)
        return format_markers(nums)

    out = MARKER.sub(sub, text)
    added = [n for n in keep if n not in present]
    if added:
        tail = format_markers(added)
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
    check: bool | None = None,
    documents: Mapping[str, Document] | None = None,
    related: Sequence[Hit] = (),
) -> Answer:
    """Check and renumber the generator's markers; ``check`` the claims (default: when an embedder is given).
    ``documents`` give each citation its document's title, outlet, date and URL. An abstention carries the
    ``related`` passages (on topic, but not an answer) so the reader can check for themselves."""
    if not sources or not text.strip():
        return _abstention(question, backend, notice, related, documents)
    k = len(sources)
    claims: list[Claim] = []
    for start, end in split_claims(text):
        piece = text[start:end]
        cited = [n for n in cited_numbers(piece) if 1 <= n <= k]
        plain = strip_markers(piece)
        is_claim = bool(plain) and not plain.endswith(("?", ":"))
        if is_claim and is_abstention(plain):  # "the sources do not say" is no claim; a marker on it means nothing
            is_claim, cited = False, []
        claims.append(Claim(start, end, piece, cited, is_claim))
    if is_abstention(text) and not any(c.cited for c in claims):
        return _abstention(question, backend, notice, related, documents)

    if check if check is not None else embedder is not None:
        final, unsupported = verify(question, claims, sources, embedder)
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

    rewritten, order = renumber(checked_text, range(1, k + 1))
    rewritten = re.sub(r"(\[\d+\])\1+", r"\1", rewritten)
    rewritten = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", rewritten)).strip()
    citations = [_citation(new_n, sources[old_n - 1], documents) for new_n, old_n in enumerate(order, start=1)]
    return Answer(
        question=question,
        text=rewritten,
        abstained=False,
        citations=citations,
        backend=backend,
        notice=notice,
        unsupported=unsupported,
    )


def _citation(n: int, hit: Hit, documents: Mapping[str, Document] | None) -> Citation:
    s = hit.sentence
    doc = documents.get(s.doc_id) if documents is not None else None
    return Citation(
        n=n, doc_id=s.doc_id, text=s.text, start=s.start, end=s.end, score=hit.score,
        title=doc.title if doc else None, published=doc.published if doc else None,
        url=doc.url if doc else None, outlet=doc.outlet if doc else None,
    )


def _abstention(
    question: str, backend: str, notice: str | None, related: Sequence[Hit], documents: Mapping[str, Document] | None
) -> Answer:
    return Answer(
        question=question, text=ABSTAIN_TEXT, abstained=True, backend=backend, notice=notice,
        related=[_citation(n, hit, documents) for n, hit in enumerate(related, start=1)],
    )
