"""Store: FAISS index and manifest on disk; nothing lost, damage detected, no code run on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import HashEmbedder, TokenHashEmbedder

from qa import errors
from qa.pipeline import build_store
from qa.store import FORMAT_VERSION, MANIFEST, Store, TokenTable, read_manifest
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


@pytest.mark.parametrize(
    "role", ["documents", "sentences", "vectors", "faiss", "token_codes_0", "token_scales_0", "token_spans"]
)
@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_files_are_named(tmp_path: Path, role: str, damage: str) -> None:
    root = tmp_path / "ix"
    _store(TokenHashEmbedder()).save(root)
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


# ----- the rerank's stored token embeddings ----------------------------------------------------------------


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


def test_stored_tokens_survive_save_load_and_reuse(tmp_path: Path) -> None:
    embedder = TokenHashEmbedder()
    store = build_store(DOCS, embedder)
    assert store.tokens is not None and len(store.tokens) == len(store)
    fresh = [v for v, _ in embedder.encode_tokens([s.text for s in store.sentences])]
    for want, got in zip(fresh, store.tokens.get(range(len(store))), strict=True):
        assert np.min(np.sum(want * got, axis=1)) > 0.999
    store.save(tmp_path / "ix")
    loaded = Store.load(tmp_path / "ix", expect_model=embedder.name)
    assert loaded.tokens is not None and isinstance(loaded.tokens.blocks[0][0], np.memmap)
    for a, b in zip(store.tokens.get(range(len(store))), loaded.tokens.get(range(len(store))), strict=True):
        assert np.array_equal(a, b)
    # a new article: the old rows keep their tokens (reused, not re-encoded), the new rows get theirs
    grown = build_store([Document("c", "Trains ran late on Tuesday. Commuters waited.")], embedder, previous=loaded)
    assert grown.tokens is not None and len(grown.tokens) == len(grown) == len(store) + 2
    old_rows = [i for i, s in enumerate(grown.sentences) if s.doc_id != "c"]
    for a, b in zip(grown.tokens.get(old_rows), loaded.tokens.get(range(len(loaded))), strict=True):
        assert np.array_equal(a, b)
    assert [len(v) for v in grown.tokens.get([len(grown) - 2, len(grown) - 1])] == [5, 2]


def test_an_index_without_tokens_still_loads_and_stays_without(tmp_path: Path) -> None:
    _store().save(tmp_path / "ix")  # a token-less embedder: no token files
    loaded = Store.load(tmp_path / "ix")
    assert loaded.tokens is None
    assert not any(name.startswith("token") for name in json.loads((tmp_path / "ix" / MANIFEST).read_text())["files"])
    grown = build_store([Document("c", "Another story.")], TokenHashEmbedder(), previous=Store(
        list(loaded.documents.values()), loaded.sentences, loaded.vectors, model=TokenHashEmbedder.name,
        segmenter=loaded.segmenter, chunking=loaded.chunking))
    assert grown.tokens is None  # some rows have none: the rerank encodes on the fly instead


def test_adding_an_article_writes_only_its_tokens(tmp_path: Path) -> None:
    """The token blocks already on disk are kept as they are; only the new article's block is written."""
    embedder = TokenHashEmbedder()
    root = tmp_path / "ix"
    build_store(DOCS, embedder).save(root)
    first = json.loads((root / MANIFEST).read_text())["files"]
    loaded = Store.load(root, expect_model=embedder.name)
    grown = build_store([Document("c", "Trains ran late on Tuesday.")], embedder, previous=loaded)
    grown.save(root)
    files = json.loads((root / MANIFEST).read_text())["files"]
    assert files["token_codes_0"] == first["token_codes_0"]  # the same file, not rewritten
    assert files["token_codes_1"]["name"] != first["token_codes_0"]["name"]
    again = Store.load(root, expect_model=embedder.name)
    assert again.tokens is not None and len(again.tokens.blocks) == 2
    for a, b in zip(again.tokens.get(range(len(again))), grown.tokens.get(range(len(grown))), strict=True):  # type: ignore[union-attr]
        assert np.array_equal(a, b)
    # a changed article: rows move, so the tokens are repacked into one block and nothing dead is kept
    changed = build_store([Document("a", "The cat left the mat.")], embedder, previous=again)
    changed.save(root)
    final = Store.load(root, expect_model=embedder.name)
    assert final.tokens is not None and len(final) == len(changed)
    names = {p.name for p in root.iterdir()}
    assert {info["name"] for info in json.loads((root / MANIFEST).read_text())["files"].values()} | {MANIFEST} == names


# ----- the BM25 index is saved with the store ---------------------------------------------------------------


def _pipeline_index(root: Path) -> None:
    from qa.pipeline import Pipeline

    Pipeline.from_documents(DOCS, index_dir=root, embedder=HashEmbedder())


def test_saved_bm25_is_loaded_without_retokenising(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import lexical
    from qa.pipeline import Pipeline

    root = tmp_path / "ix"
    _pipeline_index(root)
    assert "lexical" in json.loads((root / MANIFEST).read_text())["files"]
    fresh = lexical.LexicalIndex([s.text for s in Store.load(root).sentences])

    def no_rebuild(self: object, texts: object) -> None:
        raise AssertionError("the BM25 index was rebuilt instead of loaded")

    monkeypatch.setattr(lexical.LexicalIndex, "__init__", no_rebuild)
    pipe = Pipeline.load(root, embedder=HashEmbedder())
    for q in ("cat mat", "bonds Monday", "nothing here"):
        assert np.array_equal(pipe._retriever.lexical.scores(q), fresh.scores(q))


def test_bm25_of_another_tokeniser_is_rebuilt(tmp_path: Path) -> None:
    import hashlib

    from qa import lexical
    from qa.pipeline import Pipeline

    root = tmp_path / "ix"
    _pipeline_index(root)
    manifest = json.loads((root / MANIFEST).read_text())
    target = root / manifest["files"]["lexical"]["name"]
    with np.load(target, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["tokenizer"] = np.frombuffer(b"some-older-tokeniser", dtype=np.uint8)
    with target.open("wb") as f:
        np.savez(f, **arrays)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest["files"]["lexical"].update(bytes=target.stat().st_size, sha256=digest)
    (root / MANIFEST).write_text(json.dumps(manifest))
    pipe = Pipeline.load(root, embedder=HashEmbedder())
    fresh = lexical.LexicalIndex([s.text for s in pipe.store.sentences])
    assert np.array_equal(pipe._retriever.lexical.scores("cat mat"), fresh.scores("cat mat"))


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_damaged_bm25_file_is_named(tmp_path: Path, damage: str) -> None:
    root = tmp_path / "ix"
    _pipeline_index(root)
    target = root / json.loads((root / MANIFEST).read_text())["files"]["lexical"]["name"]
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    with pytest.raises(errors.IndexCorruptError, match=target.name):
        Store.load(root)
