"""The index in Milvus: sentences, offsets, document metadata and dense vectors in Milvus collections.

``COLLECTION`` is an alias of the current generation's documents collection, whose meta row names its
sentences collection; a rewrite builds a new generation and switches the alias, as the FAISS store
switches its manifest, so an interrupted save never loses the index.

Selected by ``milvus://HOST:PORT/COLLECTION`` (``--store`` or ``QA_STORE``). Milvus holds the sentences
and their vectors and runs the dense search; each sentence's text is also indexed by Milvus's own BM25
function (a sparse field), for full-text queries by other tools. The product's fitted scorer reads BM25
features (term presence, IDF mass) that Milvus does not return, so the lexical side is scored locally
from the sentence texts read back on open, exactly as the FAISS store does: answers and citations match.
The rerank's token codes are not kept in Milvus yet (``tokens`` is None: the rerank encodes the few dozen
candidates per question). ``pymilvus`` is imported only here, and its errors become ``StoreError`` here.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from qa.errors import IndexMismatchError, IndexNotFoundError, StoreError
from qa.index.base import SentenceIndex
from qa.index.build import plan_rows
from qa.index.lexical import LexicalIndex
from qa.index.manifest import document_from_row, document_row
from qa.ingest import SEGMENTER_NAME
from qa.types import Document, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder

SCHEME = "milvus://"
META_ID = "__qa_index_meta__"  # the documents collection's row that says what the index was built with
MAX_TEXT = 65_535  # Milvus's VARCHAR limit (bytes)
BATCH = 1_000  # rows per insert or query page
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


class MilvusIndex(SentenceIndex):
    """Sentences and dense vectors in Milvus (searched there); BM25 features scored locally."""

    backend: ClassVar[str] = "milvus"
    #: The dense search runs in the store; the lexical features are computed here (see the module doc).
    dense_in_store: ClassVar[bool] = True
    lexical_in_store: ClassVar[bool] = False

    def __init__(
        self,
        target: MilvusTarget,
        documents: Sequence[Document],
        sentences: Sequence[Sentence],
        vectors: NDArray[np.float32],
        *,
        model: str,
        lexical: LexicalIndex | None = None,
        written: int = 0,
        rows_collection: str | None = None,
    ) -> None:
        if len(sentences) != len(vectors):
            raise ValueError("one vector per sentence is required")
        self.target = target
        self.documents: dict[str, Document] = {d.doc_id: d for d in documents}
        self.sentences: list[Sentence] = list(sentences)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.model = model
        self.tokens = None
        self.lexical = lexical if lexical is not None else LexicalIndex([s.text for s in self.sentences])
        self._written = written  # rows already in the collection, unchanged and in place (-1: rewrite all)
        self._rows = rows_collection  # the sentences' collection of the generation the alias names
        self._by_doc: dict[str, list[int]] = {}
        for i, s in enumerate(self.sentences):
            self._by_doc.setdefault(s.doc_id, []).append(i)

    def rows_of(self, doc_id: str) -> list[int]:
        return self._by_doc.get(doc_id, [])

    def dense_search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Milvus's search (inner product); rows of -1 mean fewer than ``k`` results."""
        k = max(1, min(k, len(self.sentences)))
        q = np.ascontiguousarray(query, dtype=np.float32)
        if self._rows is None:
            raise StoreError(self.target.spec, "has not been written yet", "Save the index before searching it.")
        rows = self._rows
        found = _call(self.target, lambda c: c.search(rows, data=q.tolist(), anns_field="dense",
                                                      limit=k, output_fields=["row"],
                                                      search_params={"metric_type": "IP"}))
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        for i, hits in enumerate(found):
            for j, hit in enumerate(list(hits)[:k]):
                ids[i, j] = int(hit["entity"]["row"])
                scores[i, j] = float(hit["distance"])
        return scores, ids

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
        """As ``FaissIndex.build``: unchanged documents are not embedded again; when the old rows stay in
        place only the new ones are written to Milvus by ``save``."""
        rows = plan_rows(documents, embedder, previous=previous, progress=progress, remove=remove)
        old = previous if isinstance(previous, MilvusIndex) and previous.target == target else None
        written = old._written if old is not None and rows.appends else -1
        lexical = old.lexical.extend([s.text for s in rows.sentences[len(old):]]) if old and rows.appends else None
        return cls(target, rows.documents, rows.sentences, rows.vectors, model=embedder.name, lexical=lexical,
                   written=written, rows_collection=old._rows if old is not None and written >= 0 else None)

    def with_documents(
        self, documents: Sequence[Document], embedder: Embedder, *, progress: bool = False
    ) -> MilvusIndex:
        return MilvusIndex.build(self.target, documents, embedder, previous=self, progress=progress)

    def without_documents(self, doc_ids: Sequence[str], embedder: Embedder) -> MilvusIndex:
        return MilvusIndex.build(self.target, [], embedder, previous=self, remove=doc_ids)

    def save(self, path: str | Path | None = None) -> None:
        """Write what changed to the collections (``path`` is unused: the target names them)."""
        t = self.target
        for doc in self.documents.values():
            if len(doc.text.encode("utf-8")) > MAX_TEXT:
                raise StoreError(t.spec, f"cannot hold the document {doc.doc_id} ({len(doc.text):,} characters)",
                                 f"Milvus limits a text field to {MAX_TEXT:,} bytes; split the article.")

        def write(c: Any) -> str:
            current = _current(c, t)
            if self._written < 0 or current is None:
                # a new generation beside the old one, then one atomic alias switch: never a lost index
                gen = secrets.token_hex(4)
                docs_name, rows_name = f"{t.collection}__d{gen}", f"{t.collection}__r{gen}"
                _create(c, docs_name, rows_name, self.dim)
                start = 0
            else:
                docs_name, rows_name = current
                start = self._written
            rows = [
                {"row": i, "doc_id": s.doc_id, "n": s.n, "start": s.start, "stop": s.end, "text": s.text,
                 "dense": self.vectors[i].tolist()}
                for i, s in enumerate(self.sentences[start:], start)
            ]
            for lo in range(0, len(rows), BATCH):
                c.insert(rows_name, rows[lo : lo + BATCH])
            c.flush(rows_name)
            docs = [{"doc_id": d.doc_id, "row": json.dumps(document_row(d), ensure_ascii=False), "pad": [0.0, 0.0]}
                    for d in self.documents.values()]
            for lo in range(0, len(docs), BATCH):
                c.upsert(docs_name, docs[lo : lo + BATCH])
            stale = [d["doc_id"] for d in _all(c, docs_name, ["doc_id"])
                     if d["doc_id"] not in self.documents and d["doc_id"] != META_ID]
            if stale:
                c.delete(docs_name, ids=stale)
            # last: the row count readers trust (rows past it, from an interrupted append, are ignored)
            meta = {"model": self.model, "dim": self.dim, "segmenter": SEGMENTER_NAME, "sentences": len(self),
                    "rows": rows_name}
            c.upsert(docs_name, [{"doc_id": META_ID, "row": json.dumps(meta), "pad": [0.0, 0.0]}])
            c.flush(docs_name)
            if current is None and not c.has_collection(t.collection):
                c.create_alias(docs_name, t.collection)
            elif current is not None and current[0] != docs_name:
                c.alter_alias(docs_name, t.collection)
                for old in current:  # the previous generation, no longer named by the alias
                    if c.has_collection(old):
                        c.drop_collection(old)
            return rows_name

        self._rows = _call(t, write)
        self._written = len(self)

    @classmethod
    def load(cls, spec: str, *, expect_model: str | None = None) -> MilvusIndex:
        """Read the index back from Milvus (documents, sentences and vectors; BM25 is rebuilt locally)."""
        t = MilvusTarget.parse(spec)

        def read(c: Any) -> tuple[dict[str, Any], list[Document], list[dict[str, Any]], str]:
            current = _current(c, t)
            if current is None:
                raise IndexNotFoundError(t.spec)
            rows = _all(c, current[0], ["doc_id", "row"])
            meta = next(json.loads(r["row"]) for r in rows if r["doc_id"] == META_ID)
            sentences = [r for r in _all(c, current[1], ["row", "doc_id", "n", "start", "stop", "dense"])
                         if int(r["row"]) < int(meta["sentences"])]
            used = {r["doc_id"] for r in sentences}
            docs = [document_from_row(json.loads(r["row"])) for r in rows if r["doc_id"] in used]
            return meta, docs, sentences, current[1]

        meta, docs, rows, rows_name = _call(t, read)
        if expect_model is not None and meta.get("model") != expect_model:
            raise IndexMismatchError(t.spec, f"it was built with the embedding model {meta.get('model')!r}, "
                                             f"not {expect_model!r}")
        rows.sort(key=lambda r: int(r["row"]))
        by_id = {d.doc_id: d for d in docs}
        sentences = [Sentence(r["doc_id"], int(r["n"]), int(r["start"]), int(r["stop"]),
                              by_id[r["doc_id"]].text[int(r["start"]) : int(r["stop"])]) for r in rows]
        vectors = np.array([r["dense"] for r in rows], dtype=np.float32).reshape(len(rows), int(meta["dim"]))
        return cls(t, docs, sentences, vectors, model=str(meta["model"]), written=len(rows), rows_collection=rows_name)


def _current(c: Any, t: MilvusTarget) -> tuple[str, str] | None:
    """The (documents, sentences) collections the alias ``t.collection`` names now; None before the first save."""
    if not c.has_collection(t.collection):
        return None
    from pymilvus.exceptions import MilvusException

    try:
        docs_name = c.describe_alias(t.collection).get("collection_name")
    except MilvusException:  # a collection of that name, not an alias: not ours
        docs_name = None
    meta = None
    if docs_name:
        found = c.query(docs_name, filter=f'doc_id == "{META_ID}"', output_fields=["row"])
        meta = json.loads(found[0]["row"]) if found else None
    if meta is None or not isinstance(meta.get("rows"), str):
        raise StoreError(t.spec, "holds a collection qa did not write",
                         "Choose another collection name, or drop that collection.")
    return str(docs_name), str(meta["rows"])


def _create(c: Any, docs_name: str, rows_name: str, dim: int) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("row", DataType.INT64, is_primary=True)
    s.add_field("doc_id", DataType.VARCHAR, max_length=1024)
    s.add_field("n", DataType.INT64)
    s.add_field("start", DataType.INT64)
    s.add_field("stop", DataType.INT64)
    s.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))
    ip = c.prepare_index_params()
    ip.add_index(field_name="dense", index_type="FLAT", metric_type="IP")
    ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
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
    it = c.query_iterator(collection, batch_size=BATCH, filter="", output_fields=fields)
    out: list[dict[str, Any]] = []
    try:
        while page := it.next():
            out.extend(dict(r) for r in page)
    finally:
        it.close()
    return out


_CLIENTS: dict[MilvusTarget, Any] = {}


def _call(t: MilvusTarget, fn: Callable[[Any], T]) -> T:
    """Run ``fn`` with a client of ``t``; every pymilvus or gRPC failure becomes a ``StoreError``."""
    from pymilvus.exceptions import MilvusException

    try:
        client = _CLIENTS.get(t)
        if client is None:
            from pymilvus import MilvusClient

            client = _CLIENTS[t] = MilvusClient(uri=t.uri, timeout=10)
        return fn(client)
    except MilvusException as exc:
        _CLIENTS.pop(t, None)
        text = str(exc)
        if "connect" in text.lower() or "unavailable" in text.lower() or "timeout" in text.lower():
            raise StoreError(t.spec, "cannot be reached",
                             f"Start Milvus there (for a local test server: python -m milvus_lite server "
                             f"--data-dir DIR --host {t.host} --port {t.port}), or check --store / QA_STORE.") from exc
        if "auth" in text.lower() or "permission" in text.lower():
            raise StoreError(t.spec, "refused the credentials", "Check the Milvus user and password.") from exc
        raise StoreError(t.spec, f"failed: {exc}",
                         "Check the server's log; --rebuild writes the collection anew.") from exc
