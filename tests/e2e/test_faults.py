"""Faults: an index save that is killed (``kill -9``) or fails partway never costs the index already there.

A save writes a new generation of files beside the old one and switches the manifest atomically; these
tests interrupt real saves in child processes and check that what is on disk always loads, checksums and
all, as exactly the old index or exactly the new one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.data import ROOT
from helpers.faults import fingerprint, make_state

from qa.index import FaissIndex
from qa.index.folder import SERVICE_FILES
from qa.index.manifest import MANIFEST

TESTS = ROOT / "tests"
GENERATION_FILES = {"documents", "faiss", "lexical", "sentences", "vectors", "tokenids", "tokencodes",
                    "tokencodec", "tokenspans"}


def _child(*args: str, stdout: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "helpers.faults", *args], stdout=stdout,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=TESTS)


def _named(root: Path) -> set[str]:
    files = json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"]
    return {str(info["name"]) for info in files.values()} | {MANIFEST}


def _stray(root: Path) -> set[str]:
    """Files of a generation the manifest does not name: what an interrupted save leaves behind."""
    return {p.name for p in root.iterdir()} - _named(root) - SERVICE_FILES


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


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    """Three different indexes of 9k-15k sentences (~10-20 MB each), saved as sources for the children."""
    root = tmp_path_factory.mktemp("states")
    sources, prints = [], []
    for i, n in enumerate((12_000, 9_000, 15_000)):
        state = make_state(n, seed=i)
        state.save(root / f"state-{i}")
        sources.append(root / f"state-{i}")
        prints.append(fingerprint(FaissIndex.load(root / f"state-{i}")))
    assert len(set(prints)) == 3
    return sources, prints


#: The most kills the random-kill test makes while waiting for 3 that land inside a save.
MAX_KILLS = 24


def test_a_save_killed_at_random_moments_leaves_the_old_or_the_new_index(
    tmp_path: Path, states: tuple[list[Path], list[str]]
) -> None:
    """A child saves three indexes into one folder in turn, without pause; it is killed with SIGKILL at a
    random moment, again and again. Every time, the folder loads (all checksums pass) and holds exactly the
    index of the last completed save or of the one that was interrupted, never a mixture or a third."""
    sources, prints = states
    target = tmp_path / "ix"
    FaissIndex.load(sources[0]).save(target)  # save 0: state 0
    done = 0  # the last save known to be complete; save i writes state i % 3
    rng = random.Random(20261201)
    interrupted = 0
    # at least 6 kills, and on until 3 of them landed inside a save (how often one does depends on how
    # much of the child's loop this machine spends writing): each kill is checked the same way
    for kill in range(MAX_KILLS):
        if kill >= 6 and interrupted >= 3:
            break
        child = _child("save-forever", str(target), str(done + 1), *map(str, sources))
        assert child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
            started = time.monotonic()
            assert child.stdout.readline().strip() == f"saved {done + 1}"  # one save, to time it
            one_save = time.monotonic() - started
            time.sleep(rng.uniform(0.0, 2.5 * one_save))
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=60)
            printed = [done + 1] + [int(line.split()[1]) for line in child.stdout.read().splitlines()]
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        last = printed[-1]
        assert printed == list(range(done + 1, last + 1))
        interrupted += bool(_stray(target))
        loaded = FaissIndex.load(target)  # must load: the old generation, or the new one if the switch happened
        got = fingerprint(loaded)
        old, new = prints[last % 3], prints[(last + 1) % 3]
        assert got in (old, new), f"after save {last}, the index is neither state {last % 3} nor {(last + 1) % 3}"
        done = last if got == old else last + 1
    assert interrupted >= 3, "the kills should land inside saves, leaving half-written generations behind"
    # the next save completes and clears every leftover
    FaissIndex.load(sources[done % 3]).save(target)
    assert _stray(target) == set()
    assert fingerprint(FaissIndex.load(target)) == prints[done % 3]


def test_a_save_that_fails_partway_keeps_the_previous_index(
    tmp_path: Path, states: tuple[list[Path], list[str]]
) -> None:
    """A save that runs out of room (the file size limit of its process, as on a full disk) fails with an
    error that says how much room it needs, deletes what it wrote, and the folder still holds the previous
    index, whole."""
    sources, prints = states
    target = tmp_path / "ix"
    FaissIndex.load(sources[1]).save(target)
    child = _child("save-limited", str(sources[2]), str(target), str(2_000_000), stdout=subprocess.DEVNULL)
    _, err = child.communicate(timeout=120)
    last = err.rstrip().splitlines()[-1]
    assert child.returncode != 0 and last.startswith("qa.errors.IndexWriteError: Cannot write the index"), err
    assert "Saving it needs about" in last and "MB of free space" in last
    assert _stray(target) == set(), "the failed save deletes the files it had written"
    assert fingerprint(FaissIndex.load(target)) == prints[1]
    FaissIndex.load(sources[2]).save(target)
    assert _stray(target) == set() and fingerprint(FaissIndex.load(target)) == prints[2]


def test_kill_9_during_qa_index_keeps_previous_index(tmp_path: Path) -> None:
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
    assert killed_mid_save, "the index run ended before it could be interrupted"

    index = FaissIndex.load(ix)  # must load: either the old generation or, if the switch completed, the new one
    after = json.loads((ix / MANIFEST).read_text())
    if after == before:
        assert sorted(index.documents) == sorted(before["documents"])
    else:
        assert len(index.documents) == 22

    # the next run completes and clears any half-written generation
    subprocess.run(_index_cmd([big], ix), check=True, capture_output=True, timeout=300)
    final = FaissIndex.load(ix)
    assert len(final.documents) == 22
    assert {p.name.split("-")[0] for p in ix.iterdir() if p.name not in SERVICE_FILES} == GENERATION_FILES | {MANIFEST}
    assert _stray(ix) == set()  # no half-written generation is left
