"""Settings, resolved in one place: explicit argument, then environment variable, then default.

``resolve()`` returns a frozen ``Settings`` that is passed down; no other module reads the
environment for a setting. Where the bundled files live (prompts, the seed article, the seed
questions) and where the default index goes also depend on how ``qa`` was installed: from a
checkout they are the repository's ``prompts/``, ``seeds/`` and ``index/``; from a wheel the files
ship inside the package and the index goes to a per-user data directory.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_OLLAMA_MODEL = "llama3.2"
RUNTIMES = ("onnx-int8", "onnx", "torch")
DEFAULT_RUNTIME = "onnx-int8"  # ≥ 3× SentenceTransformer.encode within 0.5 point of its retrieval quality (qa bench)
APP_NAME = "qa-news"


def checkout_root() -> Path | None:
    """The repository ``qa`` runs from (an editable install or ``python -m qa`` in a clone), or None.

    A wheel puts ``prompts/`` and ``seeds/`` inside the package instead, so their presence next to the
    package together with ``pyproject.toml`` is what marks a checkout.
    """
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "seeds").is_dir() and not (PACKAGE_DIR / "seeds").is_dir():
        return root
    return None


def asset_dir(name: str) -> Path:
    """A bundled folder (``prompts``, ``seeds``): inside the installed package, else in the checkout."""
    inside = PACKAGE_DIR / name
    if inside.is_dir():
        return inside
    return PACKAGE_DIR.parent / name


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


def _number(value: object, name: str, env: str, *, whole: bool = False) -> float:
    """A finite positive number (a whole one with ``whole``), or a ``ConfigError`` naming the setting.

    >>> _number("2.5", "x", "QA_X")
    2.5
    >>> _number("nan", "x", "QA_X")
    Traceback (most recent call last):
    qa.errors.ConfigError: x must be a finite positive number, got 'nan'; fix QA_X or the argument.
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be a finite positive number, got {value!r}; fix {env} or the argument.")
    if whole and number != int(number):
        raise ConfigError(f"{name} must be a whole number, got {value!r}; fix {env} or the argument.")
    return number


def _ollama_parser() -> Any:
    """The ``ollama`` client's address parser. Importing ``ollama`` builds a default client from
    ``OLLAMA_HOST``, which raises on an address like ``127.0.0.1:notaport`` before anything can say which
    setting is wrong; so the variable is set aside while it is imported, and the address parsed here."""
    saved = os.environ.pop("OLLAMA_HOST", None)
    try:
        from ollama._client import _parse_host
    finally:
        if saved is not None:
            os.environ["OLLAMA_HOST"] = saved
    return _parse_host


def _flag(value: object, env: str) -> bool:
    """A yes/no setting: ``1/true/yes/on`` or ``0/false/no/off`` (any case).

    >>> _flag("1", "QA_X"), _flag("off", "QA_X"), _flag(True, "QA_X")
    (True, False, True)
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{env} must be 1 or 0 (true or false), got {value!r}.")


def parse_ollama_host(host: str) -> str:
    """Complete an Ollama address exactly as the official ``ollama`` client does (its own parser).

    >>> parse_ollama_host("0.0.0.0"), parse_ollama_host("http://gpu-box")
    ('http://0.0.0.0:11434', 'http://gpu-box:80')
    """
    _parse_host = _ollama_parser()  # the client's own parsing, so both mean the same server
    try:
        url = str(_parse_host(host.strip()))
    except ValueError as exc:
        raise ConfigError(f"The Ollama address {host!r} is not valid ({exc}); fix OLLAMA_HOST.") from None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"The Ollama address {host!r} is not an http(s) URL; fix OLLAMA_HOST.")
    return url


def _data_home() -> Path:
    """Where a pip-installed ``qa`` keeps its indexes: ``$XDG_DATA_HOME/qa-news`` or ``~/.local/share/qa-news``."""
    base = str(_pick(None, "XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return Path(base) / APP_NAME


#: The web chat's saved conversations, next to the index they cite (the index never deletes it).
CHATS_DB_NAME = "chats.sqlite3"


def default_index_dir() -> Path:
    """``index/seeds`` in a checkout; in the user's data directory otherwise (never the current directory)."""
    root = checkout_root()
    return (root / "index" / "seeds") if root is not None else _data_home() / "index" / "seeds"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the pipeline, already resolved and checked."""

    index_dir: Path
    seeds_dir: Path
    prompts_dir: Path
    embed_model: str
    embed_runtime: str
    cache_dir: Path
    llm: str
    ollama_host: str
    ollama_model: str
    ollama_timeout: float
    top_k: int
    max_question_chars: int
    max_file_bytes: int
    lock_timeout: float = 600.0  # how long a second writer of one index waits for the first
    answer_timeout: float = 180.0  # the longest a model may take over one whole answer
    max_answer_chars: int = 20_000  # the most characters a model may send for one answer
    allowed_hosts: tuple[str, ...] = ()  # more names the chat may be called by (Host header), e.g. a proxy's
    auth_user: str = "qa"
    auth_password: str = field(default="", repr=False)  # the chat's login (none when empty); never printed
    fetch_timeout: float = 20.0  # seconds for fetching one link, redirects included
    allow_private_links: bool = False  # a chat served to other machines may fetch private addresses
    store: str | None = None  # milvus://HOST:PORT/COLLECTION: the index lives there instead of index_dir
    chats_db: Path | None = None  # the web chat's saved conversations (SQLite); None: kept in memory only
    allow_uploads: bool = False  # a chat served to other machines lets its users add and remove documents


def resolve(
    *,
    index_dir: str | os.PathLike[str] | None = None,
    seeds_dir: str | os.PathLike[str] | None = None,
    prompts_dir: str | os.PathLike[str] | None = None,
    embed_model: str | None = None,
    embed_runtime: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    llm: str | None = None,
    ollama_host: str | None = None,
    ollama_model: str | None = None,
    ollama_timeout: float | None = None,
    top_k: int | None = None,
    max_question_chars: int | None = None,
    max_file_mb: float | None = None,
    lock_timeout: float | None = None,
    answer_timeout: float | None = None,
    max_answer_chars: int | None = None,
    allowed_hosts: str | None = None,
    auth_user: str | None = None,
    auth_password: str | None = None,
    fetch_timeout: float | None = None,
    allow_private_links: bool | None = None,
    store: str | None = None,
    chats_db: str | os.PathLike[str] | None = None,
    allow_uploads: bool | None = None,
) -> Settings:
    """Resolve every setting once; callers never read the environment themselves.

    >>> resolve(top_k=3, embed_runtime="torch").top_k
    3
    """
    runtime = str(_pick(embed_runtime, "QA_EMBED_RUNTIME", DEFAULT_RUNTIME)).strip()
    if runtime not in RUNTIMES:
        raise ConfigError(
            f"Unknown embedding runtime {runtime!r}: use one of {', '.join(RUNTIMES)} (QA_EMBED_RUNTIME)."
        )
    xdg_cache = str(_pick(None, "XDG_CACHE_HOME", Path.home() / ".cache")).strip()
    index = Path(str(_pick(index_dir, "QA_INDEX_DIR", default_index_dir())))
    return Settings(
        index_dir=index,
        seeds_dir=Path(str(_pick(seeds_dir, "QA_SEEDS_DIR", asset_dir("seeds")))),
        prompts_dir=Path(str(_pick(prompts_dir, "QA_PROMPTS_DIR", asset_dir("prompts")))),
        embed_model=str(_pick(embed_model, "QA_EMBED_MODEL", DEFAULT_EMBED_MODEL)).strip(),
        embed_runtime=runtime,
        cache_dir=Path(str(_pick(cache_dir, "QA_CACHE_DIR", Path(xdg_cache) / APP_NAME))),
        llm=str(_pick(llm, "QA_LLM", "auto")).strip(),
        ollama_host=parse_ollama_host(str(_pick(ollama_host, "OLLAMA_HOST", ""))),
        ollama_model=str(_pick(ollama_model, "QA_MODEL", DEFAULT_OLLAMA_MODEL)).strip(),
        ollama_timeout=_number(_pick(ollama_timeout, "QA_OLLAMA_TIMEOUT", 60.0), "ollama_timeout", "QA_OLLAMA_TIMEOUT"),
        top_k=int(_number(_pick(top_k, "QA_TOP_K", 6), "top_k", "QA_TOP_K", whole=True)),
        max_question_chars=int(
            _number(_pick(max_question_chars, "QA_MAX_QUESTION_CHARS", 2000), "max_question_chars",
                    "QA_MAX_QUESTION_CHARS", whole=True)
        ),
        max_file_bytes=int(
            _number(_pick(max_file_mb, "QA_MAX_FILE_MB", 10), "max_file_mb", "QA_MAX_FILE_MB") * 1_000_000
        ),
        lock_timeout=_number(_pick(lock_timeout, "QA_LOCK_TIMEOUT", 600.0), "lock_timeout", "QA_LOCK_TIMEOUT"),
        answer_timeout=_number(_pick(answer_timeout, "QA_ANSWER_TIMEOUT", 180.0), "answer_timeout",
                               "QA_ANSWER_TIMEOUT"),
        max_answer_chars=int(_number(_pick(max_answer_chars, "QA_MAX_ANSWER_CHARS", 20_000), "max_answer_chars",
                                     "QA_MAX_ANSWER_CHARS", whole=True)),
        allowed_hosts=tuple(h.strip() for h in str(_pick(allowed_hosts, "QA_ALLOWED_HOSTS", "")).split(",")
                            if h.strip()),
        auth_user=str(_pick(auth_user, "QA_AUTH_USER", "qa")).strip(),
        auth_password=str(_pick(auth_password, "QA_AUTH_PASSWORD", "")),
        fetch_timeout=_number(_pick(fetch_timeout, "QA_FETCH_TIMEOUT", 20.0), "fetch_timeout", "QA_FETCH_TIMEOUT"),
        allow_private_links=_flag(_pick(allow_private_links, "QA_ALLOW_PRIVATE_LINKS", False),
                                  "QA_ALLOW_PRIVATE_LINKS"),
        store=_store(_pick(store, "QA_STORE", "")),
        chats_db=Path(str(_pick(chats_db, "QA_CHATS_DB", index / CHATS_DB_NAME))),
        allow_uploads=_flag(_pick(allow_uploads, "QA_ALLOW_UPLOADS", False), "QA_ALLOW_UPLOADS"),
    )


def _store(value: object) -> str | None:
    """The index store: empty for the embedded FAISS folder, else ``milvus://HOST:PORT/COLLECTION``.

    >>> _store(""), _store("milvus://127.0.0.1:19530/news")
    (None, 'milvus://127.0.0.1:19530/news')
    """
    text = str(value).strip()
    if not text or text == "faiss":
        return None
    if not re.fullmatch(r"milvus://[^/:]+:\d{1,5}/[A-Za-z_][A-Za-z0-9_]{0,200}", text):
        raise ConfigError(f"Unknown index store {text!r}: use milvus://HOST:PORT/COLLECTION, or leave QA_STORE "
                          "empty for the embedded FAISS index (--store / QA_STORE).")
    return text
