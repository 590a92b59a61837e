"""``qa bench``: measure the product's speed and cost on this machine, in one run, as one table.

What it measures (each heavy part runs in its own child process, so its peak memory is its own):

* **build** — index-build throughput of the product's embedder path (``qa.pipeline._encode`` with
  ``qa.embed.make_embedder()``) beside plain ``SentenceTransformer.encode`` on the same sentences,
  interleaved round by round; the ratio of the best rounds is the figure (medians are kept too).
* **quality** — the faster runtimes against torch on SQuAD articles and the seed QA set: cosine of the
  vectors, dense hit@1/recall@5 and the product retriever's hit@1 (gold = the sentence holding the answer).
* **query N** — for corpora of N sentences: FAISS build time, recall@10 of the product index against
  exact search, and p50/p95 latency of the question encoder, BM25, FAISS, retrieval and the
  end-to-end extractive answer. Corpora larger than the real sentences are synthetic: vectors mix two
  real sentence vectors plus noise (so they have the structure of real embeddings), texts are drawn
  from the real word stream; the FAISS search and everything after it are real.
* **cold start** — wall time and peak memory of ``qa ask`` as a new process on an existing index
  beside ``python -c "import sentence_transformers"``, alternated.

``python -m qa.bench --quick`` fits in a few minutes; the full run (up to 1M sentences) in about ten.
Results are written as JSON (default ``artifacts/bench.json``) so later runs can be compared.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.config import PROJECT_ROOT

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from qa.embed import Embedder
    from qa.store import TokenTable
    from qa.types import Document, Sentence

SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000, 100_000)
DEFAULT_JSON = PROJECT_ROOT / "artifacts" / "bench.json"
CACHE_DIR = PROJECT_ROOT / "artifacts" / "bench-cache"
SQUAD = PROJECT_ROOT.parent / "shared" / "data" / "squad-v2-dev.json"
SEED_QA = PROJECT_ROOT.parent / "shared" / "data" / "seed-qa-dev.jsonl"
COLD_QUESTION = "Who stayed in Washington despite the cancellation?"
TARGETS = {
    "build_ratio": 3.0,
    "quality_points": 0.5,
    "p95_ms_100k": 30.0,
    "p95_ms_1m": 50.0,
    "recall_at_10": 0.95,
}
HEAVY_MODULES = ("torch", "sentence_transformers", "transformers", "gradio")


# ----- small helpers ------------------------------------------------------------------------------------


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of durations given in seconds, in milliseconds.

    >>> percentile_ms([0.001, 0.002, 0.003], 50)
    2.0
    """
    return float(np.percentile(np.asarray(seconds, dtype=np.float64), q) * 1000.0) if seconds else float("nan")


def latency(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of durations, in milliseconds, rounded for the table."""
    return {
        "p50_ms": round(percentile_ms(seconds, 50), 2),
        "p95_ms": round(percentile_ms(seconds, 95), 2),
        "mean_ms": round(float(np.mean(seconds)) * 1000.0, 2) if seconds else float("nan"),
        "n": len(seconds),
    }


def recall_at(truth: NDArray[np.int64], found: NDArray[np.int64], k: int) -> float:
    """Mean fraction of each row's exact top ``k`` that the approximate top ``k`` also holds.

    >>> recall_at(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 9]]), 2)
    0.75
    """
    hits = [len(set(t[:k].tolist()) & set(f[:k].tolist())) / k for t, f in zip(truth, found, strict=True)]
    return float(np.mean(hits)) if hits else float("nan")


def exact_top(
    vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int, *, step: int = 200_000
) -> NDArray[np.int64]:
    """Exact inner-product top ``k`` by numpy, in chunks (the reference for recall)."""
    n = len(vectors)
    k = min(k, n)
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for lo in range(0, n, step):
        s = queries @ vectors[lo : lo + step].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
        best_i = np.concatenate([best_i, part + lo], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    return best_i


def _mib(kib: float) -> float:
    return round(kib / 1024.0, 1)


def _each(fn: Callable[[Any], object], items: Sequence[Any]) -> list[float]:
    """Seconds each call ``fn(item)`` took."""
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t)
    return out


# ----- data ---------------------------------------------------------------------------------------------


def squad_documents(path: Path, articles: int | None = None) -> tuple[list[Document], list[tuple[str, str, int]]]:
    """SQuAD articles as documents (paragraphs joined as lines) and ``(question, doc_id, answer offset)``."""
    from qa.types import Document

    raw = json.loads(path.read_text(encoding="utf-8"))
    docs: list[Document] = []
    questions: list[tuple[str, str, int]] = []
    for article in raw["data"][:articles]:
        title = str(article["title"])
        offset = 0
        parts = []
        for para in article["paragraphs"]:
            context = str(para["context"])
            for qa in para["qas"]:
                if not qa.get("is_impossible") and qa.get("answers"):
                    questions.append((str(qa["question"]), title, offset + int(qa["answers"][0]["answer_start"])))
            parts.append(context)
            offset += len(context) + 1
        docs.append(Document(doc_id=title, text="\n".join(parts), source=str(path)))
    return docs, questions


def seed_documents() -> list[Document]:
    from qa import config
    from qa.ingest import read_documents

    settings = config.resolve()
    return read_documents([settings.seeds_dir], max_bytes=settings.max_file_bytes)


def _corpus(path: Path, articles: int | None) -> tuple[list[Document], list[tuple[str, str, int]]]:
    if path.is_file():
        return squad_documents(path, articles)
    docs = seed_documents()  # without the SQuAD file, the seed article(s) and no graded questions
    return docs, []


def _base(squad: Path, cache_dir: Path) -> tuple[list[str], NDArray[np.float32], list[str], TokenTable | None]:
    """Real sentences, their vectors and stored tokens from the product embedder, and real questions (cached)."""
    from qa.embed import make_embedder
    from qa.ingest import segment
    from qa.pipeline import _encode
    from qa.store import TokenTable

    docs, questions = _corpus(squad, None)
    texts = [s.text for d in docs for s in segment(d)]
    qtexts = [q for q, _, _ in questions] or [COLD_QUESTION]
    embedder = make_embedder()
    key = hashlib.sha256(("\n".join(texts) + "\x00" + embedder.name + str(getattr(embedder, "directory", ""))).encode())
    stem = f"base-{key.hexdigest()[:16]}"
    cache = cache_dir / f"{stem}.npy"
    parts = ("codes", "scales", "spans")
    token_files = [cache_dir / f"{stem}-tokens-{part}.npy" for part in parts]
    tokens: TokenTable | None = None
    if cache.is_file() and all(p.is_file() for p in token_files):
        vectors = np.load(cache, allow_pickle=False)
        codes, scales, spans = (np.load(p, allow_pickle=False) for p in token_files)
        tokens = TokenTable([(codes, scales)], spans)
    else:
        vectors, tokens = _encode(embedder, texts, progress=False)  # what ``qa index`` stores
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors, allow_pickle=False)
        if tokens is not None:
            tokens = tokens.packed()
            arrays: tuple[NDArray[Any], ...] = (tokens.blocks[0][0], tokens.blocks[0][1], tokens.spans)
            for p, arr in zip(token_files, arrays, strict=True):
                np.save(p, arr, allow_pickle=False)
    return texts, vectors, qtexts, tokens


def synthetic_corpus(
    n: int,
    texts: Sequence[str],
    vectors: NDArray[np.float32],
    *,
    per_doc: int = 20,
    seed: int = 0,
    tokens: TokenTable | None = None,
) -> tuple[list[Document], list[Sentence], NDArray[np.float32], TokenTable | None]:
    """``n`` sentences in documents of ``per_doc``: real ones while they last, synthetic beyond.

    Synthetic vectors are ``a·v_i + (1-a)·v_j + noise`` of two real sentence vectors (a in [0.5, 1]),
    normalised; synthetic texts have a real sentence's length in words drawn from the real word stream,
    and that sentence's stored tokens (a span into the real codes: the rerank's gather is real, the
    codes of a million sentences need not be held).
    """
    from qa.embed import normalize
    from qa.types import Document, Sentence

    rng = np.random.default_rng(seed)
    base = len(texts)
    token_rows = np.arange(min(n, base), dtype=np.int64)
    if n <= base:
        chosen = list(texts[:n])
        out = np.ascontiguousarray(vectors[:n], dtype=np.float32)
    else:
        words = np.array(" ".join(texts).split())
        lengths = np.array([max(1, len(t.split())) for t in texts])
        chosen = list(texts)
        extra = n - base
        source = rng.integers(0, base, extra)
        lens = lengths[source]
        starts = rng.integers(0, len(words), extra)
        pool = rng.integers(0, len(words), int(lens.sum()))
        pos = 0
        for length in lens.tolist():
            chosen.append(" ".join(words[pool[pos : pos + length]].tolist()) + ".")
            pos += length
        del starts
        token_rows = np.concatenate([token_rows, source.astype(np.int64)])
        out = np.empty((n, vectors.shape[1]), dtype=np.float32)
        out[:base] = vectors
        step = 100_000
        for lo in range(base, n, step):
            hi = min(n, lo + step)
            i = rng.integers(0, base, hi - lo)
            j = rng.integers(0, base, hi - lo)
            a = rng.uniform(0.5, 1.0, (hi - lo, 1)).astype(np.float32)
            noise = rng.normal(0.0, 0.03, (hi - lo, vectors.shape[1])).astype(np.float32)
            out[lo:hi] = normalize(a * vectors[i] + (1 - a) * vectors[j] + noise)
    docs: list[Document] = []
    sentences: list[Sentence] = []
    for d, lo in enumerate(range(0, n, per_doc)):
        doc_id = f"synthetic-{d:07d}"
        parts = chosen[lo : lo + per_doc]
        text = " ".join(parts)
        docs.append(Document(doc_id=doc_id, text=text, source="synthetic"))
        start = 0
        for k, part in enumerate(parts):
            sentences.append(Sentence(doc_id=doc_id, n=k, start=start, end=start + len(part), text=part))
            start += len(part) + 1
    return docs, sentences, out, (tokens.take(token_rows) if tokens is not None else None)


# ----- child sections -----------------------------------------------------------------------------------


def _plain_encoder() -> Callable[[list[str]], object]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from qa.config import DEFAULT_EMBED_MODEL
    from qa.embed import resolve_model_path

    model = SentenceTransformer(resolve_model_path(DEFAULT_EMBED_MODEL), device="cpu")
    return lambda texts: model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)


def child_build(params: dict[str, Any]) -> dict[str, Any]:
    """Throughput of one encoder on the benchmark sentences (``plain`` = SentenceTransformer.encode)."""
    from qa.embed import make_embedder
    from qa.ingest import segment
    from qa.pipeline import _encode, build_store
    from qa.types import Document

    docs, _ = _corpus(Path(params["squad"]), params.get("articles"))
    t = time.perf_counter()
    texts = [s.text for d in docs for s in segment(d)]
    segment_s = time.perf_counter() - t
    limit = int(params.get("sentences") or 0)
    if 0 < limit < len(texts):  # an even sample, so short and long articles are both in it
        texts = [texts[i] for i in np.linspace(0, len(texts) - 1, limit).astype(int).tolist()]
        docs = [Document(doc_id=f"bench-{i}", text=" ".join(texts[i : i + 20])) for i in range(0, len(texts), 20)]
    kind = str(params["kind"])
    repeats = int(params.get("repeats", 1))
    t = time.perf_counter()
    if kind == "plain":
        encode = _plain_encoder()
        embedder: Embedder | None = None
    else:
        embedder = make_embedder(runtime=kind)
        emb = embedder
        encode = lambda texts: _encode(emb, texts, progress=False)  # noqa: E731 - the product's path
    encode(texts[:32])  # load and warm up
    load_s = time.perf_counter() - t
    wall, cpu = [], []
    for _ in range(repeats):
        c = time.process_time()
        w = time.perf_counter()
        encode(texts)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    out: dict[str, Any] = {
        "kind": kind,
        "sentences": len(texts),
        "load_s": round(load_s, 2),
        "segment_sent_per_s": round(len(texts) / segment_s, 1) if segment_s > 0 else None,
        "wall_s": [round(x, 3) for x in wall],
        "sent_per_s_best": round(len(texts) / min(wall), 1),
        "sent_per_s_median": round(len(texts) / statistics.median(wall), 1),
        "cpu_sent_per_s": round(len(texts) / min(cpu), 1),
    }
    if embedder is not None:
        # the whole index build (segmentation, embedding, FAISS) through the product's build_store
        t = time.perf_counter()
        store = build_store(docs, embedder)
        out["index_build_sent_per_s"] = round(len(store) / (time.perf_counter() - t), 1)
        out["runtime"] = str(getattr(embedder, "runtime", kind))
    return out


def child_quality(params: dict[str, Any]) -> dict[str, Any]:
    """Each runtime against torch: vector cosine, dense and product hit@1, top-1 agreement, seed QA."""
    from qa.embed import make_embedder
    from qa.generate import ExtractiveGenerator
    from qa.pipeline import Pipeline, build_store

    docs, questions = _corpus(Path(params["squad"]), params.get("articles"))
    limit = int(params.get("questions") or 0)
    if 0 < limit < len(questions):  # evenly spread over the articles
        questions = [questions[i] for i in np.linspace(0, len(questions) - 1, limit).astype(int).tolist()]
    seed_rows = _load_seed_qa()
    seeds = seed_documents()
    results: dict[str, Any] = {"articles": len(docs), "questions": len(questions), "seed_questions": len(seed_rows)}
    reference: dict[str, Any] = {}
    for kind in params.get("runtimes", ["torch", "onnx", "onnx-int8"]):
        embedder = make_embedder(runtime=kind)
        t = time.perf_counter()
        store = build_store(docs, embedder)
        embed_s = time.perf_counter() - t
        pipe = Pipeline(store, embedder=embedder, generator=ExtractiveGenerator())
        qvec = embedder.encode([q for q, _, _ in questions]) if questions else np.zeros((0, store.dim), np.float32)
        gold = []
        for _, doc_id, off in questions:
            rows = store.rows_of(doc_id)
            g = next((r for r in rows if store.sentences[r].start <= off < store.sentences[r].end), rows[-1])
            gold.append((rows, g))
        dense_top, dense_hit1, dense_r5, prod_top, prod_hit1 = [], [], [], [], []
        for (q, doc_id, _), qv, (rows, g) in zip(questions, qvec, gold, strict=True):
            scores = store.vectors[rows] @ qv
            order = [rows[i] for i in np.argsort(-scores, kind="stable")[:5]]
            dense_top.append(order[0])
            dense_hit1.append(order[0] == g)
            dense_r5.append(g in order)
            hits = pipe.retrieve(q, 5, doc_ids=[doc_id])
            top = store.sentences.index(hits[0].sentence) if hits else -1
            prod_top.append(top)
            prod_hit1.append(top == g)
        seed_ok = _seed_score(seeds, embedder, seed_rows)
        row: dict[str, Any] = {
            "runtime": str(getattr(embedder, "runtime", kind)),
            "embed_s": round(embed_s, 2),
            "dense_hit_at_1": _pct(dense_hit1),
            "dense_recall_at_5": _pct(dense_r5),
            "product_hit_at_1": _pct(prod_hit1),
            "seed_qa_ok": seed_ok,
        }
        if not reference:
            reference = {"vectors": store.vectors, "dense_top": dense_top, "prod_top": prod_top, "row": row}
        else:
            cos = np.sum(store.vectors * reference["vectors"], axis=1)
            ref_row = reference["row"]
            row.update(
                {
                    "cosine_min": round(float(cos.min()), 4),
                    "cosine_mean": round(float(cos.mean()), 5),
                    "dense_top1_agreement": _agree(dense_top, reference["dense_top"]),
                    "product_top1_agreement": _agree(prod_top, reference["prod_top"]),
                    "product_hit_at_1_delta_points": round(row["product_hit_at_1"] - ref_row["product_hit_at_1"], 2),
                    "dense_hit_at_1_delta_points": round(row["dense_hit_at_1"] - ref_row["dense_hit_at_1"], 2),
                }
            )
        results[kind] = row
    return results


def _agree(a: Sequence[int], b: Sequence[int]) -> float:
    return _pct([x == y for x, y in zip(a, b, strict=True)])


def _pct(flags: Sequence[bool]) -> float:
    return round(100.0 * float(np.mean(flags)), 2) if flags else float("nan")


def _load_seed_qa() -> list[dict[str, Any]]:
    if not SEED_QA.is_file():
        return []
    return [json.loads(line) for line in SEED_QA.read_text(encoding="utf-8").splitlines() if line.strip()]


def _seed_score(seeds: Sequence[Document], embedder: Embedder, rows: Sequence[dict[str, Any]]) -> str:
    """Answerable seed questions whose first citation holds a support string, and abstentions, as ``ok/n``."""
    from qa.generate import ExtractiveGenerator
    from qa.pipeline import Pipeline

    if not rows:
        return "n/a"
    pipe = Pipeline.from_documents(seeds, embedder=embedder, generator=ExtractiveGenerator())
    ok = 0
    for row in rows:
        ans = pipe.ask(str(row["question"]), llm="extractive")
        if row.get("answerable"):
            first = ans.citations[0].text if ans.citations else ""
            ok += bool(first) and any(str(s) in first for s in row.get("support", []))
        else:
            ok += ans.abstained
    return f"{ok}/{len(rows)}"


def child_query(params: dict[str, Any]) -> dict[str, Any]:
    """Latency and recall at one corpus size."""
    from qa.embed import make_embedder
    from qa.generate import ExtractiveGenerator
    from qa.ingest import SEGMENTER_NAME
    from qa.pipeline import Pipeline
    from qa.store import Store, choose_index_type

    n = int(params["size"])
    cache_dir = Path(params.get("cache_dir") or CACHE_DIR)
    texts, base_vectors, qtexts, base_tokens = _base(Path(params["squad"]), cache_dir)
    n_q = int(params.get("queries", 200))
    # disjoint question sets, so no phase finds the answers of an earlier one in the rerank's token cache
    warm, qtexts, qfresh = qtexts[:5], qtexts[5 : 5 + n_q], qtexts[5 + n_q : 5 + 2 * n_q] or qtexts[5 : 5 + n_q]
    t = time.perf_counter()
    docs, sentences, vectors, tokens = synthetic_corpus(n, texts, base_vectors, tokens=base_tokens)
    corpus_s = time.perf_counter() - t
    index_type = choose_index_type(n)
    t = time.perf_counter()
    index, cached = _cached_index(vectors, index_type, cache_dir)
    faiss_build_s = time.perf_counter() - t
    store = Store(
        docs,
        sentences,
        vectors,
        model=make_embedder().name,
        segmenter=SEGMENTER_NAME,
        chunking={"unit": "sentence", "context": 1},
        index_type=index_type,
        index=index,
        tokens=tokens,
    )
    embedder = make_embedder()
    t = time.perf_counter()
    pipe = Pipeline(store, embedder=embedder, generator=ExtractiveGenerator())
    lexical_build_s = time.perf_counter() - t
    retriever = pipe._retriever
    qvec = embedder.encode(qtexts)
    truth = exact_top(store.vectors, qvec, 10)
    _, found = store.search(qvec, 10)
    for q in warm:
        pipe.ask(q, llm="extractive")
    token_calls = _count_token_calls(embedder)
    k_cand = int(getattr(retriever.config, "candidates", 100))
    stage1 = copy.copy(retriever)  # the same indexes without the late-interaction rerank
    if hasattr(stage1, "tokens"):
        stage1.tokens = None
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
        "reranks": bool(getattr(retriever, "reranks", False)),
        "stored_tokens": getattr(store, "tokens", None) is not None,
        "latency": {
            "encode": latency(_each(lambda q: embedder.encode([q]), qtexts)),
            "bm25": latency(_each(retriever.lexical.scores, qtexts)),
            "faiss": latency(_each(lambda v: store.search(v[None, :], k_cand), list(qvec))),
            "stage1": latency(_each(lambda q: stage1.search(q, pipe.settings.top_k), qtexts)),
            "retrieval": latency(_each(pipe.retrieve, qtexts)),
            "end_to_end": latency(_each(lambda q: pipe.ask(q, llm="extractive"), qfresh)),
        },
    }
    if token_calls["texts"]:
        reranked = len(qtexts) + len(qfresh)  # the retrieval and end-to-end phases (stage1 has no rerank)
        out["rerank_texts_per_query"] = round(token_calls["texts"] / reranked, 1)
        out["rerank_chars_per_query"] = round(token_calls["chars"] / reranked, 1)
    if params.get("add"):
        out["add_article"] = _measure_add(pipe, texts)
    return out


def _count_token_calls(embedder: Any) -> dict[str, int]:
    """Count what the rerank asks the embedder to encode (cache misses of its token cache)."""
    inner = getattr(embedder, "encode_tokens", None)
    counts = {"texts": 0, "chars": 0}
    if inner is None:
        return counts

    def counting(texts: Sequence[str]) -> Any:
        counts["texts"] += len(texts)
        counts["chars"] += sum(len(t) for t in texts)
        return inner(texts)

    embedder.encode_tokens = counting
    return counts


def _cached_index(vectors: NDArray[np.float32], index_type: str, cache_dir: Path) -> tuple[Any, bool]:
    """Build the FAISS index; approximate indexes of large corpora are cached under artifacts/."""
    import faiss

    from qa.store import build_faiss

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

    from qa import store

    return hashlib.sha256(inspect.getsource(store.build_faiss).encode()).hexdigest()


def _measure_add(pipe: Any, texts: Sequence[str]) -> dict[str, Any]:
    """Add one real article (30 sentences) with the product's ``Pipeline.add``, in memory and to an index
    on disk, beside what a rebuild of the whole corpus would cost (FAISS training and BM25)."""
    from qa.ingest import segment
    from qa.pipeline import Pipeline
    from qa.retrieve import LexicalIndex
    from qa.store import build_faiss
    from qa.types import Document

    def article(i: int) -> Document:
        return Document(doc_id=f"bench-added-article-{i}", text=" ".join(texts[30 * i : 30 * i + 30]), source="bench")

    n_new = len(segment(article(0)))
    before = len(pipe.store)
    out: dict[str, Any] = {"new_sentences": n_new, "corpus_sentences": before}
    t = time.perf_counter()
    pipe.embedder.encode([s.text for s in segment(article(0))])
    out["embed_article_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    pipe.add([article(0)])
    out["pipeline_add_s"] = round(time.perf_counter() - t, 3)
    from qa.lexical import saved_arrays

    with tempfile.TemporaryDirectory(dir=CACHE_DIR.parent) as tmp:
        t = time.perf_counter()
        pipe.store.save(tmp, lexical=saved_arrays(pipe._retriever.lexical))  # as ``qa index`` saves it
        out["save_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        on_disk = Pipeline.load(tmp, embedder=pipe.embedder, generator=pipe.generator)
        out["load_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        on_disk.add([article(1)])
        out["pipeline_add_saved_s"] = round(time.perf_counter() - t, 3)
        out["saved_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())
    t = time.perf_counter()
    build_faiss(pipe.store.vectors, pipe.store.index_type)
    out["faiss_rebuild_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    LexicalIndex([s.text for s in pipe.store.sentences])
    out["bm25_rebuild_s"] = round(time.perf_counter() - t, 2)
    return out


def child_modules(params: dict[str, Any]) -> dict[str, Any]:
    """Which heavy modules answering one question imports (it should be none of them)."""
    from qa.cli import main as cli_main

    with open(os.devnull, "w") as sink:
        saved = sys.stdout
        sys.stdout = sink
        try:
            rc = cli_main(["ask", "--index-dir", str(params["index_dir"]), "--llm", "extractive", COLD_QUESTION])
        finally:
            sys.stdout = saved
    return {"rc": rc, "imported": [m for m in HEAVY_MODULES if m in sys.modules]}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "build": child_build,
    "quality": child_quality,
    "query": child_query,
    "modules": child_modules,
}


# ----- the parent: run children, time processes, print the table ----------------------------------------


def run_process(cmd: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command; its wall time, exit status and peak resident memory (``ru_maxrss`` of that child)."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = t + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace")[-2000:]
    return {"wall_s": round(wall, 3), "rc": proc.returncode, "peak_mib": _mib(usage.ru_maxrss), "stderr_tail": tail}


def run_child(section: str, params: dict[str, Any], *, timeout: float = 900.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "qa.bench", "--child", section, "--params", json.dumps(params), "--out", str(out)]
        proc = run_process(cmd, timeout=timeout)
        if proc["rc"] != 0 or not out.is_file():
            raise RuntimeError(f"bench section {section} failed (exit {proc['rc']}):\n{proc['stderr_tail']}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["peak_mib"] = proc["peak_mib"]
    result["process_wall_s"] = proc["wall_s"]
    return result


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def bench_build(squad: Path, rounds: int, sentences: int) -> dict[str, Any]:
    kinds = ["plain", "onnx", "onnx-int8"]
    per: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(rounds):
        for kind in kinds:
            _say(f"build: round {r + 1}/{rounds}, {kind}")
            params = {"squad": str(squad), "kind": kind, "sentences": sentences, "repeats": 1}
            per[kind].append(run_child("build", params))
    out: dict[str, Any] = {"rounds": per}
    plain_best = max(x["sent_per_s_best"] for x in per["plain"])
    plain_median = statistics.median(x["sent_per_s_median"] for x in per["plain"])
    plain_cpu = max(x["cpu_sent_per_s"] for x in per["plain"])
    summary: dict[str, Any] = {
        "sentences": per["plain"][0]["sentences"],
        "plain_sent_per_s": plain_best,
        "plain_peak_mib": max(x["peak_mib"] for x in per["plain"]),
    }
    for kind in kinds[1:]:
        best = max(x["sent_per_s_best"] for x in per[kind])
        summary[kind] = {
            "embed_sent_per_s": best,
            "index_build_sent_per_s": max(x["index_build_sent_per_s"] for x in per[kind]),
            "ratio_best": round(best / plain_best, 2),
            "ratio_median": round(statistics.median(x["sent_per_s_median"] for x in per[kind]) / plain_median, 2),
            "ratio_cpu": round(max(x["cpu_sent_per_s"] for x in per[kind]) / plain_cpu, 2),
            "index_build_ratio": round(max(x["index_build_sent_per_s"] for x in per[kind]) / plain_best, 2),
            "peak_mib": max(x["peak_mib"] for x in per[kind]),
            "runtime": per[kind][0].get("runtime", kind),
        }
    out["summary"] = summary
    return out


def bench_coldstart(rounds: int) -> dict[str, Any]:
    """`qa ask` on an existing index as a new process, alternated with importing sentence-transformers."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        qa_cmd = [sys.executable, "-m", "qa"]
        setup = run_process([*qa_cmd, "index", str(PROJECT_ROOT / "seeds"), "--index-dir", str(index_dir)],
                            timeout=600, env=env)
        if setup["rc"] != 0:
            raise RuntimeError(f"qa index failed: {setup['stderr_tail']}")
        ask = [*qa_cmd, "ask", "--index-dir", str(index_dir), "--llm", "extractive", COLD_QUESTION]
        imp = [sys.executable, "-c", "import sentence_transformers"]
        run_process(ask, timeout=120, env=env)  # warm the page cache for both, as a user's second run would
        run_process(imp, timeout=120, env=env)
        asks, imports = [], []
        for _ in range(rounds):
            asks.append(run_process(ask, timeout=120, env=env))
            imports.append(run_process(imp, timeout=120, env=env))
        modules = run_child("modules", {"index_dir": str(index_dir)})
    if any(a["rc"] != 0 for a in asks):
        raise RuntimeError(f"qa ask failed: {asks[0]['stderr_tail']}")
    return {
        "qa_ask_s": [a["wall_s"] for a in asks],
        "import_st_s": [i["wall_s"] for i in imports],
        "qa_ask_median_s": round(statistics.median(a["wall_s"] for a in asks), 3),
        "import_st_median_s": round(statistics.median(i["wall_s"] for i in imports), 3),
        "qa_ask_peak_mib": max(a["peak_mib"] for a in asks),
        "import_st_peak_mib": max(i["peak_mib"] for i in imports),
        "heavy_modules_imported_by_ask": modules["imported"],
    }


def _fmt_ms(lat: dict[str, float]) -> str:
    return f"{lat['p50_ms']:.1f} / {lat['p95_ms']:.1f} ms"


def _check(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


def table(result: dict[str, Any]) -> str:
    """The one table: what, measured value, peak memory, target, met."""
    rows: list[tuple[str, str, str, str, str]] = []
    build = result.get("build", {}).get("summary")
    quality = result.get("quality")
    if build:
        rows.append((f"build: SentenceTransformer.encode ({build['sentences']} sent)",
                     f"{build['plain_sent_per_s']:.0f} sent/s", f"{build['plain_peak_mib']:.0f}", "", ""))
        for kind in ("onnx", "onnx-int8"):
            b = build[kind]
            default = " [default]" if kind == result.get("default_runtime") else ""
            rows.append((f"build: qa embedder {kind}{default}", f"{b['embed_sent_per_s']:.0f} sent/s = "
                         f"{b['ratio_best']:.2f}x (median {b['ratio_median']:.2f}x, cpu {b['ratio_cpu']:.2f}x)",
                         f"{b['peak_mib']:.0f}", "≥ 3x", _check(b["ratio_best"] >= TARGETS["build_ratio"] if default
                                                              else None)))
            rows.append((f"build: qa index {kind} (segment+embed+FAISS)",
                         f"{b['index_build_sent_per_s']:.0f} sent/s = {b['index_build_ratio']:.2f}x", "", "", ""))
    if quality:
        t = quality.get("torch", {})
        rows.append((f"quality: torch ({quality['questions']} SQuAD q, {quality['articles']} art.)",
                     f"hit@1 {t.get('product_hit_at_1')} dense {t.get('dense_hit_at_1')} seed {t.get('seed_qa_ok')}",
                     "", "", ""))
        for kind in ("onnx", "onnx-int8"):
            q = quality.get(kind)
            if not q:
                continue
            delta = q["product_hit_at_1_delta_points"]
            is_default = kind == result.get("default_runtime")
            rows.append((f"quality: {kind} vs torch",
                         f"hit@1 {q['product_hit_at_1']} ({delta:+.2f} pt), dense {q['dense_hit_at_1']} "
                         f"({q['dense_hit_at_1_delta_points']:+.2f}), top1 agree {q['product_top1_agreement']}%, "
                         f"cos min {q['cosine_min']}, seed {q['seed_qa_ok']}", "", "≥ -0.5 pt",
                         _check(delta >= -TARGETS["quality_points"] if is_default else None)))
    for q in result.get("query", []):
        n = q["size"]
        label = f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"
        target = TARGETS["p95_ms_1m"] if n >= 1_000_000 else (TARGETS["p95_ms_100k"] if n >= 100_000 else None)
        lat = q["latency"]
        rows.append((f"query {label}: {q['index_type']} index, build {q['faiss_build_s']}s"
                     f"{' (cached)' if q['faiss_index_cached'] else ''}, BM25 build {q['lexical_build_s']}s",
                     f"recall@10 {q['recall_at_10']:.3f}", f"{q['peak_mib']:.0f}", "≥ 0.95",
                     _check(q["recall_at_10"] >= TARGETS["recall_at_10"])))
        rows.append((f"query {label}: encode | BM25 | FAISS p50/p95",
                     f"{_fmt_ms(lat['encode'])} | {_fmt_ms(lat['bm25'])} | {_fmt_ms(lat['faiss'])}", "", "", ""))
        if "stage1" in lat:
            met = _check(lat["stage1"]["p95_ms"] <= target) if target else ""
            rows.append((f"query {label}: retrieval without rerank p50/p95", _fmt_ms(lat["stage1"]), "",
                         f"≤ {target:.0f} ms" if target else "", met))
        rerank = ""
        if q.get("reranks"):
            source = "stored tokens" if q.get("stored_tokens") else "tokens encoded per query"
            encoded = q.get("rerank_texts_per_query")
            rerank = f" with rerank ({source}, {encoded} texts encoded/q)" if encoded else f" with rerank ({source})"
        rows.append((f"query {label}: retrieval{rerank} p50/p95",
                     _fmt_ms(lat["retrieval"]), "",
                     f"≤ {target:.0f} ms" if target else "", _check(lat["retrieval"]["p95_ms"] <= target)
                     if target else ""))
        rows.append((f"query {label}: end-to-end extractive p50/p95", _fmt_ms(lat["end_to_end"]), "",
                     f"≤ {target:.0f} ms" if target else "", _check(lat["end_to_end"]["p95_ms"] <= target)
                     if target else ""))
        add = q.get("add_article")
        if add:
            rows.append((f"query {label}: add 1 article ({add['new_sentences']} sent)",
                         f"Pipeline.add {add['pipeline_add_s']:.2f}s in memory, {add['pipeline_add_saved_s']:.2f}s "
                         f"to an index on disk (embedding it alone {add['embed_article_s']:.2f}s; a rebuild: FAISS "
                         f"{add['faiss_rebuild_s']:.2f}s + BM25 {add['bm25_rebuild_s']:.2f}s)", "", "", ""))
            if "load_s" in add:
                mb = add["saved_bytes"] / 2**20
                rows.append((f"query {label}: index on disk ({mb:.0f} MB)",
                             f"save {add['save_s']:.2f}s, open (Pipeline.load: checksums, BM25 arrays) "
                             f"{add['load_s']:.2f}s", "", "", ""))
    for failure in result.get("failures", []):
        rows.append((f"FAILED {failure.split(':', 1)[0]}", failure.split(":", 1)[-1].strip()[:100], "", "", "NO"))
    cold = result.get("coldstart")
    if cold:
        rows.append(("cold start: qa ask (new process, existing index)", f"{cold['qa_ask_median_s']:.2f} s",
                     f"{cold['qa_ask_peak_mib']:.0f}", "< import", _check(cold["qa_ask_median_s"]
                                                                       < cold["import_st_median_s"])))
        rows.append(("cold start: python -c 'import sentence_transformers'", f"{cold['import_st_median_s']:.2f} s",
                     f"{cold['import_st_peak_mib']:.0f}", "", ""))
        rows.append(("cold start: heavy modules imported by qa ask",
                     ", ".join(cold["heavy_modules_imported_by_ask"]) or "none", "", "none",
                     _check(not cold["heavy_modules_imported_by_ask"])))
    head = ("measurement", "value", "peak MiB", "target", "met")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    versions: dict[str, str | None] = {}
    for pkg in ("onnxruntime", "faiss-cpu", "torch", "sentence-transformers", "bm25s", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="1k-100k only, fewer rounds and questions (a few minutes)")
    p.add_argument("--sizes", help="comma-separated corpus sizes in sentences (default 1000,10000,100000,1000000)")
    p.add_argument("--sections", default="build,quality,query,coldstart",
                   help="which parts to run (default all: build,quality,query,coldstart)")
    p.add_argument("--rounds", type=int, help="alternated rounds for build and cold start (default 2, quick 1)")
    p.add_argument("--build-sentences", type=int,
                   help="SQuAD sentences (an even sample) for the build rows (default 800, quick 300; 0: all)")
    p.add_argument("--queries", type=int, help="questions per latency phase and corpus size (default 60, quick 30)")
    p.add_argument("--quality-questions", type=int,
                   help="SQuAD questions for the quality rows, spread over the articles (300, quick 100; 0: all)")
    p.add_argument("--quality-runtimes", default="onnx-int8",
                   help="runtimes compared with torch in the quality rows (default onnx-int8; e.g. onnx,onnx-int8)")
    p.add_argument("--squad", default=str(SQUAD), help="SQuAD 2.0 JSON used for sentences and questions")
    p.add_argument("--cache-dir", default=str(CACHE_DIR), help=f"base vectors and large indexes ({CACHE_DIR})")
    p.add_argument("--json", dest="json_out", default=str(DEFAULT_JSON), help=f"write results here ({DEFAULT_JSON})")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--params", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        child = CHILDREN[args.child](json.loads(args.params or "{}"))
        Path(args.out).write_text(json.dumps(child, indent=2), encoding="utf-8")
        return 0
    from qa.embed import make_embedder, resolve_runtime

    started = time.perf_counter()
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    rounds = args.rounds or (1 if args.quick else 2)
    queries = args.queries or (30 if args.quick else 60)
    if args.quality_questions is None:
        args.quality_questions = 100 if args.quick else 300
    if args.build_sentences is None:
        args.build_sentences = 300 if args.quick else 800
    squad = Path(args.squad)
    for runtime in ("onnx-int8", "onnx"):  # a first run exports each ONNX model once, untimed
        make_embedder(runtime=runtime).encode(["warm the export cache"])
    result: dict[str, Any] = {
        "command": "qa bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        "default_runtime": resolve_runtime(),
        "targets": TARGETS,
    }
    failures: list[str] = []

    def attempt(name: str, fn: Callable[[], Any]) -> Any:
        """Run one part; a failure is reported in the table and the JSON, and the others still run."""
        try:
            return fn()
        except Exception as exc:  # a benchmark reports what broke and measures the rest
            failures.append(f"{name}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
            _say(f"{name} failed: {exc}")
            return None

    if "build" in sections:
        result["build"] = attempt("build", lambda: bench_build(squad, rounds, args.build_sentences))
    if "quality" in sections:
        runtimes = ["torch", *[r for r in args.quality_runtimes.split(",") if r and r != "torch"]]
        _say(f"quality: {' vs '.join(runtimes)}")
        result["quality"] = attempt("quality", lambda: run_child(
            "quality", {"squad": str(squad), "questions": args.quality_questions, "runtimes": runtimes},
            timeout=3600))
    if "query" in sections:
        result["query"] = []
        for n in sizes:
            _say(f"query: {n} sentences")
            params = {"squad": str(squad), "size": n, "queries": queries, "add": n == 100_000,
                      "cache_dir": args.cache_dir}
            row = attempt(f"query {n}", functools.partial(run_child, "query", params, timeout=1800))
            if row is not None:
                result["query"].append(row)
    if "coldstart" in sections:
        _say("cold start")
        result["coldstart"] = attempt("cold start", lambda: bench_coldstart(max(3, rounds + 1)))
    result["failures"] = failures
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = table(result)
    result["table"] = text
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    m = result["machine"]
    print(f"qa bench on {m['cpus']} CPUs ({m['cpu']}), load average {m['load_avg_at_start'][0]} at start, "
          f"{m['load_avg_at_end'][0]} at end; {result['wall_s']} s; embedder runtime {result['default_runtime']}")
    print(text)
    print(f"written to {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
