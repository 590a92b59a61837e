"""The rerank's stored token embeddings: compact codes in immutable blocks, one span per sentence, and
the shared codebook that decodes them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: One block of codes: each token's coarse centroid (uint16) and its residual's PQ code (uint8 row).
Block = tuple["NDArray[np.uint16]", "NDArray[np.uint8]"]
#: Verifies a block's tokens ``[start, end)`` before they are read (lazy checksums of a loaded index).
BlockCheck = Callable[[int, int], None]

COARSE_MAX = 1024  # coarse centroids at most (ids fit in uint16; k-means on 64 samples each)
TOKENS_PER_CENTROID = 256  # a codebook fitted on n tokens gets about n / 256 coarse centroids (~3 bytes a token)
PQ_DSUB = 8  # dimensions per PQ sub-quantizer: 384 dims → 48 one-byte codes per token
FIT_SAMPLE = 65_536  # tokens the codebook is fitted on at most (a seeded sample beyond)


class TokenCodec:
    """The shared codebook of an index's token codes: a coarse centroid plus a product-quantized residual.

    int8 codes took 388 bytes per token, ~12 KB per sentence. As late-interaction retrievers do, each
    token is stored as its nearest of k coarse centroids (2 bytes) and its residual to it, product-
    quantized to one byte per 8 dimensions (48 bytes at 384 dims): 50 bytes per token, ~1.5 KB per
    sentence, plus the codebook (k·dim + 256·dim float16) once per index. Measured on SQuAD tokens
    the decoded rows keep a cosine of ~0.92 to the originals and the rerank's scores within ~0.01;
    held-out quality is in the README. The codebook is fitted once, when an index first stores tokens,
    and every later block is encoded with it, so blocks never need re-encoding.
    """

    def __init__(self, coarse: NDArray[np.float32], pq_centroids: NDArray[np.float32], fitted_on: int) -> None:
        if coarse.ndim != 2 or pq_centroids.ndim != 3 or len(coarse) < 1 or len(coarse) > 1 << 16:
            raise ValueError("a token codebook needs (k, dim) coarse centroids and (M, ksub, dsub) PQ centroids")
        m, ksub, dsub = pq_centroids.shape
        if m * dsub != coarse.shape[1] or ksub < 2 or ksub > 256 or ksub & (ksub - 1):
            raise ValueError("the PQ centroids do not match the codebook's width")
        self.coarse = np.ascontiguousarray(coarse, dtype=np.float32)  # float16 values (saved as float16)
        self.pq_centroids = np.ascontiguousarray(pq_centroids, dtype=np.float32)
        self.fitted_on = int(fitted_on)
        self._pq_norms = (self.pq_centroids**2).sum(axis=2)  # (M, ksub): for nearest-centroid search
        self._pq_flat = self.pq_centroids.reshape(m * ksub, dsub)
        self._pq_offsets = np.arange(m, dtype=np.intp) * ksub

    @property
    def dim(self) -> int:
        return int(self.coarse.shape[1])

    @property
    def code_bytes(self) -> int:
        """Bytes of one token's residual code."""
        return int(self.pq_centroids.shape[0])  # one byte per sub-quantizer

    @classmethod
    def fit(cls, flat: NDArray[np.float32], seed: int = 1234) -> TokenCodec:
        """A codebook for token rows like ``flat`` (k-means, then PQ of the residuals, on a seeded sample)."""
        import faiss

        n, dim = flat.shape
        if not n:
            raise ValueError("a token codebook needs tokens to fit on")
        sample = flat
        if n > FIT_SAMPLE:
            sample = flat[np.sort(np.random.default_rng(seed).choice(n, FIT_SAMPLE, replace=False))]
        if len(sample) < 2:  # a lone token: fit on it and its opposite, so the smallest PQ (2 centroids) trains
            sample = np.concatenate([sample, -sample])
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        k = 1 << max(0, min(COARSE_MAX, len(sample) // TOKENS_PER_CENTROID).bit_length() - 1)
        coarse: NDArray[np.float32] = sample.mean(axis=0, keepdims=True)
        if k > 1:
            km = faiss.Kmeans(dim, k, niter=20, seed=seed, max_points_per_centroid=64,
                              min_points_per_centroid=1)
            km.train(sample)
            coarse = np.asarray(km.centroids, dtype=np.float32)
        coarse = coarse.astype(np.float16).astype(np.float32)  # as saved: residuals against the stored centroids
        residual = sample - coarse[_nearest(coarse, sample)]
        dsub = next(d for d in (PQ_DSUB, 4, 2, 1) if dim % d == 0)
        ksub = 1 << min(8, len(sample).bit_length() - 1)  # 256, or as many as there are tokens to fit on
        centroids = np.empty((dim // dsub, ksub, dsub), dtype=np.float32)
        for m in range(dim // dsub):  # one k-means per sub-space (faiss's own PQ training is ~6x slower here)
            km = faiss.Kmeans(dsub, ksub, niter=10, seed=seed + m, min_points_per_centroid=1)
            km.train(np.ascontiguousarray(residual[:, m * dsub : (m + 1) * dsub]))
            centroids[m] = km.centroids
        return cls(coarse, centroids.astype(np.float16).astype(np.float32), len(sample))

    def encode(self, flat: NDArray[np.float32]) -> Block:
        """Each row's coarse id and residual code."""
        flat = np.ascontiguousarray(flat, dtype=np.float32)
        if flat.ndim != 2 or flat.shape[1] != self.dim:
            raise ValueError(f"token rows must be {self.dim} wide")
        ids = _nearest(self.coarse, flat)
        m_count, _, dsub = self.pq_centroids.shape
        codes = np.empty((len(flat), m_count), dtype=np.uint8)
        for lo in range(0, len(flat), 16_384):
            residual = (flat[lo : lo + 16_384] - self.coarse[ids[lo : lo + 16_384]]).reshape(-1, m_count, dsub)
            for m in range(m_count):  # nearest sub-centroid: argmin ||c||² - 2·x·c
                scores = self._pq_norms[m] - 2.0 * (residual[:, m, :] @ self.pq_centroids[m].T)
                codes[lo : lo + 16_384, m] = scores.argmin(axis=1)
        return ids.astype(np.uint16), codes

    def decode(self, ids: NDArray[Any], codes: NDArray[Any]) -> NDArray[np.float32]:
        """Unit rows approximating the encoded ones."""
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = self.coarse[np.asarray(ids, dtype=np.intp)]
        # one flat gather of every (sub-quantizer, code) centroid: ~3x faster than 2-d fancy indexing
        sub = np.take(self._pq_flat, np.asarray(codes, dtype=np.intp) + self._pq_offsets, axis=0)
        rows += sub.reshape(len(rows), -1)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows

    def arrays(self) -> dict[str, NDArray[Any]]:
        """What is saved (``from_arrays`` reads it back)."""
        return {"coarse": self.coarse.astype(np.float16), "pq_centroids": self.pq_centroids.astype(np.float16),
                "fitted_on": np.array([self.fitted_on], dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]]) -> TokenCodec:
        """The codebook saved by ``arrays``; ``ValueError`` naming what is missing or malformed."""
        for name in ("coarse", "pq_centroids", "fitted_on"):
            if name not in arrays:
                raise ValueError(f"token codebook: {name!r} is missing")
        coarse, pq = np.asarray(arrays["coarse"]), np.asarray(arrays["pq_centroids"])
        if coarse.dtype != np.float16 or pq.dtype != np.float16 or not (np.isfinite(coarse).all()
                                                                        and np.isfinite(pq).all()):
            raise ValueError("token codebook: centroids must be finite float16")
        return cls(coarse, pq, int(np.asarray(arrays["fitted_on"]).ravel()[0]))


def _nearest(centroids: NDArray[np.float32], rows: NDArray[np.float32], batch: int = 65_536) -> NDArray[np.int64]:
    """Index of each row's nearest centroid (L2), in batches so a large block needs little memory."""
    import faiss

    flat = faiss.IndexFlatL2(centroids.shape[1])
    flat.add(np.ascontiguousarray(centroids, dtype=np.float32))
    out = np.empty(len(rows), dtype=np.int64)
    for lo in range(0, len(rows), batch):
        _, ids = flat.search(np.ascontiguousarray(rows[lo : lo + batch], dtype=np.float32), 1)
        out[lo : lo + batch] = ids[:, 0]
    return out


class TokenTable:
    """Each sentence's contextual token embeddings, computed once at index time for the rerank.

    The rerank compares a question's tokens with those of a few dozen candidate sentences; encoding
    them per query cost 50-90 ms. Stored, it is a gather and a decode. Codes (``TokenCodec``) live in
    immutable blocks (one per indexing run) that share the table's codebook; ``spans[i]`` is sentence
    i's ``(block, start, end)``, so reordering sentences or appending an article never copies or
    rewrites the codes already there. ``checks`` (one per block, or None) verify a loaded block's
    bytes lazily, on first use.
    """

    def __init__(
        self,
        codec: TokenCodec,
        blocks: Sequence[Block],
        spans: NDArray[np.int64],
        names: Sequence[str | None] | None = None,
        checks: Sequence[BlockCheck | None] | None = None,
    ) -> None:
        self.codec = codec
        self.blocks = list(blocks)
        self.names: list[str | None] = list(names) if names is not None else [None] * len(self.blocks)
        self.checks: list[BlockCheck | None] = list(checks) if checks is not None else [None] * len(self.blocks)
        if len(self.names) != len(self.blocks) or len(self.checks) != len(self.blocks):
            raise ValueError("token blocks need one name and one check each")
        if spans.ndim != 2 or spans.shape[1] != 3:
            raise ValueError("token spans must be (N, 3) rows of (block, start, end)")
        for ids, codes in self.blocks:
            if ids.ndim != 1 or codes.shape != (len(ids), codec.code_bytes):
                raise ValueError(f"token codes must be one id and {codec.code_bytes} code bytes per token")
            if ids.dtype != np.uint16 or codes.dtype != np.uint8:
                raise ValueError("token codes must be uint16 ids and uint8 codes")
        if len(spans):
            block, start, end = spans[:, 0], spans[:, 1], spans[:, 2]
            if int(block.min()) < 0 or int(block.max()) >= len(self.blocks) or bool((end < start).any()):
                raise ValueError("a token span names no block or runs backwards")
            sizes = np.array([len(ids) for ids, _ in self.blocks], dtype=np.int64)
            if int(start.min()) < 0 or bool((end > sizes[block]).any()):
                raise ValueError("a token span points outside its block")
        self.spans = spans

    @classmethod
    def quantize(
        cls, vectors: Sequence[NDArray[np.float32]], dim: int, codec: TokenCodec | None = None
    ) -> TokenTable:
        """Codes of each sentence's token vectors (rows in order), as one new block; with a new codebook
        fitted on them unless ``codec`` is given."""
        lengths = np.array([len(v) for v in vectors], dtype=np.int64)
        ends = np.cumsum(lengths)
        spans = np.stack([np.zeros_like(ends), ends - lengths, ends], axis=1).reshape(-1, 3)
        flat = np.concatenate([v for v in vectors if len(v)], axis=0) if int(lengths.sum()) else None
        if codec is None:
            codec = TokenCodec.fit(flat if flat is not None else np.zeros((1, dim), np.float32))
        if flat is None:
            flat = np.zeros((0, dim), dtype=np.float32)
        return cls(codec, [codec.encode(flat)], spans.astype(np.int64))

    @classmethod
    def concat(cls, parts: Sequence[TokenTable]) -> TokenTable:
        """One block holding the parts' sentences in row order; only the tokens they point to are copied.
        The parts share one codebook.

        >>> a = TokenTable.quantize([np.eye(3, dtype=np.float32)[:2]], 3)
        >>> b = TokenTable.quantize([np.zeros((0, 3), np.float32), -np.ones((1, 3), np.float32)], 3, a.codec)
        >>> t = TokenTable.concat([b.take([1]), a, b.take([0])])
        >>> t.spans.tolist(), [v.shape for v in t.get([0, 1, 2])]
        ([[0, 0, 1], [0, 1, 3], [0, 3, 3]], [(1, 3), (2, 3), (0, 3)])
        """
        if not parts:
            raise ValueError("nothing to concatenate")
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.extend(part)
        spans = joined.spans
        lengths = spans[:, 2] - spans[:, 1]
        starts = np.cumsum(lengths) - lengths  # where each sentence's tokens go in the new block
        ids = np.empty(int(lengths.sum()), dtype=np.uint16)
        codes = np.empty((len(ids), joined.codec.code_bytes), dtype=np.uint8)
        for b, (block_ids, block_codes) in enumerate(joined.blocks):
            mine = spans[:, 0] == b
            if mine.any():
                check = joined.checks[b]
                if check is not None:
                    check(0, len(block_ids))
                src = _ranges(spans[mine, 1:])
                dst = _ranges(np.stack([starts[mine], starts[mine] + lengths[mine]], axis=1))
                ids[dst] = block_ids[src]
                codes[dst] = block_codes[src]
        out_spans = np.stack([np.zeros(len(spans), np.int64), starts, starts + lengths], axis=1)
        return cls(joined.codec, [(ids, codes)], out_spans.astype(np.int64).reshape(-1, 3))

    def extend(self, other: TokenTable) -> TokenTable:
        """This table's sentences, then ``other``'s: the blocks are shared, nothing is copied."""
        if other.codec is not self.codec:
            raise ValueError("token tables with different codebooks cannot share an index")
        spans = other.spans.copy()
        spans[:, 0] += len(self.blocks)
        return TokenTable(self.codec, self.blocks + other.blocks, np.concatenate([self.spans, spans]),
                          self.names + other.names, self.checks + other.checks)

    def __len__(self) -> int:
        return len(self.spans)

    @property
    def dim(self) -> int:
        return self.codec.dim

    @property
    def stored(self) -> int:
        """Tokens held in the blocks (some may belong to sentences no longer in the table)."""
        return sum(len(ids) for ids, _ in self.blocks)

    @property
    def referenced(self) -> int:
        return int((self.spans[:, 2] - self.spans[:, 1]).sum())

    def packed(self) -> TokenTable:
        """The same sentences in one block of only their tokens, in row order."""
        return TokenTable.concat([self])

    def take(self, rows: Sequence[int] | NDArray[np.int64]) -> TokenTable:
        """The same blocks, seen through the spans of ``rows`` (nothing is copied)."""
        spans = self.spans[np.asarray(rows, dtype=np.int64)].reshape(-1, 3)
        return TokenTable(self.codec, self.blocks, spans, self.names, self.checks)

    def get(self, rows: Iterable[int]) -> list[NDArray[np.float32]]:
        """Decoded unit token vectors of each row (one decode for all of them)."""
        spans = self.spans[np.asarray(list(rows), dtype=np.int64)].reshape(-1, 3)
        if not len(spans):
            return []
        ids = np.empty(int((spans[:, 2] - spans[:, 1]).sum()), dtype=np.uint16)
        codes = np.empty((len(ids), self.codec.code_bytes), dtype=np.uint8)
        pos = 0
        for b, s, e in spans.tolist():
            check = self.checks[b]
            if check is not None:
                check(s, e)
            block_ids, block_codes = self.blocks[b]
            ids[pos : pos + e - s] = block_ids[s:e]
            codes[pos : pos + e - s] = block_codes[s:e]
            pos += e - s
        decoded = self.codec.decode(ids, codes)
        bounds = np.cumsum(spans[:, 2] - spans[:, 1])[:-1]
        return list(np.split(decoded, bounds))


def _ranges(spans: NDArray[np.int64]) -> NDArray[np.int64]:
    """The positions covered by ``[start, end)`` spans, concatenated, without a Python loop.

    >>> _ranges(np.array([[3, 5], [0, 0], [1, 2]])).tolist()
    [3, 4, 1]
    """
    lengths = spans[:, 1] - spans[:, 0]
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    keep = lengths > 0
    starts, lengths = spans[keep, 0], lengths[keep]
    first = np.cumsum(lengths) - lengths  # where each span begins in the output
    step = np.ones(total, dtype=np.int64)
    step[0] = starts[0]
    step[first[1:]] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
    return np.cumsum(step)

