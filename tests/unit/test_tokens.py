"""The rerank's stored token embeddings: int8 codes in shared blocks, one span per sentence."""

from __future__ import annotations

import numpy as np
import pytest

from qa.index import TokenTable


def _unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_int8_tokens_keep_cosines() -> None:
    blocks = [_unit_rows(n, seed=n) for n in (3, 0, 7, 1)]
    table = TokenTable.quantize(blocks, 16)
    assert len(table) == 4 and table.blocks[0][0].dtype == np.int8 and len(table.blocks) == 1
    for original, decoded in zip(blocks, table.get(range(4)), strict=True):
        assert decoded.shape == original.shape
        if len(original):
            assert np.min(np.sum(original * decoded, axis=1)) > 0.999


@pytest.mark.parametrize(
    ("rows", "expected_lengths"),
    [([0, 1, 2, 3], [3, 0, 7, 1]), ([3, 0], [1, 3]), ([2, 2], [7, 7]), ([], [])],
)
def test_take_and_concat_keep_each_sentence_tokens(rows: list[int], expected_lengths: list[int]) -> None:
    blocks = [_unit_rows(n, seed=n) for n in (3, 0, 7, 1)]
    table = TokenTable.quantize(blocks, 16)
    view = table.take(rows)
    packed = TokenTable.concat([view, table.take([1])])
    assert len(packed.blocks) == 1 and packed.stored == packed.referenced and len(packed) == len(rows) + 1
    assert [len(v) for v in packed.get(range(len(rows)))] == expected_lengths
    for got, r in zip(packed.get(range(len(rows))), rows, strict=True):
        assert np.array_equal(got, table.get([r])[0])


@pytest.mark.parametrize(
    ("codes", "scales", "spans"),
    [
        (np.zeros((3, 4), np.int8), np.ones(2, np.float32), np.array([[0, 0, 3]])),  # a scale missing
        (np.zeros((3, 4), np.int8), np.ones(3, np.float32), np.array([[0, 0, 4]])),  # past the end
        (np.zeros((3, 4), np.int8), np.ones(3, np.float32), np.array([[0, 2, 1]])),  # backwards
        (np.zeros((3, 4), np.int8), np.ones(3, np.float32), np.array([[1, 0, 1]])),  # no such block
        (np.zeros((3, 4), np.int8), np.ones(3, np.float32), np.array([0, 0, 3])),  # not (N, 3)
    ],
)
def test_inconsistent_token_arrays_are_refused(codes: np.ndarray, scales: np.ndarray, spans: np.ndarray) -> None:
    with pytest.raises(ValueError):
        TokenTable([(codes, scales)], spans)


def test_extend_shares_blocks() -> None:
    a = TokenTable.quantize([_unit_rows(2), _unit_rows(3, seed=1)], 16)
    b = TokenTable.quantize([_unit_rows(4, seed=2)], 16)
    both = a.extend(b)
    assert len(both) == 3 and len(both.blocks) == 2 and both.blocks[0][0] is a.blocks[0][0]
    assert all(np.array_equal(x, y) for x, y in zip(both.get([0, 1, 2]), a.get([0, 1]) + b.get([0]), strict=True))


def test_packed_keeps_only_referenced_tokens() -> None:
    table = TokenTable.quantize([_unit_rows(n, seed=n) for n in (3, 5, 2)], 16)
    view = table.take([2, 0])
    assert view.stored == 10 and view.referenced == 5
    packed = view.packed()
    assert packed.stored == packed.referenced == 5 and len(packed.blocks) == 1
    assert all(np.array_equal(a, b) for a, b in zip(packed.get([0, 1]), table.get([2, 0]), strict=True))


def test_an_empty_table() -> None:
    empty = TokenTable.concat([])
    assert len(empty) == 0 and empty.stored == 0
    none = TokenTable.quantize([], 8)
    assert len(none) == 0 and none.dim == 8 and none.get([]) == []
