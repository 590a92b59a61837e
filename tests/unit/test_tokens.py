"""The rerank's stored token embeddings: compact codes (a shared codebook) in shared blocks, one span per sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexCorruptError
from qa.index import TokenTable
from qa.index.manifest import LazyCheck, file_hashes
from qa.index.tokens import TokenCodec


def _unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _clustered(n: int, dim: int = 64, topics: int = 20, seed: int = 0) -> np.ndarray:
    """Rows around a few directions, as contextual token embeddings are (many tokens, few meanings)."""
    rng = np.random.default_rng(seed)
    centres = _unit_rows(topics, dim, seed + 1)
    v = centres[rng.integers(0, topics, n)] + rng.normal(0, 0.25 / dim**0.5, (n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_codes_take_a_fraction_of_int8_and_keep_each_token_closest_to_itself() -> None:
    rows = _clustered(4000)
    table = TokenTable.quantize([rows[i : i + 40] for i in range(0, 4000, 40)], 64)
    ids, codes = table.blocks[0]
    assert ids.dtype == np.uint16 and codes.dtype == np.uint8
    assert ids.itemsize + codes.shape[1] <= (64 + 4) // 4  # int8 + a scale was 68 bytes a token
    decoded = np.concatenate(table.get(range(len(table))))
    assert decoded.shape == rows.shape
    assert np.allclose(np.linalg.norm(decoded, axis=1), 1.0, atol=1e-5)
    cos = np.sum(rows * decoded, axis=1)
    assert cos.mean() > 0.95
    # what the rerank needs: a question token still finds its own token first among its neighbours
    probe = rows[:500]
    assert np.mean((probe @ decoded.T).argmax(axis=1) == np.arange(500)) > 0.9


def test_a_table_grows_with_its_codebook_and_refuses_another() -> None:
    a = TokenTable.quantize([_clustered(300, seed=1)], 64)
    b = TokenTable.quantize([_clustered(50, seed=2)], 64, a.codec)
    assert b.codec is a.codec and len(a.extend(b)) == 2
    other = TokenTable.quantize([_clustered(50, seed=2)], 64)
    with pytest.raises(ValueError, match="codebooks"):
        a.extend(other)


def test_codebook_round_trips_through_its_arrays() -> None:
    table = TokenTable.quantize([_clustered(600, seed=3)], 64)
    saved = table.codec.arrays()
    again = TokenCodec.from_arrays(saved)
    assert all(a.dtype != np.float64 for a in saved.values())
    ids, codes = table.blocks[0]
    assert np.array_equal(again.decode(ids, codes), table.codec.decode(ids, codes))
    with pytest.raises(ValueError, match="missing"):
        TokenCodec.from_arrays({k: v for k, v in saved.items() if k != "coarse"})
    with pytest.raises(ValueError, match="float16"):
        TokenCodec.from_arrays({**saved, "coarse": saved["coarse"].astype(np.float32)})


def test_lazy_checks_run_before_tokens_are_read() -> None:
    table = TokenTable.quantize([_unit_rows(n, seed=n) for n in (3, 4)], 16)
    seen: list[tuple[int, int]] = []
    checked = TokenTable(table.codec, table.blocks, table.spans, checks=[lambda s, e: seen.append((s, e))])
    checked.get([1])
    assert seen == [(3, 7)]
    checked.take([0]).packed()
    assert seen[-1] == (0, 7)  # packing copies the whole block: all of it is verified first


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
    ("ids", "codes", "spans"),
    [
        (np.zeros(3, np.uint16), np.zeros((2, 2), np.uint8), np.array([[0, 0, 3]])),  # a code missing
        (np.zeros(3, np.uint16), np.zeros((3, 2), np.uint8), np.array([[0, 0, 4]])),  # past the end
        (np.zeros(3, np.uint16), np.zeros((3, 2), np.uint8), np.array([[0, 2, 1]])),  # backwards
        (np.zeros(3, np.uint16), np.zeros((3, 2), np.uint8), np.array([[1, 0, 1]])),  # no such block
        (np.zeros(3, np.uint16), np.zeros((3, 2), np.uint8), np.array([0, 0, 3])),  # not (N, 3)
        (np.zeros(3, np.int64), np.zeros((3, 2), np.uint8), np.array([[0, 0, 3]])),  # ids of another type
        (np.zeros(3, np.uint16), np.zeros((3, 3), np.uint8), np.array([[0, 0, 3]])),  # codes of another width
    ],
)
def test_inconsistent_token_arrays_are_refused(ids: np.ndarray, codes: np.ndarray, spans: np.ndarray) -> None:
    codec = TokenTable.quantize([_unit_rows(5000)], 16).codec
    assert codec.code_bytes == 2
    with pytest.raises(ValueError):
        TokenTable(codec, [(ids, codes)], spans)


def test_extend_shares_blocks() -> None:
    a = TokenTable.quantize([_unit_rows(2), _unit_rows(3, seed=1)], 16)
    b = TokenTable.quantize([_unit_rows(4, seed=2)], 16, a.codec)
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
    empty = TokenTable.quantize([_unit_rows(2)], 16).take([])
    assert len(empty) == 0 and empty.packed().stored == 0
    none = TokenTable.quantize([], 8)
    assert len(none) == 0 and none.dim == 8 and none.get([]) == []


def test_lazy_file_check_hashes_only_the_chunks_read(tmp_path: Path) -> None:
    path = tmp_path / "codes.bin"
    path.write_bytes(bytes(range(256)) * 3)  # three chunks of 256 bytes
    _, chunks = file_hashes(path, chunk=256)
    assert len(chunks) == 3
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF  # damage the third chunk only
    path.write_bytes(bytes(data))
    check = LazyCheck(path, chunks, 256)
    check.check(10, 500)  # the first two chunks are intact
    with pytest.raises(IndexCorruptError, match=r"codes\.bin"):
        check.check(510, 520)
    with pytest.raises(IndexCorruptError, match="bytes 512 onwards"):
        check.check(700, 701)  # still damaged: never marked as verified
