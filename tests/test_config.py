"""Configuration: explicit argument, then environment variable, then default."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import config
from qa.errors import ConfigError


@pytest.mark.parametrize(
    ("arg", "env", "expected"),
    [
        (None, None, "llama3.2"),
        (None, "qwen2.5:3b", "qwen2.5:3b"),
        ("mistral", "qwen2.5:3b", "mistral"),
        (None, "   ", "llama3.2"),
    ],
)
def test_model_precedence(monkeypatch: pytest.MonkeyPatch, arg: str | None, env: str | None, expected: str) -> None:
    if env is None:
        monkeypatch.delenv("QA_MODEL", raising=False)
    else:
        monkeypatch.setenv("QA_MODEL", env)
    assert config.resolve(ollama_model=arg).ollama_model == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("localhost:8080", "http://localhost:8080"),
        ("https://box.example", "https://box.example:443"),
        ("http://[::1]", "http://[::1]:11434"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
    ],
)
def test_ollama_host_is_completed(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert config.resolve().ollama_host == expected


def test_index_dir_from_env_and_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "env"))
    assert config.resolve().index_dir == tmp_path / "env"
    assert config.resolve(index_dir=tmp_path / "arg").index_dir == tmp_path / "arg"


@pytest.mark.parametrize(("var", "value"), [("QA_OLLAMA_TIMEOUT", "soon"), ("QA_TOP_K", "-3"), ("QA_MAX_FILE_MB", "0")])
def test_bad_numbers_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        config.resolve()


def test_prompts_ship_with_the_project() -> None:
    d = config.resolve().prompts_dir
    assert (d / "system.txt").is_file() and (d / "user.txt").is_file()
