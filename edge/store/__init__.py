"""The gateway's SQLite store: the only package that holds SQL or imports apsw."""

from edge.store._catalog import NotFound
from edge.store._cursor import InvalidCursor
from edge.store._files import DatabaseRefused, check_file
from edge.store._migrations import migrate, pending
from edge.store._readings import AGGREGATES
from edge.store._store import Store, StoreStats
from edge.store._writer import BacklogFull, StoreClosed, UnknownPoint, WriterStats

__all__ = [
    "AGGREGATES",
    "BacklogFull",
    "DatabaseRefused",
    "InvalidCursor",
    "NotFound",
    "Store",
    "StoreClosed",
    "StoreStats",
    "UnknownPoint",
    "WriterStats",
    "check_file",
    "migrate",
    "pending",
]
