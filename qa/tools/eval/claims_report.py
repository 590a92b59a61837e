"""The printed table of ``qa eval CLAIMS.jsonl``: balanced accuracy per dataset and their mean, and
precision / recall / F1 of flagging unsupported sentences, for the check through ``ask`` and the baselines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qa.tools.eval.claims_fit import DATASETS

#: The acceptance targets (on other articles of the same datasets).
TARGET_EACH = 0.70
TARGET_MEAN = 0.75

LABELS = {
    "checker_a": "check through ask, (a) reply cites nothing",
    "checker_b": "check through ask, (b) cites the closest sentence",
    "lexical": "baseline: lexical overlap, best sentence",
    "cosine": "baseline: MiniLM max cosine",
    "entailment": "reference: published entailment score",
}


def _cell(s: Mapping[str, Any] | None) -> str:
    if s is None:
        return "–"
    return f"{s['ba']:.3f} · {s['flag_precision']:.2f}/{s['flag_recall']:.2f}/{s['flag_f1']:.2f}"


def claims_table(systems: Mapping[str, Any]) -> str:
    """A markdown table: one row per system, a cell per dataset ("BA · P/R/F1 of flagging"), the mean BA."""
    head = ["system", *DATASETS, "mean BA"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for key, s in systems.items():
        present = [d for d in DATASETS if d in s]
        mean = f"{s['mean']['ba']:.3f}" if len(present) == len(DATASETS) else "–"
        lines.append("| " + " | ".join([LABELS.get(key, key), *(_cell(s.get(d)) for d in DATASETS), mean]) + " |")
    return "\n".join(lines)


def targets_met(summary: Mapping[str, Any]) -> bool:
    each = all(summary[d]["ba"] >= TARGET_EACH for d in DATASETS if d in summary)
    return each and summary["mean"]["ba"] >= TARGET_MEAN


def claims_report(result: Mapping[str, Any]) -> str:
    systems = result["systems"]
    counts = ", ".join(
        f"{d} {systems['checker_a'][d]['n']} ({systems['checker_a'][d]['unsupported']} unsupported)"
        for d in DATASETS if d in systems["checker_a"]
    )
    st = result["stats"]
    lines = [
        f"{result['dataset']} (claims; embedder {result['embedder']}; token embeddings: {result['token_embeddings']})",
        f"protocol: {result['protocol']}",
        f"sentences: {counts}; {result['articles']} articles",
        "cells: balanced accuracy · precision/recall/F1 of flagging unsupported sentences (held out)",
        "",
        claims_table(systems),
        "",
        f"configurations picked per fold: {', '.join(result['fold_configs'])}",
        f"asks: {st['asks']}, abstained {st['abstained']}, sentences not found among the answer's claims "
        f"{st['unmatched']}; (b) supported: {st['kept_citation']} kept the cited sentence, "
        f"{st['reattributed']} re-attributed",
    ]
    for key in ("checker_a", "checker_b"):
        met = targets_met(systems[key])
        lines.append(f"targets (>= {TARGET_EACH} each, >= {TARGET_MEAN} mean) met by {LABELS[key]}: "
                     f"{'yes' if met else 'NO'}")
    if "fitted" in result:
        lines.append(f"fitted on all sentences: {result['fitted']['config']} -> {result['fitted']['path']}")
    lines.append(f"({result['seconds']} s)")
    return "\n".join(lines)
