"""apsw connections to the database file: how each is opened, and the pool of readers."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import apsw

from edge.settings import StoreSettings

# Long enough to ride out a checkpoint or `edge db vacuum` from another process,
# short enough that a stuck lock surfaces as an error instead of a hang.
BUSY_TIMEOUT_MS: Final = 5_000
# Pages of WAL before a checkpoint (SQLite's default is 1,000). Readings of 1,000 points
# touch ~1,000 pages per commit; a longer WAL lets a checkpoint write each page once for
# many commits instead of once per commit.
WAL_AUTOCHECKPOINT_PAGES: Final = 8_000


def open_connection(path: Path, settings: StoreSettings, *, writer: bool) -> apsw.Connection:
    """An apsw connection with the gateway's pragmas; readers cannot write."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    conn.pragma("cache_size", -1024 * settings.cache_mb)
    conn.pragma("temp_store", "memory")
    if writer:
        conn.pragma("journal_mode", "wal")
        conn.pragma("synchronous", settings.synchronous)
        conn.pragma("foreign_keys", True)
        conn.pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
    else:
        conn.pragma("query_only", True)
    return conn


class ReaderPool:
    """At most `size` read-only connections, lent one per query to any thread."""

    def __init__(self, path: Path, settings: StoreSettings) -> None:
        self._path = path
        self._settings = settings
        self._idle: queue.LifoQueue[apsw.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(settings.readers)
        self._all: list[apsw.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[apsw.Connection]:
        """Lend a reader; it returns to the pool when the block ends."""
        self._slots.acquire()
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                yield conn
            finally:
                self._idle.put(conn)
        finally:
            self._slots.release()

    def _open(self) -> apsw.Connection:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = open_connection(self._path, self._settings, writer=False)
            self._all.append(conn)
            return conn

    def close(self) -> None:
        """Close every reader; later queries raise."""
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()
