"""Turn generated text into an ``Answer`` whose citations resolve to exact, checked sentences.

Markers are parsed with the one grammar (``qa.cite.markers``); a number that was never shown to the
model is dropped, never mapped to another sentence; the survivors are renumbered in order of first
appearance and resolve to ``Citation`` objects. A trailing list of references ("Sources: [1] …") is
dropped. With a ``checker`` (the pipeline gives one for model answers) every claim is checked against
the sources (``qa.cite.support``) and the answer says, sentence by sentence, what the check found
(``Answer.claims``). Questions, lead-ins ending in ":" and "the sources do not say" sentences are not
claims (markers on the last are dropped). An answer that opens with such a sentence and cites nothing
else abstains.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from qa.cite.claims import claim_text, drop_reference_list, is_abstention, split_claims
from qa.cite.evidence import ClaimChecker
from qa.cite.markers import MARKER, cited_numbers, dedupe, format_markers, parse_numbers, renumber, strip_markers
from qa.cite.support import AnswerSentence, Decision, unchecked, verify
from qa.types import ABSTAIN_TEXT, Answer, Citation, ClaimCheck, Document, Hit

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


def _tidy(text: str) -> str:
    """One marker where a model repeated it, no space before punctuation, single spaces."""
    text = re.sub(r"(\[\d+\])\1+", r"\1", text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text))


def _sentences(text: str, k: int) -> list[AnswerSentence]:
    out = []
    for start, end in split_claims(text):
        piece = text[start:end]
        cited = tuple(n for n in cited_numbers(piece) if 1 <= n <= k)
        plain = strip_markers(piece)
        check = bool(plain) and not plain.endswith(("?", ":"))
        if check and is_abstention(plain):  # "the sources do not say" is no claim; a marker on it means nothing
            check, cited = False, ()
        out.append(AnswerSentence(start, end, piece, cited, claim_text(piece), check))
    return out


def build_answer(
    question: str,
    text: str,
    sources: Sequence[Hit],
    *,
    backend: str,
    notice: str | None = None,
    checker: ClaimChecker | None = None,
    embedder: Embedder | None = None,
    check: bool | None = None,
    documents: Mapping[str, Document] | None = None,
    related: Sequence[Hit] = (),
) -> Answer:
    """Check and renumber the generator's markers; check the claims with ``checker`` (or, without an
    index, with a checker over ``sources`` and ``embedder``). ``check`` defaults to whether either is given.
    ``documents`` give each citation its document's title, outlet, date and URL. An abstention carries the
    ``related`` passages (on topic, but not an answer) so the reader can check for themselves."""
    if not sources or not text.strip():
        return _abstention(question, backend, notice, related, documents)
    text = drop_reference_list(text)
    sentences = _sentences(text, len(sources))
    if is_abstention(text) and not any(s.cited for s in sentences):
        return _abstention(question, backend, notice, related, documents)

    decisions: list[Decision] = unchecked(sentences)
    extended = list(sources)
    if check if check is not None else (checker is not None or embedder is not None):
        decisions, extended = verify(sentences, sources, checker or ClaimChecker(embedder), question)

    # Rewrite piece by piece, so each claim's place in the final text is known exactly.
    valid = range(1, len(extended) + 1)
    order: list[int] = []
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    cursor, length = 0, 0
    for s, decision in zip(sentences, decisions, strict=True):
        gap = re.sub(r"[ \t]{2,}", " ", text[cursor : s.start])
        piece = _tidy(renumber(_rewrite_claim(s.text, decision.keep), valid, order)[0]).strip()
        pieces += [gap, piece]
        spans.append((length + len(gap), length + len(gap) + len(piece)))
        length += len(gap) + len(piece)
        cursor = s.end
    pieces.append(text[cursor:])
    joined = "".join(pieces)
    lead = len(joined) - len(joined.lstrip())
    rewritten = joined.strip()

    claims: list[ClaimCheck] = []
    unsupported: list[str] = []
    for s, decision, (a, b) in zip(sentences, decisions, spans, strict=True):
        if not s.check:
            continue
        shown = rewritten[a - lead : b - lead]
        claims.append(ClaimCheck(s.claim, a - lead, b - lead, tuple(cited_numbers(shown)), decision.supported,
                                 decision.score))
        if decision.supported is False:
            unsupported.append(strip_markers(shown))
    citations = [_citation(new_n, extended[old_n - 1], documents) for new_n, old_n in enumerate(order, start=1)]
    return Answer(
        question=question,
        text=rewritten,
        abstained=False,
        citations=citations,
        backend=backend,
        notice=notice,
        unsupported=unsupported,
        claims=claims,
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
