"""Loopback ports and servers started by tests."""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Self


def free_port() -> int:
    """An ephemeral port on loopback, free when this returns (Gradio reports port 0 literally)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackServer:
    """A threaded HTTP server on a free loopback port, used as ``with Server() as s:``. ``release`` is set on
    stop, so handlers that wait on it (a hanging page, a hung model) finish. Subclasses build their handler
    in ``start`` and hand the server to ``_serve``."""

    thread_name = "test-server"

    def __init__(self) -> None:
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return int(self._server.server_address[1])

    def start(self) -> Self:
        raise NotImplementedError

    def _serve(self, server: ThreadingHTTPServer) -> Self:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
