"""A fake Ollama server for tests: the real HTTP protocol on 127.0.0.1, replies from a script.

It speaks what the official client uses: ``GET /api/tags``, ``GET /api/version``,
``POST /api/show`` and ``POST /api/chat`` (streamed as chunked NDJSON, or one JSON object when
``"stream": false``), with Ollama's error bodies (``{"error": "..."}``, 404 for a missing model).
Failure modes: ``disconnect`` (the socket closes mid-stream), ``error_midstream`` (an error line
after some tokens, as Ollama sends when a runner dies), ``hang`` (``/api/chat`` never answers),
``hang_all`` (no endpoint answers) and ``not_ollama`` (some other HTTP server on the port). ``delay``
spaces the streamed chunks out: a slow model.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from helpers.net import LoopbackServer

Mode = Literal["ok", "disconnect", "error_midstream", "hang", "hang_all", "not_ollama"]
Reply = str | Sequence[str]
Script = Reply | Callable[[dict[str, Any]], Reply]
CREATED_AT = "2025-01-01T00:00:00.000000Z"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any]


def closed_port() -> int:
    """A loopback port on which nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def chunks(reply: Reply) -> list[str]:
    """A string is streamed a word at a time (with its trailing space); a list chunk by chunk."""
    if isinstance(reply, str):
        return re.findall(r"\S+\s*|\s+", reply) or [""]
    return list(reply)


def sources_in(request: dict[str, Any]) -> dict[int, str]:
    """The numbered sources of a chat request, as the model saw them: ``{n: text}``."""
    user = request["messages"][-1]["content"]
    block = user[user.index("<sources>") : user.index("</sources>")]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\] (.*)$", block, re.MULTILINE)}


def number_of(request: dict[str, Any], needle: str) -> int:
    """The number under which the sentence containing ``needle`` was shown to the model."""
    for n, text in sources_in(request).items():
        if needle.lower() in text.lower():
            return n
    raise AssertionError(f"no source containing {needle!r} was shown: {sources_in(request)}")


def _model_entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": CREATED_AT,
        "size": 2019393189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


class FakeOllama(LoopbackServer):
    """Run with ``with FakeOllama(script) as server:``; ``server.host`` is its base URL.

    ``script`` is one reply for every chat request or a function of the request body (see
    ``in_turn``). A reply is a string (streamed word by word) or a list of chunks.
    """

    thread_name = "fake-ollama"

    def __init__(
        self,
        script: Script = "The article does not say.",
        *,
        models: Sequence[str] = ("llama3.2:latest",),
        mode: Mode = "ok",
        disconnect_after: int = 2,
        error: str = "an error was encountered while running the model: unexpected EOF",
        version: str = "0.6.5",
        delay: float = 0.0,
    ) -> None:
        self.script = script
        self.models = list(models)
        self.mode = mode
        self.disconnect_after = disconnect_after
        self.error = error
        self.version = version
        self.delay = delay  # seconds between streamed chunks: a slow model
        super().__init__()
        self.requests: list[Request] = []
        self._chat_count = 0
        self._lock = threading.Lock()

    # ----- lifecycle ----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeOllama:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        return self._serve(_Server(("127.0.0.1", 0), Handler))


    # ----- what the tests look at ---------------------------------------------------------

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests if r.path == "/api/chat"]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def resolve(self, name: str) -> str | None:
        """Ollama's name rule: no tag means ``:latest``."""
        full = name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
        return full if full in self.models else None

    def next_reply(self, body: dict[str, Any]) -> list[str]:
        with self._lock:
            self._chat_count += 1
        return chunks(self.script(body) if callable(self.script) else self.script)


def in_turn(*replies: Reply) -> Callable[[dict[str, Any]], Reply]:
    """A script that gives one reply per chat request, repeating the last."""
    count = 0
    lock = threading.Lock()

    def script(_: dict[str, Any]) -> Reply:
        nonlocal count
        with lock:
            index = min(count, len(replies) - 1)
            count += 1
        return replies[index]

    return script


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing a kept-alive connection is normal; anything else is printed as usual."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeOllama

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    # ----- plumbing -----------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = {"_raw": raw.decode("utf-8", "replace")}
        return data if isinstance(data, dict) else {"_raw": data}

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _hang(self) -> None:
        self.server_fake.release.wait(timeout=60)
        self.close_connection = True

    # ----- endpoints ----------------------------------------------------------------------

    def do_GET(self) -> None:
        fake = self.server_fake
        fake.record(Request("GET", self.path, {}))
        if fake.mode == "hang_all":
            return self._hang()
        if fake.mode == "not_ollama":
            return self._text(404, "404 page not found")
        if self.path == "/api/version":
            return self._json(200, {"version": fake.version})
        if self.path == "/api/tags":
            return self._json(200, {"models": [_model_entry(m) for m in fake.models]})
        if self.path == "/":
            return self._text(200, "Ollama is running")
        return self._text(404, "404 page not found")

    def do_POST(self) -> None:
        fake = self.server_fake
        body = self._body()
        fake.record(Request("POST", self.path, body))
        if fake.mode == "hang_all":
            return self._hang()
        if fake.mode == "not_ollama":
            return self._text(404, "404 page not found")
        if self.path == "/api/show":
            name = str(body.get("model") or body.get("name") or "")
            if fake.resolve(name) is None:
                return self._json(404, {"error": f"model '{name}' not found"})
            return self._json(
                200,
                {
                    "modelfile": f"FROM {name}",
                    "parameters": 'stop "<|eot_id|>"',
                    "template": "{{ .Prompt }}",
                    "details": _model_entry(name)["details"],
                    "model_info": {"general.architecture": "llama"},
                    "capabilities": ["completion", "tools"],
                    "modified_at": CREATED_AT,
                },
            )
        if self.path == "/api/chat":
            return self._chat(body)
        return self._text(404, "404 page not found")

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.server_fake
        name = str(body.get("model") or "")
        if fake.resolve(name) is None:
            return self._json(404, {"error": f'model "{name}" not found, try pulling it first'})
        if fake.mode == "hang":
            return self._hang()
        pieces = fake.next_reply(body)
        message = {"role": "assistant", "content": ""}
        final = {
            "model": name,
            "created_at": CREATED_AT,
            "message": message,
            "done_reason": "stop",
            "done": True,
            "total_duration": 1_000_000,
            "load_duration": 100_000,
            "prompt_eval_count": 120,
            "prompt_eval_duration": 200_000,
            "eval_count": len(pieces),
            "eval_duration": 700_000,
        }
        if body.get("stream") is False:
            final["message"] = {"role": "assistant", "content": "".join(pieces)}
            return self._json(200, final)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, piece in enumerate(pieces):
            if fake.delay and i:
                fake.release.wait(fake.delay)
            if fake.mode == "disconnect" and i >= fake.disconnect_after:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk: an abrupt close
                self.close_connection = True
                return
            if fake.mode == "error_midstream" and i >= fake.disconnect_after:
                self._chunk({"error": fake.error})
                break
            self._chunk(
                {
                    "model": name,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            )
        else:
            self._chunk(final)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
