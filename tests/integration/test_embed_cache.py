"""The exported-model cache: a damaged export is made again, not a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.env import isolated_settings

from qa.embed.export import export_dir
from qa.embed.onnx_embedder import OnnxEmbedder

TEXTS = ["The lighthouse keeper counts ships at dawn.", "Markets fell on Monday."]


@pytest.mark.parametrize("damage", ["a truncated model", "an empty tokenizer"])
def test_a_damaged_export_in_the_cache_is_made_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """A truncated ONNX file in the cache (a disk that filled up, a copy cut short) failed every later run
    with onnxruntime's traceback; the export is now made again, once, and encodes as before."""
    shared = OnnxEmbedder(quantize=True, cache_dir=isolated_settings().cache_dir)
    want = shared.encode(TEXTS)
    cache = tmp_path / "cache"
    folder = export_dir(shared.name, quantize=True, cache_dir=cache)
    shutil.copytree(shared.directory, folder)
    target = folder / ("model-int8.onnx" if damage == "a truncated model" else "tokenizer.json")
    whole = target.stat().st_size
    target.write_bytes(target.read_bytes()[: whole // 3] if damage == "a truncated model" else b"")
    got = OnnxEmbedder(quantize=True, cache_dir=cache).encode(TEXTS)
    assert "is damaged" in capsys.readouterr().err
    assert np.min(np.sum(got * want, axis=1)) > 0.99
    assert target.stat().st_size == whole
