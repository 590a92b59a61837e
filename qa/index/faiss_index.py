"""The embedded default index: FAISS, BM25 and token codes in one folder, with a manifest loading checks.

On disk an index directory holds ``manifest.json`` and one generation of data files named in
it. A save writes a new generation beside the old one and then atomically replaces the
manifest, so a crash at any point leaves a complete, loadable index. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qa.errors import IndexCorruptError, IndexMismatchError
from qa.index.base import SentenceIndex
from qa.index.build import plan_rows
from qa.index.lexical import LexicalIndex, from_saved, saved_arrays
from qa.index.manifest import (
    CHUNK_BYTES,
    LISTED_FIELDS,
    MANIFEST,
    LazyCheck,
    Manifest,
    content_hash,
    document_from_row,
    document_row,
    file_hash,
    file_hashes,
    read_manifest,
)
from qa.index.tokens import BlockCheck, TokenCodec, TokenTable
from qa.index.vectors import build_faiss, choose_index_type, extend_index
from qa.ingest import SEGMENTER_NAME
from qa.types import Document, Sentence

if TYPE_CHECKING:
    import faiss
    from numpy.typing import NDArray

    from qa.embed import Embedder

LAZY_ROLES = ("token_ids_", "token_codes_")  # the bulk of an index: checked per chunk on first read
MAX_TOKEN_BLOCKS = 32  # more blocks than this (many small additions): a save merges them into one
GENERATION_PREFIXES = (
    "documents", "sentences", "vectors", "faiss", "tokenids", "tokencodes", "tokenscales", "tokenspans",
    "tokencodec", "lexical",
)  # tokenscales: int8 codes of older indexes, removed by the next save
TOKEN_KINDS = ("ids", "codes")  # per block: each token's coarse centroid, and its residual's code


class FaissIndex(SentenceIndex):
    """The embedded default: FAISS for vectors, our BM25 arrays, memory-mapped token codes, one folder."""

    backend: ClassVar[str] = "faiss"

    def __init__(
        self,
        documents: Sequence[Document],
        sentences: Sequence[Sentence],
        vectors: NDArray[np.float32],
        *,
        model: str,
        segmenter: str,
        chunking: dict[str, Any],
        index_type: str | None = None,
        index: faiss.Index | None = None,
        tokens: TokenTable | None = None,
        lexical: LexicalIndex | None = None,
    ) -> None:
        if len(sentences) != len(vectors):
            raise ValueError("one vector per sentence is required")
        if tokens is not None and len(tokens) != len(sentences):
            raise ValueError("token embeddings for every sentence (or none) are required")
        self.documents: dict[str, Document] = {d.doc_id: d for d in documents}
        self.sentences: list[Sentence] = list(sentences)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.model = model
        self.segmenter = segmenter
        self.chunking = dict(chunking)
        self.index_type = index_type or choose_index_type(len(self.sentences))
        self.index = index if index is not None else build_faiss(self.vectors, self.index_type)
        self.tokens = tokens
        if lexical is not None and len(lexical) != len(self.sentences):
            raise ValueError("the lexical index must cover the index's sentences")
        self.lexical = lexical if lexical is not None else LexicalIndex([s.text for s in self.sentences])
        self._saved: tuple[Path, dict[str, dict[str, Any]]] | None = None  # (directory, its files): blocks to reuse
        self._codec_saved: tuple[TokenCodec, str] | None = None  # the token codebook and its file there
        self._by_doc: dict[str, list[int]] = {}
        for i, s in enumerate(self.sentences):
            self._by_doc.setdefault(s.doc_id, []).append(i)

    def rows_of(self, doc_id: str) -> list[int]:
        """Row numbers of a document's sentences, in document order."""
        return self._by_doc.get(doc_id, [])

    def dense_search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """FAISS search; rows of -1 mean fewer than k results."""
        import faiss

        k = max(1, min(k, len(self.sentences)))
        q = np.ascontiguousarray(query, dtype=np.float32)
        if len(q) > 4:
            return self.index.search(q, k)
        # A question or two: search on this thread alone. Waking OpenMP workers per query costs a
        # scheduler slice (16 ms measured) whenever the other cores are busy. The setting is per thread.
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self.index.search(q, k)
        finally:
            faiss.omp_set_num_threads(before)

    def manifest(self) -> Manifest:
        return Manifest(
            model=self.model,
            dim=self.dim,
            segmenter=self.segmenter,
            chunking=self.chunking,
            index_type=self.index_type,
            documents={
                d.doc_id: {
                    "sha256": content_hash(d.text),
                    "source": d.source,
                    "sentences": len(self.rows_of(d.doc_id)),
                    **{k: v for k, v in document_row(d).items() if k in LISTED_FIELDS},
                }
                for d in self.documents.values()
            },
        )

    # ----- persistence -------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        documents: Sequence[Document],
        embedder: Embedder,
        *,
        previous: SentenceIndex | None = None,
        progress: bool = False,
        remove: Sequence[str] = (),
    ) -> FaissIndex:
        """Index ``documents`` (with those of ``previous`` not replaced or in ``remove``); unchanged documents
        are not embedded again, and when the old rows stay in place FAISS and BM25 grow instead of being
        rebuilt (after a removal they are rebuilt from the stored vectors and texts)."""
        rows = plan_rows(documents, embedder, previous=previous, progress=progress, remove=remove)
        old = previous if isinstance(previous, FaissIndex) and rows.appends else None
        index, index_type, lexical = None, None, None
        if old is not None:  # add the new vectors to the old index, no retraining
            index = extend_index(old.index, rows.fresh)
            index_type = old.index_type if index is not None else None
            lexical = old.lexical.extend([s.text for s in rows.sentences[len(old) :]])  # BM25 gains the new ones
        built = cls(
            rows.documents,
            rows.sentences,
            rows.vectors,
            model=embedder.name,
            segmenter=SEGMENTER_NAME,
            chunking={"unit": "sentence", "context": 1},
            tokens=rows.tokens,
            index=index,
            index_type=index_type,
            lexical=lexical,
        )
        if isinstance(previous, FaissIndex):
            built._saved = previous._saved  # token blocks already on disk are kept by the next save
            built._codec_saved = previous._codec_saved
        return built

    def with_documents(
        self, documents: Sequence[Document], embedder: Embedder, *, progress: bool = False
    ) -> FaissIndex:
        return FaissIndex.build(documents, embedder, previous=self, progress=progress)

    def without_documents(self, doc_ids: Sequence[str], embedder: Embedder) -> FaissIndex:
        return FaissIndex.build([], embedder, previous=self, remove=doc_ids)

    def save(self, path: str | Path) -> None:
        """Write a new generation of files, then switch the manifest to it atomically.

        The BM25 arrays are saved too, so loading needs no re-tokenising.
        """
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        gen = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        doc_ids = list(self.documents)
        doc_row = {d: i for i, d in enumerate(doc_ids)}
        spans = np.array(
            [(doc_row[s.doc_id], s.n, s.start, s.end) for s in self.sentences], dtype=np.int64
        ).reshape(-1, 4)
        names = {
            "documents": f"documents-{gen}.jsonl",
            "sentences": f"sentences-{gen}.npy",
            "vectors": f"vectors-{gen}.npy",
            "faiss": f"faiss-{gen}.index",
        }
        names["lexical"] = f"lexical-{gen}.npz"
        tokens = self.tokens
        reused: dict[str, dict[str, Any]] = {}  # token blocks already in this directory: kept, not rewritten
        if tokens is not None:
            if tokens.stored > 2 * tokens.referenced + 1_000_000 or len(tokens.blocks) > MAX_TOKEN_BLOCKS:
                tokens = tokens.packed()  # mostly dead codes, or too many files: merge
            known = self._saved[1] if self._saved is not None and self._saved[0] == root.resolve() else {}
            names["token_spans"] = f"tokenspans-{gen}.npy"
            codec_name = self._codec_saved[1] if self._codec_saved and self._codec_saved[0] is tokens.codec else None
            if codec_name is not None and codec_name in known and (root / codec_name).is_file():
                reused["token_codec"] = known[codec_name]
            else:
                names["token_codec"] = f"tokencodec-{gen}.npz"
            for b, name in enumerate(tokens.names):
                for kind in TOKEN_KINDS:
                    mine = name.replace("tokenids-", f"token{kind}-") if name else None
                    if mine is not None and mine in known and (root / mine).is_file():
                        reused[f"token_{kind}_{b}"] = known[mine]
                    else:
                        names[f"token_{kind}_{b}"] = f"token{kind}-{gen}-{b}.npy"
        with (root / names["documents"]).open("w", encoding="utf-8") as f:
            for d in self.documents.values():
                f.write(json.dumps(document_row(d), ensure_ascii=False))
                f.write("\n")
        np.save(root / names["sentences"], spans, allow_pickle=False)
        np.save(root / names["vectors"], self.vectors, allow_pickle=False)
        import faiss

        faiss.write_index(self.index, str(root / names["faiss"]))
        savez: Any = np.savez  # numpy's stub types ``**arrays`` as its bool keyword
        with (root / names["lexical"]).open("wb") as f:
            savez(f, allow_pickle=False, **saved_arrays(self.lexical))
        if tokens is not None:
            np.save(root / names["token_spans"], tokens.spans, allow_pickle=False)
            if "token_codec" in names:
                with (root / names["token_codec"]).open("wb") as f:
                    savez(f, allow_pickle=False, **tokens.codec.arrays())
            for b, block in enumerate(tokens.blocks):
                for kind, array in zip(TOKEN_KINDS, block, strict=True):
                    if f"token_{kind}_{b}" in names:
                        check = tokens.checks[b]
                        if check is not None:
                            check(0, len(block[0]))  # never copy unverified bytes into a new file
                        np.save(root / names[f"token_{kind}_{b}"], np.asarray(array), allow_pickle=False)
        files: dict[str, dict[str, Any]] = dict(reused)
        for role, name in names.items():
            p = root / name
            with p.open("rb") as f:
                os.fsync(f.fileno())
            whole, chunks = file_hashes(p)
            files[role] = {"name": name, "bytes": p.stat().st_size, "sha256": whole}
            if role.startswith(LAZY_ROLES):  # memory-mapped: verified chunk by chunk on first use
                files[role] |= {"chunk_bytes": CHUNK_BYTES, "chunk_sha256": chunks}
        manifest = self.manifest().to_json()
        manifest["files"] = files
        tmp = root / f".{MANIFEST}.{gen}.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / MANIFEST)
        self._saved = (root.resolve(), {info["name"]: info for info in files.values()})
        if tokens is not None:
            block_names = [files[f"token_ids_{b}"]["name"] for b in range(len(tokens.blocks))]
            self.tokens = TokenTable(tokens.codec, tokens.blocks, tokens.spans, block_names, tokens.checks)
            self._codec_saved = (tokens.codec, files["token_codec"]["name"])
        keep = {info["name"] for info in files.values()} | {MANIFEST}
        for leftover in root.iterdir():
            generation_file = leftover.name.split("-", 1)[0] in GENERATION_PREFIXES
            if leftover.name not in keep and generation_file:
                leftover.unlink(missing_ok=True)
            elif leftover.name.startswith(f".{MANIFEST}.") and leftover.name.endswith(".tmp"):
                leftover.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, expect_model: str | None = None) -> FaissIndex:
        """Open the generation the manifest names, checking every file's size, and the checksums of all but
        the token codes; those (the bulk of a large index) are memory-mapped and verified per chunk the first
        time a query reads it, so opening a million-sentence index reads none of them."""
        root = Path(path)
        manifest = read_manifest(root)
        if expect_model is not None and manifest.model != expect_model:
            raise IndexMismatchError(
                str(root), f"it was built with the embedding model {manifest.model!r}, not {expect_model!r}"
            )
        paths: dict[str, Path] = {}
        # indexes of token-less embedders have none; older ones hold int8 codes (no codebook): the rerank
        # then encodes per question until ``qa index --rebuild``
        has_tokens = "token_spans" in manifest.files and "token_codec" in manifest.files
        n_blocks = sum(1 for role in manifest.files if role.startswith("token_ids_"))
        token_roles = ["token_spans", "token_codec"] + [f"token_{k}_{b}" for b in range(n_blocks) for k in TOKEN_KINDS]
        optional = [*(token_roles if has_tokens else ()), *(["lexical"] if "lexical" in manifest.files else [])]
        lazy: dict[str, LazyCheck] = {}
        for role in ("documents", "sentences", "vectors", "faiss", *optional):
            info = manifest.files.get(role)
            if not isinstance(info, dict) or "name" not in info:
                raise IndexCorruptError(str(root / MANIFEST), f"it names no {role} file")
            p = root / Path(str(info["name"])).name  # a manifest cannot point outside its directory
            if not p.is_file():
                raise IndexCorruptError(str(p), "the file is missing")
            if p.stat().st_size != info.get("bytes"):
                raise IndexCorruptError(str(p), "its size does not match the manifest")
            chunks = info.get("chunk_sha256")
            if role.startswith(LAZY_ROLES) and isinstance(chunks, list) and info.get("chunk_bytes") == CHUNK_BYTES:
                lazy[role] = LazyCheck(p, [str(c) for c in chunks], CHUNK_BYTES)
            elif file_hash(p) != info.get("sha256"):
                raise IndexCorruptError(str(p), "its checksum does not match the manifest")
            paths[role] = p
        try:
            documents = []
            with paths["documents"].open(encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    documents.append(document_from_row(row))
            spans = np.load(paths["sentences"], allow_pickle=False)
            vectors = np.load(paths["vectors"], allow_pickle=False)
            tokens = None
            if has_tokens:  # memory-mapped: a query reads (and verifies) the few dozen sentences it reranks
                with np.load(paths["token_codec"], allow_pickle=False) as npz:
                    codec = TokenCodec.from_arrays({name: npz[name] for name in npz.files})
                blocks, checks = [], []
                for b in range(n_blocks):
                    ids = _mapped(paths[f"token_ids_{b}"])
                    codes = _mapped(paths[f"token_codes_{b}"])
                    blocks.append((ids, codes))
                    checks.append(_block_check(ids, codes, lazy.get(f"token_ids_{b}"), lazy.get(f"token_codes_{b}")))
                tokens = TokenTable(codec, blocks, np.load(paths["token_spans"], allow_pickle=False),
                                    [paths[f"token_ids_{b}"].name for b in range(n_blocks)], checks)
            lexical = None
            if "lexical" in paths:  # None (rebuilt below) when another tokeniser made it
                with np.load(paths["lexical"], allow_pickle=False) as npz:
                    lexical = from_saved({name: npz[name] for name in npz.files}, len(spans))
        except (ValueError, KeyError, OSError) as exc:
            raise IndexCorruptError(str(root), f"could not be read: {exc}") from exc
        if tokens is not None and (len(tokens) != len(spans) or tokens.dim != manifest.dim):
            raise IndexCorruptError(str(paths["token_spans"]), "its shape does not match the manifest")
        if vectors.ndim != 2 or vectors.shape[1] != manifest.dim or len(vectors) != len(spans):
            raise IndexCorruptError(str(paths["vectors"]), "its shape does not match the manifest")
        sentences = [
            Sentence(doc_id=documents[d].doc_id, n=int(n), start=int(s), end=int(e), text=documents[d].text[s:e])
            for d, n, s, e in spans.tolist()
        ]
        import faiss

        try:
            index = faiss.read_index(str(paths["faiss"]))
        except RuntimeError as exc:
            raise IndexCorruptError(str(paths["faiss"]), f"FAISS could not read it: {exc}") from exc
        if index.ntotal != len(vectors) or index.d != manifest.dim:
            raise IndexCorruptError(str(paths["faiss"]), "it holds a different number or width of vectors")
        store = cls(
            documents,
            sentences,
            vectors,
            model=manifest.model,
            segmenter=manifest.segmenter,
            chunking=manifest.chunking,
            index_type=manifest.index_type,
            index=index,
            tokens=tokens,
            lexical=lexical,
        )
        store._saved = (root.resolve(), {info["name"]: info for info in manifest.files.values()})
        if tokens is not None:
            store._codec_saved = (tokens.codec, paths["token_codec"].name)
        return store


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
