"""The token-code files of a FAISS index folder: which a save writes or keeps, and how a load maps them.

Token codes are the bulk of an index (a codebook, then per block each token's centroid id and residual
code), so they are memory-mapped and verified per chunk the first time a question reads them, never
hashed whole on open; a save keeps the blocks already in the folder and writes only new ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexCorruptError
from qa.index.manifest import LazyCheck
from qa.index.tokens import BlockCheck, TokenCodec, TokenTable

LAZY_ROLES = ("token_ids_", "token_codes_")  # the bulk of an index: checked per chunk on first read
TOKEN_KINDS = ("ids", "codes")  # per block: each token's coarse centroid, and its residual's code

#: ``{file name: (role, writer, bytes)}``: what a save writes
Writes = dict[str, tuple[str, Callable[[Path], None], int]]


def npy(array: Any) -> Callable[[Path], None]:
    """A writer of one array as ``.npy`` (never pickled)."""

    def write(p: Path) -> None:
        np.save(p, np.asarray(array), allow_pickle=False)

    return write


def plan_token_files(
    tokens: TokenTable,
    root: Path,
    gen: str,
    known: dict[str, dict[str, Any]],
    codec_name: str | None,
    writes: Writes,
    reused: dict[str, dict[str, Any]],
) -> None:
    """Add the token files of generation ``gen`` to ``writes``, and to ``reused`` those already in ``root``
    (``known``: the folder's files by name; ``codec_name``: the codebook's file there, if it is this one)."""
    writes[f"tokenspans-{gen}.npy"] = ("token_spans", npy(tokens.spans), tokens.spans.nbytes + 128)
    if codec_name is not None and codec_name in known and (root / codec_name).is_file():
        reused["token_codec"] = known[codec_name]
    else:
        codec_arrays = tokens.codec.arrays()

        def write_codec(p: Path) -> None:
            savez: Any = np.savez  # numpy's stub types ``**arrays`` as its bool keyword
            with p.open("wb") as f:
                savez(f, allow_pickle=False, **codec_arrays)

        writes[f"tokencodec-{gen}.npz"] = ("token_codec", write_codec,
                                           sum(a.nbytes + 1024 for a in codec_arrays.values()))
    for b, (name, block) in enumerate(zip(tokens.names, tokens.blocks, strict=True)):
        for kind, array in zip(TOKEN_KINDS, block, strict=True):
            mine = name.replace("tokenids-", f"token{kind}-") if name else None
            if mine is not None and mine in known and (root / mine).is_file():
                reused[f"token_{kind}_{b}"] = known[mine]
            else:
                writes[f"token{kind}-{gen}-{b}.npy"] = (
                    f"token_{kind}_{b}", _checked_npy(array, tokens.checks[b], len(block[0])),
                    int(np.asarray(array).nbytes) + 128,
                )


def open_token_table(paths: dict[str, Path], n_blocks: int, lazy: dict[str, LazyCheck]) -> TokenTable:
    """The token table of a loaded generation: codebook read, blocks memory-mapped with their lazy checks."""
    with np.load(paths["token_codec"], allow_pickle=False) as npz:
        codec = TokenCodec.from_arrays({name: npz[name] for name in npz.files})
    blocks, checks = [], []
    for b in range(n_blocks):
        ids = _mapped(paths[f"token_ids_{b}"])
        codes = _mapped(paths[f"token_codes_{b}"])
        blocks.append((ids, codes))
        checks.append(_block_check(ids, codes, lazy.get(f"token_ids_{b}"), lazy.get(f"token_codes_{b}")))
    return TokenTable(codec, blocks, np.load(paths["token_spans"], allow_pickle=False),
                      [paths[f"token_ids_{b}"].name for b in range(n_blocks)], checks)


def _checked_npy(array: Any, check: BlockCheck | None, n: int) -> Callable[[Path], None]:
    """Write a token block's array, verifying its bytes first: never copy unverified bytes into a new file."""

    def write(p: Path) -> None:
        if check is not None:
            check(0, n)
        np.save(p, np.asarray(array), allow_pickle=False)

    return write


def _mapped(path: Path) -> Any:
    """A memory-mapped array, its bytes verified on first use; an unreadable header names the file."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise IndexCorruptError(str(path), f"could not be read: {exc}") from exc


def _block_check(ids: Any, codes: Any, *checks: LazyCheck | None) -> BlockCheck | None:
    """Verify the chunks of a memory-mapped block's two files that hold tokens ``[start, end)``."""
    pairs = [(c, a) for c, a in zip(checks, (ids, codes), strict=True) if c is not None]
    if not pairs:
        return None

    def check(start: int, end: int) -> None:
        for lazy, array in pairs:
            row = int(array.strides[0])
            lazy.check(int(array.offset) + start * row, int(array.offset) + end * row)

    return check
