"""Faults: a `kill -9` during `qa index` leaves the previous index intact and loadable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from qa.store import MANIFEST, Store


def _write_corpus(folder: Path, prefix: str, n_docs: int, sentences_per_doc: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        body = " ".join(
            f"Report {d} notes that committee {d}-{i} approved budget line {i * 7 + d} on day {i % 28 + 1}."
            for i in range(sentences_per_doc)
        )
        (folder / f"{prefix}-{d:03d}.txt").write_text(body + "\n", encoding="utf-8")


def _index_cmd(paths: list[Path], ix: Path) -> list[str]:
    return [sys.executable, "-m", "qa", "index", *map(str, paths), "--index-dir", str(ix)]


def test_kill_9_during_index_keeps_previous_index(tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    small = tmp_path / "small"
    _write_corpus(small, "brief", 2, 5)
    subprocess.run(_index_cmd([small], ix), check=True, capture_output=True, timeout=300)
    before = json.loads((ix / MANIFEST).read_text())
    assert len(before["documents"]) == 2

    big = tmp_path / "big"
    _write_corpus(big, "report", 20, 40)
    proc = subprocess.Popen(_index_cmd([big], ix), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    old_files = {p.name for p in ix.iterdir()}
    deadline = time.monotonic() + 300
    killed_mid_save = False
    try:
        # wait until the new generation starts being written, then kill without warning
        while time.monotonic() < deadline and proc.poll() is None:
            if {p.name for p in ix.iterdir()} - old_files:
                os.kill(proc.pid, signal.SIGKILL)
                killed_mid_save = True
                break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert killed_mid_save or proc.returncode == 0, "the index run ended before it could be interrupted"

    store = Store.load(ix)  # must load: either the old generation or, if the switch completed, the new one
    after = json.loads((ix / MANIFEST).read_text())
    if after == before:
        assert sorted(store.documents) == sorted(before["documents"])
    else:
        assert len(store.documents) == 22

    # the next run completes and clears any half-written generation
    subprocess.run(_index_cmd([big], ix), check=True, capture_output=True, timeout=300)
    final = Store.load(ix)
    assert len(final.documents) == 22
    prefixes = {p.name.split("-")[0] for p in ix.iterdir()}
    assert prefixes == {"documents", "faiss", "manifest.json", "sentences", "vectors",
                        "tokencodes", "tokenscales", "tokenspans", "lexical"}
    named = {info["name"] for info in json.loads((ix / MANIFEST).read_text())["files"].values()}
    assert {p.name for p in ix.iterdir()} == named | {MANIFEST}  # no half-written generation is left
