"""The gateway's SQLite store: the only package that holds SQL or imports apsw."""

from edge.store._catalog import Conflict, DeviceFilter, NotFound, Refused
from edge.store._cursor import InvalidCursor
from edge.store._files import DatabaseRefused, check_file
from edge.store._maintenance import TableStats, vacuum
from edge.store._maintenance import check as check_database
from edge.store._maintenance import stats as table_stats
from edge.store._migrations import migrate, pending
from edge.store._readings import AGGREGATES
from edge.store._service import RecordFilter
from edge.store._store import IdempotentAnswer, Store, StoreStats
from edge.store._webhooks import EVENT_TYPES, DueDelivery, Webhook, WebhookDelivery
from edge.store._writer import (
    COMMIT_BUCKETS,
    BacklogFull,
    StoreClosed,
    UnknownPoint,
    WriterStats,
)

__all__ = [
    "AGGREGATES",
    "COMMIT_BUCKETS",
    "EVENT_TYPES",
    "BacklogFull",
    "Conflict",
    "DatabaseRefused",
    "DeviceFilter",
    "DueDelivery",
    "IdempotentAnswer",
    "InvalidCursor",
    "NotFound",
    "RecordFilter",
    "Refused",
    "Store",
    "StoreClosed",
    "StoreStats",
    "TableStats",
    "UnknownPoint",
    "Webhook",
    "WebhookDelivery",
    "WriterStats",
    "check_database",
    "check_file",
    "migrate",
    "pending",
    "table_stats",
    "vacuum",
]
