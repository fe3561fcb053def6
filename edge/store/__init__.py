"""The gateway's SQLite store: the only package that holds SQL or imports apsw."""

from edge.store._annotations import Annotation, AnnotationClass
from edge.store._catalog import Conflict, DeviceFilter, NotFound, Refused
from edge.store._channels import DEFAULT_EVENTS as DEFAULT_CHANNEL_EVENTS
from edge.store._channels import TRANSPORTS, Channel
from edge.store._cursor import InvalidCursor
from edge.store._cursor import decode as decode_cursor
from edge.store._cursor import encode as encode_cursor
from edge.store._files import DatabaseRefused, check_file
from edge.store._jobs import Job
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
    "DEFAULT_CHANNEL_EVENTS",
    "EVENT_TYPES",
    "TRANSPORTS",
    "Annotation",
    "AnnotationClass",
    "BacklogFull",
    "Channel",
    "Conflict",
    "DatabaseRefused",
    "DeviceFilter",
    "DueDelivery",
    "IdempotentAnswer",
    "InvalidCursor",
    "Job",
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
    "decode_cursor",
    "encode_cursor",
    "migrate",
    "pending",
    "table_stats",
    "vacuum",
]
