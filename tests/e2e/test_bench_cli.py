"""``qa bench`` runs its parts in child processes; one small query section end to end (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.data import SQUAD_FILE

from qa.cli import main
from qa.tools.bench.corpus import SQUAD


def test_the_default_squad_file_is_the_repositorys() -> None:
    assert SQUAD == SQUAD_FILE and SQUAD.is_file()


def test_bench_query_section_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", "--sections", "query", "--sizes", "1000", "--queries", "4", "--json", str(out),
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["failures"] == [] and result["default_runtime"] == "onnx-int8"
    (q,) = result["query"]
    assert q["size"] == 1000 and q["index_type"] == "flat" and q["recall_at_10"] == 1.0
    assert q["reranks"] is True and q["stored_tokens"] is True
    assert set(q["latency"]) == {"encode", "bm25", "faiss", "stage1", "retrieval", "end_to_end"}
    assert all(lat["n"] == 4 and 0 < lat["p50_ms"] <= lat["p95_ms"] for lat in q["latency"].values())
    assert q["peak_mib"] > 0
    printed = capsys.readouterr().out
    assert "query 1k" in printed and result["table"] in printed
    assert any(p.name.startswith("base-") for p in (tmp_path / "cache").iterdir())  # real vectors, cached
