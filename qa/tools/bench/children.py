"""The parts of the benchmark that run in their own process (``--child NAME``): build, quality, query,
milvus, modules."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.tools.bench.corpus import corpus, plain_encoder, seed_documents, seed_questions
from qa.tools.bench.measure import COLD_QUESTION, HEAVY_MODULES
from qa.tools.bench.milvus import child_milvus
from qa.tools.bench.query import child_query

if TYPE_CHECKING:
    from qa.embed import Embedder
    from qa.types import Document


def child_build(params: dict[str, Any]) -> dict[str, Any]:
    """Throughput of one encoder on the benchmark sentences (``plain`` = SentenceTransformer.encode)."""
    from qa.config import resolve
    from qa.embed import make_embedder
    from qa.index import FaissIndex
    from qa.index.build import encode as index_encode
    from qa.ingest import segment
    from qa.types import Document

    docs, _ = corpus(Path(params["squad"]), params.get("articles"))
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
        encode = plain_encoder()
        embedder: Embedder | None = None
    else:
        embedder = make_embedder(settings=resolve(embed_runtime=kind))
        emb = embedder
        encode = lambda texts: index_encode(emb, texts, progress=False)  # noqa: E731 - the product's path
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
        # the whole index build (segmentation, embedding, FAISS, BM25) through the product's path
        t = time.perf_counter()
        store = FaissIndex.build(docs, embedder)
        out["index_build_sent_per_s"] = round(len(store) / (time.perf_counter() - t), 1)
        out["runtime"] = embedder.runtime
    return out


def child_quality(params: dict[str, Any]) -> dict[str, Any]:
    """Each runtime against torch: vector cosine, dense and product hit@1, top-1 agreement, seed QA."""
    from qa.answer import ExtractiveGenerator
    from qa.config import resolve
    from qa.embed import make_embedder
    from qa.index import FaissIndex
    from qa.pipeline import Pipeline

    docs, questions = corpus(Path(params["squad"]), params.get("articles"))
    limit = int(params.get("questions") or 0)
    if 0 < limit < len(questions):  # evenly spread over the articles
        questions = [questions[i] for i in np.linspace(0, len(questions) - 1, limit).astype(int).tolist()]
    seed_rows = seed_questions()
    seeds = seed_documents()
    results: dict[str, Any] = {"articles": len(docs), "questions": len(questions), "seed_questions": len(seed_rows)}
    reference: dict[str, Any] = {}
    for kind in params.get("runtimes", ["torch", "onnx", "onnx-int8"]):
        embedder = make_embedder(settings=resolve(embed_runtime=kind))
        t = time.perf_counter()
        store = FaissIndex.build(docs, embedder)
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
            hits = pipe.retrieve(q, 5, doc_ids=[doc_id]).hits
            top = store.sentences.index(hits[0].sentence) if hits else -1
            prod_top.append(top)
            prod_hit1.append(top == g)
        seed_ok = _seed_score(seeds, embedder, seed_rows)
        row: dict[str, Any] = {
            "runtime": embedder.runtime,
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


def _seed_score(seeds: Sequence[Document], embedder: Embedder, rows: Sequence[dict[str, Any]]) -> str:
    """Answerable seed questions whose first citation holds a support string, and abstentions, as ``ok/n``."""
    from qa.answer import ExtractiveGenerator
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



def child_modules(params: dict[str, Any]) -> dict[str, Any]:
    """Which heavy modules answering one question imports (it should be none of them): ``qa ask`` in a new
    process under ``python -X importtime``, which lists every module the process imports."""
    cmd = [sys.executable, "-X", "importtime", "-m", "qa", "ask", "--index-dir", str(params["index_dir"]),
           "--llm", "extractive", COLD_QUESTION]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, timeout=300, check=False)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").splitlines()
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}
    return {"rc": proc.returncode, "imported": [m for m in HEAVY_MODULES if m in imported]}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "build": child_build,
    "quality": child_quality,
    "query": child_query,
    "milvus": child_milvus,
    "modules": child_modules,
}
