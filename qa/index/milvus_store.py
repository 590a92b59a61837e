"""Milvus collections of the index: their layout, and reading and writing them (``MilvusIndex`` wires them).

``COLLECTION`` is an alias of the current generation's documents collection, whose meta row names its
sentences collection. A document is a unit of writing: its sentence rows (keyed by the document's
version, a hash of its id and text) are inserted first, then its document row, which is what readers
trust; rows of an older version or of an unfinished write are never read and are deleted after. A
document's text longer than a Milvus text field is kept in parts, keyed by its version. ``pymilvus`` is
imported only here, and its errors become ``StoreError`` here (``call``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from qa.errors import IndexNotFoundError, StoreError
from qa.index.manifest import document_from_row, document_row
from qa.index.tokens import TokenCodec, TokenTable
from qa.ingest import SEGMENTER_NAME
from qa.types import Document, Sentence, published_date

if TYPE_CHECKING:
    from numpy.typing import NDArray

SCHEME = "milvus://"
META_ID = "__qa_index_meta__"  # the documents collection's row that says what the index was built with
CODEC_ID = "__qa_token_codebook_{:04d}__"  # the rerank's codebook, base64 in chunks of the documents collection
LAYOUT = 2  # the collections' layout; an index of another layout is rebuilt (--rebuild)
MAX_TEXT = 65_535  # Milvus's VARCHAR limit (bytes)
CHUNK = 60_000  # characters of the codebook per row
PART_ID = "__qa_part_{}_{:05d}__"  # a long document's text in parts: version key, part number
PART_CHARS = 16_000  # characters per part (at most 4 bytes each in UTF-8: within MAX_TEXT)
BATCH = 1_000  # rows per insert
PAGE = 8_000  # rows per page read back (Milvus returns at most 16,384 per call)
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
class Generation:
    """The collections of the generation an index was read from or written to, and the documents there."""

    docs: str
    rows: str
    versions: dict[str, str] = field(default_factory=dict)  # doc_id -> version key as stored
    stored: dict[str, Document] = field(default_factory=dict)  # the documents as stored (their metadata)
    counts: dict[str, int] = field(default_factory=dict)  # doc_id -> sentences, as stored


@dataclass(frozen=True)
class Contents:
    """What a save writes: an index's documents, sentences, vectors and token codes, what it was built with,
    and the documents it removed from the generation it was read from."""

    documents: Mapping[str, Document]
    sentences: Sequence[Sentence]
    vectors: NDArray[np.float32]
    tokens: TokenTable | None
    model: str
    dropped: frozenset[str]
    by_doc: Mapping[str, list[int]]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows_of(self, doc_id: str) -> list[int]:
        return list(self.by_doc.get(doc_id, []))


def version_key(doc: Document) -> str:
    """A document version's key: its sentence rows carry it, so rows of another version are never read."""
    return hashlib.sha256(f"{doc.doc_id}\x00{doc.text}".encode()).hexdigest()[:24]


def published_day(doc: Document) -> int:
    """Days since 1970-01-01 of the document's publication date (-1 when unknown): the date filter's field."""
    day = published_date(doc.published)
    return -1 if day is None else (day - date(1970, 1, 1)).days


def doc_filter(doc_ids: Collection[str] | None) -> str:
    if doc_ids is None:
        return ""
    return f"doc_id in {json.dumps(sorted(doc_ids), ensure_ascii=False)}"


def document_rows(doc: Document, seq: int, sentences: int) -> list[dict[str, Any]]:
    """A document's rows of the documents collection: its text in parts first (Milvus limits a text
    field to 64 KiB; each part is keyed by the document's version), then the row readers trust."""
    vkey = version_key(doc)
    row: dict[str, Any] = {**document_row(doc), "_version": vkey, "_seq": seq, "_sentences": sentences}
    text = json.dumps(row, ensure_ascii=False)
    if len(text.encode("utf-8")) <= MAX_TEXT:
        return [{"doc_id": doc.doc_id, "row": text, "pad": [0.0, 0.0]}]
    body = row.pop("text")
    parts = [body[i : i + PART_CHARS] for i in range(0, len(body), PART_CHARS)]
    row["_parts"] = len(parts)
    out = [{"doc_id": PART_ID.format(vkey, i), "row": part, "pad": [0.0, 0.0]} for i, part in enumerate(parts)]
    return [*out, {"doc_id": doc.doc_id, "row": json.dumps(row, ensure_ascii=False), "pad": [0.0, 0.0]}]


def write_contents(c: Any, index: Contents, gen: Generation, *, fresh: bool) -> Generation:
    """Write ``index``'s documents that ``gen`` lacks (sentence rows, then the document row), then delete
    the documents it dropped and the rows of replaced versions."""
    meta = read_meta(c, gen.docs)
    if meta is None:
        meta = {"model": index.model, "dim": index.dim, "segmenter": SEGMENTER_NAME, "rows": gen.rows,
                "layout": LAYOUT, "codebook": 0}
    codec = index.tokens.codec if index.tokens is not None else None
    if codec is not None and not meta.get("codebook"):
        chunks = codec_chunks(codec)
        c.upsert(gen.docs, [{"doc_id": CODEC_ID.format(i), "row": part, "pad": [0.0, 0.0]}
                            for i, part in enumerate(chunks)])
        meta["codebook"] = len(chunks)
    c.upsert(gen.docs, [{"doc_id": META_ID, "row": json.dumps(meta), "pad": [0.0, 0.0]}])
    versions = {} if fresh else dict(gen.versions)
    vkeys = {doc_id: version_key(d) for doc_id, d in index.documents.items()}  # one hash per document
    changed = [d for d in index.documents.values() if versions.get(d.doc_id) != vkeys[d.doc_id]]
    replaced = [versions[d.doc_id] for d in changed if d.doc_id in versions]
    stored = {} if fresh else dict(gen.stored)
    restated = [d for d in index.documents.values()
                if versions.get(d.doc_id) == vkeys[d.doc_id] and stored.get(d.doc_id) != d]  # new metadata only
    dropped = [i for i in index.dropped if i in versions and i not in index.documents]
    terms = terms_of(index, [r for d in changed for r in index.rows_of(d.doc_id)])
    for lo in range(0, len(terms), BATCH):
        batch = []
        for r, words in terms[lo : lo + BATCH]:
            s = index.sentences[r]
            doc = index.documents[s.doc_id]
            batch.append({"key": f"{vkeys[s.doc_id]}:{s.n}", "doc_id": s.doc_id, "vkey": vkeys[s.doc_id],
                          "n": s.n, "start": s.start, "stop": s.end, "day": published_day(doc),
                          "terms": words, "dense": index.vectors[r].tolist(),
                          "tok": encode_tokens(index.tokens, r) if index.tokens is not None else ""})
        c.insert(gen.rows, batch)
    if changed:
        c.flush(gen.rows)
    seq = time.time_ns()
    counts = {} if fresh else dict(gen.counts)
    for d in changed:
        counts[d.doc_id] = len(index.rows_of(d.doc_id))
    docs = [r for i, d in enumerate(changed + restated) for r in document_rows(d, seq + i, counts.get(d.doc_id, 0))]
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
        versions[d.doc_id], stored[d.doc_id] = vkeys[d.doc_id], d
    for i in dropped:
        versions.pop(i, None)
        stored.pop(i, None)
        counts.pop(i, None)
    return Generation(gen.docs, gen.rows, versions, stored, counts)


def terms_of(index: Contents, rows: Sequence[int]) -> list[tuple[int, str]]:
    """Each row's BM25 terms as the product sees them (stemmed, stop-worded), for Milvus's BM25 function."""
    from qa.index.terms import tokenize

    out = []
    for lo in range(0, len(rows), 4096):
        part = rows[lo : lo + 4096]
        for r, words in zip(part, tokenize([index.sentences[r].text for r in part]), strict=True):
            out.append((r, " ".join(words)[:MAX_TEXT // 4]))
    return out


def encode_tokens(tokens: TokenTable, row: int) -> str:
    """One sentence's token codes (coarse ids, then residual codes) as base64 text."""
    b, s, e = (int(x) for x in tokens.spans[row])
    check = tokens.checks[b]
    if check is not None:
        check(s, e)
    ids, codes = tokens.blocks[b]
    return base64.b64encode(ids[s:e].astype("<u2").tobytes() + codes[s:e].tobytes()).decode("ascii")


def decode_tokens(codec: TokenCodec, texts: Sequence[str]) -> TokenTable:
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


def codec_chunks(codec: TokenCodec) -> list[str]:
    buf = io.BytesIO()
    savez: Any = np.savez
    savez(buf, allow_pickle=False, **codec.arrays())
    text = base64.b64encode(buf.getvalue()).decode("ascii")
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]


def read_codec(c: Any, docs_name: str, parts: int) -> TokenCodec:
    ids = [CODEC_ID.format(i) for i in range(parts)]
    found = {r["doc_id"]: r["row"] for r in c.query(docs_name, ids=ids, output_fields=["doc_id", "row"])}
    if set(found) != set(ids):
        raise StoreError("milvus", "holds an incomplete token codebook", "Rebuild the collection with --rebuild.")
    with np.load(io.BytesIO(base64.b64decode("".join(found[i] for i in ids))), allow_pickle=False) as npz:
        return TokenCodec.from_arrays({name: npz[name] for name in npz.files})


def read_meta(c: Any, docs_name: str) -> dict[str, Any] | None:
    found = c.query(docs_name, filter=f'doc_id == "{META_ID}"', output_fields=["row"])
    return json.loads(found[0]["row"]) if found else None


@dataclass(frozen=True)
class StoredDocuments:
    """What the documents collection of the current generation holds."""

    meta: dict[str, Any]  # what the index was built with, and its sentences collection
    documents: list[Document]  # committed documents, in the order they were added
    versions: dict[str, str]  # doc_id -> version key
    sentences: dict[str, int]  # doc_id -> sentence count, as written
    collections: tuple[str, str]  # (documents, sentences)
    codec: TokenCodec | None  # the rerank's codebook


def read_documents(c: Any, t: MilvusTarget) -> StoredDocuments:
    """The current generation's documents collection, whole documents only (long texts joined again)."""
    current = current_generation(c, t)
    if current is None:
        raise IndexNotFoundError(t.spec)
    docs_name, rows_name, meta = current
    every = all_rows(c, docs_name, ["doc_id", "row"])
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
    return StoredDocuments(
        meta,
        [document_from_row({k: v for k, v in r.items() if not k.startswith("_")}) for r in parsed],
        {str(r["doc_id"]): str(r["_version"]) for r in parsed},
        {str(r["doc_id"]): int(r.get("_sentences", 0)) for r in parsed},
        (docs_name, rows_name),
        read_codec(c, docs_name, int(meta["codebook"])) if meta.get("codebook") else None,
    )


def current_generation(
    c: Any, t: MilvusTarget, *, any_layout: bool = False
) -> tuple[str, str, dict[str, Any]] | None:
    """The (documents, sentences) collections the alias ``t.collection`` names now, and the meta row;
    None before the first save. ``any_layout``: also an older layout's (a rebuild replaces it)."""
    if not c.has_collection(t.collection):
        return None
    from pymilvus.exceptions import MilvusException

    try:
        docs_name = c.describe_alias(t.collection).get("collection_name")
    except MilvusException:  # a collection of that name, not an alias: not ours
        docs_name = None
    meta = read_meta(c, docs_name) if docs_name else None
    if meta is None or not isinstance(meta.get("rows"), str):
        raise StoreError(t.spec, "holds a collection qa did not write",
                         "Choose another collection name, or drop that collection.")
    if meta.get("layout") != LAYOUT and not any_layout:
        raise StoreError(t.spec, "was written by an older version of qa",
                         "Index it again with --rebuild (the old collections are replaced only when it succeeds).")
    return str(docs_name), str(meta["rows"]), meta


def create(c: Any, docs_name: str, rows_name: str, dim: int) -> None:
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


def all_rows(c: Any, collection: str, fields: list[str]) -> list[dict[str, Any]]:
    """Every row of a collection, page by page."""
    return list(pages(c, collection, fields))


def pages(c: Any, collection: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    it = c.query_iterator(collection, batch_size=PAGE, filter="", output_fields=fields)
    try:
        while page := it.next():
            yield from (dict(r) for r in page)
    finally:
        it.close()


_CLIENTS: dict[str, Any] = {}  # one client per server, shared by its collections
CONNECT_TIMEOUT = 15.0  # seconds to connect (a busy Milvus Lite is slow to accept); one client per server


def call(t: MilvusTarget, fn: Callable[[Any], T]) -> T:
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
            raise StoreError(t.spec, f"cannot be reached ({first_line(text)})",
                             f"Start Milvus there (for a local test server: python -m milvus_lite server "
                             f"--data-dir DIR --host {t.host} --port {t.port}), or check --store / QA_STORE.") from exc
        if "auth" in text.lower() or "permission" in text.lower():
            raise StoreError(t.spec, "refused the credentials", "Check the Milvus user and password.") from exc
        raise StoreError(t.spec, f"failed: {exc}",
                         "Check the server's log; --rebuild writes the collection anew.") from exc


def first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "no detail"
