"""``qa`` as a user runs it: the installed console script in a new process, and ``from qa import answer``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers.data import GALLANT, GALLANT_Q, SEED_FILE, SEED_ID

import qa


def run_qa(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a user would, in a new process."""
    qa_bin = Path(sys.executable).parent / "qa"
    cmd = [str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=timeout)


def test_ask_json_from_a_fresh_process(tmp_path: Path) -> None:
    """The default index is built on first use (into QA_INDEX_DIR), then reused; the answer cites Gallant."""
    env = {"QA_INDEX_DIR": str(tmp_path / "default")}
    proc = run_qa("ask", "--json", "--llm", "extractive", GALLANT_Q, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"answer", "abstained", "backend", "notice", "unsupported", "citations", "related"}
    assert out["abstained"] is False and out["backend"] == "extractive" and out["notice"] is None
    first = out["citations"][0]
    assert set(first) == {"n", "doc_id", "sentence", "start", "end", "score", "title", "published", "url", "outlet"}
    assert first["sentence"].startswith(GALLANT) and first["doc_id"] == SEED_ID
    text = SEED_FILE.read_text(encoding="utf-8")
    assert text[first["start"] : first["end"]] == first["sentence"]
    manifest = tmp_path / "default" / "manifest.json"
    assert manifest.is_file()
    built = manifest.read_bytes()
    again = run_qa("ask", "--llm", "extractive", "Who had requested the meetings?", env=env)
    assert again.returncode == 0 and "President Biden had requested the meetings" in again.stdout
    assert again.stdout.splitlines()[1].startswith(f"  [1] {SEED_ID} ")
    assert manifest.read_bytes() == built  # reused, not rebuilt


def test_auto_without_ollama_answers_and_says_why(tmp_path: Path) -> None:
    proc = run_qa("ask", GALLANT_Q, env={"QA_INDEX_DIR": str(tmp_path / "ix")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("note: Ollama is not reachable at http://127.0.0.1:9")
    assert GALLANT in proc.stdout


def test_version_is_printed() -> None:
    proc = run_qa("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"qa {qa.__version__}"
    from importlib.metadata import version

    assert qa.__version__ == version("qa-news")


def test_no_command_is_a_usage_error() -> None:
    proc = run_qa()
    assert proc.returncode == 2 and "usage: qa" in proc.stderr


def test_the_library_answers_from_the_default_index(tmp_path: Path) -> None:
    """``from qa import answer``: the README's first Python example, in a new process."""
    code = (
        "import json\n"
        "from qa import answer\n"
        f"res = answer({GALLANT_Q!r}, llm='extractive')\n"
        "print(json.dumps(res.to_json()))\n"
    )
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "lib")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["citations"][0]["sentence"].startswith(GALLANT)
    assert (tmp_path / "lib" / "manifest.json").is_file()
