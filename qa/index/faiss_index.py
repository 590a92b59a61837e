"""The embedded default index: FAISS, BM25 and token codes in one folder, with a manifest loading checks.

On disk an index directory holds ``manifest.json`` and one generation of data files named in
it (and the lock and journal files of ``qa.index.folder``). A save writes a new generation beside
the old one and then atomically replaces the manifest, so a crash at any point leaves a complete,
loadable index; it deletes only files a manifest named or it wrote itself. Nothing is pickled.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qa.errors import IndexCorruptError, IndexMismatchError
from qa.index.base import SentenceIndex
from qa.index.build import plan_rows
from qa.index.checks import (
    DeferredChecks,
    SpanSentences,
    check_vectors,
    read_documents_file,
    sentences_from_spans,
)
from qa.index.folder import manifest_names, manifest_stamp, reading, writing
from qa.index.generation import GenerationFiles, close_all, generation_files
from qa.index.lexical import LexicalIndex
from qa.index.lexical_io import from_saved, saved_arrays
from qa.index.manifest import (
    CHUNK_BYTES,
    MANIFEST,
    Manifest,
    content_hash,
    document_row,
    file_hashes,
    listed_entry,
    read_manifest,
)
from qa.index.token_files import LAZY_ROLES, npy, open_token_table, plan_token_files
from qa.index.tokens import TokenCodec, TokenTable
from qa.index.vectors import build_faiss, choose_index_type, extend_index, read_mapped
from qa.ingest import SEGMENTER_NAME
from qa.types import Document, Sentence

if TYPE_CHECKING:
    import faiss
    from numpy.typing import NDArray

    from qa.embed import Embedder

MAX_TOKEN_BLOCKS = 32  # more blocks than this (many small additions): a save merges them into one
LOAD_TRIES = 3  # a manifest switched while loading: read the new one (readers without a lease)


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
        # a loaded index's sentences are built as they are read (``SpanSentences``)
        self.sentences: Sequence[Sentence] = sentences if isinstance(sentences, SpanSentences) else list(sentences)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # a loaded index's map is kept, not copied
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
        if isinstance(self.sentences, SpanSentences):
            self._by_doc = self.sentences.doc_rows()
        else:
            for i, s in enumerate(self.sentences):
                self._by_doc.setdefault(s.doc_id, []).append(i)

    _pending: DeferredChecks | None = None  # checksums of a loaded index's files, awaited before first use
    _index_mapped = False  # the FAISS index's arrays are views of its file: copied before it grows

    @property
    def vectors(self) -> NDArray[np.float32]:
        """The sentence vectors (memory-mapped when loaded: verified against the manifest before first use)."""
        self._verified()
        return self._vectors

    @vectors.setter
    def vectors(self, value: NDArray[np.float32]) -> None:
        self._vectors = value

    @property
    def index(self) -> faiss.Index:
        """The FAISS index (its file memory-mapped when loaded: verified before first use)."""
        self._verified()
        return self._index

    @index.setter
    def index(self, value: faiss.Index) -> None:
        self._index = value

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])  # the header's width: known without waiting for the checksums

    def _verified(self) -> None:
        """Wait for the deferred checksums of a loaded index (the first caller waits; a damaged file raises)."""
        pending = self._pending
        if pending is not None:
            pending.wait()
            self._pending = None

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
                d.doc_id: {"sha256": content_hash(d.text), **listed_entry(d, len(self.rows_of(d.doc_id)))}
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
            index = extend_index(old.index, rows.fresh, mapped=old._index_mapped)
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
        if old is not None and index is old.index:  # nothing added: the same (possibly mapped) FAISS index
            built._index_mapped = old._index_mapped
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

        Under the folder's write lock; a save that fails (a full disk) deletes what it wrote and says how
        much room it needs. The files of the replaced generation are deleted once no reader is opening
        them. The BM25 arrays are saved too, so loading needs no re-tokenising.
        """
        root = Path(path)
        with writing(root) as folder:
            gen = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
            writes, reused, tokens = self._planned_files(root, gen)
            tmp = root / f".{MANIFEST}.{gen}.tmp"
            folder.begin([*writes, tmp.name])
            try:
                files: dict[str, dict[str, Any]] = dict(reused)
                for name, (role, write, _) in writes.items():
                    p = root / name
                    write(p)
                    with p.open("rb") as f:
                        os.fsync(f.fileno())
                    whole, chunks = file_hashes(p)
                    files[role] = {"name": name, "bytes": p.stat().st_size, "sha256": whole}
                    if role.startswith(LAZY_ROLES):  # memory-mapped: verified chunk by chunk on first use
                        files[role] |= {"chunk_bytes": CHUNK_BYTES, "chunk_sha256": chunks}
                manifest = self.manifest().to_json()
                manifest["files"] = files
                with tmp.open("w", encoding="utf-8") as f:
                    json.dump(manifest, f, indent=2, ensure_ascii=False)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, root / MANIFEST)
            except BaseException as exc:
                folder.abort()
                if isinstance(exc, OSError | RuntimeError):  # RuntimeError: FAISS could not write its file
                    failure = exc if isinstance(exc, OSError) else OSError(errno.EIO, str(exc).strip().splitlines()[0])
                    raise folder.write_failed(failure, sum(size for _, _, size in writes.values())) from exc
                raise
            folder.commit()
        self._saved = (root.resolve(), {info["name"]: info for info in files.values()})
        if tokens is not None:  # from now on memory-mapped, as a loaded index has them: no copy in memory
            n = len(tokens.blocks)
            block_names = [files[f"token_ids_{b}"]["name"] for b in range(n)]
            blocks = [
                (np.load(root / files[f"token_ids_{b}"]["name"], mmap_mode="r", allow_pickle=False),
                 np.load(root / files[f"token_codes_{b}"]["name"], mmap_mode="r", allow_pickle=False))
                for b in range(n)
            ]
            self.tokens = TokenTable(tokens.codec, blocks, tokens.spans, block_names, [None] * n)
            self._codec_saved = (tokens.codec, files["token_codec"]["name"])

    def _planned_files(
        self, root: Path, gen: str
    ) -> tuple[dict[str, tuple[str, Callable[[Path], None], int]], dict[str, dict[str, Any]], TokenTable | None]:
        """What a save writes: ``{file name: (role, writer, bytes)}``, the token blocks already in the folder
        that it keeps (``{role: file info}``), and the token table it saves."""
        doc_ids = list(self.documents)
        doc_row = {d: i for i, d in enumerate(doc_ids)}
        spans = np.array(
            [(doc_row[s.doc_id], s.n, s.start, s.end) for s in self.sentences], dtype=np.int64
        ).reshape(-1, 4)
        lines = [
            json.dumps(document_row(d), ensure_ascii=False) + "\n"
            for d in self.documents.values()
        ]
        lexical = saved_arrays(self.lexical)

        def write_documents(p: Path) -> None:
            with p.open("w", encoding="utf-8") as f:
                f.writelines(lines)

        def write_faiss(p: Path) -> None:
            import faiss

            faiss.write_index(self.index, str(p))

        def write_lexical(p: Path) -> None:
            savez: Any = np.savez  # numpy's stub types ``**arrays`` as its bool keyword
            with p.open("wb") as f:
                savez(f, allow_pickle=False, **lexical)

        writes: dict[str, tuple[str, Callable[[Path], None], int]] = {
            f"documents-{gen}.jsonl": ("documents", write_documents, sum(len(line.encode()) for line in lines)),
            f"sentences-{gen}.npy": ("sentences", npy(spans), spans.nbytes + 128),
            f"vectors-{gen}.npy": ("vectors", npy(self.vectors), self.vectors.nbytes + 128),
            f"faiss-{gen}.index": ("faiss", write_faiss, self.vectors.nbytes + 65_536),
            f"lexical-{gen}.npz": ("lexical", write_lexical, sum(a.nbytes + 1024 for a in lexical.values())),
        }
        tokens = self.tokens
        reused: dict[str, dict[str, Any]] = {}  # token blocks already in this directory: kept, not rewritten
        if tokens is not None:
            if tokens.stored > 2 * tokens.referenced + 1_000_000 or len(tokens.blocks) > MAX_TOKEN_BLOCKS:
                tokens = tokens.packed()  # mostly dead codes, or too many files: merge
            known = self._saved[1] if self._saved is not None and self._saved[0] == root.resolve() else {}
            codec_name = self._codec_saved[1] if self._codec_saved and self._codec_saved[0] is tokens.codec else None
            plan_token_files(tokens, root, gen, known, codec_name, writes, reused)
        return writes, reused, tokens

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, expect_model: str | None = None) -> FaissIndex:
        """Open the generation the manifest names, checking every file's size and the checksums of the small
        files. The bulk of a large index is memory-mapped and verified before it is used, never on open: the
        token codes per chunk the first time a query reads it, the vectors and the FAISS index whole by a
        background thread that their first use waits for (``DeferredChecks``). Opening a million-sentence
        index so reads and hashes none of those gigabytes.

        The manifest is read once and only the files it names are opened, under a reader's lease (no
        writer deletes them meanwhile). Without a lease (an index written by an older ``qa``), a file
        that went missing because a writer switched the manifest meanwhile is not damage: the new
        manifest is read instead.
        """
        root = Path(path)
        for attempt in range(LOAD_TRIES):
            stamp = manifest_stamp(root)
            try:
                with reading(root):
                    return cls._load_generation(root, expect_model)
            except IndexCorruptError:
                if attempt + 1 == LOAD_TRIES or manifest_stamp(root) == stamp:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load_generation(cls, root: Path, expect_model: str | None) -> FaissIndex:
        manifest = read_manifest(root)
        if expect_model is not None and manifest.model != expect_model:
            raise IndexMismatchError(
                str(root), f"it was built with the embedding model {manifest.model!r}, not {expect_model!r}"
            )
        found = generation_files(root, manifest)
        try:
            return cls._open_files(root, manifest, found)
        except BaseException:
            close_all(found.deferred)
            raise

    @classmethod
    def _open_files(cls, root: Path, manifest: Manifest, found: GenerationFiles) -> FaissIndex:
        paths = found.paths
        try:
            documents = read_documents_file(paths["documents"])
            spans = np.load(paths["sentences"], allow_pickle=False)
            vectors = np.load(paths["vectors"], mmap_mode="r", allow_pickle=False)
            tokens = None
            if found.has_tokens:  # memory-mapped: a query reads (and verifies) the few dozen sentences it reranks
                tokens = open_token_table(paths, found.blocks, found.lazy)
            lexical = None
            if "lexical" in paths:  # None (rebuilt below) when another tokeniser made it
                with np.load(paths["lexical"], allow_pickle=False) as npz:
                    lexical = from_saved({name: npz[name] for name in npz.files}, len(spans))
        except (ValueError, KeyError, OSError) as exc:
            raise IndexCorruptError(str(root), f"could not be read: {exc}") from exc
        sentences = sentences_from_spans(documents, spans, paths["sentences"])
        if tokens is not None and (len(tokens) != len(spans) or tokens.dim != manifest.dim):
            raise IndexCorruptError(str(paths["token_spans"]), "its shape does not match the manifest")
        check_vectors(vectors, len(spans), manifest.dim, paths["vectors"])

        try:
            index, mapped = read_mapped(str(paths["faiss"]))
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
        store._saved = (root.resolve(), {str(paths[role].name): manifest.files[role] for role in paths})
        if tokens is not None:
            store._codec_saved = (tokens.codec, paths["token_codec"].name)
        store._index_mapped = mapped
        if found.deferred:
            store._pending = DeferredChecks(list(found.deferred))
        return store

    def saved_as(self, path: str | os.PathLike[str]) -> bool:
        """Whether the index at ``path`` is this one: it was loaded from there or saved there last."""
        if self._saved is None or self._saved[0] != Path(path).resolve():
            return False
        return manifest_names(Path(path)) == set(self._saved[1])

