"""The settings environment the tests isolate themselves from."""

from __future__ import annotations

import os

from qa import config

#: Settings a developer may have exported; no test may depend on them.
SETTINGS_ENV = (
    "QA_INDEX_DIR", "QA_SEEDS_DIR", "QA_PROMPTS_DIR", "QA_EMBED_MODEL", "QA_EMBED_RUNTIME", "QA_LLM", "QA_MODEL",
    "OLLAMA_HOST", "QA_OLLAMA_TIMEOUT", "QA_TOP_K", "QA_MAX_QUESTION_CHARS", "QA_MAX_FILE_MB", "QA_AUTH_USER",
    "QA_AUTH_PASSWORD", "QA_LOCK_TIMEOUT", "QA_ANSWER_TIMEOUT", "QA_MAX_ANSWER_CHARS", "QA_ALLOWED_HOSTS",
    "QA_FETCH_TIMEOUT", "QA_ALLOW_PRIVATE_LINKS", "QA_CHATS_DB",
    "QA_ALLOW_UPLOADS",
)
#: Where no Ollama server listens (the discard port).
NO_OLLAMA = "http://127.0.0.1:9"


def isolated_settings(**overrides: object) -> config.Settings:
    """Settings resolved without the developer's environment, for module- and session-scoped fixtures
    (they are set up before the per-test isolation of ``conftest.py`` runs)."""
    saved = {var: os.environ.pop(var) for var in SETTINGS_ENV if var in os.environ}
    try:
        return config.resolve(**{"ollama_host": NO_OLLAMA, **overrides})  # type: ignore[arg-type]
    finally:
        os.environ.update(saved)
