"""The FAISS index on disk: nothing lost, damage detected and named, no code run on load, token codes and
BM25 arrays saved with it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.fakes import HashEmbedder, TokenHashEmbedder

from qa import errors
from qa.index import FaissIndex, LexicalIndex, open_index
from qa.index.folder import SERVICE_FILES
from qa.index.lexical_io import TOKENIZER
from qa.index.manifest import CHUNK_BYTES, FORMAT_VERSION, MANIFEST, read_manifest
from qa.retrieve import Retriever
from qa.types import Document

DOCS = [
    Document("a", "The cat sat on the mat. The dog barked at the mailman."),
    Document("b", "Markets fell sharply on Monday. Investors sold bonds."),
]


def _index(embedder: HashEmbedder | None = None) -> FaissIndex:
    return FaissIndex.build(DOCS, embedder or HashEmbedder())


def _files(root: Path) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = json.loads((root / MANIFEST).read_text())["files"]
    return files


def _rehash(root: Path, role: str) -> None:
    """Make the manifest agree with an edited file, as a careful attacker would."""
    manifest = json.loads((root / MANIFEST).read_text())
    target = root / manifest["files"][role]["name"]
    manifest["files"][role].update(bytes=target.stat().st_size, sha256=hashlib.sha256(target.read_bytes()).hexdigest())
    (root / MANIFEST).write_text(json.dumps(manifest))


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    index = _index()
    index.save(tmp_path / "ix")
    loaded = open_index(tmp_path / "ix", expect_model=HashEmbedder.name)
    assert isinstance(loaded, FaissIndex)
    assert loaded.sentences == index.sentences and loaded.documents == index.documents
    assert np.array_equal(loaded.vectors, index.vectors)
    assert loaded.index.ntotal == len(index) == 4
    manifest = json.loads((tmp_path / "ix" / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert (manifest["model"], manifest["dim"], manifest["index_type"]) == (HashEmbedder.name, HashEmbedder.dim, "flat")
    assert set(manifest["documents"]) == {"a", "b"}
    assert all(len(d["sha256"]) == 64 and d["sentences"] == 2 for d in manifest["documents"].values())
    assert manifest["segmenter"] == index.segmenter and manifest["chunking"] == {"unit": "sentence", "context": 1}


def test_dense_search_finds_the_sentence_itself() -> None:
    index = _index()
    scores, ids = index.dense_search(HashEmbedder().encode(["Investors sold bonds."]), 2)
    assert index.sentences[int(ids[0][0])].text == "Investors sold bonds."
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)
    _, many = index.dense_search(HashEmbedder().encode(["a", "b", "c", "d", "e", "f"]), 100)
    assert many.shape == (6, 4)  # k is capped at the number of sentences


def test_resave_leaves_only_one_generation(tmp_path: Path) -> None:
    index = _index()
    index.save(tmp_path / "ix")
    first = set(_files(tmp_path / "ix"))
    index.save(tmp_path / "ix")
    names = sorted(p.name.split("-")[0] for p in (tmp_path / "ix").iterdir() if p.name not in SERVICE_FILES)
    assert names == ["documents", "faiss", "lexical", "manifest.json", "sentences", "vectors"]
    assert set(_files(tmp_path / "ix")) == first


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(errors.IndexNotFoundError, match="qa index"):
        open_index(tmp_path / "nothing")


def test_other_model_is_refused(tmp_path: Path) -> None:
    _index().save(tmp_path / "ix")
    with pytest.raises(errors.IndexMismatchError, match="all-MiniLM-L6-v2") as info:
        FaissIndex.load(tmp_path / "ix", expect_model="all-MiniLM-L6-v2")
    assert "--rebuild" in str(info.value) and HashEmbedder.name in str(info.value)


def _edit_manifest(root: Path, **changes: object) -> None:
    p = root / MANIFEST
    data = json.loads(p.read_text())
    data.update(changes)
    p.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("version", "message"), [(FORMAT_VERSION + 1, "newer than this program's"), (FORMAT_VERSION - 1, "old format")]
)
def test_other_format_versions_are_refused(tmp_path: Path, version: int, message: str) -> None:
    _index().save(tmp_path / "ix")
    _edit_manifest(tmp_path / "ix", format_version=version)
    with pytest.raises(errors.IndexMismatchError, match=message):
        FaissIndex.load(tmp_path / "ix")


@pytest.mark.parametrize(
    "role",
    ["documents", "sentences", "vectors", "faiss", "lexical", "token_ids_0", "token_codes_0", "token_codec",
     "token_spans"],
)
@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_files_are_named(tmp_path: Path, role: str, damage: str) -> None:
    root = tmp_path / "ix"
    _index(TokenHashEmbedder()).save(root)
    name = str(_files(root)[role]["name"])
    target = root / name
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    with pytest.raises(errors.IndexCorruptError) as info:
        loaded = FaissIndex.load(root)
        assert loaded.tokens is not None
        loaded.tokens.get(range(len(loaded)))  # token codes are verified when first read
        loaded.dense_search(loaded.vectors[:1], 1)  # the vectors and FAISS index before their first use
    assert name in str(info.value) and "qa index" in str(info.value)


def _spans(rows: list[tuple[int, int, int, int]] | np.ndarray) -> np.ndarray:
    return np.asarray(rows)


#: Files rewritten with content that disagrees with the rest, the manifest's checksums updated to match
#: (as a careful attacker, or a buggy tool, would): (role, new content, what the message says).
INCONSISTENT = {
    "an offset past the end of its document": ("sentences", _spans([(0, 0, 0, 23), (0, 1, 24, 10_000),
                                                                    (1, 0, 0, 14), (1, 1, 15, 35)]), "offsets"),
    "a negative offset": ("sentences", _spans([(0, 0, -5, 23), (0, 1, 24, 54), (1, 0, 0, 14), (1, 1, 15, 35)]),
                          "offsets"),
    "a sentence of a document that is not there": ("sentences", _spans([(0, 0, 0, 23), (0, 1, 24, 54),
                                                                        (7, 0, 0, 14), (1, 1, 15, 35)]), "document"),
    "spans of the wrong width": ("sentences", np.zeros((4, 3), np.int64), "not rows of"),
    "spans of floats": ("sentences", np.zeros((4, 4), np.float32), "not rows of"),
    "spans in one dimension": ("sentences", np.zeros(16, np.int64), "not rows of"),
    "vectors of integers": ("vectors", np.zeros((4, HashEmbedder.dim), np.int64), "shape does not match"),
    "one vector too many": ("vectors", np.zeros((5, HashEmbedder.dim), np.float32), "shape does not match"),
    "a document line that is a list": ("documents", b'["a", "text"]\n', "line 1 is not a document"),
    "a document without text": ("documents", b'{"doc_id": "a"}\n', "line 1 is not a document"),
    "a document id that is a number": ("documents", b'{"doc_id": 5, "text": "x"}\n', "line 1 is not a document"),
    "a deeply nested document line": ("documents", b"[" * 100_000 + b"]" * 100_000 + b"\n", "not valid JSON"),
    "the same document twice": ("documents", b'{"doc_id": "a", "text": "x"}\n{"doc_id": "a", "text": "y"}\n',
                                "repeats the document"),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT))
def test_files_whose_checksums_match_but_whose_content_disagrees_are_named(tmp_path: Path, case: str) -> None:
    """A file that passes its checksum can still be inconsistent with the others: loading names it as
    damaged instead of failing with a traceback (or quoting a slice that is not a sentence)."""
    role, content, words = INCONSISTENT[case]
    root = tmp_path / "ix"
    _index().save(root)
    target = root / str(_files(root)[role]["name"])
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        np.save(target, content, allow_pickle=False)
    _rehash(root, role)
    with pytest.raises(errors.IndexCorruptError, match=words) as info:
        FaissIndex.load(root)
    assert "qa index" in str(info.value)


@pytest.mark.parametrize("role", ["vectors", "faiss"])
def test_vectors_and_faiss_index_are_verified_before_first_use_not_on_open(tmp_path: Path, role: str) -> None:
    """Opening hashes neither (a background thread does); their first use waits for it, and a damaged file
    fails that use and every later one, naming the file, before any of its bytes is used or copied."""
    root = tmp_path / "ix"
    _index().save(root)
    name = str(_files(root)[role]["name"])
    data = bytearray((root / name).read_bytes())
    data[-1] ^= 0xFF  # the last vector: the header still parses
    (root / name).write_bytes(bytes(data))
    loaded = FaissIndex.load(root)  # no error: nothing of it was hashed on the way
    assert loaded.dim == HashEmbedder.dim
    uses = [lambda: loaded.vectors, lambda: loaded.dense_search(np.zeros((1, loaded.dim), np.float32), 1),
            lambda: loaded.save(tmp_path / "copy"), lambda: loaded.index]
    for use in uses:
        with pytest.raises(errors.IndexCorruptError, match=name):
            use()
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("role", ["token_ids_0", "token_codes_0"])
def test_token_codes_are_verified_on_first_read_not_on_open(tmp_path: Path, role: str) -> None:
    """Opening reads no token code (the bulk of a large index); the first question that reads a damaged
    chunk fails, naming the file, and so does every later one."""
    root = tmp_path / "ix"
    embedder = TokenHashEmbedder()
    FaissIndex.build(DOCS, embedder).save(root)
    info = _files(root)[role]
    assert info["chunk_sha256"] and info["chunk_bytes"] == CHUNK_BYTES
    target = root / str(info["name"])
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # the last token's code: the header still parses
    target.write_bytes(bytes(data))
    loaded = FaissIndex.load(root, expect_model=embedder.name)  # no error: nothing of it was hashed
    retriever = Retriever(loaded, embedder)
    for _ in range(2):
        with pytest.raises(errors.IndexCorruptError, match=str(info["name"])):
            retriever.search("Who barked at the mailman?")


@pytest.mark.parametrize(
    "content", ["{not json", "[]", '{"format_version": 1}', "", '{"format_version": "1"}', "\xff"]
)
def test_damaged_manifest_is_named(tmp_path: Path, content: str) -> None:
    root = tmp_path / "ix"
    _index().save(root)
    (root / MANIFEST).write_text(content, encoding="latin-1")
    with pytest.raises(errors.IndexCorruptError, match=MANIFEST):
        FaissIndex.load(root)


@pytest.mark.parametrize("role", ["vectors", "faiss", "documents"])
def test_a_manifest_missing_a_file_entry_is_named(tmp_path: Path, role: str) -> None:
    root = tmp_path / "ix"
    _index().save(root)
    manifest = json.loads((root / MANIFEST).read_text())
    del manifest["files"][role]
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(errors.IndexCorruptError, match=f"names no {role} file"):
        FaissIndex.load(root)


def test_manifest_cannot_point_outside_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "ix"
    _index().save(root)
    outside = tmp_path / "outside.npy"
    np.save(outside, _index().vectors)
    data = json.loads((root / MANIFEST).read_text())
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()  # a valid file, with its true checksum
    data["files"]["vectors"].update(name="../outside.npy", bytes=outside.stat().st_size, sha256=digest)
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(errors.IndexCorruptError, match="missing"):  # looked for inside the directory only
        FaissIndex.load(root)


def test_pickled_vectors_are_never_loaded(tmp_path: Path) -> None:
    """A vectors file replaced by a pickle (which could run code) is refused, not unpickled."""
    root = tmp_path / "ix"
    _index().save(root)
    target = root / str(_files(root)["vectors"]["name"])
    np.save(target, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    _rehash(root, "vectors")  # even with the checksum updated to match, np.load(allow_pickle=False) refuses it
    with pytest.raises(errors.IndexCorruptError, match="could not be read"):
        FaissIndex.load(root)


def test_vectors_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "ix"
    _index().save(root)
    np.save(root / str(_files(root)["vectors"]["name"]), np.zeros((4, 3), np.float32), allow_pickle=False)
    _rehash(root, "vectors")
    with pytest.raises(errors.IndexCorruptError, match="shape does not match"):
        FaissIndex.load(root)


# ----- the rerank's stored token embeddings ----------------------------------------------------------------


def test_stored_tokens_survive_save_load_and_reuse(tmp_path: Path) -> None:
    embedder = TokenHashEmbedder()
    index = FaissIndex.build(DOCS, embedder)
    assert index.tokens is not None and len(index.tokens) == len(index)
    fresh = [v for v, _ in embedder.encode_tokens([s.text for s in index.sentences])]
    for want, got in zip(fresh, index.tokens.get(range(len(index))), strict=True):
        assert want.shape == got.shape
        nearest = (got @ want.T).argmax(axis=1)
        # each token is still itself: its nearest fresh token is it, or the same word again ("the … the",
        # where the tie between identical vectors goes either way with the BLAS build)
        assert np.array_equal(want[nearest], want)
        assert np.mean(np.sum(want * got, axis=1)) > 0.9
    index.save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix", expect_model=embedder.name)
    assert loaded.tokens is not None and isinstance(loaded.tokens.blocks[0][0], np.memmap)
    for a, b in zip(index.tokens.get(range(len(index))), loaded.tokens.get(range(len(index))), strict=True):
        assert np.array_equal(a, b)
    # a new article: the old rows keep their tokens (reused, not re-encoded), the new rows get theirs
    grown = loaded.with_documents([Document("c", "Trains ran late on Tuesday. Commuters waited.")], embedder)
    assert grown.tokens is not None and len(grown.tokens) == len(grown) == len(index) + 2
    old_rows = [i for i, s in enumerate(grown.sentences) if s.doc_id != "c"]
    for a, b in zip(grown.tokens.get(old_rows), loaded.tokens.get(range(len(loaded))), strict=True):
        assert np.array_equal(a, b)
    assert [len(v) for v in grown.tokens.get([len(grown) - 2, len(grown) - 1])] == [5, 2]


def test_an_index_without_tokens_still_loads_and_stays_without(tmp_path: Path) -> None:
    _index().save(tmp_path / "ix")  # a token-less embedder: no token files
    loaded = FaissIndex.load(tmp_path / "ix")
    assert loaded.tokens is None
    assert not any(role.startswith("token") for role in _files(tmp_path / "ix"))
    as_if_older = FaissIndex(list(loaded.documents.values()), loaded.sentences, loaded.vectors,
                             model=TokenHashEmbedder.name, segmenter=loaded.segmenter, chunking=loaded.chunking)
    grown = FaissIndex.build([Document("c", "Another story.")], TokenHashEmbedder(), previous=as_if_older)
    assert grown.tokens is None  # some rows have none: the rerank encodes on the fly instead
    assert len(grown) == len(loaded) + 1


def test_an_index_of_int8_token_codes_loads_without_them_until_rebuilt(tmp_path: Path) -> None:
    """Indexes written before the codebook hold int8 codes and scales and no ``token_codec``: they open and
    answer (the rerank encodes per question), and the next save drops the old files."""
    root = tmp_path / "ix"
    embedder = TokenHashEmbedder()
    FaissIndex.build(DOCS, embedder).save(root)
    manifest = json.loads((root / MANIFEST).read_text())
    for role in ("token_codec", "token_ids_0"):
        (root / manifest["files"].pop(role)["name"]).unlink()
    scales = root / "tokenscales-old-0.npy"
    np.save(scales, np.ones(10, np.float32))
    manifest["files"]["token_scales_0"] = {"name": scales.name, "bytes": scales.stat().st_size,
                                           "sha256": hashlib.sha256(scales.read_bytes()).hexdigest()}
    (root / MANIFEST).write_text(json.dumps(manifest))
    old = FaissIndex.load(root, expect_model=embedder.name)
    assert old.tokens is None and Retriever(old, embedder).reranks  # encoded per question instead
    old.save(root)
    assert not any(p.name.startswith(("tokencodes", "tokenscales", "tokenspans")) for p in root.iterdir())


def test_adding_an_article_writes_only_its_tokens(tmp_path: Path) -> None:
    """The token blocks already on disk are kept as they are; only the new article's block is written."""
    embedder = TokenHashEmbedder()
    root = tmp_path / "ix"
    FaissIndex.build(DOCS, embedder).save(root)
    first = _files(root)
    loaded = FaissIndex.load(root, expect_model=embedder.name)
    grown = loaded.with_documents([Document("c", "Trains ran late on Tuesday.")], embedder)
    grown.save(root)
    files = _files(root)
    assert files["token_codes_0"] == first["token_codes_0"]  # the same files, not rewritten
    assert files["token_ids_0"] == first["token_ids_0"] and files["token_codec"] == first["token_codec"]
    assert files["token_codes_1"]["name"] != first["token_codes_0"]["name"]
    again = FaissIndex.load(root, expect_model=embedder.name)
    assert again.tokens is not None and grown.tokens is not None and len(again.tokens.blocks) == 2
    for a, b in zip(again.tokens.get(range(len(again))), grown.tokens.get(range(len(grown))), strict=True):
        assert np.array_equal(a, b)
    # a changed article: rows move, so the tokens are repacked into one block and nothing dead is kept
    changed = again.with_documents([Document("a", "The cat left the mat.")], embedder)
    changed.save(root)
    final = FaissIndex.load(root, expect_model=embedder.name)
    assert final.tokens is not None and len(final) == len(changed)
    names = {p.name for p in root.iterdir()} - SERVICE_FILES
    assert {str(info["name"]) for info in _files(root).values()} | {MANIFEST} == names


@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_a_loaded_memory_mapped_faiss_index_grows_as_a_copy(tmp_path: Path, index_type: str) -> None:
    """A loaded FAISS index maps its file (nothing read on open); adding an article copies it into memory
    first (growing the mapped arrays in place would abort the process), and the loaded one is unchanged."""
    from qa.ingest import SEGMENTER_NAME
    from qa.tools.bench.corpus import synthetic_corpus

    embedder = HashEmbedder()
    texts = [f"Sentence {i} is about topic {i % 97} and item {i % 13}." for i in range(4200)]  # enough for IVF
    docs, sentences, vectors, _ = synthetic_corpus(len(texts), texts, embedder.encode(texts))
    FaissIndex(docs, sentences, vectors, model=embedder.name, segmenter=SEGMENTER_NAME,
               chunking={"unit": "sentence", "context": 1}, index_type=index_type).save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix", expect_model=embedder.name)
    assert loaded.index_type == index_type and loaded.index.ntotal == len(texts)
    grown = loaded.with_documents([Document("new", "Trains ran late on Tuesday.")], embedder)
    assert grown.index.ntotal == len(texts) + 1 and loaded.index.ntotal == len(texts)
    _, rows = grown.dense_search(embedder.encode(["Trains ran late on Tuesday."]), 1)
    assert grown.sentences[int(rows[0, 0])].doc_id == "new"
    again = grown.with_documents([Document("newer", "Buses ran early on Friday.")], embedder)
    assert again.index.ntotal == len(texts) + 2
    again.save(tmp_path / "ix")
    assert FaissIndex.load(tmp_path / "ix").index.ntotal == len(texts) + 2


# ----- the BM25 index is saved with it --------------------------------------------------------------------


def _grown(root: Path) -> FaissIndex:
    """An index grown by three additions: its BM25 postings are in several segments."""
    index = FaissIndex.build(DOCS[:1], HashEmbedder())
    for i, doc in enumerate([DOCS[1], Document("c", "Trains ran late."), Document("d", "Cats like mats.")]):
        index = index.with_documents([doc], HashEmbedder())
        assert index.lexical.segments == i + 2
    index.save(root)
    return index


def test_saved_bm25_is_loaded_without_retokenising(tmp_path: Path) -> None:
    """A rebuilt BM25 index has one segment; the loaded one keeps the saved segments, with the same scores."""
    root = tmp_path / "ix"
    saved = _grown(root)
    loaded = FaissIndex.load(root)
    assert loaded.lexical.segments == saved.lexical.segments == 4
    fresh = LexicalIndex([s.text for s in loaded.sentences])
    assert fresh.segments == 1
    for q in ("cat mat", "bonds Monday", "trains late", "nothing here"):
        assert np.array_equal(loaded.lexical.scores(q), fresh.scores(q))
    for name, array in saved.lexical.to_arrays().items():
        assert np.array_equal(loaded.lexical.to_arrays()[name], array), name


@pytest.mark.parametrize("tokenizer", [b"some-older-tokeniser", None])
def test_bm25_of_another_tokeniser_is_rebuilt(tmp_path: Path, tokenizer: bytes | None) -> None:
    root = tmp_path / "ix"
    _grown(root)
    target = root / str(_files(root)["lexical"]["name"])
    with np.load(target, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert bytes(arrays["tokenizer"]) == TOKENIZER.encode()
    if tokenizer is None:
        del arrays["tokenizer"]
    else:
        arrays["tokenizer"] = np.frombuffer(tokenizer, dtype=np.uint8)
    with target.open("wb") as f:
        np.savez(f, **arrays)
    _rehash(root, "lexical")
    loaded = FaissIndex.load(root)
    assert loaded.lexical.segments == 1  # rebuilt from the sentences
    fresh = LexicalIndex([s.text for s in loaded.sentences])
    assert np.array_equal(loaded.lexical.scores("cat mat"), fresh.scores("cat mat"))


def test_an_index_saved_without_bm25_arrays_still_loads(tmp_path: Path) -> None:
    root = tmp_path / "ix"
    _grown(root)
    manifest = json.loads((root / MANIFEST).read_text())
    (root / manifest["files"].pop("lexical")["name"]).unlink()
    (root / MANIFEST).write_text(json.dumps(manifest))
    assert FaissIndex.load(root).lexical.scores("trains").argmax() == 4


def test_read_manifest_reports_what_an_index_was_built_with(tmp_path: Path) -> None:
    _index().save(tmp_path / "ix")
    manifest = read_manifest(tmp_path / "ix")
    assert manifest.model == HashEmbedder.name and manifest.dim == HashEmbedder.dim
    assert set(manifest.files) == {"documents", "sentences", "vectors", "faiss", "lexical"}
