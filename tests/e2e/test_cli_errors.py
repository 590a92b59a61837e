"""``qa`` in new processes, given what an attack (or a slip) gives it: a clear ``error:`` line and exit 2, never
a traceback; and nothing it prints to a terminal can drive the terminal."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from helpers.procs import Listener, obey_file_permissions

from qa.index.manifest import MANIFEST

ARTICLE = (
    "The lighthouse keeper counts ships at dawn. She writes each name in a green ledger.\n"
    "The harbour master reads the ledger every Friday.\n"
)
QUESTION = "Who counts ships at dawn?"


def _qa(*args: str | bytes, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of one article, built by ``qa index``; each test copies it."""
    root = tmp_path_factory.mktemp("built")
    (root / "ledger.txt").write_text(ARTICLE, encoding="utf-8")
    proc = _qa("index", str(root / "ledger.txt"), "--index-dir", str(root / "ix"))
    assert proc.returncode == 0, proc.stderr
    return root / "ix"


@dataclass
class Case:
    args: Callable[[Path], list[str | bytes]]
    message: str  # a regular expression the ``error:`` line must match
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] = lambda tmp: None
    preexec: Callable[[], None] | None = None


def _read_only(tmp: Path) -> None:
    for p in [tmp / "ix", *(tmp / "ix").iterdir()]:
        p.chmod(0o555 if p.is_dir() else 0o444)


def _rewrite(role: str, content: object) -> Callable[[Path], None]:
    """Replace one index file with content that passes its checksum (the manifest is updated) but disagrees."""

    def prepare(tmp: Path) -> None:
        manifest = json.loads((tmp / "ix" / MANIFEST).read_text())
        target = tmp / "ix" / manifest["files"][role]["name"]
        np.save(target, content, allow_pickle=False)
        manifest["files"][role].update(bytes=target.stat().st_size,
                                       sha256=hashlib.sha256(target.read_bytes()).hexdigest())
        (tmp / "ix" / MANIFEST).write_text(json.dumps(manifest))

    return prepare


def _file_instead(tmp: Path) -> None:
    (tmp / "notes.txt").write_text("not an index")


ASK = ["ask", QUESTION, "--llm", "extractive"]
CASES: dict[str, Case] = {
    "read-only index folder": Case(lambda t: ["index", str(t / "more.txt"), "--index-dir", str(t / "ix")],
                                   "Cannot write the index at .*/ix: Permission denied", prepare=_read_only,
                                   preexec=obey_file_permissions),
    "index path that is a file (index)": Case(lambda t: ["index", str(t / "more.txt"), "--index-dir",
                                                         str(t / "notes.txt")],
                                              "Cannot write the index at .*notes.txt: it is a file, not a folder",
                                              prepare=_file_instead),
    "index path that is a file (ask)": Case(lambda t: [*ASK, "--index-dir", str(t / "notes.txt")],
                                            r"No index at .*notes.txt \(it is a file, not an index folder\)",
                                            prepare=_file_instead),
    "QA_TOP_K=nan": Case(lambda t: [*ASK, "--index-dir", str(t / "ix")],
                         "top_k must be a finite positive number, got 'nan'; fix QA_TOP_K", env={"QA_TOP_K": "nan"}),
    "QA_TOP_K=0.1": Case(lambda t: [*ASK, "--index-dir", str(t / "ix")],
                         "top_k must be a whole number, got '0.1'; fix QA_TOP_K", env={"QA_TOP_K": "0.1"}),
    "QA_MAX_QUESTION_CHARS=nan": Case(lambda t: [*ASK, "--index-dir", str(t / "ix")],
                                      "max_question_chars must be a finite positive number",
                                      env={"QA_MAX_QUESTION_CHARS": "nan"}),
    "QA_MAX_FILE_MB=inf": Case(lambda t: ["index", str(t / "more.txt"), "--index-dir", str(t / "ix")],
                               "max_file_mb must be a finite positive number, got 'inf'",
                               env={"QA_MAX_FILE_MB": "inf"}),
    "OLLAMA_HOST=127.0.0.1:notaport": Case(lambda t: ["ask", QUESTION, "--index-dir", str(t / "ix")],
                                           "The Ollama address '127.0.0.1:notaport' is not valid",
                                           env={"OLLAMA_HOST": "127.0.0.1:notaport"}),
    "a lone surrogate in the question (bytes that are not UTF-8)": Case(
        lambda t: [b"ask", b"Who counts \xff ships?", b"--llm", b"extractive", b"--index-dir", bytes(t / "ix")],
        r"The question contains a character that is not valid text \(U\+DCFF"),
    "sentence offsets out of range (checksums match)": Case(
        lambda t: [*ASK, "--index-dir", str(t / "ix")], "is damaged .*offsets fall outside its document",
        prepare=_rewrite("sentences", np.array([[0, 0, 0, 10**6]] * 3))),
    "vectors of the wrong shape (checksums match)": Case(
        lambda t: [*ASK, "--index-dir", str(t / "ix")], "is damaged .*shape does not match",
        prepare=_rewrite("vectors", np.zeros((3, 7), np.float32))),
    "a manifest nested 100,000 deep": Case(
        lambda t: [*ASK, "--index-dir", str(t / "ix")], "is damaged .*nested too deeply",
        prepare=lambda t: (t / "ix" / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_bad_setting_or_input_is_an_error_line(built: Path, tmp_path: Path, case: str) -> None:
    c = CASES[case]
    shutil.copytree(built, tmp_path / "ix")
    (tmp_path / "more.txt").write_text("The ferry leaves at noon.\n")
    c.prepare(tmp_path)
    proc = _qa(*c.args(tmp_path), env=c.env, preexec_fn=c.preexec)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.rstrip().splitlines()[-1]
    assert last.startswith("error: ") and re.search(c.message, last), proc.stderr


def test_a_read_only_index_still_answers(built: Path, tmp_path: Path) -> None:
    """Reading takes no lock that needs writing: a read-only index answers."""
    shutil.copytree(built, tmp_path / "ix")
    _read_only(tmp_path)
    proc = _qa(*ASK, "--index-dir", str(tmp_path / "ix"), preexec_fn=obey_file_permissions)
    assert proc.returncode == 0, proc.stderr
    assert "counts ships at dawn" in proc.stdout


def test_a_mistyped_embedding_model_is_not_looked_for_online(tmp_path: Path) -> None:
    """``--embed-model all-MiniLM-L6-v3`` tried huggingface.co (twice) before failing; now it says the model
    is not installed, and nothing reaches for the network (here: a listener standing in for the hub and any
    proxy, with offline mode off)."""
    (tmp_path / "a.txt").write_text(ARTICLE)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    with Listener() as hub:
        env.update(HF_ENDPOINT=hub.url, HTTP_PROXY=hub.url, HTTPS_PROXY=hub.url, https_proxy=hub.url,
                   http_proxy=hub.url, HF_HOME=str(tmp_path / "hf"), QA_CACHE_DIR=str(tmp_path / "cache"))
        proc = subprocess.run([sys.executable, "-m", "qa", "index", str(tmp_path / "a.txt"), "--index-dir",
                               str(tmp_path / "ix"), "--embed-model", "all-MiniLM-L6-v3"],
                              capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: The embedding model 'all-MiniLM-L6-v3' is not installed")
    assert hub.connections == 0, "qa tried to reach a model hub"
    assert not (tmp_path / "ix").exists(), "a failed first index leaves no folder behind"


def test_nothing_printed_to_a_terminal_can_drive_it(tmp_path: Path) -> None:
    """Escape sequences in an article (clear screen, colours, a window title, an 8-bit CSI, a right-to-left
    override) are printed as plain text: the control characters are gone from answers, citations and errors.
    ``--json`` keeps them, escaped."""
    poison = "\x1b[2J\x1b[31m\x1b]0;pwned\x07\x9b1m\u202e"
    (tmp_path / "poison.txt").write_text(f"The lighthouse keeper{poison} counts ships at dawn.\n")
    (tmp_path / "titled.md").write_text(f"---\ntitle: Ships{poison} at dawn\noutlet: The{poison} Post\n---\n\n"
                                        "The harbour master counts ferries at noon.\n")
    indexed = _qa("index", str(tmp_path / "poison.txt"), str(tmp_path / "titled.md"), "--index-dir",
                  str(tmp_path / "ix"))
    assert indexed.returncode == 0, indexed.stderr
    assert "added: Ships[2J[31m]0;pwned1m at dawn" in indexed.stdout  # the title, shown without its controls
    docs = _qa("docs", "--index-dir", str(tmp_path / "ix"))
    assert "The[2J[31m]0;pwned1m Post" in docs.stdout
    for listing in (indexed, docs):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", listing.stdout + listing.stderr)
    proc = _qa(*ASK, "--index-dir", str(tmp_path / "ix"))
    assert proc.returncode == 0, proc.stderr
    assert "counts ships at dawn" in proc.stdout and "[2J[31m]0;pwned1m" in proc.stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", proc.stdout + proc.stderr)
    as_json = _qa(*ASK, "--json", "--index-dir", str(tmp_path / "ix"))
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", as_json.stdout)
    assert poison in json.loads(as_json.stdout)["citations"][0]["sentence"]
    bad = tmp_path / f"evil{poison}.docx"
    bad.write_bytes(b"PK\x03\x04")
    err = _qa("index", str(bad), "--index-dir", str(tmp_path / "ix")).stderr
    assert "Unsupported file type" in err and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", err)
