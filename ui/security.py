"""The chat's guard at the HTTP edge, an ASGI middleware Gradio's FastAPI app is built with
(``launch(app_kwargs={"middleware": [...]})``, the documented way to configure that app):

* the ``Host`` header must be a name the server is served under (an IP address, ``localhost``, this machine's
  names when listening beyond loopback, or ``QA_ALLOWED_HOSTS``): a web page whose own name was re-pointed at
  127.0.0.1 (DNS rebinding) is refused, so it cannot read the chat or post to it;
* every response forbids framing and loading anything from elsewhere (Content-Security-Policy,
  ``X-Frame-Options``), so injected markup could neither run a remote script nor send data away;
* a write (POST, PUT, PATCH, DELETE: questions, uploads, logins) that a browser sends from another origin is
  refused, so another site cannot upload into the chat's folder or ask in the user's name (clients that are
  not browsers send no ``Origin``, and are not affected);
* failed logins are limited per client address: after ``LOGIN_FAILURES`` in ``LOGIN_WINDOW`` seconds, further
  attempts get 429 until the window has passed.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN_FAILURES = 5
LOGIN_WINDOW = 60.0
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; connect-src 'self'; "
    "worker-src 'self' blob:; frame-src 'none'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def host_name(value: str) -> str:
    """The name part of a ``Host`` header or an origin's authority, lowercase, without port or brackets.

    >>> host_name("LocalHost:7860"), host_name("[::1]:80"), host_name("127.0.0.1")
    ('localhost', '::1', '127.0.0.1')
    """
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """The ASGI middleware: Host check, security headers, same-origin writes, login attempts limited."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str] = ()) -> None:
        self.app = app
        self.allowed = {"localhost"} | {host_name(h) for h in allowed_hosts if h.strip()}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def host_allowed(self, host: str) -> bool:
        name = host_name(host)
        return bool(name) and (name in self.allowed or _is_ip(name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not self.host_allowed(host):
            await _refuse(scope, send, 421, f"This chat is not served under the name {host_name(host)!r}.")
            return
        method = scope.get("method", "GET")
        if (scope["type"] == "websocket" or method in WRITES) and not _same_origin(headers, host):
            await _refuse(scope, send, 403, "Cross-origin requests to this chat are refused.")
            return
        login = scope["type"] == "http" and method == "POST" and scope.get("path", "").rstrip("/").endswith("/login")
        client = (scope.get("client") or ("?", 0))[0]
        if login and self._blocked(client):
            await _refuse(scope, send, 429, f"Too many failed logins; wait {LOGIN_WINDOW:g} s and try again.",
                          [(b"retry-after", str(int(LOGIN_WINDOW)).encode())])
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
                if login:
                    self._record(client, failed=int(message["status"]) >= 400)
            await send(message)

        await self.app(scope, receive, send_guarded)

    def _blocked(self, client: str) -> bool:
        with self._lock:
            recent = self._failures.get(client)
            now = time.monotonic()
            while recent and now - recent[0] > LOGIN_WINDOW:
                recent.popleft()
            return recent is not None and len(recent) >= LOGIN_FAILURES

    def _record(self, client: str, *, failed: bool) -> None:
        with self._lock:
            if not failed:
                self._failures.pop(client, None)
                return
            if len(self._failures) > 10_000:  # many addresses: forget the oldest rather than grow
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(client, deque(maxlen=LOGIN_FAILURES)).append(time.monotonic())


def _same_origin(headers: dict[str, str], host: str) -> bool:
    """True unless a browser says the request comes from another site (``Origin``, ``Sec-Fetch-Site``)."""
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return origin != "null" and parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


async def _refuse(scope: Scope, send: Send, status: int, text: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = text.encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                    *HEADERS, *(extra or [])],
    })
    await send({"type": "http.response.body", "body": body})
