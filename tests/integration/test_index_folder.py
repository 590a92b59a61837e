"""The index folder owns only the files its manifests name: a user's files in it are never deleted, a folder
that is not an index is refused, and what cannot be written is said in words."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.fakes import HashEmbedder

from qa import errors
from qa.cli import main
from qa.index import FaissIndex
from qa.index.manifest import MANIFEST
from qa.pipeline import Pipeline
from qa.types import Document

DOCS = [Document("a", "The cat sat on the mat. The dog barked."), Document("b", "Markets fell. Investors sold bonds.")]


def _doc(tmp_path: Path) -> Path:
    path = tmp_path / "article.txt"
    path.write_text("The lighthouse keeper counts ships at dawn.\n", encoding="utf-8")
    return path


def test_a_folder_of_someone_elses_files_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mkdir d; echo x > d/documents-notes.txt; qa index a.txt --index-dir d`` used to delete the notes."""
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "documents-notes.txt").write_text("x\n")
    assert main(["index", str(_doc(tmp_path)), "--index-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Cannot write the index at {folder}: the folder is not empty and holds no qa index")
    assert sorted(os.listdir(folder)) == ["documents-notes.txt"]
    assert (folder / "documents-notes.txt").read_text() == "x\n"


def test_files_that_look_like_an_index_s_own_are_kept(tmp_path: Path) -> None:
    """A user's files and folders named like generation files, inside an index folder, survive every save
    (a folder ``documents-archive`` used to crash the save with ``IsADirectoryError``)."""
    root = tmp_path / "ix"
    FaissIndex.build(DOCS, HashEmbedder()).save(root)
    (root / "documents-notes.txt").write_text("mine\n")
    (root / "vectors-backup.npy").write_bytes(b"not ours")
    (root / "documents-archive").mkdir()
    (root / "documents-archive" / "old.txt").write_text("kept\n")
    index = FaissIndex.load(root)
    for extra in ("c", "d"):
        index = index.with_documents([Document(extra, f"Document {extra} says trains ran late.")], HashEmbedder())
        index.save(root)
    assert set(FaissIndex.load(root).documents) == {"a", "b", "c", "d"}
    assert (root / "documents-notes.txt").read_text() == "mine\n"
    assert (root / "vectors-backup.npy").read_bytes() == b"not ours"
    assert (root / "documents-archive" / "old.txt").read_text() == "kept\n"


def test_an_index_path_that_is_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an index\n")
    assert main(["index", str(_doc(tmp_path)), "--index-dir", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Cannot write the index at {path}: it is a file, not a folder. "
        "Choose a folder for --index-dir (QA_INDEX_DIR)."
    )
    assert main(["ask", "Who counts ships?", "--index-dir", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: No index at {path} (it is a file, not an index folder).")
    assert path.read_text() == "not an index\n"


def test_a_killed_first_save_does_not_make_the_folder_foreign(tmp_path: Path) -> None:
    """What a save killed before its first manifest left (its journal and half a generation) is the index's
    own: the next run cleans it up instead of refusing the folder."""
    root = tmp_path / "ix"
    root.mkdir()
    (root / "documents-20260101T000000-0000abcd.jsonl").write_text("half")
    (root / ".qa-journal.json").write_text(json.dumps({"pending": ["documents-20260101T000000-0000abcd.jsonl"]}))
    Pipeline.from_documents(DOCS, index_dir=root, embedder=HashEmbedder())
    assert not (root / "documents-20260101T000000-0000abcd.jsonl").exists()
    assert set(json.loads((root / MANIFEST).read_text())["documents"]) == {"a", "b"}


def test_a_deeply_nested_manifest_is_damage_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "ix"
    root.mkdir()
    (root / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(errors.IndexCorruptError, match="nested too deeply"):
        FaissIndex.load(root)


def test_a_second_writer_in_the_same_process_waits_and_adds(tmp_path: Path) -> None:
    """Two pipelines over one folder (two chat servers, say): each add reads what the other saved first."""
    root = tmp_path / "ix"
    one = Pipeline.from_documents(DOCS[:1], index_dir=root, embedder=HashEmbedder())
    two = Pipeline.load(root, embedder=HashEmbedder())
    one.add([Document("c", "Trains ran late on Tuesday.")])
    two.add([Document("d", "Ferries ran early on Monday.")])
    assert set(FaissIndex.load(root).documents) == {"a", "c", "d"}
    assert set(two.documents) == {"a", "c", "d"}


def test_a_removal_keeps_what_another_writer_added(tmp_path: Path) -> None:
    """``qa remove`` (or the chat's Remove) from a pipeline opened before another process added documents: it
    removes from what is on disk now, under the write lock, so the other's documents stay."""
    root = tmp_path / "ix"
    one = Pipeline.from_documents(DOCS, index_dir=root, embedder=HashEmbedder())
    two = Pipeline.load(root, embedder=HashEmbedder())
    one.add([Document("c", "Trains ran late on Tuesday.")])
    two.remove(["b"])
    assert set(FaissIndex.load(root).documents) == {"a", "c"}
    assert set(two.documents) == {"a", "c"}
    with pytest.raises(errors.UnknownDocumentError):
        two.remove(["b"])


def test_nothing_new_writes_nothing_but_sees_what_another_writer_added(tmp_path: Path) -> None:
    """Adding documents that are already indexed unchanged writes no generation, and the pipeline then sees
    what another writer added meanwhile."""
    root = tmp_path / "ix"
    one = Pipeline.from_documents(DOCS, index_dir=root, embedder=HashEmbedder())
    two = Pipeline.load(root, embedder=HashEmbedder())
    one.add([Document("c", "Trains ran late on Tuesday.")])
    stamp = (root / MANIFEST).stat().st_mtime_ns
    change = two.add(DOCS[:1])
    assert change.unchanged == ("a",) and not change.added
    assert (root / MANIFEST).stat().st_mtime_ns == stamp
    assert set(two.documents) == {"a", "b", "c"}
