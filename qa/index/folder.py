"""The index folder: one writer at a time, readers that see one whole generation, and only files a manifest
named (or a save wrote) are ever deleted.

Besides ``manifest.json`` and the generation files it names, a folder holds this module's files:

* ``.qa-write.lock``: a writer holds an exclusive ``flock`` on it for its whole read-modify-write (open the
  index, add documents, save), so two writers never lose each other's documents. A second writer waits for
  the first (up to ``QA_LOCK_TIMEOUT``, saying so), then fails with ``IndexBusyError``. The lock is taken
  again by the same thread without waiting (a save inside ``Pipeline.add``).
* ``.qa-read.lock`` and ``.qa-gate.lock``: a reader holds a shared ``flock`` on the first while it opens the
  files its manifest names. A writer deletes the files of a replaced generation only while it holds it
  exclusively, so no reader finds a file gone between reading the manifest and opening it; it closes the
  gate first, so a stream of readers cannot keep it waiting. Files a writer cannot delete within a few
  seconds are left for the next writer.
* ``.qa-journal.json``: the files a save in progress writes and the files the manifest named before it,
  so the next writer removes a generation that a killed or failed save left half-written; and files of
  replaced generations not yet deleted.

Nothing else is ever deleted: a file of the user's in the folder stays, and a folder that is neither empty
nor an index is refused. Without ``flock`` (Windows), there is no locking.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qa.errors import IndexBusyError, IndexWriteError
from qa.index.manifest import MANIFEST

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

WRITE_LOCK = ".qa-write.lock"
READ_LOCK = ".qa-read.lock"
GATE = ".qa-gate.lock"
JOURNAL = ".qa-journal.json"
#: The folder's own files besides the manifest and the generations it names.
SERVICE_FILES = frozenset({WRITE_LOCK, READ_LOCK, GATE, JOURNAL})
_EX = fcntl.LOCK_EX if fcntl is not None else 0
_SH = fcntl.LOCK_SH if fcntl is not None else 0
DEFAULT_LOCK_TIMEOUT = 600.0
READERS_WAIT = 2.0  # how long a writer waits for loading readers before leaving old files to the next writer
READ_LEASE_WAIT = 10.0  # how long a reader waits for a writer that is deleting old files
SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)

Notify = Callable[[str], None]

_registry_lock = threading.Lock()
_thread_locks: dict[str, threading.RLock] = {}
_depth: dict[str, int] = {}


def manifest_names(root: Path) -> set[str]:
    """The file names the manifest at ``root`` names (empty when there is none or it cannot be read)."""
    try:
        raw = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        files = raw.get("files", {}) if isinstance(raw, dict) else {}
        return {str(info["name"]) for info in files.values() if isinstance(info, dict) and "name" in info}
    except (OSError, ValueError, RecursionError, AttributeError):
        return set()


def _journal(root: Path) -> dict[str, list[str]]:
    try:
        raw = json.loads((root / JOURNAL).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    out: dict[str, list[str]] = {}
    for key in ("pending", "previous", "retired"):
        value = raw.get(key, [])
        out[key] = [Path(str(v)).name for v in value] if isinstance(value, list) else []
    return out


def is_index_folder(root: Path) -> bool:
    """Whether ``root`` is empty, holds an index, or holds only what a killed first save left."""
    if (root / MANIFEST).is_file():
        return True
    ours = SERVICE_FILES | set(_journal(root)["pending"])
    return all(entry.name in ours for entry in root.iterdir())


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


class Folder:
    """An index folder whose write lock this process holds: a save's journal and the cleanup of old files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _write_journal(self, journal: dict[str, list[str]]) -> None:
        tmp = self.root / f"{JOURNAL}.tmp"
        if not any(journal.values()):
            (self.root / JOURNAL).unlink(missing_ok=True)
            return
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(journal, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / JOURNAL)

    def begin(self, names: Iterable[str]) -> None:
        """Record the files a save is about to write, and those the manifest names now."""
        journal = _journal(self.root)
        journal["pending"] = sorted(set(names))
        journal["previous"] = sorted(manifest_names(self.root))
        try:
            self._write_journal(journal)
        except OSError as exc:
            raise self.write_failed(exc, 0) from exc

    def abort(self) -> None:
        """Delete what a failed save wrote (never a file the manifest names) and forget it."""
        journal = _journal(self.root)
        named = manifest_names(self.root)
        for name in set(journal["pending"]) - named:
            (self.root / name).unlink(missing_ok=True)
        journal["pending"], journal["previous"] = [], []
        try:
            self._write_journal(journal)
        except OSError:
            pass  # the next writer finds the journal as it was and does the same

    def commit(self) -> None:
        """The manifest now names the new generation: retire the files only the old one named."""
        journal = _journal(self.root)
        named = manifest_names(self.root)
        journal["retired"] = sorted((set(journal["retired"]) | set(journal["previous"])) - named)
        journal["pending"], journal["previous"] = [], []
        self._write_journal(journal)
        self.sweep()

    def recover(self) -> None:
        """Finish what a killed save left: its half-written generation goes, or (if its manifest was
        switched to) the generation it replaced is retired."""
        journal = _journal(self.root)
        if journal["pending"]:
            named = manifest_names(self.root)
            written = {n for n in journal["pending"] if not n.startswith(".")}
            if written and written <= named:
                journal["retired"] = sorted((set(journal["retired"]) | set(journal["previous"])) - named)
            for name in set(journal["pending"]) - named:
                (self.root / name).unlink(missing_ok=True)
            journal["pending"], journal["previous"] = [], []
            self._write_journal(journal)
        self.sweep()

    def sweep(self) -> None:
        """Delete retired files once no reader is opening files (else leave them to the next writer)."""
        journal = _journal(self.root)
        if not journal["retired"]:
            return
        with _exclusive_readers(self.root) as free:
            if not free:
                return
            named = manifest_names(self.root)
            for name in set(journal["retired"]) - named:
                (self.root / name).unlink(missing_ok=True)
            journal["retired"] = []
            self._write_journal(journal)

    def write_failed(self, exc: OSError, needed: int) -> IndexWriteError:
        """The message for a save that could not write: why, and how much room it needs."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            free = -1
        short = exc.errno is None  # numpy reports a short write as "N requested and M written"
        what = f"a file could not be written whole ({exc})" if short else _reason(exc)
        if needed and (short or exc.errno in SPACE_ERRORS or 0 <= free < needed):
            room = f" ({_mb(free)} free there)" if free >= 0 else ""
            what += (
                f". Saving it needs about {_mb(needed)} of free space{room}. Nothing was changed: the previous "
                "index is intact. Free some space or choose another --index-dir, then run the command again."
            )
        else:
            what += ". Nothing was changed: the previous index is intact. Choose a folder you can write to."
        return IndexWriteError(str(self.root), what)


def _prepare(root: Path) -> None:
    """Create the folder, or refuse one that is a file, cannot be written, or is not an index."""
    if root.exists() and not root.is_dir():
        raise IndexWriteError(str(root), "it is a file, not a folder. Choose a folder for --index-dir (QA_INDEX_DIR).")
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not is_index_folder(root):
            raise IndexWriteError(
                str(root),
                "the folder is not empty and holds no qa index, and qa writes only into its own index folders. "
                "Choose an empty or new folder for --index-dir (QA_INDEX_DIR).",
            )
    except OSError as exc:
        raise IndexWriteError(
            str(root), f"{_reason(exc)}. Choose a folder you can write to for --index-dir (QA_INDEX_DIR)."
        ) from exc


def _thread_lock(key: str) -> threading.RLock:
    with _registry_lock:
        return _thread_locks.setdefault(key, threading.RLock())


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _lock_exclusively(fd: int, root: Path, timeout: float, on_wait: Notify | None) -> None:
    if _flock(fd, _EX, 0):
        return
    if on_wait is not None:
        on_wait(f"another qa process{_holder(fd)} is writing the index at {root}; "
                f"waiting for it to finish (up to {timeout:g} s, QA_LOCK_TIMEOUT)")
    if not _flock(fd, _EX, timeout):
        raise IndexBusyError(str(root), _holder(fd), timeout)


@contextmanager
def writing(
    path: str | os.PathLike[str], *, timeout: float = DEFAULT_LOCK_TIMEOUT, on_wait: Notify | None = None
) -> Iterator[Folder]:
    """Hold the folder's write lock (creating the folder); re-entered by the same thread at no cost."""
    root = Path(path)
    key = os.path.abspath(root)
    lock = _thread_lock(key)
    if not lock.acquire(timeout=timeout):
        raise IndexBusyError(str(root), " (in this process)", timeout)
    try:
        if _depth.get(key, 0):
            _depth[key] += 1
            try:
                yield Folder(root)
            finally:
                _depth[key] -= 1
            return
        created = not root.exists()
        _prepare(root)
        try:
            fd = os.open(root / WRITE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndexWriteError(
                str(root), f"{_reason(exc)}. Choose a folder you can write to for --index-dir (QA_INDEX_DIR)."
            ) from exc
        try:
            _lock_exclusively(fd, root, timeout, on_wait)
            folder = Folder(root)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                for name in (READ_LOCK, GATE):
                    (root / name).touch(exist_ok=True)
                folder.recover()
            except OSError as exc:
                raise folder.write_failed(exc, 0) from exc
            _depth[key] = 1
            try:
                yield folder
            finally:
                _depth[key] = 0
        finally:
            os.close(fd)  # releases the flock
            if created and not (root / MANIFEST).exists():  # nothing was saved: leave no empty index behind
                _remove_empty(root)
    finally:
        lock.release()


def _remove_empty(root: Path) -> None:
    """Remove a folder this module created and nothing was saved into (its lock files only)."""
    try:
        for name in SERVICE_FILES:
            (root / name).unlink(missing_ok=True)
        root.rmdir()
    except OSError:
        pass  # something else is in it now: leave it


def _flock(fd: int, how: int, seconds: float) -> bool:
    """Take a ``flock`` within ``seconds`` (polling: a blocked call cannot time out); whether it was taken."""
    if fcntl is None:
        return True
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


@contextmanager
def _exclusive_readers(root: Path) -> Iterator[bool]:
    """Close the gate to new readers, then wait (``READERS_WAIT``) for those loading: yields whether none is."""
    fds: list[int] = []
    try:
        for name in (GATE, READ_LOCK):
            fds.append(os.open(root / name, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError:
        pass
    try:
        yield len(fds) == 2 and _flock(fds[0], _EX, READERS_WAIT) and _flock(fds[1], _EX, READERS_WAIT)
    finally:
        for fd in fds:
            os.close(fd)


@contextmanager
def reading(root: Path) -> Iterator[None]:
    """A reader's lease while it opens the files one manifest names: no writer deletes them meanwhile.

    A reader passes the gate (closed only while a writer waits to delete old files, so readers cannot keep
    a writer waiting forever), takes the shared lease, and opens the gate behind it. Readers create
    nothing: without the lock files (an index written by an older ``qa``) the lease is skipped, and
    ``FaissIndex.load`` retries when the manifest changed under it instead.
    """
    fds: list[int] = []
    try:
        for name in (GATE, READ_LOCK):
            fds.append(os.open(root / name, os.O_RDONLY))
    except OSError:
        for fd in fds:
            os.close(fd)
        yield
        return
    gate, lease = fds
    try:
        # a writer stuck while deleting cannot hold readers up for long: they read without the lease then
        if _flock(gate, _SH, READ_LEASE_WAIT):
            _flock(lease, _SH, READ_LEASE_WAIT)
            if fcntl is not None:
                fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(gate)
        os.close(lease)


def manifest_stamp(root: Path) -> Any:
    """Changes whenever the manifest is replaced (a new file each time): how a reader notices a switch."""
    try:
        st = (root / MANIFEST).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
