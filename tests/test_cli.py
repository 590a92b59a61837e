"""The `qa` command: the README's main job, and bad input with clear errors and non-zero exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEED_FILE, HashEmbedder

from qa.cli import main
from qa.pipeline import Pipeline


def run_qa(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a user would, in a new process."""
    full_env = {**os.environ, **(env or {})}
    qa_bin = Path(sys.executable).parent / "qa"
    cmd = [str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def test_ask_json_from_a_fresh_process(tmp_path: Path) -> None:
    """The Done-when of the pipeline issue: the default index is built on first use and cites Gallant."""
    proc = run_qa(
        "ask",
        "--json",
        "Who stayed in Washington despite the cancellation?",
        env={"QA_INDEX_DIR": str(tmp_path / "default")},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"answer", "abstained", "citations"}
    assert out["abstained"] is False
    first = out["citations"][0]
    assert set(first) >= {"n", "doc_id", "sentence", "start", "end", "score"}
    assert "Yoav Gallant remained in Washington" in first["sentence"]
    text = SEED_FILE.read_text(encoding="utf-8")
    assert text[first["start"] : first["end"]] == first["sentence"]
    assert (tmp_path / "default" / "manifest.json").is_file()


def test_index_then_ask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ix = tmp_path / "ix"
    doc = tmp_path / "story.md"
    doc.write_text("# Trains\nThe new train line opened in Lyon on Tuesday. It carries 40,000 riders a day.\n")
    assert main(["index", str(doc), "--index-dir", str(ix)]) == 0
    assert "indexed 1 document" in capsys.readouterr().out
    assert (
        main(["ask", "How many riders does the train carry?", "--index-dir", str(ix), "--json", "--llm", "extractive"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert "40,000 riders" in out["citations"][0]["sentence"]


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 10)
    with (tmp_path / "huge.txt").open("wb") as f:  # 100 MB (sparse): refused before it is read
        f.truncate(100_000_000)
    return {
        "empty question": (["ask", "   "], "question is empty"),
        "missing file": (["index", str(tmp_path / "nope.txt")], "No such file"),
        "unsupported type": (["index", str(tmp_path / "doc.pdf")], "Unsupported file type"),
        "empty document": (["index", str(tmp_path / "empty.txt")], "no text to index"),
        "binary document": (["index", str(tmp_path / "binary.txt")], "not UTF-8 text"),
        "100 MB document": (["index", str(tmp_path / "huge.txt")], "100.0 MB; the limit is 10.0 MB"),
        "100,000-character question": (["ask", "x" * 100_000], "100,000 characters long"),
        "missing index": (["ask", "Who?", "--index-dir", str(tmp_path / "none")], "No index at"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty question",
        "missing file",
        "unsupported type",
        "empty document",
        "binary document",
        "100 MB document",
        "100,000-character question",
        "missing index",
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    args, message = _bad_inputs(tmp_path)[case]
    ix = tmp_path / "written"
    if args[0] == "index":
        args = [*args, "--index-dir", str(ix)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert f"error: {message}" in err or ("error: " in err and message in err)
    assert err.rstrip().splitlines()[-1].startswith("error: ")
    assert not ix.exists(), "nothing may be half-written"


def test_bad_file_in_a_batch_leaves_the_existing_index_intact(tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    Pipeline.from_texts({"a": "Alpha one."}, index_dir=ix, embedder=HashEmbedder())
    before = (ix / "manifest.json").read_bytes()
    good = tmp_path / "good.txt"
    good.write_text("Good text.")
    assert main(["index", str(good), str(tmp_path / "missing.txt"), "--index-dir", str(ix)]) != 0
    assert (ix / "manifest.json").read_bytes() == before


def test_index_built_with_another_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ix = tmp_path / "ix"
    Pipeline.from_texts({"a": "Alpha one."}, index_dir=ix, embedder=HashEmbedder())
    assert main(["ask", "What?", "--index-dir", str(ix)]) == 2
    err = capsys.readouterr().err
    assert "fake-hash-embedder" in err and "--rebuild" in err
    (tmp_path / "b.txt").write_text("Bravo.")
    assert main(["index", str(tmp_path / "b.txt"), "--index-dir", str(ix)]) == 2
    assert "fake-hash-embedder" in capsys.readouterr().err
    assert json.loads((ix / "manifest.json").read_text())["model"] == "fake-hash-embedder"


def test_rebuild_replaces_an_index_from_another_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ix = tmp_path / "ix"
    Pipeline.from_texts({"a": "Alpha one."}, index_dir=ix, embedder=HashEmbedder())
    (tmp_path / "b.txt").write_text("Bravo went to Paris.")
    assert main(["index", str(tmp_path / "b.txt"), "--index-dir", str(ix), "--rebuild"]) == 0
    manifest = json.loads((ix / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert list(manifest["documents"]) == ["b.txt"]
