"""Configuration: explicit argument, then environment variable, then default; bad values name their setting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers.data import ROOT, SEED_ID

from qa import config
from qa.errors import ConfigError


@pytest.mark.parametrize(
    ("arg", "env", "expected"),
    [
        (None, None, "llama3.2"),
        (None, "qwen2.5:3b", "qwen2.5:3b"),
        ("mistral", "qwen2.5:3b", "mistral"),
        (None, "   ", "llama3.2"),  # blank means unset
    ],
)
def test_model_precedence(monkeypatch: pytest.MonkeyPatch, arg: str | None, env: str | None, expected: str) -> None:
    if env is not None:
        monkeypatch.setenv("QA_MODEL", env)
    assert config.resolve(ollama_model=arg).ollama_model == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("localhost:8080", "http://localhost:8080"),
        ("http://host", "http://host:80"),  # a scheme without a port: the scheme's port, as ollama's client reads it
        ("https://box.example", "https://box.example:443"),
        ("http://[::1]", "http://[::1]:80"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
        ("  127.0.0.1:9  ", "http://127.0.0.1:9"),
    ],
)
def test_ollama_host_means_what_ollamas_client_means(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    from ollama._client import _parse_host

    monkeypatch.setenv("OLLAMA_HOST", value)
    assert config.resolve().ollama_host == expected
    assert config.parse_ollama_host(value) == expected == str(_parse_host(value.strip()))


def test_no_ollama_host_is_the_local_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST")
    assert config.resolve().ollama_host == "http://127.0.0.1:11434"


@pytest.mark.parametrize("value", ["127.0.0.1:notaport", "http://box:port"])
def test_a_bad_ollama_host_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    with pytest.raises(ConfigError, match="OLLAMA_HOST") as err:
        config.resolve()
    assert repr(value) in str(err.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("QA_OLLAMA_TIMEOUT", "soon"),
        ("QA_OLLAMA_TIMEOUT", "inf"),
        ("QA_OLLAMA_TIMEOUT", "0"),
        ("QA_TOP_K", "-3"),
        ("QA_TOP_K", "nan"),
        ("QA_TOP_K", "0.1"),
        ("QA_TOP_K", "2.5"),
        ("QA_TOP_K", "0"),
        ("QA_MAX_FILE_MB", "0"),
        ("QA_MAX_FILE_MB", "inf"),
        ("QA_MAX_FILE_MB", "-inf"),
        ("QA_MAX_FILE_MB", "ten"),
        ("QA_MAX_QUESTION_CHARS", "nan"),
        ("QA_MAX_QUESTION_CHARS", "1e400"),
        ("QA_MAX_QUESTION_CHARS", "99.5"),
        ("QA_FETCH_TIMEOUT", "0"),
        ("QA_FETCH_TIMEOUT", "never"),
        ("QA_ALLOW_PRIVATE_LINKS", "maybe"),
        ("QA_ALLOW_UPLOADS", "sometimes"),
    ],
)
def test_bad_numbers_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var) as err:
        config.resolve()
    assert repr(value) in str(err.value)


@pytest.mark.parametrize(
    ("var", "value", "field", "expected"),
    [
        ("QA_TOP_K", "3", "top_k", 3),
        ("QA_TOP_K", "4.0", "top_k", 4),
        ("QA_MAX_FILE_MB", "0.5", "max_file_bytes", 500_000),
        ("QA_MAX_QUESTION_CHARS", "120", "max_question_chars", 120),
        ("QA_OLLAMA_TIMEOUT", "2.5", "ollama_timeout", 2.5),
        ("QA_FETCH_TIMEOUT", "7", "fetch_timeout", 7.0),
        ("QA_ALLOW_PRIVATE_LINKS", "1", "allow_private_links", True),
        ("QA_ALLOW_PRIVATE_LINKS", "Off", "allow_private_links", False),
        ("QA_ALLOW_UPLOADS", "yes", "allow_uploads", True),
        ("QA_ALLOW_UPLOADS", "0", "allow_uploads", False),
    ],
)
def test_good_numbers_are_read(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str, expected: float
) -> None:
    monkeypatch.setenv(var, value)
    got = getattr(config.resolve(), field)
    assert got == expected and type(got) is type(expected)


def test_allow_uploads_argument_then_environment_then_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.resolve().allow_uploads is False
    monkeypatch.setenv("QA_ALLOW_UPLOADS", "1")
    assert config.resolve().allow_uploads is True
    assert config.resolve(allow_uploads=False).allow_uploads is False  # the argument wins


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"top_k": 0}, "top_k"),
        ({"ollama_timeout": float("nan")}, "ollama_timeout"),
        ({"max_file_mb": -1}, "max_file_mb"),
    ],
)
def test_bad_arguments_name_the_setting(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        config.resolve(**kwargs)  # type: ignore[arg-type]


def test_defaults() -> None:
    s = config.resolve()
    assert (s.top_k, s.max_question_chars, s.max_file_bytes, s.ollama_timeout) == (6, 2000, 10_000_000, 60.0)
    assert (s.llm, s.ollama_model, s.embed_model, s.embed_runtime) == ("auto", "llama3.2", "all-MiniLM-L6-v2",
                                                                       "onnx-int8")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.top_k = 3  # type: ignore[misc]


def test_embedding_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_EMBED_RUNTIME", "torch")
    assert config.resolve().embed_runtime == "torch"
    assert config.resolve(embed_runtime="onnx").embed_runtime == "onnx"
    with pytest.raises(ConfigError, match="QA_EMBED_RUNTIME"):
        config.resolve(embed_runtime="tensorflow")


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config.resolve(cache_dir=tmp_path / "arg").cache_dir == tmp_path / "arg"
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "env"))
    assert config.resolve().cache_dir == tmp_path / "env"
    monkeypatch.delenv("QA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.resolve().cache_dir == tmp_path / "xdg" / "qa-news"


def test_index_dir_from_env_and_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "env"))
    assert config.resolve().index_dir == tmp_path / "env"
    assert config.resolve(index_dir=tmp_path / "arg").index_dir == tmp_path / "arg"


def test_in_a_checkout_the_default_index_and_assets_are_the_repositorys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_INDEX_DIR")
    assert config.checkout_root() == ROOT
    assert config.default_index_dir() == ROOT / "index" / "seeds"
    assert config.resolve().index_dir == ROOT / "index" / "seeds"
    assert (config.asset_dir("seeds") / SEED_ID).is_file()
    prompts = config.resolve().prompts_dir
    assert prompts == config.asset_dir("prompts") and (prompts / "system.txt").is_file()
    assert (prompts / "user.txt").is_file()


def test_the_login_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_AUTH_PASSWORD", "correct horse")
    s = config.resolve()
    assert s.auth_password == "correct horse" and s.auth_user == "qa"
    assert "correct horse" not in repr(s) and "correct horse" not in str(s)
    monkeypatch.setenv("QA_AUTH_USER", "alice")
    assert config.resolve().auth_user == "alice"
    assert config.resolve(auth_user="bob", auth_password="pw").auth_user == "bob"
