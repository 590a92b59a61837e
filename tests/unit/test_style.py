"""The code stays ruff- and mypy-clean: the style guide is checked, not hoped for."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from helpers.data import ROOT


def _tool(name: str) -> list[str]:
    exe = shutil.which(name, path=str(ROOT / ".venv" / "bin")) or shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [exe]


def test_ruff_is_clean() -> None:
    proc = subprocess.run([*_tool("ruff"), "check", "qa", "ui", "tests"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "qa", "ui"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
