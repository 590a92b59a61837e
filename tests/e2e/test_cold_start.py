"""The query path stays light: a new ``qa ask`` process on an existing index answers without torch,
transformers or Gradio (the ONNX export is cached; see the conftest about ``QA_CACHE_DIR``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.data import GALLANT_Q, ROOT, SEEDS_DIR

from qa.tools.bench.children import child_modules

HEAVY = ("torch", "sentence_transformers", "transformers", "gradio", "trafilatura", "newspaper", "readability", "lxml",
         "pypdf", "feedparser", "markdown_it")


def _run(code: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "exporting" not in proc.stderr  # the export was cached by then
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("cold") / "ix"
    subprocess.run([sys.executable, "-m", "qa", "index", str(SEEDS_DIR), "--index-dir", str(index)],
                   env=dict(os.environ), cwd=ROOT, check=True, capture_output=True, timeout=300)
    return index


def test_qa_ask_imports_no_torch(index: Path) -> None:
    result = _run(
        "import io, json, sys, contextlib\n"
        "from qa.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main(['ask', '--index-dir', {str(index)!r}, '--llm', 'extractive', '--json', {GALLANT_Q!r}])\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'answer': json.loads(out.getvalue())}))\n"
    )
    assert result["rc"] == 0 and result["heavy"] == []
    assert "Gallant" in result["answer"]["citations"][0]["sentence"]  # type: ignore[index]


def test_the_default_embedder_encodes_without_torch() -> None:
    result = _run(
        "import json, sys\n"
        "from qa.embed import make_embedder\n"
        "e = make_embedder()\n"
        "v = e.encode(['Who stayed in Washington?'])\n"
        f"print(json.dumps({{'shape': list(v.shape), 'runtime': e.runtime, 'heavy': [m for m in {HEAVY!r}"
        " if m in sys.modules]}))\n"
    )
    assert result == {"shape": [1, 384], "runtime": "onnx-int8", "heavy": []}


def test_the_benchmark_sees_the_same(index: Path) -> None:
    """``qa bench``'s cold-start row: ``python -X importtime -m qa ask`` in a new process lists no heavy module."""
    assert child_modules({"index_dir": str(index)}) == {"rc": 0, "imported": []}
