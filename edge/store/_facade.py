"""Facade: how the Store's parts reach the database: writes through the writer thread,
reads on a pooled connection, and keyset pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import apsw

from edge.models import Page
from edge.store import _cursor
from edge.store._connections import ReaderPool
from edge.store._writer import Writer

T = TypeVar("T")

# Bounds the page size of `range`; the API's own limit (500) is lower.
MAX_PAGE: Final = 10_000


class Facade:
    """The base of the Store and of its parts (sync state, alarms, webhooks)."""

    _writer: Writer
    _readers: ReaderPool

    def _write(self, fn: Callable[[apsw.Connection], T]) -> T:
        return self._writer.submit(fn).result()

    def _read(self, fn: Callable[[apsw.Connection], T]) -> T:
        with self._readers.connection() as conn:
            return fn(conn)

    def _updated_page(
        self,
        query: Callable[[apsw.Connection, Any, int], list[Any]],
        cursor: str | None,
        limit: int,
    ) -> Page:
        """A keyset page in (updated_at, id) order: the order of every `updated_since` listing."""
        return self._page(query, cursor, (int, str), lambda x: (x.updated_at, x.id), limit)

    def _page(
        self,
        query: Callable[[apsw.Connection, Any, int], list[Any]],
        cursor: str | None,
        key_types: tuple[type, ...],
        key: Callable[[Any], tuple[Any, ...]],
        limit: int,
    ) -> Page:
        """One keyset page: `query(conn, after_key, n)` returns rows after the cursor's key."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        after = _cursor.decode(cursor, *key_types) if cursor else None
        rows = self._read(lambda c: query(c, after, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, _cursor.encode(*key(rows[-1])) if more else None)
