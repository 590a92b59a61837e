"""Stage 3: the FAISS index and its sentences, persisted with a manifest that loading checks.

On disk an index directory holds ``manifest.json`` and one generation of data files named in
it. A save writes a new generation beside the old one and then atomically replaces the
manifest, so a crash at any point leaves a complete, loadable index. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.types import Document, Sentence

if TYPE_CHECKING:
    import faiss
    from numpy.typing import NDArray

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EXACT_MAX = 50_000  # above this many vectors an approximate index is built
IVF_MIN_PER_LIST = 32  # fewer training vectors per IVF list than this: exact search instead
MAX_TOKEN_BLOCKS = 32  # more blocks than this (many small additions): a save merges them into one
GENERATION_PREFIXES = (
    "documents", "sentences", "vectors", "faiss", "tokencodes", "tokenscales", "tokenspans", "lexical"
)


def content_hash(text: str) -> str:
    """Identify a document's content, so unchanged documents are never embedded twice.

    >>> content_hash("abc")[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def choose_index_type(n: int) -> str:
    """Exact search while it is fast enough, an inverted file (IVF) beyond.

    IVF rather than HNSW: on 2 cores it builds a 1M-sentence index in well under a minute (HNSW
    took minutes), reaches recall@10 ≥ 0.99 against exact search in a few milliseconds, and keeps
    its recall on the near-duplicate sentences news corpora are full of. ``hnsw`` indexes from
    older manifests still load and search.

    >>> choose_index_type(1000), choose_index_type(1_000_000)
    ('flat', 'ivf')
    """
    return "flat" if n <= EXACT_MAX else "ivf"


def ivf_lists(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: 2·√n (so a probe scans a few thousand vectors at most).

    >>> ivf_lists(100_000), ivf_lists(1_000_000)
    (632, 2000)
    """
    return max(16, int(2 * n**0.5))


def ivf_probes(nlist: int) -> int:
    """Lists searched per query: at least 32, and 1/32 of them (recall@10 ≥ 0.98 in ``qa bench``).

    >>> ivf_probes(632), ivf_probes(2000)
    (32, 62)
    """
    return min(nlist, max(32, nlist // 32))


def build_faiss(vectors: NDArray[np.float32], index_type: str) -> faiss.Index:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    index: faiss.Index
    if index_type == "flat" or (index_type == "ivf" and len(vectors) < IVF_MIN_PER_LIST * ivf_lists(len(vectors))):
        index = faiss.IndexFlatIP(dim)  # too few vectors to train the lists on: exact search is cheap anyway
    elif index_type == "ivf":
        nlist = ivf_lists(len(vectors))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.max_points_per_centroid = 64  # k-means on a sample of 64 vectors per list
        ivf.cp.niter = 10
        ivf.cp.seed = 1234
        ivf.train(vectors)
        ivf.nprobe = ivf_probes(nlist)
        index = ivf
    elif index_type == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.hnsw.efSearch = 256
        index = hnsw
    else:
        raise ValueError(f"unknown index type {index_type!r}")
    if len(vectors):
        index.add(vectors)
    return index


def extend_index(index: faiss.Index, new_vectors: NDArray[np.float32]) -> faiss.Index | None:
    """A copy of ``index`` with ``new_vectors`` appended (rows ``ntotal…``), or None when a rebuild is due.

    Adding an article then costs its own vectors plus one memory copy, instead of a rebuild. The
    original is left untouched (searches may be running on it). None when the grown corpus wants
    a different index type, or an IVF would have outgrown its lists (4× the vectors it was sized for).
    The caller keeps the index type of the index it extends (``hnsw`` of older indexes stays ``hnsw``).
    """
    import faiss

    total = int(index.ntotal) + len(new_vectors)
    if isinstance(index, faiss.IndexFlat) and choose_index_type(total) != "flat":
        return None  # outgrew exact search
    if isinstance(index, faiss.IndexIVF) and ivf_lists(total) > 2 * int(index.nlist):
        return None  # 4× the vectors its lists were sized for: retrain
    if not len(new_vectors):
        return index  # nothing to add: share it (searching does not change an index)
    copy = faiss.clone_index(index)
    copy.add(np.ascontiguousarray(new_vectors, dtype=np.float32))
    return copy


class TokenTable:
    """Each sentence's contextual token embeddings, computed once at index time for the rerank.

    The rerank compares a question's tokens with those of a few dozen candidate sentences; encoding
    them per query cost 50-90 ms. Stored, it is a gather. int8 with one scale per token (unit rows,
    so the scale is the row's largest component / 127) keeps late-interaction scores within 1e-3
    of float32 at a quarter of the size. Codes live in immutable blocks (one per indexing run);
    ``spans[i]`` is sentence i's ``(block, start, end)``, so reordering sentences or appending an
    article never copies or rewrites the codes already there.
    """

    def __init__(
        self,
        blocks: Sequence[tuple[NDArray[np.int8], NDArray[np.float32]]],
        spans: NDArray[np.int64],
        names: Sequence[str | None] | None = None,
    ) -> None:
        self.blocks = list(blocks)
        self.names: list[str | None] = list(names) if names is not None else [None] * len(self.blocks)
        if len(self.names) != len(self.blocks) or spans.ndim != 2 or spans.shape[1] != 3:
            raise ValueError("token spans must be (N, 3) rows of (block, start, end), with one name per block")
        for codes, scales in self.blocks:
            if codes.ndim != 2 or scales.shape != (len(codes),):
                raise ValueError("token codes (T, dim) need one scale per token")
        if len({codes.shape[1] for codes, _ in self.blocks}) > 1:
            raise ValueError("token blocks differ in width")
        if len(spans):
            block, start, end = spans[:, 0], spans[:, 1], spans[:, 2]
            if int(block.min()) < 0 or int(block.max()) >= len(self.blocks) or bool((end < start).any()):
                raise ValueError("a token span names no block or runs backwards")
            sizes = np.array([len(c) for c, _ in self.blocks], dtype=np.int64)
            if int(start.min()) < 0 or bool((end > sizes[block]).any()):
                raise ValueError("a token span points outside its block")
        self.spans = spans

    @classmethod
    def quantize(cls, vectors: Sequence[NDArray[np.float32]], dim: int) -> TokenTable:
        """int8 codes of each sentence's token vectors (rows in order), as one new block."""
        lengths = np.array([len(v) for v in vectors], dtype=np.int64)
        ends = np.cumsum(lengths)
        spans = np.stack([np.zeros_like(ends), ends - lengths, ends], axis=1).reshape(-1, 3)
        total = int(lengths.sum())
        flat = np.empty((total, dim), dtype=np.float32)  # one copy, then scaled in place
        if total:
            np.concatenate([v for v in vectors if len(v)], axis=0, out=flat)
        peak = np.abs(flat).max(axis=1) if total else np.zeros(0, dtype=np.float32)
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        flat *= (1.0 / scales)[:, None]  # each row's largest component becomes ±127
        np.rint(flat, out=flat)
        return cls([(flat.astype(np.int8), scales)], spans.astype(np.int64))

    @classmethod
    def concat(cls, parts: Sequence[TokenTable]) -> TokenTable:
        """One block holding the parts' sentences in row order; only the tokens they point to are copied.

        >>> a = TokenTable.quantize([np.ones((2, 3), np.float32)], 3)
        >>> b = TokenTable.quantize([np.zeros((0, 3), np.float32), -np.ones((1, 3), np.float32)], 3)
        >>> t = TokenTable.concat([b.take([1]), a, b.take([0])])
        >>> t.spans.tolist(), [v.shape for v in t.get([0, 1, 2])]
        ([[0, 0, 1], [0, 1, 3], [0, 3, 3]], [(1, 3), (2, 3), (0, 3)])
        """
        if not parts:
            return cls([(np.zeros((0, 0), np.int8), np.zeros(0, np.float32))], np.zeros((0, 3), np.int64))
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.extend(part)
        spans = joined.spans
        lengths = spans[:, 2] - spans[:, 1]
        starts = np.cumsum(lengths) - lengths  # where each sentence's tokens go in the new block
        codes = np.empty((int(lengths.sum()), joined.dim), dtype=np.int8)
        scales = np.empty(len(codes), dtype=np.float32)
        for b, (block_codes, block_scales) in enumerate(joined.blocks):
            mine = spans[:, 0] == b
            if mine.any():
                src = _ranges(spans[mine, 1:])
                dst = _ranges(np.stack([starts[mine], starts[mine] + lengths[mine]], axis=1))
                codes[dst] = block_codes[src]
                scales[dst] = block_scales[src]
        out_spans = np.stack([np.zeros(len(spans), np.int64), starts, starts + lengths], axis=1)
        return cls([(codes, scales)], out_spans.astype(np.int64).reshape(-1, 3))

    def extend(self, other: TokenTable) -> TokenTable:
        """This table's sentences, then ``other``'s: the blocks are shared, nothing is copied."""
        spans = other.spans.copy()
        spans[:, 0] += len(self.blocks)
        return TokenTable(self.blocks + other.blocks, np.concatenate([self.spans, spans]), self.names + other.names)

    def __len__(self) -> int:
        return len(self.spans)

    @property
    def dim(self) -> int:
        return int(self.blocks[0][0].shape[1]) if self.blocks else 0

    @property
    def stored(self) -> int:
        """Tokens held in the blocks (some may belong to sentences no longer in the table)."""
        return sum(len(codes) for codes, _ in self.blocks)

    @property
    def referenced(self) -> int:
        return int((self.spans[:, 2] - self.spans[:, 1]).sum())

    def packed(self) -> TokenTable:
        """The same sentences in one block of only their tokens, in row order."""
        return TokenTable.concat([self])

    def take(self, rows: Sequence[int] | NDArray[np.int64]) -> TokenTable:
        """The same blocks, seen through the spans of ``rows`` (nothing is copied)."""
        return TokenTable(self.blocks, self.spans[np.asarray(rows, dtype=np.int64)].reshape(-1, 3), self.names)

    def get(self, rows: Iterable[int]) -> list[NDArray[np.float32]]:
        """Decoded unit token vectors of each row."""
        out = []
        for r in rows:
            b, s, e = (int(x) for x in self.spans[r])
            codes, scales = self.blocks[b]
            block = np.asarray(codes[s:e], dtype=np.float32) * np.asarray(scales[s:e], np.float32)[:, None]
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            out.append((block / np.maximum(norms, 1e-12)).astype(np.float32))
        return out


def _ranges(spans: NDArray[np.int64]) -> NDArray[np.int64]:
    """The positions covered by ``[start, end)`` spans, concatenated, without a Python loop.

    >>> _ranges(np.array([[3, 5], [0, 0], [1, 2]])).tolist()
    [3, 4, 1]
    """
    lengths = spans[:, 1] - spans[:, 0]
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    keep = lengths > 0
    starts, lengths = spans[keep, 0], lengths[keep]
    first = np.cumsum(lengths) - lengths  # where each span begins in the output
    step = np.ones(total, dtype=np.int64)
    step[0] = starts[0]
    step[first[1:]] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
    return np.cumsum(step)


@dataclass(frozen=True)
class Manifest:
    """What an index was built with; loading refuses an index that does not match."""

    model: str
    dim: int
    segmenter: str
    chunking: dict[str, Any]
    index_type: str
    documents: dict[str, dict[str, Any]]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model": self.model,
            "dim": self.dim,
            "segmenter": self.segmenter,
            "chunking": self.chunking,
            "index_type": self.index_type,
            "documents": self.documents,
            "files": self.files,
        }


class Store:
    """Documents, their sentences and one vector per sentence, searchable by FAISS."""

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
        lexical: Mapping[str, NDArray[Any]] | None = None,
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
        self.lexical = dict(lexical) if lexical is not None else None  # saved BM25 arrays (qa.lexical), opaque here
        self._saved: tuple[Path, dict[str, dict[str, Any]]] | None = None  # (directory, its files): blocks to reuse
        self._by_doc: dict[str, list[int]] = {}
        for i, s in enumerate(self.sentences):
            self._by_doc.setdefault(s.doc_id, []).append(i)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.sentences)

    def rows_of(self, doc_id: str) -> list[int]:
        """Row numbers of a document's sentences, in document order."""
        return self._by_doc.get(doc_id, [])

    def doc_hash(self, doc_id: str) -> str | None:
        doc = self.documents.get(doc_id)
        return content_hash(doc.text) if doc else None

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
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
                }
                for d in self.documents.values()
            },
        )

    # ----- persistence -------------------------------------------------------------------

    def save(self, path: str | Path, *, lexical: Mapping[str, NDArray[Any]] | None = None) -> None:
        """Write a new generation of files, then switch the manifest to it atomically.

        ``lexical``: the BM25 index's arrays, so loading needs no re-tokenising (kept with the store).
        """
        if lexical is not None:
            self.lexical = dict(lexical)
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
        if self.lexical is not None:
            names["lexical"] = f"lexical-{gen}.npz"
        tokens = self.tokens
        reused: dict[str, dict[str, Any]] = {}  # token blocks already in this directory: kept, not rewritten
        if tokens is not None:
            if tokens.stored > 2 * tokens.referenced + 1_000_000 or len(tokens.blocks) > MAX_TOKEN_BLOCKS:
                tokens = tokens.packed()  # mostly dead codes, or too many files: merge
            known = self._saved[1] if self._saved is not None and self._saved[0] == root.resolve() else {}
            names["token_spans"] = f"tokenspans-{gen}.npy"
            for b, name in enumerate(tokens.names):
                for kind in ("codes", "scales"):
                    mine = name.replace("tokencodes-", f"token{kind}-") if name else None
                    if mine is not None and mine in known and (root / mine).is_file():
                        reused[f"token_{kind}_{b}"] = known[mine]
                    else:
                        names[f"token_{kind}_{b}"] = f"token{kind}-{gen}-{b}.npy"
        with (root / names["documents"]).open("w", encoding="utf-8") as f:
            for d in self.documents.values():
                f.write(json.dumps({"doc_id": d.doc_id, "source": d.source, "text": d.text}, ensure_ascii=False))
                f.write("\n")
        np.save(root / names["sentences"], spans, allow_pickle=False)
        np.save(root / names["vectors"], self.vectors, allow_pickle=False)
        import faiss

        faiss.write_index(self.index, str(root / names["faiss"]))
        if self.lexical is not None:
            savez: Any = np.savez  # numpy's stub types ``**arrays`` as its bool keyword
            with (root / names["lexical"]).open("wb") as f:
                savez(f, allow_pickle=False, **self.lexical)
        if tokens is not None:
            np.save(root / names["token_spans"], tokens.spans, allow_pickle=False)
            for b, (codes, scales) in enumerate(tokens.blocks):
                if f"token_codes_{b}" in names:
                    np.save(root / names[f"token_codes_{b}"], np.asarray(codes), allow_pickle=False)
                if f"token_scales_{b}" in names:
                    np.save(root / names[f"token_scales_{b}"], np.asarray(scales), allow_pickle=False)
        files: dict[str, dict[str, Any]] = dict(reused)
        for role, name in names.items():
            p = root / name
            with p.open("rb") as f:
                os.fsync(f.fileno())
            files[role] = {"name": name, "bytes": p.stat().st_size, "sha256": _file_hash(p)}
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
            block_names = [files[f"token_codes_{b}"]["name"] for b in range(len(tokens.blocks))]
            self.tokens = TokenTable(tokens.blocks, tokens.spans, block_names)
        keep = {info["name"] for info in files.values()} | {MANIFEST}
        for leftover in root.iterdir():
            generation_file = leftover.name.split("-", 1)[0] in GENERATION_PREFIXES
            if leftover.name not in keep and generation_file:
                leftover.unlink(missing_ok=True)
            elif leftover.name.startswith(f".{MANIFEST}.") and leftover.name.endswith(".tmp"):
                leftover.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path, *, expect_model: str | None = None) -> Store:
        root = Path(path)
        manifest = read_manifest(root)
        if expect_model is not None and manifest.model != expect_model:
            raise IndexMismatchError(
                str(root), f"it was built with the embedding model {manifest.model!r}, not {expect_model!r}"
            )
        paths: dict[str, Path] = {}
        has_tokens = "token_spans" in manifest.files  # indexes of token-less embedders have none
        n_blocks = sum(1 for role in manifest.files if role.startswith("token_codes_"))
        token_roles = ["token_spans"] + [f"token_{k}_{b}" for b in range(n_blocks) for k in ("codes", "scales")]
        optional = [*(token_roles if has_tokens else ()), *(["lexical"] if "lexical" in manifest.files else [])]
        for role in ("documents", "sentences", "vectors", "faiss", *optional):
            info = manifest.files.get(role)
            if not isinstance(info, dict) or "name" not in info:
                raise IndexCorruptError(str(root / MANIFEST), f"it names no {role} file")
            p = root / Path(str(info["name"])).name  # a manifest cannot point outside its directory
            if not p.is_file():
                raise IndexCorruptError(str(p), "the file is missing")
            if p.stat().st_size != info.get("bytes") or _file_hash(p) != info.get("sha256"):
                raise IndexCorruptError(str(p), "its size or checksum does not match the manifest")
            paths[role] = p
        try:
            documents = []
            with paths["documents"].open(encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    documents.append(Document(doc_id=row["doc_id"], text=row["text"], source=row.get("source", "")))
            spans = np.load(paths["sentences"], allow_pickle=False)
            vectors = np.load(paths["vectors"], allow_pickle=False)
            tokens = None
            if has_tokens:  # memory-mapped: a query reads the few dozen sentences it reranks
                blocks = [
                    (np.load(paths[f"token_codes_{b}"], mmap_mode="r", allow_pickle=False),
                     np.load(paths[f"token_scales_{b}"], mmap_mode="r", allow_pickle=False))
                    for b in range(n_blocks)
                ]
                tokens = TokenTable(blocks, np.load(paths["token_spans"], allow_pickle=False),
                                    [paths[f"token_codes_{b}"].name for b in range(n_blocks)])
            lexical = None
            if "lexical" in paths:
                with np.load(paths["lexical"], allow_pickle=False) as npz:
                    lexical = {name: npz[name] for name in npz.files}
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
        return store


def read_manifest(root: Path) -> Manifest:
    """Parse and check ``manifest.json``; every failure names the file and how to rebuild."""
    p = root / MANIFEST
    if not p.is_file():
        raise IndexNotFoundError(str(root))
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(str(p), f"not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise IndexCorruptError(str(p), "not a JSON object")
    version = raw.get("format_version")
    if not isinstance(version, int):
        raise IndexCorruptError(str(p), "it has no format_version")
    if version > FORMAT_VERSION:
        raise IndexMismatchError(
            str(root), f"it has format version {version}, newer than this program's {FORMAT_VERSION} (upgrade qa)"
        )
    if version < FORMAT_VERSION:
        raise IndexMismatchError(str(root), f"it has the old format version {version}")
    try:
        return Manifest(
            model=str(raw["model"]),
            dim=int(raw["dim"]),
            segmenter=str(raw["segmenter"]),
            chunking=dict(raw["chunking"]),
            index_type=str(raw["index_type"]),
            documents=dict(raw["documents"]),
            files=dict(raw.get("files", {})),
            format_version=version,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptError(str(p), f"a field is missing or malformed: {exc}") from exc
