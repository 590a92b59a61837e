"""BM25 over sentences on plain numpy arrays: it grows by an article at the cost of the article, and is
saved and loaded as arrays without re-tokenising.

The scores are bm25s's defaults, which this index replaces (Lucene variant: k1 = 1.5, b = 0.75,
IDF ``log(1 + (N - df + 0.5) / (df + 0.5))``, term frequency normalised by the mean sentence length over
all sentences, empty ones included). IDF and the mean length change whenever sentences are added, so no
per-posting weight is stored: term frequencies and sentence lengths are, and a query weighs only the
postings of its own terms, from totals kept as counters.

An index never changes once built (searches may run on it in other threads). ``extend`` returns a new
index that shares the old one's postings: they live in segments, each term-major over its own
consecutive sentences, and the new sentences become one more segment. Term ids are given in order of
first occurrence, so an extended index and one built from scratch over the same texts are the same:
same ids, same counters, same per-sentence sums in the same order, hence identical scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.index.arrays import check as _check
from qa.index.arrays import int_array as _int_array
from qa.index.arrays import utf8_strings as _vocabulary
from qa.index.terms import tokenize

if TYPE_CHECKING:
    from numpy.typing import NDArray

K1 = 1.5  # bm25s's defaults
B = 0.75
#: More segments than this and the two adjacent ones with the fewest postings are merged, so a query
#: visits few segments while an extend stays proportional to what it adds (merges are geometric).
MAX_SEGMENTS = 8
#: Segments with at most this many distinct terms find a term through a dict (a query visits every
#: segment: a dict lookup is cheaper than a numpy call); larger ones by binary search.
_DICT_TERMS = 1 << 16
#: Queries with more postings than this weigh them slice by slice, in place (no concatenation, no repeat):
#: fewer passes over memory, more numpy calls. The same float32 operations either way, so the same scores.
_IN_PLACE = 1 << 15
#: Version of the ``to_arrays`` layout; ``from_arrays`` refuses others.
FORMAT = 1


def idf(df: NDArray[np.int64] | int, n: int) -> NDArray[np.float64]:
    """BM25's (Lucene) inverse document frequency; a term absent from the corpus gets the largest.

    >>> [round(float(x), 3) for x in idf(np.array([0, 1, 10]), 10)]
    [3.091, 1.992, 0.047]
    """
    d = np.asarray(df, dtype=np.float64)
    return np.asarray(np.log1p((n - d + 0.5) / (d + 0.5)), dtype=np.float64)


@dataclass(frozen=True)
class LexicalQuery:
    """A question's distinct known terms with their IDF, and the IDF mass of all its terms."""

    term_ids: NDArray[np.int64]
    term_idf: NDArray[np.float64]
    mass: float  # IDF of every distinct term, known or not
    known_mass: float  # IDF of the terms that occur somewhere in the corpus


def _frozen(a: NDArray[Any]) -> NDArray[Any]:
    a.flags.writeable = False  # shared between index versions: a write would change them all
    return a


class _Segment:
    """The postings of the consecutive sentences ``start … start + len(lengths) - 1``, term-major: term
    ``terms[i]`` occurs in sentences ``rows[indptr[i]:indptr[i + 1]]`` (global ids, ascending). Never
    modified once built.

    Per posting, ``pq`` holds what BM25's term-frequency part needs besides the corpus's mean length, in
    the form that costs a query fewest numpy passes: tf / (tf + k1 (1 - b) + k1 b dl / avgdl)
    = 1 / (p + k1 b / avgdl · q) with p = 1 + k1 (1 - b) / tf and q = dl / tf (exact for tf = 1, the
    common case; tf = rint(dl / q) recovers the frequency).
    """

    __slots__ = ("first", "indptr", "lengths", "lookup", "pq", "rows", "start", "terms")

    def __init__(
        self, start: int, lengths: NDArray[np.int32], term_of: NDArray[np.int64], rows: NDArray[np.int32],
        pq: NDArray[np.float32],
    ) -> None:
        """From postings already sorted by (term, row); ``term_of`` names each posting's term."""
        heads = np.flatnonzero(np.diff(term_of)) + 1 if len(term_of) else np.zeros(0, dtype=np.int64)
        heads = np.concatenate(([0], heads)) if len(term_of) else heads
        self.start = start
        self.lengths = _frozen(lengths)
        self.terms = _frozen(term_of[heads].astype(np.int32))
        self.indptr = _frozen(np.concatenate((heads, [len(term_of)])).astype(np.int64))
        self.rows = _frozen(rows)
        self.pq = _frozen(pq)
        n_terms = len(self.terms)
        # the first segment holds every term id below its last (ids follow first use): no lookup needed
        contiguous = n_terms > 0 and int(self.terms[-1]) - int(self.terms[0]) + 1 == n_terms
        self.first: int | None = int(self.terms[0]) if contiguous else None
        small = not contiguous and n_terms <= _DICT_TERMS
        self.lookup: dict[int, int] | None = {t: i for i, t in enumerate(self.terms.tolist())} if small else None

    @property
    def size(self) -> int:
        return len(self.lengths)

    @property
    def postings(self) -> int:
        return len(self.rows)

    def positions(self, ids: Sequence[int]) -> list[int]:
        """Where each term id sits in ``terms``; -1 where the segment lacks it."""
        if self.first is not None:
            first, n = self.first, len(self.terms)
            return [t - first if 0 <= t - first < n else -1 for t in ids]
        if self.lookup is not None:
            get = self.lookup.get
            return [get(t, -1) for t in ids]
        want = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.terms, want)
        found = self.terms[np.minimum(pos, len(self.terms) - 1)] == want
        return np.where(found, pos, -1).tolist()  # type: ignore[no-any-return]


def _postings_sorted(
    start: int, lengths: NDArray[np.int32], term_of: NDArray[Any], rows: NDArray[Any], tf: NDArray[Any]
) -> _Segment:
    """A segment from postings sorted by (term, row), with their term frequencies."""
    tf64 = np.asarray(tf, dtype=np.float64)
    pq = np.empty((2, len(rows)), dtype=np.float32)
    pq[0] = 1.0 + K1 * (1 - B) / tf64
    pq[1] = lengths[rows - start] / tf64
    return _Segment(start, lengths, term_of, rows.astype(np.int32), pq)


def _build_segment(start: int, docs: list[list[str]], vocab: dict[str, int]) -> _Segment:
    """A segment of tokenised sentences; terms new to ``vocab`` get the next ids, in order of first use."""
    n = len(docs)
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=n)
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for doc in docs for t in doc), dtype=np.int64,
                      count=int(lengths.sum()))
    local = np.repeat(np.arange(n, dtype=np.int64), lengths)
    keys, tf = np.unique(ids * max(n, 1) + local, return_counts=True)  # sorted by (term, sentence)
    return _postings_sorted(start, lengths.astype(np.int32), keys // max(n, 1), keys % max(n, 1) + start, tf)


def _merge(a: _Segment, b: _Segment) -> _Segment:
    """One segment holding ``a`` then ``b`` (adjacent): a stable sort by term keeps rows ascending."""
    term_of = np.concatenate([np.repeat(s.terms.astype(np.int64), np.diff(s.indptr)) for s in (a, b)])
    order = np.argsort(term_of, kind="stable")
    rows = np.concatenate([a.rows, b.rows])[order]
    pq = np.concatenate([a.pq, b.pq], axis=1)[:, order]
    return _Segment(a.start, np.concatenate([a.lengths, b.lengths]), term_of[order], rows, pq)


def _compact(segments: tuple[_Segment, ...]) -> tuple[_Segment, ...]:
    """At most ``MAX_SEGMENTS``: while over, merge the adjacent pair with the fewest postings (and sentences),
    so segments grow geometrically, like a binary counter: a posting is merged O(log N) times in all."""
    segs = list(segments)
    while len(segs) > MAX_SEGMENTS:
        cost = [segs[i].postings + segs[i].size + segs[i + 1].postings + segs[i + 1].size
                for i in range(len(segs) - 1)]
        i = cost.index(min(cost))
        segs[i : i + 2] = [_merge(segs[i], segs[i + 1])]
    return tuple(segs)


class LexicalIndex:
    """BM25 over sentences, built in memory from the store or loaded from its arrays; immutable.

    >>> old = LexicalIndex(["Markets fell sharply.", "The bank raised rates."])
    >>> new = old.extend(["Rates fell again."])
    >>> len(old), len(new), new.scores("rates fell").argmax().item()
    (2, 3, 2)
    """

    _vocab: dict[str, int]  # term -> id, ids in order of first occurrence
    _df: NDArray[np.int64]  # sentences containing each term
    _segments: tuple[_Segment, ...]
    _size: int  # sentences
    _tokens: int  # tokens in all sentences (for the mean length)

    def __init__(self, texts: Sequence[str]) -> None:
        self._vocab = {}
        segments = (_build_segment(0, tokenize(texts), self._vocab),) if texts else ()
        self._set(segments, np.zeros(len(self._vocab), dtype=np.int64), 0, 0, segments)

    def _set(
        self, segments: tuple[_Segment, ...], df: NDArray[np.int64], size: int, tokens: int,
        added: Sequence[_Segment],
    ) -> None:
        """The counters (``df``, ``size``, ``tokens``) were those before ``added``: count it in."""
        for seg in added:
            df[seg.terms] += np.diff(seg.indptr)
            size += seg.size
            tokens += int(seg.lengths.sum())
        self._df = _frozen(df)
        self._segments = segments
        self._size = size
        self._tokens = tokens

    def __len__(self) -> int:
        return self._size

    @property
    def segments(self) -> int:
        """How many segments hold the postings (at most ``MAX_SEGMENTS``)."""
        return len(self._segments)

    def extend(self, texts: Sequence[str]) -> LexicalIndex:
        """This index plus ``texts`` as the next sentences, scoring as ``LexicalIndex(old + texts)`` would.

        Tokenises only ``texts`` and shares this index's postings (this index stays valid and unchanged);
        copies the vocabulary only when ``texts`` bring new terms.
        """
        if not texts:
            return self
        docs = tokenize(texts)
        vocab = self._vocab
        if any(t not in vocab for doc in docs for t in doc):
            vocab = dict(vocab)  # never add to a dict another index reads
        seg = _build_segment(self._size, docs, vocab)
        df = np.zeros(len(vocab), dtype=np.int64)
        df[: len(self._df)] = self._df
        out = LexicalIndex.__new__(LexicalIndex)
        out._vocab = vocab
        out._set(_compact((*self._segments, seg)), df, self._size, self._tokens, (seg,))
        return out

    def term_idf(self, stem: str) -> float:
        """IDF of a stemmed term; the largest possible for a term the corpus lacks."""
        t = self._vocab.get(stem)
        return float(idf(self._df[t], self._size)) if t is not None else self.unknown_idf()

    def knows(self, stem: str) -> bool:
        """Whether some indexed sentence holds the stemmed term."""
        return stem in self._vocab

    def postings_of(self, stems: Sequence[str]) -> list[NDArray[np.int32] | None]:
        """The rows (ascending) that hold each stemmed term; None for a term the corpus lacks."""
        ids = [self._vocab.get(s, -1) for s in stems]
        found = iter(self._postings([i for i in ids if i >= 0]))
        return [next(found) if i >= 0 else None for i in ids]

    def unknown_idf(self) -> float:
        """The IDF of a term the corpus lacks (the largest any term can have)."""
        return float(idf(0, max(self._size, 1)))

    def query(self, text: str) -> LexicalQuery:
        tokens = list(dict.fromkeys(tokenize([text], question=True)[0])) if self._size else []
        ids = np.array([self._vocab[t] for t in tokens if t in self._vocab], dtype=np.int64)
        term_idf = idf(self._df[ids], self._size) if ids.size else np.zeros(0, dtype=np.float64)
        unknown = len(tokens) - len(ids)
        known = float(term_idf.sum())
        return LexicalQuery(ids, term_idf, known + unknown * self.unknown_idf(), known)

    def scores(self, query: str | LexicalQuery) -> NDArray[np.float32]:
        """BM25 of every sentence: O(postings of the query's terms) numpy, no Python loop over sentences."""
        lq = self.query(query) if isinstance(query, str) else query
        return self._bm25(lq.term_ids.tolist())

    def plain_scores(self, text: str) -> NDArray[np.float32]:
        """Textbook BM25 of every sentence for ``text`` (question words kept): the baseline."""
        tokens = tokenize([text])[0] if self._size else []
        return self._bm25([self._vocab[t] for t in tokens if t in self._vocab])  # repeated terms count again

    def _bm25(self, ids: list[int]) -> NDArray[np.float32]:
        """Sum over ``ids`` (in order, repeats included) of IDF × tf / (tf + k1 (1 - b + b dl / avgdl))."""
        out = np.zeros(self._size, dtype=np.float32)
        ids = [t for t in ids if 0 <= t < len(self._df)]  # a query of a larger index: its new terms are absent
        if not ids or not self._tokens:
            return out
        n = self._size
        weight = [math.log1p((n - d + 0.5) / (d + 0.5)) for d in self._df[ids].tolist()]  # idf(), minus numpy calls
        rows: list[NDArray[np.int32]] = []
        pq: list[NDArray[np.float32]] = []
        term_weight: list[float] = []
        counts: list[int] = []
        for seg in self._segments:
            for j, p in enumerate(seg.positions(ids)):
                if p >= 0:
                    a, b = seg.indptr[p : p + 2].tolist()
                    rows.append(seg.rows[a:b])
                    pq.append(seg.pq[:, a:b])
                    term_weight.append(weight[j])
                    counts.append(b - a)
        if not rows:
            return out
        c = np.float32(K1 * B * n / self._tokens)  # k1 b / avgdl, times q
        if sum(counts) <= _IN_PLACE:
            both = np.concatenate(pq, axis=1)
            w = both[1] * c
            w += both[0]
            np.divide(np.repeat(np.asarray(term_weight, dtype=np.float32), counts), w, out=w)
        else:
            w = np.empty(sum(counts), dtype=np.float32)
            at = 0
            for part, idf_j, k in zip(pq, term_weight, counts, strict=True):
                v = w[at : at + k]
                np.multiply(part[1], c, out=v)
                v += part[0]
                np.divide(np.float32(idf_j), v, out=v)
                at += k
        np.add.at(out, np.concatenate(rows, dtype=np.intp), w)  # in term order; intp: add.at's fast path
        return out

    def lengths(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """Terms (with repeats, stop words excluded) in each of ``rows``.

        >>> LexicalIndex(["The cat sat on the mat.", "Dogs."]).lengths(np.array([1, 0])).tolist()
        [1, 3]
        """
        out = np.zeros(len(rows), dtype=np.int64)
        for seg in self._segments:
            mine = (rows >= seg.start) & (rows < seg.start + seg.size)
            if mine.any():
                out[mine] = seg.lengths[rows[mine] - seg.start]
        return out

    def _postings(self, ids: Sequence[int]) -> list[NDArray[np.int32] | None]:
        """Each term's postings over all segments (ascending rows), None for a term no segment holds."""
        parts: list[list[NDArray[np.int32]]] = [[] for _ in ids]
        for seg in self._segments:
            for j, p in enumerate(seg.positions(ids)):
                if p >= 0:
                    a, b = seg.indptr[p : p + 2].tolist()
                    parts[j].append(seg.rows[a:b])
        return [None if not part else part[0] if len(part) == 1 else np.concatenate(part) for part in parts]

    def term_presence(self, lq: LexicalQuery, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """``[i, j]``: does sentence ``rows[i]`` contain term ``j``? Binary search in each term's postings."""
        out = np.zeros((len(rows), len(lq.term_ids)), dtype=np.bool_)
        if not self._size or not len(rows):
            return out
        for j, postings in enumerate(self._postings(lq.term_ids.tolist())):
            if postings is not None:  # segments are in row order: the postings are sorted
                pos = np.minimum(np.searchsorted(postings, rows), len(postings) - 1)
                out[:, j] = postings[pos] == rows
        return out

    # ----- persistence ---------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        """The index as flat arrays (fresh copies) that ``np.save(allow_pickle=False)`` stores; segments are
        kept as they are, so saving costs no merge and loading gives the same index."""
        encoded = [t.encode("utf-8") for t in self._vocab]  # ids are insertion order
        segs = self._segments

        def cat(parts: list[NDArray[Any]], dtype: type) -> NDArray[Any]:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        return {
            "format": np.array([FORMAT], dtype=np.int64),
            "vocab_utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(),
            "vocab_offsets": np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64),
            "lengths": cat([s.lengths for s in segs], np.int32),
            "segment_sizes": np.array([s.size for s in segs], dtype=np.int64),
            "segment_terms": np.array([len(s.terms) for s in segs], dtype=np.int64),
            "terms": cat([s.terms for s in segs], np.int32),
            "term_postings": cat([np.diff(s.indptr) for s in segs], np.int64),
            "rows": cat([s.rows for s in segs], np.int32),
            "tf": cat([np.rint(s.lengths[s.rows - s.start] / s.pq[1]) for s in segs], np.int32),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]]) -> LexicalIndex:
        """The index ``to_arrays`` gave, without re-tokenising; ``ValueError`` if the arrays disagree."""
        a = {name: _int_array(arrays, name) for name in _ARRAYS}
        if a["format"].tolist() != [FORMAT]:
            raise ValueError(f"lexical index arrays: format {a['format'].tolist()}, this version reads [{FORMAT}]")
        terms_list = _vocabulary(a["vocab_utf8"], a["vocab_offsets"])
        vocab = {t: i for i, t in enumerate(terms_list)}
        _check(len(vocab) == len(terms_list), "the vocabulary repeats a term")
        sizes, seg_terms, lengths, terms, counts, rows, tf = (
            a[k] for k in ("segment_sizes", "segment_terms", "lengths", "terms", "term_postings", "rows", "tf")
        )
        _check(len(sizes) == len(seg_terms), "segment_sizes and segment_terms differ in length")
        _check(bool((sizes > 0).all()) and int(sizes.sum()) == len(lengths), "segment sizes do not add up to lengths")
        _check(bool((seg_terms >= 0).all()) and int(seg_terms.sum()) == len(terms), "segment_terms do not add up")
        _check(len(counts) == len(terms) and bool((counts > 0).all()), "term_postings do not match terms")
        _check(int(counts.sum()) == len(rows) == len(tf), "rows and tf do not match term_postings")
        _check(bool((lengths >= 0).all()) and bool((tf > 0).all()), "negative lengths or non-positive tf")
        _check(len(sizes) == 0 or len(lengths) < 2**31, "too many sentences")
        row_start = np.concatenate(([0], np.cumsum(sizes)))
        term_start = np.concatenate(([0], np.cumsum(seg_terms)))
        post_start = np.concatenate(([0], np.cumsum(counts)))
        segments = []
        for s in range(len(sizes)):
            lo, hi = int(row_start[s]), int(row_start[s + 1])
            t0, t1 = int(term_start[s]), int(term_start[s + 1])
            p0, p1 = int(post_start[t0]), int(post_start[t1])
            seg_t, seg_r = terms[t0:t1], rows[p0:p1]
            _check(bool((np.diff(seg_t) > 0).all()), f"segment {s}: terms not strictly ascending")
            _check(not len(seg_t) or (int(seg_t[0]) >= 0 and int(seg_t[-1]) < len(vocab)),
                   f"segment {s}: term id out of range")
            _check(bool(((seg_r >= lo) & (seg_r < hi)).all()), f"segment {s}: a row outside its sentences")
            term_of = np.repeat(seg_t, counts[t0:t1])
            ascending = (np.diff(seg_r) > 0) | (np.diff(term_of) != 0)
            _check(bool(ascending.all()), f"segment {s}: rows not strictly ascending within a term")
            per_row = np.bincount(seg_r - lo, weights=tf[p0:p1], minlength=hi - lo)
            _check(bool((per_row == lengths[lo:hi]).all()), f"segment {s}: term frequencies do not add up to lengths")
            segments.append(_postings_sorted(lo, lengths[lo:hi].astype(np.int32), term_of, seg_r, tf[p0:p1]))
        out = cls.__new__(cls)
        out._vocab = vocab
        out._set(tuple(segments), np.zeros(len(vocab), dtype=np.int64), 0, 0, segments)
        _check(bool((out._df > 0).all()), "a vocabulary term has no postings")
        return out


_ARRAYS = ("format", "vocab_utf8", "vocab_offsets", "lengths", "segment_sizes", "segment_terms", "terms",
           "term_postings", "rows", "tf")
