"""Settings, resolved in one place: explicit argument, then environment variable, then default."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from qa.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
DEFAULT_OLLAMA_MODEL = "llama3.2"
SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm")
RUNTIMES = ("onnx-int8", "onnx", "torch")
DEFAULT_RUNTIME = "onnx-int8"  # ≥ 3× SentenceTransformer.encode within 0.5 point of its retrieval quality (qa bench)


def _pick(arg: object, env: str, default: object) -> object:
    """Return the first of argument, environment variable, default that is set.

    >>> _pick("a", "QA_TEST_UNSET_VAR", "c")
    'a'
    >>> _pick(None, "QA_TEST_UNSET_VAR", "c")
    'c'
    """
    if arg is not None:
        return arg
    value = os.environ.get(env)
    if value is not None and value.strip() != "":
        return value
    return default


def resolve_runtime(runtime: str | None = None) -> str:
    """The embedding runtime: argument, then ``QA_EMBED_RUNTIME``, then ``onnx-int8``.

    >>> resolve_runtime("torch")
    'torch'
    """
    value = str(_pick(runtime, "QA_EMBED_RUNTIME", DEFAULT_RUNTIME)).strip()
    if value not in RUNTIMES:
        raise ConfigError(f"Unknown embedding runtime {value!r}: use one of {', '.join(RUNTIMES)} (QA_EMBED_RUNTIME).")
    return value


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where exported models are cached: argument, ``QA_CACHE_DIR``, ``$XDG_CACHE_HOME/qa-news``, ``~/.cache/qa-news``.

    >>> str(resolve_cache_dir("/tmp/x"))
    '/tmp/x'
    """
    xdg = str(_pick(None, "XDG_CACHE_HOME", Path.home() / ".cache")).strip()
    return Path(str(_pick(cache_dir, "QA_CACHE_DIR", Path(xdg) / "qa-news")))


def _number(value: object, name: str, env: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}; fix {env} or the argument.") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}; fix {env} or the argument.")
    return number


def normalize_host(host: str) -> str:
    """Complete an Ollama address the way the ``ollama`` CLI reads ``OLLAMA_HOST``.

    >>> normalize_host("0.0.0.0")
    'http://0.0.0.0:11434'
    >>> normalize_host("https://gpu-box")
    'https://gpu-box:443'
    >>> normalize_host("127.0.0.1:8080/")
    'http://127.0.0.1:8080'
    """
    host = host.strip().rstrip("/")
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    if rest.startswith("[") and "]" in rest:  # IPv6 literal
        has_port = rest.rsplit("]", 1)[1].startswith(":")
    else:
        has_port = ":" in rest
    if not has_port:
        rest += ":443" if scheme == "https" else ":11434"
    return f"{scheme}://{rest}"


def _default_prompts_dir() -> Path:
    """The repository's prompts/, or the copy a non-editable install puts under ``sys.prefix``."""
    here = PROJECT_ROOT / "prompts"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "qa-news" / "prompts"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the pipeline, already resolved."""

    index_dir: Path
    seeds_dir: Path
    embed_model: str
    llm: str
    ollama_host: str
    ollama_model: str
    ollama_timeout: float
    top_k: int
    max_question_chars: int
    max_file_bytes: int
    prompts_dir: Path


def resolve(
    *,
    index_dir: str | os.PathLike[str] | None = None,
    seeds_dir: str | os.PathLike[str] | None = None,
    embed_model: str | None = None,
    llm: str | None = None,
    ollama_host: str | None = None,
    ollama_model: str | None = None,
    ollama_timeout: float | None = None,
    top_k: int | None = None,
    max_question_chars: int | None = None,
    max_file_mb: float | None = None,
    prompts_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve every setting once; callers never read the environment themselves."""
    host = normalize_host(str(_pick(ollama_host, "OLLAMA_HOST", DEFAULT_OLLAMA_HOST)))
    return Settings(
        index_dir=Path(str(_pick(index_dir, "QA_INDEX_DIR", PROJECT_ROOT / "index" / "seeds"))),
        seeds_dir=Path(str(_pick(seeds_dir, "QA_SEEDS_DIR", PROJECT_ROOT / "seeds"))),
        embed_model=str(_pick(embed_model, "QA_EMBED_MODEL", DEFAULT_EMBED_MODEL)),
        llm=str(_pick(llm, "QA_LLM", "auto")),
        ollama_host=host,
        ollama_model=str(_pick(ollama_model, "QA_MODEL", DEFAULT_OLLAMA_MODEL)),
        ollama_timeout=_number(_pick(ollama_timeout, "QA_OLLAMA_TIMEOUT", 60.0), "ollama_timeout", "QA_OLLAMA_TIMEOUT"),
        top_k=int(_number(_pick(top_k, "QA_TOP_K", 6), "top_k", "QA_TOP_K")),
        max_question_chars=int(
            _number(
                _pick(max_question_chars, "QA_MAX_QUESTION_CHARS", 2000), "max_question_chars", "QA_MAX_QUESTION_CHARS"
            )
        ),
        max_file_bytes=int(
            _number(_pick(max_file_mb, "QA_MAX_FILE_MB", 10), "max_file_mb", "QA_MAX_FILE_MB") * 1_000_000
        ),
        prompts_dir=Path(str(_pick(prompts_dir, "QA_PROMPTS_DIR", _default_prompts_dir()))),
    )
