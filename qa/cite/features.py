"""Pure features of one claim (an answer's sentence) against candidate source sentences.

Everything here is a function of strings and numpy arrays: no model, no index, no I/O. The sentence
vectors and the contextual token vectors come from the product's embedder (all-MiniLM-L6-v2, unit
rows; the index stores the sources' token vectors), a word's rarity from an ``Idf`` callable (the
index's BM25 IDF, scaled to [0, 1]).

Two steps, so that the sources of one answer are prepared once for all its claims:

* ``prepare_sources(texts, vectors, tokens)`` -> ``Sources`` (words, stems, numbers, n-grams, cues)
* ``claim_features(claim, sources, idf)`` -> ``Features`` (``FEATURE_NAMES`` order, plus per-source
  support scores and a greedy cover of the claim's words, for attribution)

Without token vectors (an embedder that gives none) a word aligns with a sentence only when the
sentence contains it: the check is then purely lexical and tolerates no paraphrase.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qa.cite.words import MODAL, NEGATION, Word, looks_english, ngrams, numbers_in, words

#: Verbatim runs longer than this count as this long in ``max_run`` (whose value is words / MAX_RUN_CAP).
MAX_RUN_CAP = 12
#: stem -> rarity in [0, 1] (1 = a word the corpus lacks).
Idf = Callable[[str], float]

FEATURE_NAMES: tuple[str, ...] = (
    "cos_best",  # max sentence cosine claim / source
    "lex_best",  # IDF-weighted share of the claim's content words in the best-supporting sentence
    "lex_all",  # … in any source (outside English: the share of its names the sources contain)
    "lex_cover3",  # … in the best three sentences chosen greedily (coverage by sentences together)
    "novel_mass",  # IDF mass of content words no source contains / the claim's IDF mass
    "num_missing",  # log1p(numbers of the claim that no source mentions)
    "name_missing",  # log1p(names of an English claim that no source mentions; 0 outside English)
    "trigram_all",  # share of the claim's word trigrams (stems) found in the sources
    "align_best",  # IDF-weighted mean best token cosine of the claim's key words, best sentence
    "align_all",  # … over all sources
    "align_min",  # the worst-aligned key word's best token cosine (over all sources)
    "lex_align_min",  # the worst key word: 1 if the sources contain it, 0 for a number (or, in English, a
    #                   name) they lack, else its best token cosine (how paraphrase is tolerated)
    "lex_align_min2",  # mean of the two worst such words
    "neg_mismatch",  # the claim is negated and its best sentences are not, or its best sentence is and it is not
    "modal_mismatch",  # the claim hedges (may, expected, plans…) and its best sentences do not
    "max_run",  # longest verbatim run of words shared with one source sentence, capped, / MAX_RUN_CAP
)


@dataclass(frozen=True)
class Claim:
    """A claim and its embeddings: the sentence vector, and its token vectors with character offsets
    (``None`` when the embedder gives no token vectors)."""

    text: str
    vector: NDArray[np.float32]  # (d,) unit
    tokens: NDArray[np.float32] | None = None  # (q, d) unit rows
    offsets: NDArray[np.int64] | None = None  # (q, 2) character spans of the tokens in ``text``
    single: bool = False  # must be supported by one sentence (a short answer read with its question)


@dataclass(frozen=True)
class Sources:
    """Candidate source sentences, prepared once for all the claims checked against them."""

    texts: tuple[str, ...]
    vectors: NDArray[np.float32]  # (n, d) unit sentence vectors
    tokens: NDArray[np.float32] | None  # (T, d) unit token vectors of all sentences, concatenated
    token_sentence: NDArray[np.int64]  # (T,) the sentence each token belongs to
    stems: tuple[frozenset[str], ...]  # content stems per sentence
    word_stems: tuple[frozenset[str], ...]  # every word's stem per sentence
    all_stems: frozenset[str]
    words_any: frozenset[str]  # every stem of every word (function words too)
    numbers: tuple[frozenset[str], ...]
    all_numbers: frozenset[str]
    trigrams: frozenset[tuple[str, ...]]
    negated: NDArray[np.bool_]
    modal: NDArray[np.bool_]
    sequences: tuple[tuple[str, ...], ...]  # every word's stem, in order, per sentence
    lowered: str  # all the texts, lower-cased, joined
    english: bool  # whether the sources read as English

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, rows: Sequence[int]) -> Sources:
        """The same preparation for a subset of the sentences (the cited ones)."""
        toks = None
        if self.tokens is not None:
            toks = [self.tokens[self.token_sentence == i] for i in rows]
        return prepare_sources([self.texts[i] for i in rows], self.vectors[list(rows)], toks)


def prepare_sources(
    texts: Sequence[str], vectors: NDArray[np.float32], tokens: Sequence[NDArray[np.float32]] | None
) -> Sources:
    """Everything about the sources that does not depend on the claim."""
    n = len(texts)
    if vectors.shape[0] != n or (tokens is not None and len(tokens) != n):
        raise ValueError("one vector (and one token matrix, if any) per source sentence")
    d = vectors.shape[1] if vectors.ndim == 2 else 0
    ws = [words(t) for t in texts]
    stems = tuple(frozenset(w.stem for w in s if w.content) for s in ws)
    word_stems = tuple(frozenset(w.stem for w in s) for s in ws)
    nums = tuple(frozenset(numbers_in(s, t.lower())) for s, t in zip(ws, texts, strict=True))
    tris: set[tuple[str, ...]] = set()
    for s in ws:
        tris |= ngrams(s, 3)
    tok: NDArray[np.float32] | None = None
    tsent = np.zeros(0, dtype=np.int64)
    if tokens is not None:
        lens = [len(t) for t in tokens]
        tok = np.concatenate([np.asarray(t, np.float32).reshape(-1, d) for t in tokens]) if sum(lens) else None
        tsent = np.repeat(np.arange(n, dtype=np.int64), lens)
    return Sources(
        texts=tuple(texts),
        vectors=np.asarray(vectors, np.float32),
        tokens=tok,
        token_sentence=tsent,
        stems=stems,
        word_stems=word_stems,
        all_stems=frozenset().union(*stems),
        words_any=frozenset().union(*word_stems),
        numbers=nums,
        all_numbers=frozenset().union(*nums),
        trigrams=frozenset(tris),
        negated=np.array([bool(NEGATION.search(t.lower())) for t in texts], dtype=np.bool_),
        modal=np.array([bool(MODAL.search(t.lower())) for t in texts], dtype=np.bool_),
        sequences=tuple(tuple(w.stem for w in s) for s in ws),
        lowered=" ".join(texts).lower(),
        english=looks_english([w for s in ws for w in s]),
    )


@dataclass(frozen=True)
class Features:
    values: NDArray[np.float64]  # in FEATURE_NAMES order
    support: NDArray[np.float64]  # per-source support score (for attribution), in the order of the sources
    cover: tuple[int, ...]  # sentences chosen greedily to cover the claim's words, best first
    cover_gain: tuple[float, ...]  # the share of the claim's IDF mass each of them added
    english: bool  # judged as English (else only its numbers and names are held to the sources)

    def __getitem__(self, name: str) -> float:
        return float(self.values[FEATURE_NAMES.index(name)])


@dataclass(frozen=True)
class Run:
    claim_start: int  # index into the claim's word list
    length: int
    sentence: int
    source_start: int  # index into that sentence's word list


def copy_runs(claim_stems: Sequence[str], source_stems: Sequence[Sequence[str]], min_len: int = 2) -> list[Run]:
    """Greedy left-to-right cover of the claim by the longest word runs found verbatim in one source sentence.

    Ties prefer continuing the previous run's sentence after where it stopped.

    >>> runs = copy_runs("a b c x d e".split(), ["a b c".split(), "q d e".split()])
    >>> [(r.claim_start, r.length, r.sentence, r.source_start) for r in runs]
    [(0, 3, 0, 0), (4, 2, 1, 1)]
    """
    where: dict[str, list[tuple[int, int]]] = {}
    for j, sent in enumerate(source_stems):
        for p, w in enumerate(sent):
            where.setdefault(w, []).append((j, p))
    runs: list[Run] = []
    i = 0
    n = len(claim_stems)
    while i < n:
        best: tuple[int, int, int, int] | None = None  # (length, preference, sentence, position)
        for j, p in where.get(claim_stems[i], ()):
            sent = source_stems[j]
            length = 1
            while i + length < n and p + length < len(sent) and sent[p + length] == claim_stems[i + length]:
                length += 1
            pref = 1 if runs and runs[-1].sentence == j and p >= runs[-1].source_start + runs[-1].length else 0
            if best is None or (length, pref) > (best[0], best[1]):
                best = (length, pref, j, p)
        if best is not None and best[0] >= min_len:
            runs.append(Run(i, best[0], best[2], best[3]))
            i += best[0]
        else:
            i += 1
    return runs


def _segment_max(sim: NDArray[np.float32], seg: NDArray[np.int64], n: int) -> NDArray[np.float32]:
    """(q, T) similarities -> (q, n) max over each sentence's tokens (-1 where a sentence has none)."""
    out = np.full((sim.shape[0], n), -1.0, dtype=np.float32)
    if sim.shape[1]:
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        out[:, seg[starts]] = np.maximum.reduceat(sim, starts, axis=1)
    return out


def _found(w: Word, sources: Sources) -> bool:
    """Whether the sources contain the word: its number, or its stem (any word, function words too), or for a
    name its letters anywhere ("McDonald" in "McDonald's")."""
    if w.number is not None:
        return w.number in sources.all_numbers
    return w.stem in sources.words_any or (w.name and w.text in sources.lowered)


def _alignment(
    claim: Claim, keys: Sequence[Word], sources: Sources
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Each piece's best cosine within each source sentence ``(pieces, n)`` and the key word of each piece.

    With token vectors on both sides a piece is a wordpiece of a key word. Without, a piece is the word
    itself: it aligns with a sentence that contains it at 1, and otherwise as well as the claim's sentence
    vector matches that sentence (names and numbers: 0), a crude stand-in for paraphrase.
    """
    n = len(sources)
    stems = [w.stem for w in keys]
    if claim.tokens is not None and claim.offsets is not None and sources.tokens is not None:
        # every occurrence of a key word (a repeated word's pieces all count), found by its start offset
        spots = sorted((w.start, w.end, stems.index(w.stem)) for w in words(claim.text) if w.stem in stems
                       and (w.content or w.number is not None))
        starts = np.array([a for a, _, _ in spots], dtype=np.int64)
        token_starts = np.asarray(claim.offsets, dtype=np.int64).reshape(-1, 2)[:, 0]
        at = np.searchsorted(starts, token_starts, side="right") - 1
        inside = (at >= 0) & (token_starts < np.array([b for _, b, _ in spots] + [0], dtype=np.int64)[at])
        piece_word = np.where(inside, np.array([k for _, _, k in spots] + [-1], dtype=np.int64)[at], -1)
        keep = piece_word >= 0
        sim = np.asarray(claim.tokens, np.float32)[keep] @ sources.tokens.T
        return _segment_max(sim, sources.token_sentence, n), piece_word[keep]
    cos = np.clip(sources.vectors @ np.asarray(claim.vector, np.float32), 0.0, 1.0) if n else np.zeros(0)
    found = np.zeros((len(stems), n), dtype=np.float32)
    for i, w in enumerate(keys):
        strict = w.number is not None or w.name
        for j in range(n):
            hit = w.number in sources.numbers[j] if w.number is not None else w.stem in sources.word_stems[j]
            found[i, j] = 1.0 if hit else 0.0 if strict else float(cos[j])
    return found, np.arange(len(stems), dtype=np.int64)


def claim_features(claim: Claim, sources: Sources, idf: Idf) -> Features:
    """Features of one claim against prepared sources (see ``FEATURE_NAMES``)."""
    n = len(sources)
    f: dict[str, float] = dict.fromkeys(FEATURE_NAMES, 0.0)
    cws_all = words(claim.text)
    english = looks_english(cws_all, default=sources.english)
    if n == 0:
        f.update(novel_mass=1.0)
        return Features(np.array([f[k] for k in FEATURE_NAMES]), np.zeros(0), (), (), english)
    seen: dict[str, Word] = {}
    for w in cws_all:
        if w.content:
            seen.setdefault(w.stem, w)  # a claim repeating a word counts it once
    uniq = list(seen.values())
    wts = np.array([max(idf(w.stem), 0.05) for w in uniq], dtype=np.float64)
    mass = float(wts.sum()) or 1.0
    in_sent = np.array([[w.stem in s for s in sources.stems] for w in uniq], dtype=np.bool_).reshape(len(uniq), n)
    lex = (wts[:, None] * in_sent).sum(axis=0) / mass if uniq else np.ones(n)
    cos = sources.vectors @ np.asarray(claim.vector, np.float32)

    # key words: content words and numbers, once per stem; their pieces' alignment with each sentence
    keys: list[Word] = []
    for w in cws_all:
        if (w.content or w.number is not None) and w.stem not in [k.stem for k in keys]:
            keys.append(w)
    per_sent, piece_word = _alignment(claim, keys, sources)
    key_idf = np.array([max(idf(w.stem), 0.05) for w in keys], dtype=np.float64)
    pieces = np.bincount(piece_word, minlength=len(keys)) if len(piece_word) else np.zeros(len(keys), np.int64)
    piece_wt = key_idf[piece_word] / np.maximum(pieces[piece_word], 1) if len(piece_word) else np.zeros(0)
    tmass = float(piece_wt.sum()) or 1.0
    align = (piece_wt[:, None] * per_sent).sum(axis=0) / tmass if len(piece_word) else np.zeros(n)
    piece_all = per_sent.max(axis=1) if len(piece_word) else np.zeros(0, np.float32)

    support = (np.clip(cos, 0, 1) + lex + np.clip(align, 0, 1)) / 3.0
    order = np.argsort(-support, kind="stable")
    best, second = int(order[0]), int(order[1]) if n > 1 else int(order[0])
    f["cos_best"] = float(cos.max())

    # greedy cover by content words: the best-supporting sentence, then whatever adds the most
    covered = np.zeros(len(uniq), dtype=np.bool_)
    chosen: list[int] = []
    covers: list[float] = []
    for _ in range(min(3, n)):
        if chosen:
            gain = (wts[:, None] * (in_sent & ~covered[:, None])).sum(axis=0) if uniq else np.zeros(n)
            gain[chosen] = -1.0
            j = int(np.argmax(gain + 1e-6 * support))
            if gain[j] <= 0:
                break
        else:
            j = best
        chosen.append(j)
        covered |= in_sent[:, j] if uniq else covered
        covers.append(float((wts * covered).sum() / mass) if uniq else 1.0)
    f["lex_best"] = float(lex[best])
    f["lex_cover3"] = covers[-1]
    found = np.array([w.stem in sources.all_stems for w in uniq], dtype=np.bool_)
    f["lex_all"] = float((wts * found).sum() / mass) if uniq else 1.0
    if not english:  # the English model cannot judge the other words: only names are held to the sources
        named = [(x, _found(w, sources)) for w, x in zip(uniq, wts, strict=True) if w.name]
        f["lex_all"] = sum(x for x, ok in named if ok) / sum(x for x, _ in named) if named else 1.0
    novel = [x for w, x, ok in zip(uniq, wts, found, strict=True) if not ok and w.stem not in sources.words_any]
    f["novel_mass"] = sum(novel) / mass if novel else 0.0

    numbers = {w.number for w in cws_all if w.number is not None}
    f["num_missing"] = math.log1p(sum(1 for x in numbers if x not in sources.all_numbers))
    names = {w.stem: w for w in cws_all if w.name}
    f["name_missing"] = math.log1p(sum(1 for w in names.values() if not _found(w, sources))) if english else 0.0
    tri = ngrams(cws_all, 3)
    f["trigram_all"] = len(tri & sources.trigrams) / len(tri) if tri else 1.0

    # token alignment: the worst key word decides abstractive claims. Outside English only numbers and
    # names are held to the sources (the English model cannot judge a paraphrase in another language).
    judged = np.array([english or w.number is not None or w.name for w in keys], dtype=np.bool_)
    present = (pieces > 0) & judged
    if present.any():
        word_best = np.bincount(piece_word, weights=piece_all, minlength=len(keys)) / np.maximum(pieces, 1)
        f["align_best"] = float(align[best])
        f["align_all"] = float((piece_wt * piece_all).sum() / tmass)
        f["align_min"] = float(word_best[present].min())
        # a number, or (in English) a name, that the sources lack scores 0: the commonest hallucinations in news
        lexical = np.array([
            1.0 if _found(w, sources) else 0.0 if w.number is not None or (english and w.name)
            else float(word_best[i])
            for i, w in enumerate(keys)
        ])
        worst = np.sort(lexical[present])
        f["lex_align_min"] = float(worst[0])
        f["lex_align_min2"] = float(worst[:2].mean())
    else:
        for k in ("align_best", "align_all", "align_min", "lex_align_min", "lex_align_min2"):
            f[k] = 1.0
        if len(piece_word):
            f["align_best"] = float(align[best])
            f["align_all"] = float((piece_wt * piece_all).sum() / tmass)

    lowered = claim.text.lower()
    c_neg, c_mod = bool(NEGATION.search(lowered)), bool(MODAL.search(lowered))
    s_neg = bool(sources.negated[best]) or bool(sources.negated[second])
    s_mod = bool(sources.modal[best]) or bool(sources.modal[second])
    f["neg_mismatch"] = float((c_neg and not s_neg) or (bool(sources.negated[best]) and not c_neg))
    f["modal_mismatch"] = float(c_mod and not s_mod)
    runs = copy_runs([w.stem for w in cws_all], sources.sequences)
    f["max_run"] = min(max((r.length for r in runs), default=0), MAX_RUN_CAP) / MAX_RUN_CAP
    gains = tuple(b - a for a, b in zip([0.0, *covers[:-1]], covers, strict=True))
    return Features(np.array([f[k] for k in FEATURE_NAMES], dtype=np.float64), support.astype(np.float64),
                    tuple(chosen), gains, english)

