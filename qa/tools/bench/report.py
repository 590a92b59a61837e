"""The benchmark's one table, and what machine it ran on."""

from __future__ import annotations

import os
import platform
from typing import Any

from qa.tools.bench.measure import TARGETS


def _fmt_ms(lat: dict[str, float]) -> str:
    return f"{lat['p50_ms']:.1f} / {lat['p95_ms']:.1f} ms"


def _check(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


HEAD = ("measurement", "value", "peak MiB", "target", "met")


def table(result: dict[str, Any]) -> str:
    """The one table: what, measured value, peak memory, target, met."""
    rows = table_rows(result)
    widths = [max(len(str(r[i])) for r in [HEAD, *rows]) for i in range(5)]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(HEAD, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def markdown(result: dict[str, Any]) -> str:
    """The same table in Markdown, as the README quotes it (``qa bench --markdown``)."""
    def cell(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in table_rows(result)]
    return "\n".join(lines)


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """One row per measurement: what, measured value, peak memory, target, met."""
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
        disk = q.get("disk")
        if disk and disk.get("skipped"):
            rows.append((f"disk {label}: FAISS store not saved", disk["skipped"], "", "", ""))
        elif disk:
            if n >= 1_000_000:
                runs = len(disk.get("open_runs_s", [1]))
                first = f" (then the first search {disk['first_search_s']} s)" if "first_search_s" in disk else ""
                rows.append((f"disk {label}: FAISS index open (FaissIndex.load, best of {runs})",
                             f"{disk['open_s']} s{first}", "", f"< {TARGETS['open_s_1m']:.0f} s",
                             _check(disk["open_s"] < TARGETS["open_s_1m"])))
            rows.append((f"disk {label}: FAISS store bytes per sentence (token codes) | open",
                         f"{disk['bytes_per_sentence']} B ({disk['token_bytes_per_sentence']} B) | {disk['open_s']} s",
                         "", "tokens ≤ 2048 B", _check(disk["token_bytes_per_sentence"] <= 2048)))
        add = q.get("add_article")
        if add:
            rows.append((f"query {label}: add 1 article ({add['new_sentences']} sent)",
                         f"Pipeline.add {add['pipeline_add_s']:.2f}s in memory, {add['pipeline_add_saved_s']:.2f}s "
                         f"to an index on disk (embedding it alone {add['embed_article_s']:.2f}s; a rebuild: FAISS "
                         f"{add['faiss_rebuild_s']:.2f}s + BM25 {add['bm25_rebuild_s']:.2f}s)", "", "", ""))
            if "load_s" in add:
                mb = add["saved_bytes"] / 2**20
                rows.append((f"query {label}: index on disk ({mb:.0f} MB)",
                             f"save {add['save_s']:.2f}s, open (Pipeline.load) "
                             f"{add['load_s']:.2f}s", "", "", ""))
    rows += _milvus_rows(result)
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
    return rows


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)


def _milvus_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The Milvus store's rows, each beside the FAISS figure of the same size when the run has one."""
    milvus = result.get("milvus")
    if not milvus:
        return []
    if milvus.get("skipped"):
        return [("milvus: skipped", milvus["skipped"], "", "", "")]
    faiss = {q["size"]: q for q in result.get("query", [])}
    rows: list[tuple[str, str, str, str, str]] = []
    for m in milvus.get("rows", []):
        n = m["size"]
        label = _label(n)
        f = faiss.get(n)
        beside = f" (FAISS: index {f['faiss_build_s']}s + BM25 {f['lexical_build_s']}s)" if f else ""
        rows.append((f"milvus {label}: build (construct+BM25 {m['construct_s']}s, write {m['save_s']}s) | open",
                     f"{m['build_s']} s{beside} | {m['open_s']} s", f"{m['peak_mib']:.0f}", "", ""))
        source = "stored tokens" if m.get("stored_tokens") else "tokens encoded per query"
        for key, what in (("retrieval", f"retrieval with rerank ({source})"), ("end_to_end", "end-to-end extractive")):
            other = f" (FAISS {_fmt_ms(f['latency'][key])})" if f else ""
            rows.append((f"milvus {label}: {what} p50/p95", _fmt_ms(m["latency"][key]) + other, "", "", ""))
        disk = m["disk"]
        other = f" (FAISS {f['disk']['bytes_per_sentence']} B)" if f and f.get("disk") else ""
        rows.append((f"disk {label}: Milvus Lite data dir bytes per sentence",
                     f"{disk['bytes_per_sentence']} B{other}", "", "", ""))
    return rows


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    versions: dict[str, str | None] = {}
    for pkg in ("onnxruntime", "faiss-cpu", "torch", "sentence-transformers", "bm25s", "numpy", "pymilvus",
                "milvus-lite"):
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
