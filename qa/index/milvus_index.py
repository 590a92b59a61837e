"""The index in Milvus: sentences, offsets, document metadata, dense vectors, BM25 terms and the rerank's
token codes in Milvus collections.

``COLLECTION`` is an alias of the current generation's documents collection, whose meta row names its
sentences collection. A document is a unit of writing: its sentence rows (keyed by the document's
version, a hash of its id and text) are inserted first, then its document row, which is what readers
trust; rows of an older version or of an interrupted write are never read and are deleted after. So
several writers (``qa index --shard I/N`` on several machines) can add documents to one collection at
once, and an interrupted write never loses the index. ``--rebuild`` writes a new generation beside the
old one and switches the alias in one call.

Selected by ``milvus://HOST:PORT/COLLECTION`` (``--store`` or ``QA_STORE``). Each question's candidates
come from one ``hybrid_search`` (dense inner product and Milvus's own BM25 over the product's own stemmed
terms, fused by RRF), with the document filter pushed into both requests. The product's fitted scorer
then reads features (BM25 term presence, IDF mass, the neighbours' vectors) of those candidates; those are
computed from the sentences the client read back on open, exactly as for the FAISS store, so answers and
citations match. ``pymilvus`` is imported only here, and its errors become ``StoreError`` here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from qa.errors import ConfigError, IndexMismatchError, IndexNotFoundError, StoreError
from qa.index.base import CandidateRows, SentenceIndex
from qa.index.build import encode, plan_rows
from qa.index.lexical import LexicalIndex
from qa.index.manifest import document_from_row, document_row
from qa.index.tokens import TokenCodec, TokenTable
from qa.ingest import SEGMENTER_NAME, segment
from qa.types import Document, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder

SCHEME = "milvus://"
META_ID = "__qa_index_meta__"  # the documents collection's row that says what the index was built with
CODEC_ID = "__qa_token_codebook_{:04d}__"  # the rerank's codebook, base64 in chunks of the documents collection
LAYOUT = 2  # the collections' layout; an index of another layout is rebuilt (--rebuild)
MAX_TEXT = 65_535  # Milvus's VARCHAR limit (bytes)
CHUNK = 60_000  # characters of the codebook per row
PART_ID = "__qa_part_{}_{:05d}__"  # a long document's text in parts: version key, part number
PART_CHARS = 16_000  # characters per part (at most 4 bytes each in UTF-8: within MAX_TEXT)
BATCH = 1_000  # rows per insert or query page
IN_LIMIT = 2_000  # ids per ``in [...]`` filter
RRF_K = 60
SLACK = 16  # extra hits asked of Milvus: rows of unfinished writes or replaced versions are skipped here
TOPK_MAX = 16_384  # Milvus's largest search limit
T = TypeVar("T")


@dataclass(frozen=True)
class MilvusTarget:
    """Where the index lives: a Milvus server and a collection name."""

    host: str
    port: int
    collection: str

    @classmethod
    def parse(cls, spec: str) -> MilvusTarget:
        """``milvus://HOST:PORT/COLLECTION``.

        >>> MilvusTarget.parse("milvus://127.0.0.1:19530/news")
        MilvusTarget(host='127.0.0.1', port=19530, collection='news')
        """
        m = re.fullmatch(r"milvus://([^/:]+):(\d{1,5})/([A-Za-z_][A-Za-z0-9_]{0,200})", spec)
        if m is None:
            raise StoreError(spec, "is not a Milvus address",
                             "Write it as milvus://HOST:PORT/COLLECTION, for example milvus://127.0.0.1:19530/news.")
        return cls(m.group(1), int(m.group(2)), m.group(3))

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def spec(self) -> str:
        return f"{SCHEME}{self.host}:{self.port}/{self.collection}"


@dataclass(frozen=True)
class Shard:
    """One of ``count`` parallel writers: it indexes the documents whose stable hash falls to it.

    >>> Shard.parse("2/4"), Shard(0, 2).owns("a.txt") != Shard(1, 2).owns("a.txt")
    (Shard(index=2, count=4), True)
    """

    index: int
    count: int

    @classmethod
    def parse(cls, spec: str) -> Shard:
        m = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", spec)
        if m is None or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
            raise ConfigError(f"--shard {spec!r} is not a shard: write it as I/N with 0 <= I < N, e.g. 0/4.")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, doc_id: str) -> bool:
        """Whether the document is this shard's: the same answer on every machine and every run."""
        return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") % self.count == self.index


@dataclass(frozen=True)
class _Generation:
    """The collections of the generation an index was read from or written to, and the documents there."""

    docs: str
    rows: str
    versions: dict[str, str] = field(default_factory=dict)  # doc_id -> version key as stored
    stored: dict[str, Document] = field(default_factory=dict)  # the documents as stored (their metadata)


def version_key(doc: Document) -> str:
    """A document version's key: its sentence rows carry it, so rows of another version are never read."""
    return hashlib.sha256(f"{doc.doc_id}\x00{doc.text}".encode()).hexdigest()[:24]


def published_day(doc: Document) -> int:
    """Days since 1970-01-01 of the document's publication date (-1 when unknown): the date filter's field."""
    if not doc.published:
        return -1
    try:
        return (date.fromisoformat(doc.published[:10]) - date(1970, 1, 1)).days
    except ValueError:
        return -1


class MilvusIndex(SentenceIndex):
    """Sentences, vectors, BM25 terms and token codes in Milvus; candidates from one hybrid search there."""

    backend: ClassVar[str] = "milvus"
    #: Both candidate lists come from one request to the store, with the document filter pushed into it.
    hybrid_in_store: ClassVar[bool] = True

    def __init__(
        self,
        target: MilvusTarget,
        documents: Sequence[Document],
        sentences: Sequence[Sentence],
        vectors: NDArray[np.float32],
        *,
        model: str,
        tokens: TokenTable | None = None,
        lexical: LexicalIndex | None = None,
        generation: _Generation | None = None,
        dropped: Collection[str] = (),
    ) -> None:
        if len(sentences) != len(vectors):
            raise ValueError("one vector per sentence is required")
        if tokens is not None and len(tokens) != len(sentences):
            raise ValueError("one token span per sentence is required")
        self.target = target
        self.documents: dict[str, Document] = {d.doc_id: d for d in documents}
        self.sentences: list[Sentence] = list(sentences)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.model = model
        self.tokens = tokens
        self.lexical = lexical if lexical is not None else LexicalIndex([s.text for s in self.sentences])
        self._generation = generation  # None: save writes a new generation and switches the alias to it
        #: Documents of the generation read that this index removed: ``save`` deletes them (only them, so
        #: documents other writers added meanwhile are kept).
        self.dropped = frozenset(dropped)
        self._by_doc: dict[str, list[int]] = {}
        for i, s in enumerate(self.sentences):
            self._by_doc.setdefault(s.doc_id, []).append(i)
        self._keys = {f"{version_key(self.documents[s.doc_id])}:{s.n}": i for i, s in enumerate(self.sentences)}

    def rows_of(self, doc_id: str) -> list[int]:
        return self._by_doc.get(doc_id, [])

    def _collection(self) -> str:
        if self._generation is None:
            raise StoreError(self.target.spec, "has not been written yet", "Save the index before searching it.")
        return self._generation.rows

    def _rows_of_hits(self, hits: Any) -> list[int]:
        """Local row numbers of Milvus hits (rows of versions this snapshot does not hold are skipped)."""
        out = []
        for hit in hits:
            row = self._keys.get(str(hit["entity"]["key"]))
            if row is not None:
                out.append(row)
        return out

    def dense_search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Milvus's search (inner product); rows of -1 mean fewer than ``k`` results."""
        k = max(1, min(k, len(self.sentences)))
        q = np.ascontiguousarray(query, dtype=np.float32)
        rows = self._collection()
        limit = min(k + SLACK, TOPK_MAX)
        found = _call(self.target, lambda c: c.search(rows, data=q.tolist(), anns_field="dense", limit=limit,
                                                      output_fields=["key"], search_params={"metric_type": "IP"}))
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        for i, hits in enumerate(found):
            j = 0
            for hit in list(hits):
                row = self._keys.get(str(hit["entity"]["key"]))
                if row is not None and j < k:
                    ids[i, j], scores[i, j] = row, float(hit["distance"])
                    j += 1
        return scores, ids

    def candidate_rows(
        self,
        query: str,
        vector: NDArray[np.float32],
        lexical: NDArray[np.float32],
        k: int,
        heads: int,
        doc_ids: Collection[str] | None = None,
    ) -> CandidateRows:
        """The union of the dense and BM25 top ``k`` from one ``hybrid_search``, filtered in Milvus; the
        fused list's best ``2 * heads`` stand for each list's best ``heads``."""
        from qa.index.terms import tokenize

        rows = self._collection()
        k = max(1, min(k, len(self.sentences)))
        limit = min(k + SLACK, TOPK_MAX // 2)
        terms = " ".join(dict.fromkeys(tokenize([query], question=True)[0]))
        expr = _doc_filter(doc_ids)

        def search(c: Any) -> Any:
            from pymilvus import AnnSearchRequest, RRFRanker

            dense = AnnSearchRequest(data=[vector.astype(np.float32).tolist()], anns_field="dense",
                                     param={"metric_type": "IP"}, limit=limit, expr=expr)
            if not terms:
                return c.search(rows, data=[vector.astype(np.float32).tolist()], anns_field="dense", limit=limit,
                                filter=expr or "", output_fields=["key"], search_params={"metric_type": "IP"})
            bm25 = AnnSearchRequest(data=[terms], anns_field="sparse", param={"metric_type": "BM25"},
                                    limit=limit, expr=expr)
            return c.hybrid_search(rows, [dense, bm25], ranker=RRFRanker(RRF_K), limit=2 * limit,
                                   output_fields=["key"])

        found = self._rows_of_hits(next(iter(_call(self.target, search))))
        ranked = np.array(found[: 2 * k], dtype=np.int64)
        return CandidateRows(np.unique(ranked), ranked[: 2 * heads])

    # ----- building and persistence ---------------------------------------------------------------

    @classmethod
    def build(
        cls,
        target: MilvusTarget,
        documents: Sequence[Document],
        embedder: Embedder,
        *,
        previous: SentenceIndex | None = None,
        progress: bool = False,
        remove: Sequence[str] = (),
    ) -> MilvusIndex:
        """As ``FaissIndex.build``: unchanged documents are not embedded again, and ``save`` writes only
        the documents whose version the store does not hold yet."""
        rows = plan_rows(documents, embedder, previous=previous, progress=progress, remove=remove)
        old = previous if isinstance(previous, MilvusIndex) and previous.target == target else None
        lexical = old.lexical.extend([s.text for s in rows.sentences[len(old):]]) if old and rows.appends else None
        kept = {d.doc_id for d in rows.documents}
        dropped = {i for i in old.documents if i not in kept} | old.dropped if old is not None else set()
        return cls(target, rows.documents, rows.sentences, rows.vectors, model=embedder.name, tokens=rows.tokens,
                   lexical=lexical, generation=old._generation if old is not None else None, dropped=dropped)

    def with_documents(
        self, documents: Sequence[Document], embedder: Embedder, *, progress: bool = False
    ) -> MilvusIndex:
        return MilvusIndex.build(self.target, documents, embedder, previous=self, progress=progress)

    def without_documents(self, doc_ids: Sequence[str], embedder: Embedder) -> MilvusIndex:
        return MilvusIndex.build(self.target, [], embedder, previous=self, remove=doc_ids)

    def save(self, path: str | Path | None = None) -> None:
        """Write the documents the store lacks and delete the ones this index dropped (``path`` is unused)."""
        t = self.target

        def write(c: Any) -> _Generation:
            gen = self._generation
            if gen is not None:
                current = _current(c, t)
                if current is None or current[:2] != (gen.docs, gen.rows):
                    raise StoreError(t.spec, "was rebuilt by another writer since this index was read",
                                     "Run the command again: it reads the new generation.")
                return _write(c, self, gen, fresh=False)
            name = secrets.token_hex(4)
            gen = _Generation(f"{t.collection}__d{name}", f"{t.collection}__r{name}")
            _create(c, gen.docs, gen.rows, self.dim)
            previous = _current(c, t, any_layout=True)
            done = _write(c, self, gen, fresh=True)
            if previous is None:
                c.create_alias(gen.docs, t.collection)
            else:
                c.alter_alias(gen.docs, t.collection)
                for old in previous[:2]:  # the previous generation, no longer named by the alias
                    if c.has_collection(old):
                        c.drop_collection(old)
            return done

        self._generation = _call(t, write)

    @classmethod
    def load(cls, spec: str, *, expect_model: str | None = None) -> MilvusIndex:
        """Read the index back from Milvus: whole documents only (BM25's postings are rebuilt locally)."""
        t = MilvusTarget.parse(spec)
        meta, docs, versions, gen_names, codec = _call(t, lambda c: _read_documents(c, t))
        if expect_model is not None and meta.get("model") != expect_model:
            raise IndexMismatchError(t.spec, f"it was built with the embedding model {meta.get('model')!r}, "
                                             f"not {expect_model!r}")
        fields = ["key", "doc_id", "vkey", "n", "start", "stop", "dense"] + (["tok"] if codec is not None else [])
        rows = _call(t, lambda c: _all(c, gen_names[1], fields))
        by_doc: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if versions.get(r["doc_id"]) == r["vkey"]:  # rows of other versions or unfinished writes: not read
                by_doc.setdefault(r["doc_id"], []).append(r)
        documents: list[Document] = []
        ordered: list[dict[str, Any]] = []
        for doc in docs:
            mine = sorted(by_doc.get(doc.doc_id, []), key=lambda r: int(r["n"]))
            if not mine or [int(r["n"]) for r in mine] != list(range(len(mine))):
                continue  # an incomplete document (a damaged store): left out rather than cited half
            documents.append(doc)
            ordered.extend(mine)
        by_id = {d.doc_id: d for d in documents}
        sentences = [Sentence(r["doc_id"], int(r["n"]), int(r["start"]), int(r["stop"]),
                              by_id[r["doc_id"]].text[int(r["start"]) : int(r["stop"])]) for r in ordered]
        dim = int(meta["dim"])
        vectors = np.array([r["dense"] for r in ordered], dtype=np.float32).reshape(len(ordered), dim)
        tokens = _decode_tokens(codec, [str(r["tok"]) for r in ordered]) if codec is not None else None
        gen = _Generation(gen_names[0], gen_names[1], {d.doc_id: versions[d.doc_id] for d in documents},
                          {d.doc_id: d for d in documents})
        return cls(t, documents, sentences, vectors, model=str(meta["model"]), tokens=tokens, generation=gen)


def index_shard(
    spec: str, documents: Sequence[Document], embedder: Embedder, shard: Shard, *, progress: bool = False
) -> tuple[int, int]:
    """Add this shard's share of ``documents`` to the store without reading its sentences back: documents
    whose version is there already are skipped; changed ones are replaced. Several shards may run at once
    (each writes only its own documents). Returns (documents written, documents unchanged)."""
    t = MilvusTarget.parse(spec)
    meta, docs, versions, gen_names, codec = _call(t, lambda c: _read_documents(c, t))
    if meta.get("model") != embedder.name:
        raise IndexMismatchError(t.spec, f"it was built with the embedding model {meta.get('model')!r}, "
                                         f"not {embedder.name!r}")
    mine = [d for d in dict((d.doc_id, d) for d in documents).values() if shard.owns(d.doc_id)]
    stored = {d.doc_id: d for d in docs}
    todo = [d for d in mine if stored.get(d.doc_id) != d]
    if todo:
        sentences = [s for d in todo if versions.get(d.doc_id) != version_key(d) for s in segment(d)]
        vectors, tokens = (encode(embedder, [s.text for s in sentences], progress=progress, codec=codec)
                           if sentences else (np.zeros((0, int(meta["dim"])), np.float32), None))
        if codec is None:
            tokens = None  # the collection keeps no codes (its first writer had none): stay consistent
        part = MilvusIndex(t, todo, sentences, vectors, model=embedder.name, tokens=tokens,
                           lexical=LexicalIndex([]), generation=_Generation(*gen_names, versions, stored))
        part.save()
    return len(todo), len(mine) - len(todo)


# ----- the collections ----------------------------------------------------------------------------


def _doc_filter(doc_ids: Collection[str] | None) -> str:
    if doc_ids is None:
        return ""
    return f"doc_id in {json.dumps(sorted(doc_ids), ensure_ascii=False)}"


def _document_rows(doc: Document, seq: int) -> list[dict[str, Any]]:
    """A document's rows of the documents collection: its text in parts first (Milvus limits a text
    field to 64 KiB; each part is keyed by the document's version), then the row readers trust."""
    vkey = version_key(doc)
    row: dict[str, Any] = {**document_row(doc), "_version": vkey, "_seq": seq}
    text = json.dumps(row, ensure_ascii=False)
    if len(text.encode("utf-8")) <= MAX_TEXT:
        return [{"doc_id": doc.doc_id, "row": text, "pad": [0.0, 0.0]}]
    body = row.pop("text")
    parts = [body[i : i + PART_CHARS] for i in range(0, len(body), PART_CHARS)]
    row["_parts"] = len(parts)
    out = [{"doc_id": PART_ID.format(vkey, i), "row": part, "pad": [0.0, 0.0]} for i, part in enumerate(parts)]
    return [*out, {"doc_id": doc.doc_id, "row": json.dumps(row, ensure_ascii=False), "pad": [0.0, 0.0]}]


def _write(c: Any, index: MilvusIndex, gen: _Generation, *, fresh: bool) -> _Generation:
    """Write ``index``'s documents that ``gen`` lacks (sentence rows, then the document row), then delete
    the documents it dropped and the rows of replaced versions."""
    meta = _meta(c, gen.docs)
    if meta is None:
        meta = {"model": index.model, "dim": index.dim, "segmenter": SEGMENTER_NAME, "rows": gen.rows,
                "layout": LAYOUT, "codebook": 0}
    codec = index.tokens.codec if index.tokens is not None else None
    if codec is not None and not meta.get("codebook"):
        chunks = _codec_chunks(codec)
        c.upsert(gen.docs, [{"doc_id": CODEC_ID.format(i), "row": part, "pad": [0.0, 0.0]}
                            for i, part in enumerate(chunks)])
        meta["codebook"] = len(chunks)
    c.upsert(gen.docs, [{"doc_id": META_ID, "row": json.dumps(meta), "pad": [0.0, 0.0]}])
    versions = {} if fresh else dict(gen.versions)
    changed = [d for d in index.documents.values() if versions.get(d.doc_id) != version_key(d)]
    replaced = [versions[d.doc_id] for d in changed if d.doc_id in versions]
    stored = {} if fresh else dict(gen.stored)
    restated = [d for d in index.documents.values()
                if versions.get(d.doc_id) == version_key(d) and stored.get(d.doc_id) != d]  # new metadata only
    dropped = [i for i in index.dropped if i in versions and i not in index.documents]
    terms = _terms(index, [r for d in changed for r in index.rows_of(d.doc_id)])
    for lo in range(0, len(terms), BATCH):
        batch = []
        for r, words in terms[lo : lo + BATCH]:
            s = index.sentences[r]
            doc = index.documents[s.doc_id]
            batch.append({"key": f"{version_key(doc)}:{s.n}", "doc_id": s.doc_id, "vkey": version_key(doc),
                          "n": s.n, "start": s.start, "stop": s.end, "day": published_day(doc),
                          "terms": words, "dense": index.vectors[r].tolist(),
                          "tok": _encode_tokens(index.tokens, r) if index.tokens is not None else ""})
        c.insert(gen.rows, batch)
    if changed:
        c.flush(gen.rows)
    seq = time.time_ns()
    docs = [r for i, d in enumerate(changed + restated) for r in _document_rows(d, seq + i)]
    for lo in range(0, len(docs), BATCH):
        c.upsert(gen.docs, docs[lo : lo + BATCH])  # parts first, then each document's row: the commit
    for lo in range(0, len(dropped), IN_LIMIT):
        c.delete(gen.docs, ids=dropped[lo : lo + IN_LIMIT])
    c.flush(gen.docs)
    stale = replaced + [versions[i] for i in dropped]
    for lo in range(0, len(stale), IN_LIMIT):
        c.delete(gen.rows, filter=f"vkey in {json.dumps(stale[lo : lo + IN_LIMIT])}")
    for vkey in stale:  # a replaced or dropped long document's text parts
        c.delete(gen.docs, filter=f'doc_id like "__qa_part_{vkey}%"')
    for d in changed + restated:
        versions[d.doc_id], stored[d.doc_id] = version_key(d), d
    for i in dropped:
        versions.pop(i, None)
        stored.pop(i, None)
    return _Generation(gen.docs, gen.rows, versions, stored)


def _terms(index: MilvusIndex, rows: Sequence[int]) -> list[tuple[int, str]]:
    """Each row's BM25 terms as the product sees them (stemmed, stop-worded), for Milvus's BM25 function."""
    from qa.index.terms import tokenize

    out = []
    for lo in range(0, len(rows), 4096):
        part = rows[lo : lo + 4096]
        for r, words in zip(part, tokenize([index.sentences[r].text for r in part]), strict=True):
            out.append((r, " ".join(words)[:MAX_TEXT // 4]))
    return out


def _encode_tokens(tokens: TokenTable, row: int) -> str:
    """One sentence's token codes (coarse ids, then residual codes) as base64 text."""
    b, s, e = (int(x) for x in tokens.spans[row])
    check = tokens.checks[b]
    if check is not None:
        check(s, e)
    ids, codes = tokens.blocks[b]
    return base64.b64encode(ids[s:e].astype("<u2").tobytes() + codes[s:e].tobytes()).decode("ascii")


def _decode_tokens(codec: TokenCodec, texts: Sequence[str]) -> TokenTable:
    """One block of every sentence's token codes, in row order."""
    width = 2 + codec.code_bytes
    raw = [base64.b64decode(t) for t in texts]
    lengths = np.array([len(r) // width for r in raw], dtype=np.int64)
    ends = np.cumsum(lengths)
    ids = np.empty(int(lengths.sum()), dtype=np.uint16)
    codes = np.empty((len(ids), codec.code_bytes), dtype=np.uint8)
    for r, n, end in zip(raw, lengths.tolist(), ends.tolist(), strict=True):
        if len(r) != n * width:
            raise StoreError("milvus", "holds damaged token codes", "Rebuild the collection with --rebuild.")
        ids[end - n : end] = np.frombuffer(r[: 2 * n], dtype="<u2")
        codes[end - n : end] = np.frombuffer(r[2 * n :], dtype=np.uint8).reshape(n, codec.code_bytes)
    spans = np.stack([np.zeros_like(ends), ends - lengths, ends], axis=1).reshape(-1, 3)
    return TokenTable(codec, [(ids, codes)], spans.astype(np.int64))


def _codec_chunks(codec: TokenCodec) -> list[str]:
    buf = io.BytesIO()
    savez: Any = np.savez
    savez(buf, allow_pickle=False, **codec.arrays())
    text = base64.b64encode(buf.getvalue()).decode("ascii")
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]


def _read_codec(c: Any, docs_name: str, parts: int) -> TokenCodec:
    ids = [CODEC_ID.format(i) for i in range(parts)]
    found = {r["doc_id"]: r["row"] for r in c.query(docs_name, ids=ids, output_fields=["doc_id", "row"])}
    if set(found) != set(ids):
        raise StoreError("milvus", "holds an incomplete token codebook", "Rebuild the collection with --rebuild.")
    with np.load(io.BytesIO(base64.b64decode("".join(found[i] for i in ids))), allow_pickle=False) as npz:
        return TokenCodec.from_arrays({name: npz[name] for name in npz.files})


def _meta(c: Any, docs_name: str) -> dict[str, Any] | None:
    found = c.query(docs_name, filter=f'doc_id == "{META_ID}"', output_fields=["row"])
    return json.loads(found[0]["row"]) if found else None


def _read_documents(
    c: Any, t: MilvusTarget
) -> tuple[dict[str, Any], list[Document], dict[str, str], tuple[str, str], TokenCodec | None]:
    """The meta row, the committed documents (in the order they were added), their versions, the
    generation's collections and the token codebook."""
    current = _current(c, t)
    if current is None:
        raise IndexNotFoundError(t.spec)
    docs_name, rows_name, meta = current
    every = _all(c, docs_name, ["doc_id", "row"])
    rows = [r for r in every if not str(r["doc_id"]).startswith("__qa_")]
    parts = {str(r["doc_id"]): str(r["row"]) for r in every if str(r["doc_id"]).startswith("__qa_part_")}
    parsed = sorted((json.loads(r["row"]) for r in rows), key=lambda r: (int(r.get("_seq", 0)), r["doc_id"]))
    for r in parsed:
        if "_parts" in r:
            pieces = [parts.get(PART_ID.format(r["_version"], i)) for i in range(int(r["_parts"]))]
            if any(p is None for p in pieces):
                raise StoreError(t.spec, f"lacks part of the document {r['doc_id']}",
                                 "Index that document again, or rebuild the collection with --rebuild.")
            r["text"] = "".join(p for p in pieces if p is not None)
    versions = {str(r["doc_id"]): str(r["_version"]) for r in parsed}
    docs = [document_from_row({k: v for k, v in r.items() if not k.startswith("_")}) for r in parsed]
    codec = _read_codec(c, docs_name, int(meta["codebook"])) if meta.get("codebook") else None
    return meta, docs, versions, (docs_name, rows_name), codec


def _current(c: Any, t: MilvusTarget, *, any_layout: bool = False) -> tuple[str, str, dict[str, Any]] | None:
    """The (documents, sentences) collections the alias ``t.collection`` names now, and the meta row;
    None before the first save. ``any_layout``: also an older layout's (a rebuild replaces it)."""
    if not c.has_collection(t.collection):
        return None
    from pymilvus.exceptions import MilvusException

    try:
        docs_name = c.describe_alias(t.collection).get("collection_name")
    except MilvusException:  # a collection of that name, not an alias: not ours
        docs_name = None
    meta = _meta(c, docs_name) if docs_name else None
    if meta is None or not isinstance(meta.get("rows"), str):
        raise StoreError(t.spec, "holds a collection qa did not write",
                         "Choose another collection name, or drop that collection.")
    if meta.get("layout") != LAYOUT and not any_layout:
        raise StoreError(t.spec, "was written by an older version of qa",
                         "Index it again with --rebuild (the old collections are replaced only when it succeeds).")
    return str(docs_name), str(meta["rows"]), meta


def _create(c: Any, docs_name: str, rows_name: str, dim: int) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from qa.index.lexical import K1, B

    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)  # version key : sentence number
    s.add_field("doc_id", DataType.VARCHAR, max_length=1024)
    s.add_field("vkey", DataType.VARCHAR, max_length=32)
    s.add_field("n", DataType.INT64)
    s.add_field("start", DataType.INT64)
    s.add_field("stop", DataType.INT64)
    s.add_field("day", DataType.INT64)  # publication date, days since 1970 (-1: unknown)
    # the product's own BM25 terms (stemmed, stop-worded), so Milvus's BM25 ranks as the product's does
    s.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                analyzer_params={"tokenizer": "standard"})
    s.add_field("tok", DataType.VARCHAR, max_length=MAX_TEXT)  # the rerank's token codes, base64
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                            output_field_names=["sparse"]))
    ip = c.prepare_index_params()
    ip.add_index(field_name="dense", index_type="FLAT", metric_type="IP")
    ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                 params={"bm25_k1": K1, "bm25_b": B})
    c.create_collection(rows_name, schema=s, index_params=ip)
    d = MilvusClient.create_schema(auto_id=False)
    d.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=1024)
    d.add_field("row", DataType.VARCHAR, max_length=MAX_TEXT)
    d.add_field("pad", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    dp = c.prepare_index_params()
    dp.add_index(field_name="pad", index_type="FLAT", metric_type="L2")
    c.create_collection(docs_name, schema=d, index_params=dp)


def _all(c: Any, collection: str, fields: list[str]) -> list[dict[str, Any]]:
    """Every row of a collection, page by page."""
    return list(_pages(c, collection, fields))


def _pages(c: Any, collection: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    it = c.query_iterator(collection, batch_size=BATCH, filter="", output_fields=fields)
    try:
        while page := it.next():
            yield from (dict(r) for r in page)
    finally:
        it.close()


_CLIENTS: dict[str, Any] = {}  # one client per server, shared by its collections
CONNECT_TIMEOUT = 15.0  # seconds to connect (a busy Milvus Lite is slow to accept); one client per server


def _call(t: MilvusTarget, fn: Callable[[Any], T]) -> T:
    """Run ``fn`` with a client of ``t``; every pymilvus or gRPC failure becomes a ``StoreError``."""
    from pymilvus.exceptions import MilvusException

    try:
        client = _CLIENTS.get(t.uri)
        if client is None:
            from pymilvus import MilvusClient

            client = _CLIENTS[t.uri] = MilvusClient(uri=t.uri, timeout=CONNECT_TIMEOUT)
        return fn(client)
    except MilvusException as exc:
        _CLIENTS.pop(t.uri, None)
        text = str(exc)
        if "connect" in text.lower() or "unavailable" in text.lower() or "timeout" in text.lower():
            raise StoreError(t.spec, f"cannot be reached ({_first_line(text)})",
                             f"Start Milvus there (for a local test server: python -m milvus_lite server "
                             f"--data-dir DIR --host {t.host} --port {t.port}), or check --store / QA_STORE.") from exc
        if "auth" in text.lower() or "permission" in text.lower():
            raise StoreError(t.spec, "refused the credentials", "Check the Milvus user and password.") from exc
        raise StoreError(t.spec, f"failed: {exc}",
                         "Check the server's log; --rebuild writes the collection anew.") from exc


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "no detail"
