"""Measuring: percentiles, recall against exact search, and child processes timed with their peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.config import checkout_root

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Where results and caches go: the checkout's ``artifacts/``, else ``./artifacts``.
ARTIFACTS = (checkout_root() or Path.cwd()) / "artifacts"
DEFAULT_JSON = ARTIFACTS / "bench.json"
CACHE_DIR = ARTIFACTS / "bench-cache"
COLD_QUESTION = "Who stayed in Washington despite the cancellation?"
TARGETS = {
    "build_ratio": 3.0,
    "quality_points": 0.5,
    "p95_ms_100k": 30.0,
    "p95_ms_1m": 50.0,
    "recall_at_10": 0.95,
    "open_s_1m": 10.0,  # opening a 1M-sentence FAISS index (FaissIndex.load), files in the page cache
}
HEAVY_MODULES = ("torch", "sentence_transformers", "transformers", "gradio")


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


def mib(kib: float) -> float:
    return round(kib / 1024.0, 1)


def each(fn: Callable[[Any], object], items: Sequence[Any]) -> list[float]:
    """Seconds each call ``fn(item)`` took."""
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t)
    return out



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
    return {"wall_s": round(wall, 3), "rc": proc.returncode, "peak_mib": mib(usage.ru_maxrss), "stderr_tail": tail}


def run_child(section: str, params: dict[str, Any], *, timeout: float = 900.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "qa.tools.bench", "--child", section, "--params", json.dumps(params),
               "--out", str(out)]
        proc = run_process(cmd, timeout=timeout)
        if proc["rc"] != 0 or not out.is_file():
            raise RuntimeError(f"bench section {section} failed (exit {proc['rc']}):\n{proc['stderr_tail']}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["peak_mib"] = proc["peak_mib"]
    result["process_wall_s"] = proc["wall_s"]
    return result



def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)
