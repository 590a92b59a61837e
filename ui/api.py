"""The chat's named API for scripts: ``/docs`` lists the documents, and raw HTTP calls get clear errors.

Gradio answers a raw ``POST /gradio_api/call/ask`` that lacks an argument with ``{"error": null}`` (it
wants every argument, even optional ones, and hides its own message). ``ApiArguments`` checks such calls
before Gradio sees them: a missing required argument is a 422 that says what to send, and missing
optional ones are filled with their defaults.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qa.pipeline import Pipeline

CALL_PREFIX = "/gradio_api/call/"
MAX_BODY = 4_000_000  # a question, a few ids and a history; anything larger is not a call to check


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    describe: str


#: The arguments of each named endpoint, in order, as a raw HTTP call's ``data`` list gives them.
ENDPOINTS: dict[str, tuple[Param, ...]] = {
    "ask": (
        Param("question", True, 'the question, a string: {"data": ["Who stayed in Washington?"]}'),
        Param("doc_ids", False, "document ids to search (a list), or null for all"),
        Param("history", False, 'earlier turns, [{"role": "user", "content": "..."}, ...], or null'),
    ),
    "docs": (),
}


def docs_endpoint(pipeline: Pipeline) -> Callable[[], list[dict[str, Any]]]:
    """The ``/docs`` endpoint (a plain function with type hints, as ``gr.api`` needs)."""

    def docs() -> list[dict[str, Any]]:
        """List the indexed documents: id, title, outlet, published, url and number of sentences."""
        index = pipeline.index
        return [
            {"id": d.doc_id, "title": d.title, "outlet": d.outlet, "published": d.published, "url": d.url,
             "sentences": len(index.rows_of(d.doc_id))}
            for d in index.documents.values()
        ]

    return docs


def check_call(name: str, body: bytes) -> tuple[bytes | None, str | None]:
    """The body to pass on (None: unchanged) or the error to answer, for a raw call of endpoint ``name``."""
    params = ENDPOINTS[name]
    usage = "; ".join(f"{p.name}, {p.describe}" for p in params) or 'no arguments: send {"data": []}'
    try:
        payload = json.loads(body or b"null")
    except RecursionError:
        return None, None  # nested beyond reason: the server's own checks refuse it
    except ValueError:
        return None, f"The body is not JSON. /{name} takes, in order: {usage}."
    if not isinstance(payload, dict) or not isinstance(payload.get("data", []), list):
        return None, f'Send a JSON object with a "data" list. /{name} takes, in order: {usage}.'
    data = list(payload.get("data", []))
    missing = [p for p in params[len(data):] if p.required]
    if missing:
        return None, f"Missing argument {missing[0].name!r}. /{name} takes, in order: {usage}."
    if len(data) >= len(params):
        return None, None
    payload["data"] = data + [None] * (len(params) - len(data))
    return json.dumps(payload).encode(), None


class ApiArguments:
    """ASGI middleware: checks the arguments of raw ``POST /gradio_api/call/NAME`` requests (see module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        name = path[len(CALL_PREFIX):].strip("/") if path.startswith(CALL_PREFIX) else ""
        if scope["type"] != "http" or scope.get("method") != "POST" or name not in ENDPOINTS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BODY or not message.get("more_body"):
                break
        body = b"".join(chunks)
        if size > MAX_BODY:
            await _reply(send, 413, f"The request body is over {MAX_BODY:,} bytes.")
            return
        fixed, error = check_call(name, body)
        if error is not None:
            await _reply(send, 422, error)
            return
        body = body if fixed is None else fixed
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return dict(await receive())
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


async def _reply(send: Any, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
