"""``qa bench``'s Milvus rows at a tiny size against a real Milvus Lite server the bench starts itself: the
index is written, read back whole, queried through the pipeline, and its data dir measured."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.squad import write_squad

from qa.tools.bench.milvus import child_milvus
from qa.tools.bench.report import table

pytest.importorskip("pymilvus", reason="the Milvus rows need pip install -e '.[milvus]' (the test extra has it)")
pytest.importorskip("milvus_lite", reason="the Milvus Lite test server needs pip install -e '.[milvus]'")


def test_milvus_rows_at_a_thousand_sentences(tmp_path: Path) -> None:
    squad = write_squad(tmp_path / "tiny.json")
    row = child_milvus({"squad": str(squad), "size": 1000, "queries": 4, "cache_dir": str(tmp_path / "cache")})
    assert row["size"] == 1000 and row["sentences_read_back"] == 1000
    assert row["latency"]["retrieval"]["n"] == 4 and row["latency"]["end_to_end"]["n"] >= 1
    disk = row["disk"]
    assert disk["written_bytes"] > 0 and disk["bytes_per_sentence"] == round(disk["written_bytes"] / 1000)
    text = table({"milvus": {"rows": [dict(row, peak_mib=0.0)]}})
    assert "milvus 1k: end-to-end extractive p50/p95" in text and "Milvus Lite data dir bytes per sentence" in text
