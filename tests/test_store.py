"""Store: FAISS index and manifest on disk; nothing lost, damage detected, no code run on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import HashEmbedder

from qa import errors
from qa.pipeline import build_store
from qa.store import FORMAT_VERSION, MANIFEST, Store, read_manifest
from qa.types import Document

DOCS = [
    Document("a", "The cat sat on the mat. The dog barked at the mailman."),
    Document("b", "Markets fell sharply on Monday. Investors sold bonds."),
]


def _store(embedder: HashEmbedder | None = None) -> Store:
    return build_store(DOCS, embedder or HashEmbedder())


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    store = _store()
    store.save(tmp_path / "ix")
    loaded = Store.load(tmp_path / "ix", expect_model=HashEmbedder.name)
    assert [s.text for s in loaded.sentences] == [s.text for s in store.sentences]
    assert np.allclose(loaded.vectors, store.vectors)
    assert loaded.index.ntotal == len(store)
    manifest = json.loads((tmp_path / "ix" / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == HashEmbedder.name
    assert manifest["dim"] == HashEmbedder.dim
    assert manifest["index_type"] == "flat"
    assert set(manifest["documents"]) == {"a", "b"}
    assert all(len(d["sha256"]) == 64 for d in manifest["documents"].values())
    assert manifest["segmenter"] and manifest["chunking"]


def test_search_finds_the_sentence_itself(tmp_path: Path) -> None:
    store = _store()
    emb = HashEmbedder()
    scores, ids = store.search(emb.encode(["Investors sold bonds."]), 2)
    assert store.sentences[int(ids[0][0])].text == "Investors sold bonds."
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)


def test_resave_leaves_only_one_generation(tmp_path: Path) -> None:
    store = _store()
    store.save(tmp_path / "ix")
    store.save(tmp_path / "ix")
    names = sorted(p.name.split("-")[0] for p in (tmp_path / "ix").iterdir())
    assert names == ["documents", "faiss", "manifest.json", "sentences", "vectors"]


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(errors.IndexNotFoundError, match="qa index"):
        Store.load(tmp_path / "nothing")


def test_other_model_is_refused(tmp_path: Path) -> None:
    _store().save(tmp_path / "ix")
    with pytest.raises(errors.IndexMismatchError, match="all-MiniLM-L6-v2") as info:
        Store.load(tmp_path / "ix", expect_model="all-MiniLM-L6-v2")
    assert "--rebuild" in str(info.value)


def _edit_manifest(root: Path, **changes: object) -> None:
    p = root / MANIFEST
    data = json.loads(p.read_text())
    data.update(changes)
    p.write_text(json.dumps(data))


def test_newer_format_is_refused(tmp_path: Path) -> None:
    _store().save(tmp_path / "ix")
    _edit_manifest(tmp_path / "ix", format_version=FORMAT_VERSION + 1)
    with pytest.raises(errors.IndexMismatchError, match="newer"):
        Store.load(tmp_path / "ix")


@pytest.mark.parametrize("role", ["documents", "sentences", "vectors", "faiss"])
@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_files_are_named(tmp_path: Path, role: str, damage: str) -> None:
    root = tmp_path / "ix"
    _store().save(root)
    name = json.loads((root / MANIFEST).read_text())["files"][role]["name"]
    target = root / name
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    with pytest.raises(errors.IndexCorruptError) as info:
        Store.load(root)
    assert name in str(info.value)
    assert "qa index" in str(info.value)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format_version": 1}', ""])
def test_damaged_manifest_is_named(tmp_path: Path, content: str) -> None:
    root = tmp_path / "ix"
    _store().save(root)
    (root / MANIFEST).write_text(content)
    with pytest.raises(errors.IndexCorruptError, match=MANIFEST):
        Store.load(root)


def test_manifest_cannot_point_outside_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "ix"
    _store().save(root)
    data = json.loads((root / MANIFEST).read_text())
    data["files"]["vectors"]["name"] = "../../outside.npy"
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(errors.IndexCorruptError):
        Store.load(root)


def test_pickled_vectors_are_never_loaded(tmp_path: Path) -> None:
    """A vectors file replaced by a pickle (which could run code) is refused, not unpickled."""
    root = tmp_path / "ix"
    _store().save(root)
    data = json.loads((root / MANIFEST).read_text())
    target = root / data["files"]["vectors"]["name"]
    np.save(target, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    # even with the checksum updated to match, np.load(allow_pickle=False) refuses it
    import hashlib

    data["files"]["vectors"]["bytes"] = target.stat().st_size
    data["files"]["vectors"]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(errors.IndexCorruptError):
        Store.load(root)


def test_failed_save_keeps_previous_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ix"
    old = _store()
    old.save(root)
    before = read_manifest(root)

    import faiss

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    bigger = build_store([*DOCS, Document("c", "A third story about trains.")], HashEmbedder())
    with pytest.raises(OSError):
        bigger.save(root)
    monkeypatch.undo()
    loaded = Store.load(root)
    assert read_manifest(root).documents == before.documents
    assert len(loaded) == len(old)
