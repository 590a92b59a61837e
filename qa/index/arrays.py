"""Checks for arrays read back from disk: a saved file whose checksum matches can still be inconsistent
(written by another version, or edited), and must fail with a ``ValueError`` that names what is wrong,
never with an index error deep inside a query."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def check(ok: bool, what: str) -> None:
    """Raise ``ValueError`` naming what is inconsistent unless ``ok``."""
    if not ok:
        raise ValueError(f"inconsistent lexical index arrays: {what}")


def int_array(arrays: Mapping[str, NDArray[Any]], name: str) -> NDArray[Any]:
    """A 1-d integer array of ``arrays`` (int32 or int64), or ``ValueError`` naming it."""
    if name not in arrays:
        raise ValueError(f"lexical index arrays: {name!r} is missing")
    a = np.asarray(arrays[name])
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"lexical index arrays: {name!r} must be a 1-d integer array, not {a.dtype} {a.shape}")
    return a if a.dtype in (np.int32, np.int64) else a.astype(np.int64)  # ours are int32 or int64: no copy


def utf8_strings(blob: NDArray[Any], offsets: NDArray[Any]) -> list[str]:
    """The strings a UTF-8 blob holds between consecutive ``offsets``, or ``ValueError``."""
    check(len(offsets) >= 1 and int(offsets[0]) == 0 and int(offsets[-1]) == len(blob),
           "vocab_offsets do not span vocab_utf8")
    check(bool((np.diff(offsets) > 0).all()), "vocab_offsets not strictly ascending")
    check(bool(((blob >= 0) & (blob < 256)).all()), "vocab_utf8 is not bytes")
    raw = blob.astype(np.uint8).tobytes()
    bounds = offsets.tolist()
    try:
        return [raw[i:j].decode("utf-8") for i, j in pairwise(bounds)]
    except UnicodeDecodeError as exc:
        raise ValueError(f"inconsistent lexical index arrays: vocab_utf8 is not UTF-8 ({exc})") from None
