"""The ``qa`` command in this process: indexing and asking, and bad input with clear errors and non-zero exits.

(``tests/e2e/test_cli_process.py`` runs it as a user would, in new processes.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.fakes import HashEmbedder

from qa.cli import main
from qa.pipeline import Pipeline


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
    (tmp_path / "doc.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 10)
    with (tmp_path / "huge.txt").open("wb") as f:  # 100 MB (sparse): refused before it is read
        f.truncate(100_000_000)
    return {
        "empty question": (["ask", "   "], "question is empty"),
        "missing file": (["index", str(tmp_path / "nope.txt")], "No such file"),
        "unsupported type": (["index", str(tmp_path / "doc.docx")], "Unsupported file type"),
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
    assert list(manifest["documents"]) == [(tmp_path / "b.txt").as_posix()]  # ids are paths, not bare names


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import qa

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"qa {qa.__version__}"


@pytest.mark.parametrize(("tool", "prog"), [("eval", "qa eval"), ("bench", "qa bench")])
def test_tools_are_dispatched_with_their_own_arguments(
    capsys: pytest.CaptureFixture[str], tool: str, prog: str
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([tool, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog}")


def test_eval_errors_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.strip() == f"error: No such file: {tmp_path / 'missing.json'}. " \
                                              "Check the path and try again."


def test_a_bad_setting_is_an_error_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QA_TOP_K", "nan")
    assert main(["ask", "Who stayed?"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: top_k must be a finite positive number") and "QA_TOP_K" in err
