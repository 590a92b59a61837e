"""The Milvus store beside FAISS: build, open, query latency and disk bytes per sentence, against a Milvus Lite
server the benchmark starts on loopback (``python -m milvus_lite server``) and stops when done.

The index is built from the same synthetic corpus as the FAISS rows and queried through the same
``Pipeline`` code path (``query.answer_latency``). Only ``MilvusIndex``'s public surface is used (the
constructor, ``save``, ``open_index``), so the rows keep measuring the store as its internals change.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qa.tools.bench.corpus import base_corpus, synthetic_corpus
from qa.tools.bench.measure import CACHE_DIR

MILVUS_MAX = 100_000  # sentences: larger corpora are not written to Milvus by the benchmark (minutes per 100k)
START_TIMEOUT_S = 120.0  # Milvus Lite's first start unpacks its binaries
SETTLE_S = 1.0  # the data dir's size must hold this long to be read as written


def missing_modules() -> list[str]:
    """The Python modules the Milvus rows need that are not installed (``pip install -e '.[milvus]'``)."""
    return [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]


def dir_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist); links are not followed."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:  # a server's temporary file gone meanwhile
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


def bytes_per_sentence(before: int, after: int, sentences: int) -> float:
    """What writing ``sentences`` added to a store's files, per sentence (an empty server's files not counted).

    >>> bytes_per_sentence(1_000, 5_000, 4)
    1000.0
    >>> bytes_per_sentence(1_000, 900, 4)
    0.0
    """
    return max(0, after - before) / max(1, sentences)


def settled_bytes(path: Path, *, settle_s: float = SETTLE_S, timeout_s: float = 30.0) -> int:
    """``dir_bytes(path)`` once it has not changed for ``settle_s`` (a server may still be writing after a flush)."""
    deadline = time.monotonic() + timeout_s
    last = dir_bytes(path)
    while time.monotonic() < deadline:
        time.sleep(settle_s)
        now = dir_bytes(path)
        if now == last:
            break
        last = now
    return last


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def milvus_lite_server(data_dir: Path, *, timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """A Milvus Lite server in a subprocess on a free loopback port, data in ``data_dir``; yields ``host:port``.

    Waits until the port accepts connections; stops the server on exit (its log is in the error if it dies).
    """
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir), "--host", "127.0.0.1",
             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"Milvus Lite exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Milvus Lite did not accept connections in {timeout_s:g} s") from None
                    time.sleep(0.3)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def child_milvus(params: dict[str, Any]) -> dict[str, Any]:
    """Build, open and query the Milvus store at one corpus size, on a Milvus Lite server of its own."""
    from qa.answer import ExtractiveGenerator
    from qa.embed import make_embedder
    from qa.index import open_index
    from qa.index.milvus_index import MilvusIndex, MilvusTarget
    from qa.pipeline import Pipeline
    from qa.tools.bench.query import _Counting, answer_latency, question_sets

    n = int(params["size"])
    cache_dir = Path(params.get("cache_dir") or CACHE_DIR)
    texts, base_vectors, qtexts, base_tokens = base_corpus(Path(params["squad"]), cache_dir)
    warm, qtexts, qfresh = question_sets(qtexts, int(params.get("queries", 200)))
    docs, sentences, vectors, tokens = synthetic_corpus(n, texts, base_vectors, tokens=base_tokens)
    embedder = _Counting(make_embedder())
    packed = tokens.packed() if tokens is not None else None  # the rerank's codes, stored in Milvus too
    with tempfile.TemporaryDirectory(prefix="qa-bench-milvus-") as tmp:
        data = Path(tmp) / "db"
        with milvus_lite_server(data, timeout_s=float(params.get("start_timeout_s", START_TIMEOUT_S))) as address:
            spec = f"milvus://{address}/bench{n}"
            empty = settled_bytes(data)
            t = time.perf_counter()
            index = MilvusIndex(MilvusTarget.parse(spec), docs, sentences, vectors, model=embedder.name,
                                tokens=packed)
            construct_s = time.perf_counter() - t
            t = time.perf_counter()
            index.save()
            save_s = time.perf_counter() - t
            written = settled_bytes(data)
            del index
            t = time.perf_counter()
            opened = open_index(spec, expect_model=embedder.name)
            open_s = time.perf_counter() - t
            pipe = Pipeline(opened, embedder=embedder, generator=ExtractiveGenerator())
            for q in warm:
                pipe.ask(q, llm="extractive")
            embedder.counting = True
            lat = answer_latency(pipe, qtexts, qfresh)
            stored_tokens = opened.tokens is not None
            size = len(opened)
    out: dict[str, Any] = {
        "size": n,
        "documents": len(docs),
        "sentences_read_back": size,
        "construct_s": round(construct_s, 2),
        "save_s": round(save_s, 2),
        "build_s": round(construct_s + save_s, 2),
        "open_s": round(open_s, 2),
        "queries": len(qtexts),
        "stored_tokens": stored_tokens,
        "tokens_passed": packed is not None,
        "latency": lat,
        "disk": {
            "empty_server_bytes": empty,
            "written_bytes": max(0, written - empty),
            "bytes_per_sentence": round(bytes_per_sentence(empty, written, n)),
        },
    }
    if embedder.texts:
        reranked = len(qtexts) + len(qfresh)
        out["rerank_texts_per_query"] = round(embedder.texts / reranked, 1)
    return out
