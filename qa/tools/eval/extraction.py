"""``qa eval DIR``: article extraction measured on a benchmark of web pages with their true article text.

The folder is in the article-extraction benchmark's format: ``html/<key>.html.gz`` (the page as
downloaded) and ``ground-truth.json`` (``{key: {"articleBody", "url"}}``). Scoring is the benchmark's
own: tokens are ``\\w+`` runs (case kept); each text is the multiset of its 4-token shingles (a text of
1-3 tokens is one shorter shingle); per page TP/FP/FN are normalised by their sum; precision is averaged
over the pages with TP+FP > 0 (an empty prediction counts recall 0 and drops out of precision), recall
over the pages with TP+FN > 0, and F1 is computed from the two averages.

Systems, in one run on the same pages: ``qa``'s extraction (the article body), ``qa``'s canonical text
(what is indexed: the body after the title/byline/dateline header, read from the page's bytes by the
product's own reader), bare trafilatura (``extract(html, include_comments=False)``, as the benchmark runs
it) and the page's plain visible text (html-text), the baseline.
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from qa.tools.eval.data import EvalDataError

NGRAM = 4
TpFpFn = tuple[float, float, float]


def is_benchmark(path: Path) -> bool:
    return path.is_dir() and (path / "ground-truth.json").is_file() and (path / "html").is_dir()


def shingles(text: str | None, n: int = NGRAM) -> Counter[tuple[str, ...]]:
    """The multiset of ``n``-token shingles of ``text`` (one shorter shingle for a shorter text).

    >>> sorted(shingles("a b c d e").values()), list(shingles("a b"))
    ([1, 1], [('a', 'b')])
    """
    import re

    tokens = re.findall(r"\w+", text or "")
    if not tokens:
        return Counter()
    if len(tokens) < n:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def shingle_scores(pred: str | None, truth: str | None) -> TpFpFn:
    """(tp, fp, fn) over shingles, normalised to sum to 1 (all 0 when both texts are empty)."""
    p, t = shingles(pred), shingles(truth)
    tp, fp, fn = float(sum((p & t).values())), float(sum((p - t).values())), float(sum((t - p).values()))
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total > 0 else (tp, fp, fn)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def metrics(scores: Iterable[TpFpFn]) -> dict[str, float]:
    """Precision and recall averaged over pages, F1 from the two averages.

    >>> metrics([shingle_scores("a b c d e", "a b c d e")])
    {'f1': 1.0, 'precision': 1.0, 'recall': 1.0}
    """
    rows = list(scores)
    precs = [_precision(*r) for r in rows if r[0] + r[1] > 0]
    recs = [_recall(*r) for r in rows if r[0] + r[2] > 0]
    precision = statistics.mean(precs) if precs else 0.0
    recall = statistics.mean(recs) if recs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def _systems() -> dict[str, Callable[[bytes, str], str]]:
    from qa.ingest.html import extract_article, visible_text
    from qa.ingest.read import document_from_bytes

    def utf8(data: bytes) -> str:
        return data.decode("utf-8", "replace")  # the benchmark's runners read the pages as UTF-8

    def bare_trafilatura(data: bytes, url: str) -> str:
        import trafilatura

        return str(trafilatura.extract(utf8(data), include_comments=False) or "")

    return {
        "qa extraction (article body)": lambda data, url: extract_article(utf8(data), url).text,
        "qa canonical text (header + body, as indexed)": lambda data, url: document_from_bytes(data, "page.html").text,
        "trafilatura, bare (benchmark settings)": bare_trafilatura,
        "visible text (html-text), baseline": lambda data, url: visible_text(utf8(data)),
    }


def run_extraction(path: Path) -> dict[str, Any]:
    """Every system on every page of the benchmark folder ``path``."""
    from tqdm import tqdm

    from qa.errors import DocumentError

    try:
        truth: dict[str, dict[str, str]] = json.loads((path / "ground-truth.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalDataError(str(path / "ground-truth.json"), f"not readable JSON ({exc})") from exc
    pages: dict[str, bytes] = {}
    for key in sorted(truth):
        page = path / "html" / f"{key}.html.gz"
        if not page.is_file():
            raise EvalDataError(str(page), "the page of a ground-truth key is missing")
        pages[key] = gzip.decompress(page.read_bytes())
    started = time.perf_counter()
    systems: dict[str, Any] = {}
    for name, run in _systems().items():
        scores: list[TpFpFn] = []
        times: list[float] = []
        for key in tqdm(pages, desc=name.split(" (")[0], unit="page", file=sys.stderr):
            t0 = time.perf_counter()
            try:
                text = run(pages[key], truth[key].get("url", ""))
            except DocumentError:  # the product refuses a page it finds no text in: an empty prediction
                text = ""
            times.append((time.perf_counter() - t0) * 1000)
            scores.append(shingle_scores(text, truth[key].get("articleBody", "")))
        systems[name] = {**metrics(scores), "median_ms": statistics.median(times), "max_ms": max(times)}
    return {"dataset": str(path), "format": "article-extraction", "pages": len(pages), "systems": systems,
            "seconds": round(time.perf_counter() - started, 1)}


def extraction_report(result: dict[str, Any]) -> str:
    lines = [
        f"Article extraction on {result['pages']} pages of {result['dataset']} (shingle scoring of the benchmark)",
        "",
        "| system | F1 | precision | recall | median ms/page |",
        "|---|---|---|---|---|",
    ]
    for name, m in result["systems"].items():
        lines.append(f"| {name} | {m['f1']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['median_ms']:.0f} |")
    return "\n".join(lines)
