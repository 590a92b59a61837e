"""A scripted Ollama server on 127.0.0.1 for ``qa eval``: replies arrive exactly as a model's would.

It speaks the part of Ollama's HTTP API the product's client uses (``GET /api/tags``, ``GET
/api/version``, ``POST /api/show``, ``POST /api/chat`` streamed as NDJSON, a word per chunk), so an
evaluated reply goes through ``Pipeline.ask`` -> ``OllamaGenerator`` -> ``build_answer`` like any other.
The reply is a function of the chat request (``sources_in`` gives the numbered sources the model saw).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted:latest"
Script = Callable[[dict[str, Any]], str]


def sources_in(request: dict[str, Any]) -> dict[int, str]:
    """The numbered sources of a chat request, as the model saw them: ``{n: text}``."""
    user = str(request["messages"][-1]["content"])
    start, end = user.find("<sources>"), user.find("</sources>")
    block = user[start:end] if 0 <= start < end else user
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\] (.*)$", block, re.MULTILINE)}


def question_in(request: dict[str, Any]) -> str:
    """The question of a chat request (the user message's ``Question:`` line)."""
    user = str(request["messages"][-1]["content"])
    m = re.search(r"^Question: (.*)$", user, re.MULTILINE)
    return m.group(1).strip() if m else ""


class ScriptedOllama:
    """``with ScriptedOllama(script) as server:``; ``server.host`` is its base URL."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedOllama:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.script))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="scripted-ollama", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _json(self, payload: object, status: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict[str, Any]:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b"{}"
            out: dict[str, Any] = json.loads(raw or b"{}")
            return out

        def do_GET(self) -> None:
            if self.path.startswith("/api/tags"):
                self._json({"models": [{"name": MODEL, "model": MODEL, "size": 1, "digest": "0" * 64,
                                        "modified_at": "2025-01-01T00:00:00Z", "details": {}}]})
            elif self.path.startswith("/api/version"):
                self._json({"version": "0.6.5"})
            else:
                self._json({"error": "not found"}, 404)

        def do_POST(self) -> None:
            body = self._body()
            if self.path.startswith("/api/show"):
                self._json({"modelfile": "", "parameters": "", "template": "", "details": {}, "model_info": {}})
                return
            if not self.path.startswith("/api/chat"):
                self._json({"error": "not found"}, 404)
                return
            reply = script(body)
            done = {"model": body.get("model", MODEL), "created_at": "2025-01-01T00:00:00Z", "done": True,
                    "done_reason": "stop", "message": {"role": "assistant", "content": ""}}
            if body.get("stream") is False:
                done["message"] = {"role": "assistant", "content": reply}
                self._json(done)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            out = bytearray()  # one chunk per word, written at once (small writes would wait on delayed ACKs)
            for piece in [*re.findall(r"\S+\s*|\s+", reply), None]:
                line = done if piece is None else {
                    "model": body.get("model", MODEL), "created_at": "2025-01-01T00:00:00Z", "done": False,
                    "message": {"role": "assistant", "content": piece},
                }
                data = json.dumps(line).encode() + b"\n"
                out += f"{len(data):x}\r\n".encode() + data + b"\r\n"
            self.wfile.write(bytes(out) + b"0\r\n\r\n")
            self.wfile.flush()

    return Handler
