"""Answers from a local model through Ollama's ``/api/chat``, streamed.

Every exception of ``ollama`` and ``httpx`` is translated into ``qa.errors`` here, in
``OllamaGenerator._translate``, and nowhere else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from qa.answer.base import Generator
from qa.answer.prompts import Prompts, defang
from qa.cite.markers import strip_markers
from qa.errors import (
    AnswerTimeoutError,
    AnswerTooLongError,
    ConfigError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    ModelNotFoundError,
    OllamaRequestError,
    OllamaUnavailableError,
    QAError,
)
from qa.types import Hit, Turn

PROBE_CONNECT_TIMEOUT = 1.0  # an absent local server refuses at once; a black-holed host costs this much
PROBE_READ_TIMEOUT = 3.0
CONNECT_TIMEOUT = 3.0
PROBE_TTL_OK = 30.0  # a UI asks many questions: do not probe before every one
PROBE_TTL_FAILED = 5.0  # but notice soon when the user starts `ollama serve`
HISTORY_TURNS = 6
HISTORY_CHARS = 600  # six turns stay well inside a 2048-token context with the sources
ANSWER_TIMEOUT = 180.0  # the whole answer, unless the settings say otherwise (QA_ANSWER_TIMEOUT)
MAX_ANSWER_CHARS = 20_000  # likewise (QA_MAX_ANSWER_CHARS); 512 tokens are about 2,500 characters
DEFAULT_OPTIONS: Mapping[str, Any] = {"temperature": 0.1, "num_predict": 512}  # a looping model stops

_MAX_CLIENTS = 16
_clients: dict[tuple[str, float, float], Any] = {}
_clients_lock = threading.Lock()
_probes: dict[tuple[str, str], tuple[float, QAError | None]] = {}
_probes_lock = threading.Lock()


def _client(host: str, read: float, connect: float) -> Any:
    """One ``ollama.Client`` per host and timeout: creating an httpx client costs an SSL context."""
    key = (host, read, connect)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import httpx
            import ollama

            if len(_clients) >= _MAX_CLIENTS:  # hosts come and go (tests, edited settings): stay small
                _clients.clear()
            client = ollama.Client(host=host, timeout=httpx.Timeout(read, connect=connect))
            _clients[key] = client
        return client


def list_models(host: str, timeout: float = PROBE_READ_TIMEOUT) -> list[str] | None:
    """The models the server at ``host`` has pulled (``GET /api/tags``), for a picker; None when it cannot be
    reached or is not Ollama (the caller offers the extractive answerer alone)."""
    client = _client(host, min(timeout, PROBE_READ_TIMEOUT), min(timeout, PROBE_CONNECT_TIMEOUT))
    try:
        listed = client.list()
    except Exception:  # refused, timed out, not Ollama (httpx and ollama errors alike): nothing to pick
        return None
    return sorted({m.model for m in listed.models if m.model})


def clear_probe_cache() -> None:
    """Forget what earlier probes found (tests, and after a request failed)."""
    with _probes_lock:
        _probes.clear()


def _history_messages(history: Sequence[Turn]) -> list[dict[str, str]]:
    """The last turns, markers removed (they point at earlier, different sources), size-capped."""
    out: list[dict[str, str]] = []
    for turn in history:
        if turn.role not in ("user", "assistant") or not turn.content.strip():
            continue
        text = strip_markers(turn.content)
        out.append({"role": turn.role, "content": defang(text[:HISTORY_CHARS])})
    return out[-HISTORY_TURNS:]


class ThinkFilter:
    """Drop a leading ``<think>…</think>`` block that reasoning models (qwen3, deepseek-r1) stream
    as ordinary content on servers that do not separate it; it is not part of the answer. A block that
    is never closed was not one: what followed ``<think>`` is the answer, given when the stream ends.

    >>> f = ThinkFilter()
    >>> [f.feed(d) for d in ["<thi", "nk>hmm</th", "ink>\\n\\nGallant", " stayed."]]
    ['', '', 'Gallant', ' stayed.']
    >>> f = ThinkFilter()
    >>> [f.feed(d) for d in ["<think>", "Gallant stayed."]], f.flush()
    (['', ''], 'Gallant stayed.')
    """

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.state = "start"
        self.buffer = ""

    def feed(self, delta: str) -> str:
        if self.state == "pass":
            return delta
        if self.state == "after":  # the blank lines between the thoughts and the answer
            delta = delta.lstrip()
            if delta:
                self.state = "pass"
            return delta
        self.buffer += delta
        if self.state == "start":
            head = self.buffer.lstrip()
            if len(head) < len(self.OPEN) and self.OPEN.startswith(head):
                return ""  # could still become "<think>"
            if not head.startswith(self.OPEN):
                self.state, out, self.buffer = "pass", self.buffer, ""
                return out
            self.state, self.buffer = "thinking", head[len(self.OPEN) :]
        end = self.buffer.find(self.CLOSE, max(0, len(self.buffer) - len(delta) - len(self.CLOSE)))
        if end < 0:  # kept whole (the stream's length is bounded): it is the answer if no close comes
            return ""
        out, self.buffer = self.buffer[end + len(self.CLOSE) :].lstrip(), ""
        self.state = "pass" if out else "after"
        return out

    def flush(self) -> str:
        """What is still held back when the stream ends: text that only looked like "<think>", or what
        followed a "<think>" that was never closed."""
        out = self.buffer if self.state == "start" else self.buffer.lstrip() if self.state == "thinking" else ""
        self.buffer = ""
        return out


class OllamaGenerator(Generator):
    """Streams an answer from a local model through Ollama's ``/api/chat``.

    ``timeout`` bounds every wait for the server (connecting is capped at a few seconds, then
    each read), so a hung server fails with ``GenerationTimeoutError`` rather than hanging the UI.
    ``answer_timeout`` and ``max_chars`` bound the whole answer: a model that keeps sending (slowly, or
    without end) is stopped with ``AnswerTimeoutError`` or ``AnswerTooLongError``. The time is checked
    as each piece arrives, so an answer ends within ``answer_timeout`` plus one read's ``timeout``.
    """

    writes_free_text: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        host: str,
        timeout: float,
        prompts: Prompts,
        options: Mapping[str, Any] | None = None,
        answer_timeout: float = ANSWER_TIMEOUT,
        max_chars: int = MAX_ANSWER_CHARS,
    ) -> None:
        if not model.strip():
            raise ConfigError("The Ollama model name is empty: use --llm ollama:MODEL or set QA_MODEL.")
        self.model = model.strip()
        self.host = host
        self.timeout = timeout
        self.prompts = prompts
        self.options = dict(DEFAULT_OPTIONS if options is None else options)
        self.answer_timeout = answer_timeout
        self.max_chars = max_chars

    @property
    def name(self) -> str:
        return f"ollama:{self.model}"

    # ----- prompt --------------------------------------------------------------------------

    def messages(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> list[dict[str, str]]:
        """System rules, the recent conversation, then the question with its delimited sources."""
        return [
            {"role": "system", "content": self.prompts.system},
            *_history_messages(history),
            {"role": "user", "content": self.prompts.render_user(question, sources)},
        ]

    # ----- errors --------------------------------------------------------------------------

    def _translate(self, exc: Exception, *, started: bool, probing: bool = False) -> QAError:
        """The one place where ``ollama``/``httpx`` failures become ``qa.errors``.

        ``started`` says whether the server had begun answering: a broken connection after
        that is an interruption, before it the server is unavailable.
        """
        import httpx
        import ollama

        if isinstance(exc, QAError):
            return exc
        if isinstance(exc, ConnectionError) and isinstance(exc.__context__, httpx.HTTPError):
            exc = exc.__context__  # ollama re-raises httpx.ConnectError as a bare ConnectionError
        if isinstance(exc, ollama.ResponseError):
            detail = str(exc.error)
            if exc.status_code == 404 or (exc.status_code < 0 and "not found" in detail.lower()):
                return ModelNotFoundError(self.model)
            if exc.status_code < 0:  # an {"error": ...} line inside a stream that had begun
                return GenerationInterruptedError(self.host, detail)
            return OllamaRequestError(self.host, exc.status_code, detail)
        if isinstance(exc, httpx.ConnectTimeout):
            return OllamaUnavailableError(self.host, "connecting timed out")
        if isinstance(exc, httpx.TimeoutException):
            seconds = min(self.timeout, PROBE_READ_TIMEOUT) if probing else self.timeout
            return GenerationTimeoutError(self.host, seconds)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return ConfigError(f"The Ollama host {self.host!r} is not a valid http(s) URL; fix OLLAMA_HOST.")
        if isinstance(exc, httpx.ConnectError):
            detail = str(exc)
            return OllamaUnavailableError(self.host, "connection refused" if "refused" in detail.lower() else detail)
        if isinstance(exc, ConnectionError) and not started:  # what ollama makes of httpx.ConnectError
            return OllamaUnavailableError(self.host, "could not connect")
        if isinstance(exc, httpx.HTTPError | ConnectionError):
            if probing:
                return OllamaUnavailableError(self.host, f"the connection failed: {exc}")
            if started:
                return GenerationInterruptedError(self.host, str(exc) or type(exc).__name__)
            return GenerationInterruptedError(self.host, "the server closed the connection without answering")
        if isinstance(exc, ValueError):  # a truncated NDJSON line, or JSON that is not Ollama's shape
            return GenerationInterruptedError(self.host, f"the server sent a malformed reply ({type(exc).__name__})")
        raise exc

    # ----- reachability --------------------------------------------------------------------

    def probe(self, *, use_cached_failure: bool = True) -> QAError | None:
        """Is the server up and the model pulled? Returns the problem instead of raising; cached briefly."""
        key = (self.host, self.model)
        now = time.monotonic()
        with _probes_lock:
            cached = _probes.get(key)
        if cached is not None:
            at, problem = cached
            ttl = PROBE_TTL_OK if problem is None else PROBE_TTL_FAILED
            if now - at < ttl and (problem is None or use_cached_failure):
                return problem
        problem = self._probe_now()
        with _probes_lock:
            _probes[key] = (time.monotonic(), problem)
        return problem

    def _probe_now(self) -> QAError | None:
        client = _client(self.host, min(self.timeout, PROBE_READ_TIMEOUT), min(self.timeout, PROBE_CONNECT_TIMEOUT))
        import ollama

        try:
            client.list()  # GET /api/tags: is anything Ollama-shaped listening?
        except ollama.ResponseError as exc:
            return OllamaUnavailableError(self.host, f"the server there is not Ollama: HTTP {exc.status_code}")
        except Exception as exc:
            return self._translate(exc, started=False, probing=True)
        try:
            client.show(self.model)  # POST /api/show: 404 when the model is not pulled
        except Exception as exc:
            return self._translate(exc, started=False, probing=True)
        return None

    def check(self) -> None:
        """Raise ``OllamaUnavailableError`` or ``ModelNotFoundError`` unless the model can answer."""
        problem = self.probe(use_cached_failure=False)
        if problem is not None:
            raise problem

    # ----- generation ----------------------------------------------------------------------

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        messages = self.messages(question, sources, history)
        client = _client(self.host, self.timeout, min(self.timeout, CONNECT_TIMEOUT))
        parts: Any = None
        started = False
        deadline = time.monotonic() + self.answer_timeout
        received = 0
        try:
            parts = client.chat(model=self.model, messages=messages, stream=True, options=self.options)
            done = False
            thoughts = ThinkFilter()
            for part in parts:
                started = True
                raw = (part.message.content or "") if part.message is not None else ""
                received += len(raw)
                if received > self.max_chars:
                    raise AnswerTooLongError(self.host, self.max_chars)
                if time.monotonic() > deadline:
                    raise AnswerTimeoutError(self.host, self.answer_timeout)
                content = thoughts.feed(raw)
                if content:
                    yield content
                if part.done:
                    done = True
                    break
            if not done:
                raise GenerationInterruptedError(self.host, "the stream ended before the answer was complete")
            rest = thoughts.flush()
            if rest:
                yield rest
        except Exception as exc:
            if isinstance(exc, QAError):
                raise
            with _probes_lock:  # the server changed under us: probe afresh next time
                _probes.pop((self.host, self.model), None)
            raise self._translate(exc, started=started) from exc
        finally:
            if parts is not None:
                parts.close()
