"""Raw API calls leave nothing behind.

Measured (``tracemalloc`` over 1,600 calls of ``POST /gradio_api/call/ask`` then ``GET .../ask/EVENT_ID``):
Gradio treats every such call as a session of its own, named by its event id, and keeps

* a ``SessionState`` in ``app.state_holder`` holding a copy of every component's configuration: about 48 KB
  per call, up to ``state_session_capacity`` (10,000 by default) sessions, so about 480 MB before anything
  is dropped. This was the growth of ~48 KB per request, 341 → 562 MB in two minutes of 30–40 clients;
* an (emptied) entry in the queue's ``pending_event_ids_session``, never removed: small, but without end;
* its message queue in ``pending_messages_per_session`` (about 3 KB, the last 2,000 kept).

A browser tab or a ``gradio_client.Client`` keeps one session for all its requests, so only raw calls
grow like this. ``ForgetFinishedCalls`` (an ASGI middleware) drops all three once the result stream of a raw
call has been sent; ``qa.ui.server.launch`` also lowers ``state_session_capacity`` to ``SESSION_CAPACITY``,
which bounds what clients that invent a new session per request could hold.
"""

from __future__ import annotations

import re
from typing import Any

from .security import ASGIApp, Receive, Scope, Send

#: The most sessions (browser tabs, API clients) whose state Gradio keeps: about 48 KB each.
SESSION_CAPACITY = 2_000
_RESULT = re.compile(r"/call/(?:v2/)?[^/]+/(?P<event>[0-9A-Za-z_-]+)/?$")


class ForgetFinishedCalls:
    """When the result of a raw ``/call/`` request has been streamed, drop the session Gradio made for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _RESULT.search(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            forget(scope.get("app"), match.group("event"))


def forget(app: Any, session: str) -> None:
    """Drop what Gradio keeps for the one-call session ``session``, unless it still has events pending."""
    if app is None or app.blocks is None or app.blocks._queue is None:
        return
    queue = app.blocks._queue
    if queue.pending_event_ids_session.get(session):
        return  # still answering (or a session of a client's own with other calls in flight)
    queue.pending_event_ids_session.pop(session, None)
    messages = queue.pending_messages_per_session.get(session)
    if messages is not None and messages.empty():
        queue.pending_messages_per_session.pop(session, None)
    holder = app.state_holder
    with holder.lock:
        holder.session_data.pop(session, None)
        holder.time_last_used.pop(session, None)
