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
* **milvus N** — the Milvus store on a Milvus Lite server the benchmark starts on loopback, built from the
  same corpus as the FAISS rows (up to 100k sentences): build (write) and open time, p50/p95 of retrieval
  and the end-to-end extractive answer through the same ``Pipeline`` path, and the server's data dir
  bytes per sentence. Skipped, saying so, without ``pip install -e '.[milvus]'``.
* **cold start** — wall time and peak memory of ``qa ask`` as a new process on an existing index
  beside ``python -c "import sentence_transformers"``, alternated.

``qa bench --quick`` fits in a few minutes; the full run (up to 1M sentences) in about ten.
Results are written as JSON (default ``artifacts/bench.json``) so later runs can be compared.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.config import resolve
from qa.tools.bench.children import CHILDREN
from qa.tools.bench.corpus import SQUAD
from qa.tools.bench.measure import CACHE_DIR, COLD_QUESTION, DEFAULT_JSON, TARGETS, run_child, run_process, say
from qa.tools.bench.milvus import MILVUS_MAX, missing_modules
from qa.tools.bench.report import machine, table

SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000, 100_000)


def bench_build(squad: Path, rounds: int, sentences: int) -> dict[str, Any]:
    kinds = ["plain", "onnx", "onnx-int8"]
    per: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(rounds):
        for kind in kinds:
            say(f"build: round {r + 1}/{rounds}, {kind}")
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
        setup = run_process([*qa_cmd, "index", str(resolve().seeds_dir), "--index-dir", str(index_dir)],
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


def bench_milvus(
    squad: Path, sizes: list[int], queries: int, cache_dir: str, attempt: Callable[[str, Callable[[], Any]], Any]
) -> dict[str, Any]:
    """The Milvus rows at each size up to ``MILVUS_MAX``, each in a child with a Milvus Lite server of its own."""
    missing = missing_modules()
    if missing:
        reason = f"{' and '.join(missing)} not installed (pip install -e '.[milvus]')"
        say(f"milvus: skipped, {reason}")
        return {"skipped": reason, "rows": []}
    rows = []
    for n in sizes:
        if n > MILVUS_MAX:
            say(f"milvus: {n} sentences skipped (the Milvus rows go up to {MILVUS_MAX})")
            continue
        say(f"milvus: {n} sentences")
        params = {"squad": str(squad), "size": n, "queries": queries, "cache_dir": cache_dir}
        row = attempt(f"milvus {n}", functools.partial(run_child, "milvus", params, timeout=3600))
        if row is not None:
            rows.append(row)
    return {"rows": rows}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="1k-100k only, fewer rounds and questions (a few minutes)")
    p.add_argument("--sizes", help="comma-separated corpus sizes in sentences (default 1000,10000,100000,1000000)")
    p.add_argument("--sections", default="build,quality,query,milvus,coldstart",
                   help="which parts to run (default all: build,quality,query,milvus,coldstart)")
    p.add_argument("--rounds", type=int, help="alternated rounds for build and cold start (default 2, quick 1)")
    p.add_argument("--build-sentences", type=int,
                   help="SQuAD sentences (an even sample) for the build rows (default 800, quick 300; 0: all)")
    p.add_argument("--queries", type=int, help="questions per latency phase and corpus size (default 60, quick 30)")
    p.add_argument("--quality-questions", type=int,
                   help="SQuAD questions for the quality rows, spread over the articles (300, quick 100; 0: all)")
    p.add_argument("--quality-runtimes", default="onnx-int8",
                   help="runtimes compared with torch in the quality rows (default onnx-int8; e.g. onnx,onnx-int8)")
    p.add_argument("--squad", default=str(SQUAD),
                   help=f"SQuAD 2.0 JSON used for sentences and questions (default {SQUAD})")
    p.add_argument("--cache-dir", default=str(CACHE_DIR), help=f"base vectors and large indexes ({CACHE_DIR})")
    p.add_argument("--json", dest="json_out", default=str(DEFAULT_JSON), help=f"write results here ({DEFAULT_JSON})")
    p.add_argument("--markdown", metavar="RUN.json",
                   help="print the table of a saved run (a --json file) in Markdown, as the README quotes it")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--params", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def cli(argv: list[str] | None = None) -> int:
    """``qa bench [--quick] ...``; ``--child NAME`` runs one part in this process (the parent starts them)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        child = CHILDREN[args.child](json.loads(args.params or "{}"))
        Path(args.out).write_text(json.dumps(child, indent=2), encoding="utf-8")
        return 0
    if args.markdown:
        from qa.tools.bench.report import markdown

        try:
            print(markdown(json.loads(Path(args.markdown).read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: {args.markdown} is not a saved qa bench run ({exc})", file=sys.stderr)
            return 2
        return 0
    from qa.embed import make_embedder

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
        make_embedder(settings=resolve(embed_runtime=runtime)).encode(["warm the export cache"])
    result: dict[str, Any] = {
        "command": "qa bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        "default_runtime": resolve().embed_runtime,
        "targets": TARGETS,
    }
    failures: list[str] = []

    def attempt(name: str, fn: Callable[[], Any]) -> Any:
        """Run one part; a failure is reported in the table and the JSON, and the others still run."""
        try:
            return fn()
        except Exception as exc:  # a benchmark reports what broke and measures the rest
            failures.append(f"{name}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
            say(f"{name} failed: {exc}")
            return None

    if "build" in sections:
        result["build"] = attempt("build", lambda: bench_build(squad, rounds, args.build_sentences))
    if "quality" in sections:
        runtimes = ["torch", *[r for r in args.quality_runtimes.split(",") if r and r != "torch"]]
        say(f"quality: {' vs '.join(runtimes)}")
        result["quality"] = attempt("quality", lambda: run_child(
            "quality", {"squad": str(squad), "questions": args.quality_questions, "runtimes": runtimes},
            timeout=3600))
    if "query" in sections:
        result["query"] = []
        for n in sizes:
            say(f"query: {n} sentences")
            params = {"squad": str(squad), "size": n, "queries": queries, "add": n == 100_000,
                      "cache_dir": args.cache_dir}
            row = attempt(f"query {n}", functools.partial(run_child, "query", params, timeout=1800))
            if row is not None:
                result["query"].append(row)
    if "milvus" in sections:
        result["milvus"] = bench_milvus(squad, sizes, queries, args.cache_dir, attempt)
    if "coldstart" in sections:
        say("cold start")
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

