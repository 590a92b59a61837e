"""Child processes for the fault tests: one that file permissions apply to (even when the tests run as root),
and a loopback listener that records whether anything tried to reach the network."""

from __future__ import annotations

import ctypes
import os
import socket
import threading

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
