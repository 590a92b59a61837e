"""The claim checker bound to what it reads: the index's sentences, stored vectors, token vectors and
word rarity, and the embedder for the one model pass over an answer's claims.

The pipeline hands ``build_answer`` a ``ClaimChecker(embedder, index)``; nothing about the sources is
embedded again when the index stores token vectors. The candidates a claim is judged against are the
retrieved sentences (those the model saw, which it cites by number) and every other sentence of their
documents: claims that summarise are often supported by words spread over an article, and judged
against the ten retrieved sentences alone they fail more often (XSumFaith 0.70 -> 0.65 balanced
accuracy in the research). Documents longer than ``max_sources`` sentences in all contribute the
sentences closest to the answer's claims (MiniLM cosine), the retrieved ones always included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.cite.checker import ClaimModel, Verdict, claim_parts, judge_clauses, sources_idf
from qa.cite.features import Claim, Features, Idf, Sources, claim_features, prepare_sources
from qa.types import Hit, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder
    from qa.index import SentenceIndex

#: The most candidate sentences one answer's claims are judged against.
MAX_SOURCES = 200
#: … when their token vectors must be computed (an index stored without them).
MAX_ENCODED = 48


@dataclass(frozen=True)
class Checked:
    """One claim's verdict, with its supporting sentences (best first) resolved from the candidates."""

    verdict: Verdict
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True)
class Candidates:
    """The sentences an answer's claims are judged against (the retrieved ones first), prepared."""

    sentences: tuple[Sentence, ...]
    sources: Sources
    idf: Idf


class ClaimChecker:
    """Checks an answer's claims against the retrieved sentences and the rest of their documents.

    ``index`` may be None (the candidates are then the retrieved sentences alone, embedded here, and
    word rarity is taken within them); ``embedder`` may be None or give no token vectors (the check is
    then lexical: no paraphrase is recognised).
    """

    def __init__(
        self, embedder: Embedder | None, index: SentenceIndex | None = None, *, model: ClaimModel | None = None,
        max_sources: int = MAX_SOURCES, split: bool = True,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.model = model
        self.max_sources = max_sources
        self.split = split  # check each clause of a sentence that joins claims

    # ----- the claims ---------------------------------------------------------------------------

    def encode_claims(self, texts: Sequence[str]) -> list[Claim]:
        """One model pass per claim (two with an embedder that does not keep the vector of its token pass)."""
        if self.embedder is None or not texts:
            return [Claim(t, np.zeros(1, dtype=np.float32)) for t in texts]
        if not self.embedder.can_encode_tokens:
            return [Claim(t, v) for t, v in zip(texts, self.embedder.encode(list(texts)), strict=True)]
        out = []
        for t in texts:  # one text at a time: the ONNX embedder keeps its vector from the token pass
            ((tv, off),) = self.embedder.encode_tokens([t])
            out.append(Claim(t, self.embedder.encode([t])[0], tv, off))
        return out

    # ----- the candidates -----------------------------------------------------------------------

    def _row(self, s: Sentence) -> int | None:
        if self.index is None:
            return None
        rows = self.index.rows_of(s.doc_id)
        row = rows[s.n] if 0 <= s.n < len(rows) else None
        return row if row is not None and self.index.sentences[row] == s else None

    def candidates(self, hits: Sequence[Hit], claims: Sequence[Claim]) -> Candidates:
        """The retrieved sentences, then the other sentences of their documents (the closest to the claims
        when there are too many), with vectors, token vectors and rarity."""
        index = self.index
        sentences = [h.sentence for h in hits]
        rows: list[int | None] = [self._row(s) for s in sentences]
        encode_tokens = self.embedder is not None and self.embedder.can_encode_tokens
        if index is not None:
            budget = self.max_sources if index.tokens is not None or not encode_tokens else MAX_ENCODED
            taken = {r for r in rows if r is not None}
            pool = [r for d in dict.fromkeys(s.doc_id for s in sentences) for r in index.rows_of(d) if r not in taken]
            room = max(budget - len(sentences), 0)
            if len(pool) > room:
                wanted = np.stack([c.vector for c in claims]) if claims else np.zeros((0, index.dim), np.float32)
                if wanted.shape[1] == index.dim and len(wanted):
                    closeness = (index.vectors[pool] @ wanted.T).max(axis=1)
                    pool = sorted(pool[i] for i in np.argsort(-closeness, kind="stable")[:room])
                else:
                    pool = pool[:room]
            sentences += [index.sentences[r] for r in pool]
            rows += pool
        texts = [s.text for s in sentences]
        vectors = self._vectors(texts, rows)
        tokens: list[NDArray[np.float32]] | None = None
        if index is not None and index.tokens is not None and all(r is not None for r in rows):
            tokens = index.tokens.get([r for r in rows if r is not None])
        elif encode_tokens and self.embedder is not None:
            tokens = [v for v, _ in self.embedder.encode_tokens(texts)]
        idf: Idf
        if index is not None:
            lexical = index.lexical
            top = lexical.unknown_idf() or 1.0

            def idf(stem: str) -> float:
                return lexical.term_idf(stem) / top
        else:
            idf = sources_idf(texts)
        return Candidates(tuple(sentences), prepare_sources(texts, vectors, tokens), idf)

    def _vectors(self, texts: Sequence[str], rows: Sequence[int | None]) -> NDArray[np.float32]:
        index = self.index
        if self.embedder is None:
            return np.zeros((len(texts), 1), dtype=np.float32)
        if index is None or any(r is None for r in rows):
            return self.embedder.encode(list(texts))
        return np.asarray(index.vectors[[r for r in rows if r is not None]], dtype=np.float32)

    # ----- checking -----------------------------------------------------------------------------

    def features(self, claims: Sequence[str], hits: Sequence[Hit]) -> list[Features]:
        """Each claim's features against all the candidates (what ``qa eval`` fits the model on)."""
        encoded = self.encode_claims(claims)
        cand = self.candidates(hits, encoded)
        return [claim_features(c, cand.sources, cand.idf) for c in encoded]

    def check(
        self, claims: Sequence[str], cited: Sequence[Sequence[int]], hits: Sequence[Hit], *, question: str = ""
    ) -> list[Checked]:
        """Each claim's verdict; ``cited[i]`` are indices into ``hits`` (the numbers the model wrote, less one).

        A sentence that joins claims ("…, and …") is supported when each of them is; a short answer is
        read together with ``question`` (``qa.cite.checker.claim_parts``).
        """
        if not claims:
            return []
        parts = [claim_parts(c, question, split=self.split) for c in claims]
        encoded = self.encode_claims([p for ps in parts for p, _ in ps])
        singles = [single for ps in parts for _, single in ps]
        encoded = [dataclasses.replace(c, single=s) if s else c for c, s in zip(encoded, singles, strict=True)]
        cand = self.candidates(hits, encoded)
        out = []
        k = 0
        for ps, chosen in zip(parts, cited, strict=True):
            valid = [i for i in chosen if 0 <= i < len(hits)]
            v = judge_clauses(encoded[k : k + len(ps)], cand.sources, valid, idf=cand.idf, model=self.model)
            k += len(ps)
            out.append(Checked(v, tuple(cand.sentences[i] for i in v.support)))
        return out
