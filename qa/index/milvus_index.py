"""The index in Milvus: sentences, offsets, document metadata, dense vectors, BM25 terms and the rerank's
token codes in Milvus collections (their layout and protocol: ``qa.index.milvus_store``).

Several writers (``qa index --shard I/N`` on several machines) can add documents to one collection at
once, since each document is written as a unit; an interrupted write never loses the index;
``--rebuild`` writes a new generation beside the old one and switches the alias in one call.

Selected by ``milvus://HOST:PORT/COLLECTION`` (``--store`` or ``QA_STORE``). Each question's candidates
come from one ``hybrid_search`` (dense inner product and Milvus's own BM25 over the product's own stemmed
terms, fused by RRF), with the document filter pushed into both requests. The product's fitted scorer
then reads features (BM25 term presence, IDF mass, the neighbours' vectors) of those candidates; those are
computed from the sentences the client read back on open, exactly as for the FAISS store, so answers and
citations match.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qa.errors import ConfigError, IndexMismatchError, StoreError
from qa.index.base import CandidateRows, SentenceIndex
from qa.index.build import encode, plan_rows
from qa.index.lexical import LexicalIndex
from qa.index.milvus_store import (
    RRF_K,
    SLACK,
    TOPK_MAX,
    Contents,
    Generation,
    MilvusTarget,
    all_rows,
    call,
    create,
    current_generation,
    decode_tokens,
    doc_filter,
    read_documents,
    version_key,
    write_contents,
)
from qa.index.tokens import TokenTable
from qa.ingest import segment
from qa.types import Document, Sentence

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder

__all__ = ["MilvusIndex", "MilvusTarget", "Shard", "document_entries", "index_shard"]


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
        generation: Generation | None = None,
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
        vkeys = {doc_id: version_key(d) for doc_id, d in self.documents.items()}  # one hash per document
        self._keys = {f"{vkeys[s.doc_id]}:{s.n}": i for i, s in enumerate(self.sentences)}

    def rows_of(self, doc_id: str) -> list[int]:
        return self._by_doc.get(doc_id, [])

    def contents(self) -> Contents:
        """What a save writes (``qa.index.milvus_store.write_contents``)."""
        return Contents(self.documents, self.sentences, self.vectors, self.tokens, self.model, self.dropped,
                        self._by_doc)

    def _collection(self) -> str:
        if self._generation is None:
            raise StoreError(self.target.spec, "has not been written yet", "Save the index before searching it.")
        return self._generation.rows

    def _rows_of_hits(self, hits: Any) -> list[tuple[int, float]]:
        """Local rows and scores of Milvus hits, best first (rows of versions this snapshot does not hold
        are skipped)."""
        out = []
        for hit in hits:
            row = self._keys.get(str(hit["entity"]["key"]))
            if row is not None:
                out.append((row, float(hit["distance"])))
        return out

    def dense_search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Milvus's search (inner product); rows of -1 mean fewer than ``k`` results."""
        k = max(1, min(k, len(self.sentences)))
        q = np.ascontiguousarray(query, dtype=np.float32)
        rows = self._collection()
        limit = min(k + SLACK, TOPK_MAX)
        found = call(self.target, lambda c: c.search(rows, data=q.tolist(), anns_field="dense", limit=limit,
                                                      output_fields=["key"], search_params={"metric_type": "IP"}))
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        for i, hits in enumerate(found):
            for j, (row, score) in enumerate(self._rows_of_hits(hits)[:k]):
                ids[i, j], scores[i, j] = row, score
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
        expr = doc_filter(doc_ids)

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

        found = self._rows_of_hits(next(iter(call(self.target, search))))
        ranked = np.array([row for row, _ in found[: 2 * k]], dtype=np.int64)
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

        def write(c: Any) -> Generation:
            gen = self._generation
            if gen is not None:
                current = current_generation(c, t)
                if current is None or current[:2] != (gen.docs, gen.rows):
                    raise StoreError(t.spec, "was rebuilt by another writer since this index was read",
                                     "Run the command again: it reads the new generation.")
                return write_contents(c, self.contents(), gen, fresh=False)
            name = secrets.token_hex(4)
            gen = Generation(f"{t.collection}__d{name}", f"{t.collection}__r{name}")
            create(c, gen.docs, gen.rows, self.dim)
            previous = current_generation(c, t, any_layout=True)
            done = write_contents(c, self.contents(), gen, fresh=True)
            if previous is None:
                c.create_alias(gen.docs, t.collection)
            else:
                c.alter_alias(gen.docs, t.collection)
                for old in previous[:2]:  # the previous generation, no longer named by the alias
                    if c.has_collection(old):
                        c.drop_collection(old)
            return done

        self._generation = call(t, write)

    @classmethod
    def load(cls, spec: str, *, expect_model: str | None = None) -> MilvusIndex:
        """Read the index back from Milvus: whole documents only (BM25's postings are rebuilt locally)."""
        t = MilvusTarget.parse(spec)
        found = call(t, lambda c: read_documents(c, t))
        meta, docs, versions, gen_names, codec = (found.meta, found.documents, found.versions, found.collections,
                                                  found.codec)
        if expect_model is not None and meta.get("model") != expect_model:
            raise IndexMismatchError(t.spec, f"it was built with the embedding model {meta.get('model')!r}, "
                                             f"not {expect_model!r}")
        fields = ["key", "doc_id", "vkey", "n", "start", "stop", "dense"] + (["tok"] if codec is not None else [])
        rows = call(t, lambda c: all_rows(c, gen_names[1], fields))
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
        tokens = decode_tokens(codec, [str(r["tok"]) for r in ordered]) if codec is not None else None
        gen = Generation(gen_names[0], gen_names[1], {d.doc_id: versions[d.doc_id] for d in documents},
                         {d.doc_id: d for d in documents}, {d.doc_id: len(by_doc[d.doc_id]) for d in documents})
        return cls(t, documents, sentences, vectors, model=str(meta["model"]), tokens=tokens, generation=gen)


def index_shard(
    spec: str, documents: Sequence[Document], embedder: Embedder, shard: Shard, *, progress: bool = False
) -> tuple[int, int]:
    """Add this shard's share of ``documents`` to the store without reading its sentences back: documents
    whose version is there already are skipped; changed ones are replaced. Several shards may run at once
    (each writes only its own documents). Returns (documents written, documents unchanged)."""
    t = MilvusTarget.parse(spec)
    found = call(t, lambda c: read_documents(c, t))
    meta, docs, versions, codec = found.meta, found.documents, found.versions, found.codec
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
                           lexical=LexicalIndex([]),
                           generation=Generation(*found.collections, versions, stored, found.sentences))
        part.save()
    return len(todo), len(mine) - len(todo)


def document_entries(spec: str) -> dict[str, dict[str, Any]]:
    """What ``qa docs`` lists of each document in the store (as the FAISS manifest's entries), read from
    the documents collection only."""
    from qa.index.manifest import listed_entry

    t = MilvusTarget.parse(spec)
    found = call(t, lambda c: read_documents(c, t))
    return {d.doc_id: listed_entry(d, found.sentences.get(d.doc_id)) for d in found.documents}
