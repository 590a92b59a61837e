"""Writers and readers of one index folder at once, in real processes: nothing lost, no false damage, a full
disk cleaned up after, and only the index's own files ever deleted.

``qa index`` runs as a user runs it (new processes, the real embedder); the readers' loop loads the index in
this process while a child rewrites it as fast as it can.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers.data import ROOT
from helpers.faults import make_state

from qa import errors
from qa.index import FaissIndex
from qa.index.folder import SERVICE_FILES
from qa.index.manifest import MANIFEST

TESTS = ROOT / "tests"


def _qa(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "qa", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)  # type: ignore[call-overload]


def _corpus(folder: Path, prefix: str, n_docs: int, sentences: int = 30) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in range(n_docs):
        body = " ".join(f"The {prefix} report {d} says committee {i} approved line {i * 7 + d}."
                        for i in range(sentences))
        path = folder / f"{prefix}-{d:02d}.txt"
        path.write_text(body + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _stray(root: Path) -> set[str]:
    named = {str(i["name"]) for i in json.loads((root / MANIFEST).read_text())["files"].values()}
    return {p.name for p in root.iterdir()} - named - {MANIFEST} - SERVICE_FILES


def test_two_qa_index_runs_at_once_lose_no_document(tmp_path: Path) -> None:
    """Two ``qa index`` runs start together into one folder, twice: the second waits for the first (and says
    so), then adds its documents to the first's. Every document of every run is in the index, which loads."""
    ix = tmp_path / "ix"
    expected: set[str] = set()
    for trial in range(2):
        runs = []
        for who in ("left", "right"):
            paths = _corpus(tmp_path / f"{who}-{trial}", f"{who}{trial}", 4)
            expected |= {p.as_posix() for p in paths}  # ids: paths (absolute: outside the working directory)
            runs.append(_qa("index", *map(str, paths), "--index-dir", str(ix)))
        outputs = [run.communicate(timeout=600) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
        assert set(json.loads((ix / MANIFEST).read_text())["documents"]) == expected
        assert set(FaissIndex.load(ix).documents) == expected
    assert _stray(ix) == set()


def test_readers_never_see_a_healthy_index_as_damaged(tmp_path: Path) -> None:
    """A child saves two indexes into one folder in turn, without pause, while this process loads it again
    and again (what ``qa ask`` does first). Every load succeeds, and is one of the two, whole."""
    sources = []
    for seed, n in enumerate((3_000, 2_000)):
        make_state(n, seed=seed).save(tmp_path / f"state-{seed}")
        sources.append(tmp_path / f"state-{seed}")
    sizes = {len(FaissIndex.load(s)) for s in sources}
    target = tmp_path / "ix"
    FaissIndex.load(sources[0]).save(target)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-m", "helpers.faults", "save-forever", str(target), "1",
                              *map(str, sources)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=TESTS)
    loads, damaged, saves = 0, [], [0]
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"

        def count() -> None:
            assert child.stdout is not None
            for _ in child.stdout:
                saves[0] += 1

        threading.Thread(target=count, daemon=True).start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                assert len(FaissIndex.load(target)) in sizes
            except errors.IndexCorruptError as exc:
                damaged.append(str(exc))
            loads += 1
    finally:
        child.kill()
        child.wait(timeout=60)
    assert saves[0] >= 10, "the child should have rewritten the index many times"
    assert damaged == [], f"{len(damaged)} of {loads} loads reported damage: {damaged[:3]}"


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_leaves_nothing_behind_and_says_how_much_room_is_needed(tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    small = _corpus(tmp_path / "small", "small", 1, 3)
    assert _qa("index", *map(str, small), "--index-dir", str(ix)).wait(timeout=600) == 0
    before = (ix / MANIFEST).read_bytes()
    big = _corpus(tmp_path / "big", "big", 20, 40)
    run = _qa("index", *map(str, big), "--index-dir", str(ix), preexec_fn=lambda: _limit_file_size(400_000))
    _, err = run.communicate(timeout=600)
    assert run.returncode == 2, err
    last = err.rstrip().splitlines()[-1]
    assert last.startswith(f"error: Cannot write the index at {ix}: "), err
    assert "Saving it needs about" in last and "MB of free space" in last and "Traceback" not in err
    assert "Nothing was changed: the previous index is intact" in last
    assert (ix / MANIFEST).read_bytes() == before
    assert _stray(ix) == set(), "the failed save must delete the files it wrote"
    # with room again, the same command succeeds
    assert _qa("index", *map(str, big), "--index-dir", str(ix)).wait(timeout=600) == 0
    assert len(FaissIndex.load(ix).documents) == 21 and _stray(ix) == set()
