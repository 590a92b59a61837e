"""Query latency and recall at one corpus size, and the cost of adding an article to it."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qa.embed import Embedder, TokenVectors
from qa.tools.bench.corpus import base_corpus, synthetic_corpus
from qa.tools.bench.measure import CACHE_DIR, each, exact_top, latency, recall_at

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.index import FaissIndex
    from qa.pipeline import Pipeline


class _Counting(Embedder):
    """The product's embedder, counting what the rerank asks it to encode (its token cache's misses)."""

    can_encode_tokens: ClassVar[bool] = True

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.counting = False
        self.texts = 0
        self.chars = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.inner.encode(texts)

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        if self.counting:
            self.texts += len(texts)
            self.chars += sum(len(t) for t in texts)
        return self.inner.encode_tokens(texts)


def child_query(params: dict[str, Any]) -> dict[str, Any]:
    """Latency and recall at one corpus size."""
    from qa.answer import ExtractiveGenerator
    from qa.embed import make_embedder
    from qa.index import FaissIndex
    from qa.index.vectors import choose_index_type
    from qa.ingest import SEGMENTER_NAME
    from qa.pipeline import Pipeline
    from qa.retrieve import RetrievalConfig, Retriever

    n = int(params["size"])
    cache_dir = Path(params.get("cache_dir") or CACHE_DIR)
    texts, base_vectors, qtexts, base_tokens = base_corpus(Path(params["squad"]), cache_dir)
    n_q = int(params.get("queries", 200))
    warm, qtexts, qfresh = question_sets(qtexts, n_q)
    t = time.perf_counter()
    docs, sentences, vectors, tokens = synthetic_corpus(n, texts, base_vectors, tokens=base_tokens)
    corpus_s = time.perf_counter() - t
    index_type = choose_index_type(n)
    t = time.perf_counter()
    faiss_index, cached = _cached_index(vectors, index_type, cache_dir)
    faiss_build_s = time.perf_counter() - t
    embedder = _Counting(make_embedder())
    t = time.perf_counter()
    index = FaissIndex(  # builds the BM25 index of the sentences
        docs,
        sentences,
        vectors,
        model=embedder.name,
        segmenter=SEGMENTER_NAME,
        chunking={"unit": "sentence", "context": 1},
        index_type=index_type,
        index=faiss_index,
        tokens=tokens,
    )
    lexical_build_s = time.perf_counter() - t
    pipe = Pipeline(index, embedder=embedder, generator=ExtractiveGenerator())
    qvec = embedder.encode(qtexts)
    truth = exact_top(index.vectors, qvec, 10)
    _, found = index.dense_search(qvec, 10)
    for q in warm:
        pipe.ask(q, llm="extractive")
    embedder.counting = True
    retrieval = RetrievalConfig()
    stage1 = Retriever(index, embedder, RetrievalConfig(rerank=False))  # the same index without the rerank
    out: dict[str, Any] = {
        "size": n,
        "documents": len(docs),
        "index_type": index_type,
        "synthetic_vectors": max(0, n - len(texts)),
        "corpus_s": round(corpus_s, 1),
        "faiss_build_s": round(faiss_build_s, 2),
        "faiss_index_cached": cached,
        "lexical_build_s": round(lexical_build_s, 2),
        "recall_at_10": round(recall_at(truth, found, 10), 4),
        "queries": len(qtexts),
        "reranks": retrieval.rerank and embedder.can_encode_tokens,
        "stored_tokens": index.tokens is not None,
        "latency": {
            "encode": latency(each(lambda q: embedder.encode([q]), qtexts)),
            "bm25": latency(each(index.lexical.scores, qtexts)),
            "faiss": latency(each(lambda v: index.dense_search(v[None, :], retrieval.candidates), list(qvec))),
            "stage1": latency(each(lambda q: stage1.search(q, pipe.settings.top_k), qtexts)),
            **answer_latency(pipe, qtexts, qfresh),
        },
    }
    if embedder.texts:
        reranked = len(qtexts) + len(qfresh)  # the retrieval and end-to-end phases (stage1 has no rerank)
        out["rerank_texts_per_query"] = round(embedder.texts / reranked, 1)
        out["rerank_chars_per_query"] = round(embedder.chars / reranked, 1)
    if n <= DISK_MAX:
        out["disk"] = disk_bytes(index, Path(params["disk_dir"]) if params.get("disk_dir") else None)
    if params.get("add"):
        out["add_article"] = _measure_add(pipe, texts)
    return out


def question_sets(qtexts: Sequence[str], n_q: int) -> tuple[list[str], list[str], list[str]]:
    """Warm-up, retrieval and end-to-end questions: disjoint, so no phase finds the answers of an earlier
    one in the rerank's token cache."""
    return list(qtexts[:5]), list(qtexts[5 : 5 + n_q]), list(qtexts[5 + n_q : 5 + 2 * n_q] or qtexts[5 : 5 + n_q])


def answer_latency(pipe: Pipeline, qtexts: Sequence[str], qfresh: Sequence[str]) -> dict[str, dict[str, float]]:
    """Retrieval and end-to-end extractive latency through ``Pipeline``: the one code path every store's
    query rows are timed by, so FAISS and Milvus rows compare like with like."""
    return {
        "retrieval": latency(each(pipe.retrieve, qtexts)),
        "end_to_end": latency(each(lambda q: pipe.ask(q, llm="extractive"), qfresh)),
    }


DISK_MAX = 1_000_000  # sentences: larger indexes are not written to disk by the benchmark
DISK_ROOM = 1.25  # free space wanted beyond the estimated size of the saved index
OPENS = 3  # opens timed per saved index (the first after the save, so all with the files in the page cache)


def disk_bytes(index: FaissIndex, where: Path | None = None) -> dict[str, Any]:
    """The saved FAISS index's bytes per sentence (all files, and the token codes with their codebook) and
    the time ``FaissIndex.load`` takes to open it, saved in a temporary folder under ``where`` (the system's
    temporary folder by default; a million sentences take gigabytes, so a folder without room is skipped)."""
    import json
    import shutil
    import tempfile

    from qa.index import FaissIndex

    n = max(1, len(index))
    where = Path(where or tempfile.gettempdir())
    token_bytes = index.tokens.referenced * (2 + index.tokens.codec.code_bytes) if index.tokens is not None else 0
    estimate = 2 * index.vectors.nbytes + token_bytes  # vectors, FAISS's copy of them, the token codes
    free = shutil.disk_usage(where).free
    if free < DISK_ROOM * estimate:
        return {"skipped": f"{free / 1e9:.1f} GB free in {where}, saving needs about {estimate / 1e9:.1f} GB"}
    # synthetic sentences borrow real sentences' codes: pack them so each sentence's codes are written
    tokens = index.tokens.packed() if index.tokens is not None else None
    own = FaissIndex(list(index.documents.values()), index.sentences, index.vectors, model=index.model,
                     segmenter=index.segmenter, chunking=index.chunking, index_type=index.index_type,
                     index=index.index, tokens=tokens, lexical=index.lexical)
    del tokens
    with tempfile.TemporaryDirectory(prefix="qa-bench-disk-", dir=where) as tmp:
        t = time.perf_counter()
        own.save(tmp)
        save_s = time.perf_counter() - t
        del own
        files = json.loads((Path(tmp) / "manifest.json").read_text(encoding="utf-8"))["files"]
        opens, firsts = [], []
        for _ in range(OPENS):
            t = time.perf_counter()
            loaded = FaissIndex.load(tmp)
            opens.append(time.perf_counter() - t)
            # the first search waits for the checksums of the vectors and FAISS file (hashed after the open)
            t = time.perf_counter()
            loaded.dense_search(np.asarray(loaded.vectors[:1]), 10)
            firsts.append(time.perf_counter() - t)
            del loaded
    token_bytes = sum(int(f["bytes"]) for role, f in files.items() if role.startswith("token"))
    return {"bytes_per_sentence": round(sum(int(f["bytes"]) for f in files.values()) / n),
            "token_bytes_per_sentence": round(token_bytes / n), "save_s": round(save_s, 2),
            "open_s": round(min(opens), 2), "open_runs_s": [round(x, 2) for x in opens],
            "first_search_s": round(firsts[opens.index(min(opens))], 2)}


def _cached_index(vectors: NDArray[np.float32], index_type: str, cache_dir: Path) -> tuple[Any, bool]:
    """Build the FAISS index; approximate indexes of large corpora are cached under artifacts/."""
    import faiss

    from qa.index.vectors import build_faiss

    if index_type == "flat" or len(vectors) < 500_000:
        return build_faiss(vectors, index_type), False
    h = hashlib.sha256(vectors[:: max(1, len(vectors) // 1000)].tobytes())
    h.update(f"{len(vectors)}|{index_type}|{_index_params()}".encode())
    path = cache_dir / f"faiss-{len(vectors)}-{index_type}-{h.hexdigest()[:16]}.index"
    if path.is_file():
        return faiss.read_index(str(path)), True
    index = build_faiss(vectors, index_type)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
    return index, False


def _index_params() -> str:
    """The source of the index builder: a cached index is rebuilt whenever the builder changes."""
    import inspect

    from qa.index import vectors

    return hashlib.sha256(inspect.getsource(vectors.build_faiss).encode()).hexdigest()


def _measure_add(pipe: Pipeline, texts: Sequence[str]) -> dict[str, Any]:
    """Add one real article (30 sentences) with the product's ``Pipeline.add``, in memory and to an index
    on disk, beside what a rebuild of the whole corpus would cost (FAISS training and BM25)."""
    from qa.answer import ExtractiveGenerator
    from qa.index import FaissIndex, LexicalIndex
    from qa.index.vectors import build_faiss
    from qa.ingest import segment
    from qa.pipeline import Pipeline
    from qa.types import Document

    def article(i: int) -> Document:
        return Document(doc_id=f"bench-added-article-{i}", text=" ".join(texts[30 * i : 30 * i + 30]), source="bench")

    n_new = len(segment(article(0)))
    before = len(pipe.index)
    out: dict[str, Any] = {"new_sentences": n_new, "corpus_sentences": before}
    t = time.perf_counter()
    pipe.embedder.encode([s.text for s in segment(article(0))])
    out["embed_article_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    pipe.add([article(0)])
    out["pipeline_add_s"] = round(time.perf_counter() - t, 3)
    CACHE_DIR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR.parent) as tmp:
        t = time.perf_counter()
        pipe.index.save(tmp)  # as ``qa index`` saves it
        out["save_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        on_disk = Pipeline.load(tmp, embedder=pipe.embedder, generator=ExtractiveGenerator())
        out["load_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        on_disk.add([article(1)])
        out["pipeline_add_saved_s"] = round(time.perf_counter() - t, 3)
        out["saved_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())
    index = pipe.index
    assert isinstance(index, FaissIndex)
    t = time.perf_counter()
    build_faiss(index.vectors, index.index_type)
    out["faiss_rebuild_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    LexicalIndex([s.text for s in index.sentences])
    out["bm25_rebuild_s"] = round(time.perf_counter() - t, 2)
    return out
