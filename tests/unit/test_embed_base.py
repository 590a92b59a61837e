"""What an embedder is: unit rows of a fixed width, and token embeddings only where declared."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.fakes import HashEmbedder, TokenHashEmbedder

from qa.embed import Embedder, normalize


def test_normalize_makes_unit_rows_and_keeps_zero_rows() -> None:
    out = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_an_embedder_must_say_its_name_width_and_encoding() -> None:
    class Incomplete(Embedder):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_token_embeddings_only_where_declared() -> None:
    plain = HashEmbedder()
    assert not plain.can_encode_tokens and plain.runtime == "HashEmbedder"
    with pytest.raises(NotImplementedError, match="HashEmbedder gives no token embeddings"):
        plain.encode_tokens(["a"])
    tokens = TokenHashEmbedder()
    assert tokens.can_encode_tokens
    vectors, per_text = tokens.encode_with_tokens(["Gold rose.", "Markets fell sharply"])
    assert np.array_equal(vectors, tokens.encode(["Gold rose.", "Markets fell sharply"]))
    assert [len(t) for t in per_text] == [2, 3]
    (unit, offsets), = tokens.encode_tokens(["Gold rose."])
    assert offsets.tolist() == [[0, 4], [5, 9]] and np.allclose(np.linalg.norm(unit, axis=1), 1.0)
