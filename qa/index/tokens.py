"""The rerank's stored token embeddings: int8 codes in immutable blocks, one span per sentence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


class TokenTable:
    """Each sentence's contextual token embeddings, computed once at index time for the rerank.

    The rerank compares a question's tokens with those of a few dozen candidate sentences; encoding
    them per query cost 50-90 ms. Stored, it is a gather. int8 with one scale per token (unit rows,
    so the scale is the row's largest component / 127) keeps late-interaction scores within 1e-3
    of float32 at a quarter of the size. Codes live in immutable blocks (one per indexing run);
    ``spans[i]`` is sentence i's ``(block, start, end)``, so reordering sentences or appending an
    article never copies or rewrites the codes already there.
    """

    def __init__(
        self,
        blocks: Sequence[tuple[NDArray[np.int8], NDArray[np.float32]]],
        spans: NDArray[np.int64],
        names: Sequence[str | None] | None = None,
    ) -> None:
        self.blocks = list(blocks)
        self.names: list[str | None] = list(names) if names is not None else [None] * len(self.blocks)
        if len(self.names) != len(self.blocks) or spans.ndim != 2 or spans.shape[1] != 3:
            raise ValueError("token spans must be (N, 3) rows of (block, start, end), with one name per block")
        for codes, scales in self.blocks:
            if codes.ndim != 2 or scales.shape != (len(codes),):
                raise ValueError("token codes (T, dim) need one scale per token")
        if len({codes.shape[1] for codes, _ in self.blocks}) > 1:
            raise ValueError("token blocks differ in width")
        if len(spans):
            block, start, end = spans[:, 0], spans[:, 1], spans[:, 2]
            if int(block.min()) < 0 or int(block.max()) >= len(self.blocks) or bool((end < start).any()):
                raise ValueError("a token span names no block or runs backwards")
            sizes = np.array([len(c) for c, _ in self.blocks], dtype=np.int64)
            if int(start.min()) < 0 or bool((end > sizes[block]).any()):
                raise ValueError("a token span points outside its block")
        self.spans = spans

    @classmethod
    def quantize(cls, vectors: Sequence[NDArray[np.float32]], dim: int) -> TokenTable:
        """int8 codes of each sentence's token vectors (rows in order), as one new block."""
        lengths = np.array([len(v) for v in vectors], dtype=np.int64)
        ends = np.cumsum(lengths)
        spans = np.stack([np.zeros_like(ends), ends - lengths, ends], axis=1).reshape(-1, 3)
        total = int(lengths.sum())
        flat = np.empty((total, dim), dtype=np.float32)  # one copy, then scaled in place
        if total:
            np.concatenate([v for v in vectors if len(v)], axis=0, out=flat)
        peak = np.abs(flat).max(axis=1) if total else np.zeros(0, dtype=np.float32)
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        flat *= (1.0 / scales)[:, None]  # each row's largest component becomes ±127
        np.rint(flat, out=flat)
        return cls([(flat.astype(np.int8), scales)], spans.astype(np.int64))

    @classmethod
    def concat(cls, parts: Sequence[TokenTable]) -> TokenTable:
        """One block holding the parts' sentences in row order; only the tokens they point to are copied.

        >>> a = TokenTable.quantize([np.ones((2, 3), np.float32)], 3)
        >>> b = TokenTable.quantize([np.zeros((0, 3), np.float32), -np.ones((1, 3), np.float32)], 3)
        >>> t = TokenTable.concat([b.take([1]), a, b.take([0])])
        >>> t.spans.tolist(), [v.shape for v in t.get([0, 1, 2])]
        ([[0, 0, 1], [0, 1, 3], [0, 3, 3]], [(1, 3), (2, 3), (0, 3)])
        """
        if not parts:
            return cls([(np.zeros((0, 0), np.int8), np.zeros(0, np.float32))], np.zeros((0, 3), np.int64))
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.extend(part)
        spans = joined.spans
        lengths = spans[:, 2] - spans[:, 1]
        starts = np.cumsum(lengths) - lengths  # where each sentence's tokens go in the new block
        codes = np.empty((int(lengths.sum()), joined.dim), dtype=np.int8)
        scales = np.empty(len(codes), dtype=np.float32)
        for b, (block_codes, block_scales) in enumerate(joined.blocks):
            mine = spans[:, 0] == b
            if mine.any():
                src = _ranges(spans[mine, 1:])
                dst = _ranges(np.stack([starts[mine], starts[mine] + lengths[mine]], axis=1))
                codes[dst] = block_codes[src]
                scales[dst] = block_scales[src]
        out_spans = np.stack([np.zeros(len(spans), np.int64), starts, starts + lengths], axis=1)
        return cls([(codes, scales)], out_spans.astype(np.int64).reshape(-1, 3))

    def extend(self, other: TokenTable) -> TokenTable:
        """This table's sentences, then ``other``'s: the blocks are shared, nothing is copied."""
        spans = other.spans.copy()
        spans[:, 0] += len(self.blocks)
        return TokenTable(self.blocks + other.blocks, np.concatenate([self.spans, spans]), self.names + other.names)

    def __len__(self) -> int:
        return len(self.spans)

    @property
    def dim(self) -> int:
        return int(self.blocks[0][0].shape[1]) if self.blocks else 0

    @property
    def stored(self) -> int:
        """Tokens held in the blocks (some may belong to sentences no longer in the table)."""
        return sum(len(codes) for codes, _ in self.blocks)

    @property
    def referenced(self) -> int:
        return int((self.spans[:, 2] - self.spans[:, 1]).sum())

    def packed(self) -> TokenTable:
        """The same sentences in one block of only their tokens, in row order."""
        return TokenTable.concat([self])

    def take(self, rows: Sequence[int] | NDArray[np.int64]) -> TokenTable:
        """The same blocks, seen through the spans of ``rows`` (nothing is copied)."""
        return TokenTable(self.blocks, self.spans[np.asarray(rows, dtype=np.int64)].reshape(-1, 3), self.names)

    def get(self, rows: Iterable[int]) -> list[NDArray[np.float32]]:
        """Decoded unit token vectors of each row."""
        out = []
        for r in rows:
            b, s, e = (int(x) for x in self.spans[r])
            codes, scales = self.blocks[b]
            block = np.asarray(codes[s:e], dtype=np.float32) * np.asarray(scales[s:e], np.float32)[:, None]
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            out.append((block / np.maximum(norms, 1e-12)).astype(np.float32))
        return out


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

