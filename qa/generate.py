"""Stage 5: write the answer text from the retrieved sentences. The generator is the second swappable edge.

A generator sees the question, the sources numbered ``[1]…[k]`` in the order given, and the
conversation so far; it yields text deltas that may contain ``[n]`` markers. ``qa.cite``
turns that text into a checked ``Answer``.

Two generators exist: ``ExtractiveGenerator`` (no model, never touches the network) and
``OllamaGenerator`` (a local LLM through the official ``ollama`` client). ``select_generator``
picks one for ``llm="auto" | "extractive" | "ollama:MODEL"``. Every exception of ``ollama`` and
``httpx`` is translated into ``qa.errors`` here, in ``OllamaGenerator._translate``, and nowhere else.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from qa.config import Settings
from qa.errors import (
    ConfigError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    LLMError,
    ModelNotFoundError,
    OllamaRequestError,
    OllamaUnavailableError,
    QAError,
)
from qa.prompts import Prompts, defang, load_prompts
from qa.types import Hit, Turn

ABSTAIN_TEXT = "The article does not say."

PROBE_CONNECT_TIMEOUT = 1.0  # an absent local server refuses at once; a black-holed host costs this much
PROBE_READ_TIMEOUT = 3.0
CONNECT_TIMEOUT = 3.0
PROBE_TTL_OK = 30.0  # a UI asks many questions: do not probe before every one
PROBE_TTL_FAILED = 5.0  # but notice soon when the user starts `ollama serve`
HISTORY_TURNS = 6
HISTORY_CHARS = 600  # six turns stay well inside a 2048-token context with the sources
DEFAULT_OPTIONS: Mapping[str, Any] = {"temperature": 0.1, "num_predict": 512}  # a looping model stops


@runtime_checkable
class Generator(Protocol):
    """Anything that streams answer text for a question and numbered sources."""

    @property
    def name(self) -> str: ...

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]: ...


class ExtractiveGenerator:
    """No LLM: quote the best-supporting sentence. Never touches the network."""

    name = "extractive"

    def stream(self, question: str, sources: Sequence[Hit], history: Sequence[Turn] = ()) -> Iterator[str]:
        if not sources:
            yield ABSTAIN_TEXT
            return
        yield f"\u201c{sources[0].sentence.text}\u201d [1]"


# ----- Ollama ------------------------------------------------------------------------------

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
        text = re.sub(r"\s*\[\s*\d+(?:\s*[,\-\u2013]\s*\d+)*\s*\]", "", turn.content).strip()
        out.append({"role": turn.role, "content": defang(text[:HISTORY_CHARS])})
    return out[-HISTORY_TURNS:]


class ThinkFilter:
    """Drop a leading ``<think>…</think>`` block that reasoning models (qwen3, deepseek-r1) stream
    as ordinary content on servers that do not separate it; it is not part of the answer.

    >>> f = ThinkFilter()
    >>> [f.feed(d) for d in ["<thi", "nk>hmm</th", "ink>\\n\\nGallant", " stayed."]]
    ['', '', 'Gallant', ' stayed.']
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
        end = self.buffer.find(self.CLOSE)
        if end < 0:
            self.buffer = self.buffer[-len(self.CLOSE) :]
            return ""
        out, self.buffer = self.buffer[end + len(self.CLOSE) :].lstrip(), ""
        self.state = "pass" if out else "after"
        return out

    def flush(self) -> str:
        """What is still held back when the stream ends (text that only looked like "<think>")."""
        out = self.buffer if self.state == "start" else ""
        self.buffer = ""
        return out


class OllamaGenerator:
    """Streams an answer from a local model through Ollama's ``/api/chat``.

    ``timeout`` bounds every wait for the server (connecting is capped at a few seconds, then
    each read), so a hung server fails with ``GenerationTimeoutError`` rather than hanging the UI.
    """

    def __init__(
        self,
        model: str,
        *,
        host: str,
        timeout: float,
        prompts: Prompts,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if not model.strip():
            raise ConfigError("The Ollama model name is empty: use --llm ollama:MODEL or set QA_MODEL.")
        self.model = model.strip()
        self.host = host
        self.timeout = timeout
        self.prompts = prompts
        self.options = dict(DEFAULT_OPTIONS if options is None else options)

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
        try:
            parts = client.chat(model=self.model, messages=messages, stream=True, options=self.options)
            done = False
            thoughts = ThinkFilter()
            for part in parts:
                started = True
                content = thoughts.feed(part.message.content or "") if part.message is not None else ""
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


# ----- selection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The generator chosen for a request, and what the user should be told about the choice.

    ``auto`` marks a choice the user did not insist on: if the model fails before it has
    written anything, the pipeline may still answer extractively (with a notice).
    """

    generator: Generator
    notice: str | None = None
    auto: bool = False


def fallback_notice(problem: QAError) -> str:
    """What to tell the user when ``auto`` could not use Ollama."""
    return f"{problem} Answered extractively."


def select_generator(llm: str, settings: Settings) -> Selection:
    """Pick the generator for ``llm`` ("auto", "extractive" or "ollama:MODEL").

    ``auto`` probes the server (quickly, cached) and falls back with a notice; ``ollama:MODEL``
    probes and raises, so a missing server or model is reported before any retrieval work.
    """
    spec = (llm or "auto").strip()
    if spec.lower() == "extractive":
        return Selection(ExtractiveGenerator())
    if spec.lower() == "auto":
        generator = OllamaGenerator(
            settings.ollama_model,
            host=settings.ollama_host,
            timeout=settings.ollama_timeout,
            prompts=load_prompts(settings.prompts_dir),
        )
        problem = generator.probe()
        if problem is None:
            return Selection(generator, auto=True)
        if not isinstance(problem, LLMError):  # a configuration mistake is not a reason to fall back
            raise problem
        return Selection(ExtractiveGenerator(), notice=fallback_notice(problem))
    kind, _, model = spec.partition(":")
    if kind.lower() == "ollama":
        generator = OllamaGenerator(
            model.strip() or settings.ollama_model,
            host=settings.ollama_host,
            timeout=settings.ollama_timeout,
            prompts=load_prompts(settings.prompts_dir),
        )
        generator.check()
        return Selection(generator)
    raise ConfigError(f"Unknown --llm value {llm!r}: use auto, extractive or ollama:MODEL.")


# ----- conversation ------------------------------------------------------------------------

_STOP = frozenset(
    """a an the and or but so of to in on at by for with from about as into over after before than then
    is are was were be been being do does did done have has had can could would should will shall may might
    must what who whom whose which when where why how not no yes also just only very more most some any all
    i me my we our you your one ones else again other""".split()
)
_PERSONAL = frozenset("he she him her his hers".split())
_SUBSTITUTE = _PERSONAL | frozenset("they them their theirs it its there".split())
_ANAPHORA = frozenset(
    "he she it they him her them his hers its their theirs this that these those there former latter".split()
)
_FOLLOW_UP_START = re.compile(r"^\s*(and|but|also|so|then|what about|how about|what else)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][\w\u2019'.\-]*")
_MAX_CONTEXT_TERMS = 12


def _words(text: str) -> list[str]:
    return [w.strip(".'\u2019-") for w in _WORD.findall(text)]


def _is_follow_up(question: str) -> bool:
    words = [w.lower() for w in _words(question)]
    content = [w for w in words if w not in _STOP and w not in _ANAPHORA]
    return bool(_FOLLOW_UP_START.match(question)) or any(w in _ANAPHORA for w in words) or not content


def _name_runs(text: str) -> list[list[str]]:
    """Runs of capitalised words: "Israeli Defense Minister Yoav Gallant".

    A capital that only starts a sentence ("Despite the…", "Hamas welcomed…") is not evidence
    of a name, so a run that is just one sentence-initial word is dropped; "Yoav Gallant." is kept.
    """
    text = re.sub(r"\[[\d,\s\-\u2013]+\]", " ", text)
    runs: list[list[str]] = []
    run: list[str] = []
    run_initial = False
    initial = True

    def close() -> None:
        nonlocal run
        if run and not (len(run) == 1 and run_initial):
            runs.append(run)
        run = []

    for token in text.split():
        word = token.strip("\u201c\u201d\"'()[],;:!?")
        if word.count(".") < 2:  # keep "U.S.", drop a full stop
            word = word.rstrip(".")
        if word.endswith(("\u2019s", "'s")):
            word = word[:-2]
        lowered = word.lower()
        if word[:1].isupper() and lowered not in _STOP and lowered not in _ANAPHORA:
            if not run:
                run_initial = initial
            run.append(word)
        else:
            close()
        if token[-1:] in ",;:)\u201d\"":
            close()
        initial = token.rstrip("\u201d\"')").endswith((".", "!", "?", ":")) and token.count(".") < 2
        if initial:
            close()
    close()
    return runs


def _referent(pronoun: str, turns: Sequence[tuple[str, str]]) -> str | None:
    """Whom a pronoun most likely means, looking back from the latest ``(question, answer)`` turn.

    "he"/"she" want a person (two or more capitalised words), answers first: "Who stayed?" is
    answered by a name. "it"/"they"/"there" want whatever the question was about, questions first.
    """
    for question, answer in reversed(turns):
        texts = (answer, question) if pronoun in _PERSONAL else (question, answer)
        for text in texts:
            runs = _name_runs(text)
            if pronoun in _PERSONAL:
                runs = [r[-2:] for r in runs if len(r) >= 2]
            if runs:
                return " ".join(runs[0])
    return None


def standalone_query(question: str, history: Sequence[Turn]) -> str:
    """Rewrite a follow-up into a retrieval query that stands alone; other questions pass unchanged.

    A follow-up has a pronoun, a leading "and"/"what about", or no content word. A pronoun is
    replaced by whom it most likely means (see ``_referent``: the latest turn that names someone
    or something); when none is found, the previous question's key words are appended instead.
    Deterministic and cheap: no model involved.

    >>> h = [Turn("user", "Who stayed in Washington?"), Turn("assistant", "Minister Yoav Gallant stayed. [1]")]
    >>> standalone_query("And what did he reject?", h)
    'And what did Yoav Gallant reject?'
    >>> standalone_query("Why?", h)
    'Why? stayed Washington'
    >>> standalone_query("Where is Rafah?", h)
    'Where is Rafah?'
    """
    users = [i for i, t in enumerate(history) if t.role == "user" and t.content.strip()]
    if users and history[users[-1]].content.strip() == question.strip():  # history may end with this question
        users.pop()
    if not users or not _is_follow_up(question):
        return question
    turns: list[tuple[str, str]] = []
    for n, i in enumerate(users):
        end = users[n + 1] if n + 1 < len(users) else len(history)
        said = [t.content for t in history[i + 1 : end] if t.role == "assistant" and not is_abstention_text(t.content)]
        turns.append((history[i].content.strip(), said[0] if said else ""))
    substituted = False

    def replace(match: re.Match[str]) -> str:
        nonlocal substituted
        referent = _referent(match.group(0).lower(), turns)
        if referent is None:
            return match.group(0)
        substituted = True
        return referent

    rewritten = re.sub(r"\b(" + "|".join(sorted(_SUBSTITUTE)) + r")\b", replace, question, flags=re.IGNORECASE)
    if substituted:
        return rewritten
    last = users[-1]
    previous = standalone_query(history[last].content.strip(), history[:last])
    seen = {w.lower() for w in _words(question)}
    terms: list[str] = []
    for term in _words(previous):
        if term and term.lower() not in _STOP and term.lower() not in _ANAPHORA and term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    if not terms:
        return question
    return f"{question} {' '.join(terms[:_MAX_CONTEXT_TERMS])}"


def is_abstention_text(text: str) -> bool:
    """Is a previous answer the abstention sentence (whose words name nobody)?"""
    return text.strip().lower().startswith(ABSTAIN_TEXT.lower().rstrip("."))
