"""Loopback ports for servers started by tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """An ephemeral port on loopback, free when this returns (Gradio reports port 0 literally)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
