"""A real HTTP server on loopback for the link and feed tests: pages, feeds, redirects, slow and huge answers.

Routes map a path to a ``Route``: the body and content type to send, or a redirect, or a misbehaviour
(``slow``: the body a byte at a time with pauses; ``huge``: megabytes streamed without a length;
``hang``: never answers). Every request's path is recorded, so a test can tell what was fetched.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from helpers.net import LoopbackServer

DATA = Path(__file__).resolve().parents[1] / "data"
BENCHMARK = DATA / "article-extraction"
PAGES = DATA / "pages"


@dataclass
class Route:
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None  # a redirect
    mode: str = "ok"  # ok, slow, huge, hang
    send_length: bool = True


def benchmark_page(key: str) -> bytes:
    """A real news page of the benchmark copy in ``tests/data`` (MIT licence), by the start of its key."""
    (path,) = list((BENCHMARK / "html").glob(f"{key}*.html.gz"))
    return gzip.decompress(path.read_bytes())


def benchmark_truth(key: str) -> dict[str, str]:
    truth: dict[str, dict[str, str]] = json.loads((BENCHMARK / "ground-truth.json").read_text(encoding="utf-8"))
    (full,) = [k for k in truth if k.startswith(key)]
    return truth[full]


def rss(title: str, base: str, entries: list[dict[str, str]]) -> bytes:
    """An RSS 2.0 feed: ``entries`` have ``title``, ``link`` (relative to ``base``), optional ``author``,
    ``published`` (ISO date) and ``guid``."""
    items = []
    for e in entries:
        date = ""
        if e.get("published"):
            date = f"<pubDate>{format_datetime(datetime.fromisoformat(e['published']))}</pubDate>"
        author = f"<dc:creator>{escape(e['author'])}</dc:creator>" if e.get("author") else ""
        items.append(
            f"<item><title>{escape(e['title'])}</title><link>{escape(base + e['link'])}</link>"
            f"<guid>{escape(e.get('guid', base + e['link']))}</guid>{date}{author}</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>{escape(title)}</title><link>{escape(base)}/</link><description>test</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class WebServer(LoopbackServer):
    """``with WebServer() as web: web.routes["/a"] = Route(...); web.url("/a")``."""

    thread_name = "test-web"

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> WebServer:
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                web.requests.append(self.path)
                route = web.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.mode == "hang":
                    web.release.wait(30)
                    self.close_connection = True
                    return
                self.send_response(route.status)
                if route.location:
                    self.send_header("Location", route.location)
                if route.content_type:
                    self.send_header("Content-Type", route.content_type)
                if route.mode == "huge":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"<p>" + b"x" * 65_536 + b"</p>"
                    try:
                        for _ in range(2_000):  # ~130 MB, unless the client hangs up first
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                if route.mode == "slow":
                    try:
                        for i in range(len(route.body)):
                            if web.release.wait(0.2):
                                return
                            self.wfile.write(route.body[i : i + 1])
                            self.wfile.flush()
                    except OSError:
                        pass
                    return
                self.wfile.write(route.body)
                if not route.send_length:
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up on slow and huge answers are expected here

        return self._serve(Server(("127.0.0.1", 0), Handler))



def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False
