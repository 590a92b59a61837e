"""Child processes for the tests: one that file permissions apply to (even when the tests run as root), a
loopback listener that records whether anything tried to reach the network, and waiting for and stopping a
``qa serve``."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable

import httpx

PR_CAPBSET_DROP = 24
#: Capabilities that let root ignore file permissions: DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER.
_PERMISSION_CAPABILITIES = (1, 2, 3)


def obey_file_permissions() -> None:
    """``preexec_fn``: the child cannot ignore file permissions, as root otherwise does (a read-only folder
    is then read-only to it). Nothing to do for other users."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _PERMISSION_CAPABILITIES:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop the capability to ignore file permissions")


class Listener:
    """A TCP listener on loopback that counts the connections made to it (a stand-in for the internet)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def until_serving(proc: subprocess.Popen[str], url: str, log: Callable[[], str]) -> subprocess.Popen[str]:
    """``proc`` (a ``qa serve``) once ``url`` answers 200; fails with ``log()`` if it exits, or after 5 minutes."""
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"qa serve exited: {log()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("qa serve did not answer")


def stop(proc: subprocess.Popen[str]) -> None:
    """Stop a server process as a user would (SIGTERM), killing it only if it does not stop."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
