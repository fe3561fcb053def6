"""Named schema migrations, applied through sqlite-utils before apsw opens the file.

Each migration is a function of a `sqlite_utils.Database`; its name is
recorded in `_migrations` in the same transaction as its changes. The
migrations pending for a file all run in one transaction, so an upgrade is
either wholly applied or, when one of them fails, the file is as it was and
the failure is a DatabaseRefused naming the migration: the previous version
still opens it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from edge.store import _schema_alarms, _schema_jobs
from edge.store._refused import DatabaseRefused

# "EDGE" in ASCII: marks the file as ours, so a foreign SQLite file is refused, not migrated.
APPLICATION_ID = 0x45444745


def _initial(db: sqlite_utils.Database) -> None:
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["organizations"].create(
        {"id": str, "name": str, "created_at": int}, pk="id", not_null={"name", "created_at"}
    )
    db["organizations"].create_index(["name"], unique=True)
    for table in ("sites", "device_groups"):
        db[table].create(
            {
                "id": str,
                "org_id": str,
                "name": str,
                "created_at": int,
                "updated_at": int,
                "deleted_at": int,
            },
            pk="id",
            not_null={"org_id", "name", "created_at", "updated_at"},
            foreign_keys=[("org_id", "organizations", "id")],
        )
        db[table].create_index(["org_id", "updated_at", "id"])
    db["devices"].create(
        {
            "id": str,
            "org_id": str,
            "site_id": str,
            "group_id": str,
            "name": str,
            "type": str,
            "connection": str,
            "profile": str,
            "tags": str,
            "enabled": int,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
            "version": int,
        },
        pk="id",
        not_null={"org_id", "name", "type", "created_at", "updated_at", "version"},
        defaults={"connection": "{}", "tags": "[]", "enabled": 1, "version": 1},
        foreign_keys=[
            ("org_id", "organizations", "id"),
            ("site_id", "sites", "id"),
            ("group_id", "device_groups", "id"),
        ],
    )
    db["devices"].create_index(["org_id", "updated_at", "id"])
    db["points"].create(
        {
            "id": int,
            "uid": str,
            "org_id": str,
            "device_id": str,
            "key": str,
            "unit": str,
            "data_type": str,
            "interval_s": float,
            "config": str,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
        },
        pk="id",
        not_null={"uid", "org_id", "device_id", "key", "data_type", "interval_s"},
        defaults={"config": "{}", "interval_s": 1.0, "data_type": "float64"},
        foreign_keys=[("org_id", "organizations", "id"), ("device_id", "devices", "id")],
    )
    db["points"].create_index(["uid"], unique=True)
    db["points"].create_index(["device_id", "key"], unique=True)
    db["points"].create_index(["org_id", "updated_at", "id"])
    # Clustered by (point, time) so range and aggregate scans read contiguous pages;
    # seq is the outbox order and the tie-breaker between versions of one timestamp.
    db.execute(
        """
        CREATE TABLE readings (
            point_id INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            value REAL,
            quality INTEGER NOT NULL DEFAULT 0,
            correction INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (point_id, ts, seq)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE UNIQUE INDEX readings_by_seq ON readings(seq)")
    # Corrections are rare: a partial index finds them without a probe per reading.
    db.execute("CREATE INDEX readings_corrections ON readings(point_id, ts) WHERE correction = 1")
    db["point_latest"].create(
        {
            "point_id": int,
            "seq": int,
            "ts": int,
            "value": float,
            "quality": int,
            "correction": int,
        },
        pk="point_id",
        not_null={"seq", "ts", "quality", "correction"},
    )
    db["events"].create(
        {
            "id": str,
            "org_id": str,
            "device_id": str,
            "type": str,
            "severity": str,
            "message": str,
            "ts": int,
            "data": str,
        },
        pk="id",
        not_null={"org_id", "type", "severity", "message", "ts"},
        defaults={"data": "{}"},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["events"].create_index(["org_id", "ts", "id"])
    db["api_keys"].create(
        {
            "id": str,
            "org_id": str,
            "name": str,
            "prefix": str,
            "secret_hash": str,
            "scopes": str,
            "created_at": int,
            "last_used_at": int,
            "revoked_at": int,
        },
        pk="id",
        not_null={"org_id", "name", "prefix", "secret_hash", "scopes", "created_at"},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["api_keys"].create_index(["secret_hash"], unique=True)


def _idempotency(db: sqlite_utils.Database) -> None:
    # The first answer to an idempotent request, committed with the request's own writes.
    db["idempotency"].create(
        {
            "key_id": str,
            "idem_key": str,
            "request_hash": str,
            "status": int,
            "body": bytes,
            "created_at": int,
        },
        pk=("key_id", "idem_key"),
        not_null={"request_hash", "status", "body", "created_at"},
    )
    db["idempotency"].create_index(["created_at"])


def _provisioning(db: sqlite_utils.Database) -> None:
    # A key limited to one device's telemetry (a provisioned device's credential).
    db["api_keys"].add_column("device_id", str)
    db["registration_tokens"].create(
        {
            "id": str,
            "org_id": str,
            "device_id": str,
            "token_hash": str,
            "created_at": int,
            "expires_at": int,
            "used_at": int,
        },
        pk="id",
        not_null={"org_id", "device_id", "token_hash", "created_at", "expires_at"},
        foreign_keys=[("org_id", "organizations", "id"), ("device_id", "devices", "id")],
    )
    db["registration_tokens"].create_index(["token_hash"], unique=True)


def _boundaries(db: sqlite_utils.Database) -> None:
    # A key may be limited to device groups and customers (JSON arrays; empty: no limit), and
    # a site may serve an external customer.
    db["api_keys"].add_column("allowed_group_ids", str, not_null_default="[]")
    db["api_keys"].add_column("allowed_customer_ids", str, not_null_default="[]")
    db["sites"].add_column("customer_id", str)


def _components(db: sqlite_utils.Database) -> None:
    # A device's replaceable parts and the points (sensor uids, JSON) that measure each.
    db["components"].create(
        {
            "id": str,
            "org_id": str,
            "device_id": str,
            "name": str,
            "kind": str,
            "serial_number": str,
            "sensor_ids": str,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
            "version": int,
        },
        pk="id",
        not_null={"org_id", "device_id", "name", "sensor_ids", "created_at", "updated_at"},
        defaults={"sensor_ids": "[]", "version": 1},
        foreign_keys=[("org_id", "organizations", "id"), ("device_id", "devices", "id")],
    )
    db["components"].create_index(["org_id", "updated_at", "id"])
    db["components"].create_index(["device_id"])


def _sync(db: sqlite_utils.Database) -> None:
    # Push batches planned but not yet acknowledged upstream: after a crash they are sent again
    # with the same sequence range, hence the same Idempotency-Key.
    db["sync_batches"].create(
        {"first_seq": int, "last_seq": int, "created_at": int},
        pk="first_seq",
        not_null={"last_seq", "created_at"},
    )
    # Readings the upstream refused (4xx), kept with its answer until retried or discarded.
    db["quarantine"].create(
        {
            "id": str,
            "seq": int,
            "org_id": str,
            "device_id": str,
            "metric": str,
            "ts": int,
            "value": float,
            "quality": int,
            "correction": int,
            "status": int,
            "error": str,
            "created_at": int,
            "attempts": int,
            "retry": int,
        },
        pk="id",
        not_null={"seq", "org_id", "device_id", "metric", "ts", "quality", "created_at"},
        defaults={"attempts": 1, "retry": 0, "correction": 0},
    )
    db["quarantine"].create_index(["seq"], unique=True)
    # Pull watermarks per resource, and the devices the upstream is known to hold.
    db["sync_pulls"].create({"resource": str, "updated_at": int, "id": str}, pk="resource")
    # origin "local": registered upstream by this gateway; "upstream": pulled from it.
    db["sync_devices"].create(
        {"device_id": str, "origin": str, "known_at": int},
        pk="device_id",
        not_null={"origin", "known_at"},
    )


def _movements(db: sqlite_utils.Database) -> None:
    # A device's movement settings (see edge.movements), JSON; NULL: no movements derived.
    db["devices"].add_column("movement", str)


def _maintenance(db: sqlite_utils.Database) -> None:
    # One table for every maintenance kind: the full fields in `body`, and the few that
    # listings filter or reports add up mirrored into indexed columns.
    db["service_records"].create(
        {
            "id": str,
            "org_id": str,
            "kind": str,
            "name": str,
            "asset_id": str,
            "device_id": str,
            "parent_id": str,
            "group_id": str,
            "customer_id": str,
            "vendor_id": str,
            "user_id": str,
            "state": str,
            "active": int,
            "at": int,
            "external_system": str,
            "body": str,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
            "version": int,
            "outbox": int,
        },
        pk="id",
        not_null={"org_id", "kind", "body", "created_at", "updated_at", "version", "outbox"},
        defaults={"version": 1, "outbox": 0},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["service_records"].create_index(["org_id", "kind", "updated_at", "id"])
    db["service_records"].create_index(["org_id", "kind", "at"])
    db["service_records"].create_index(["org_id", "kind", "parent_id"])
    db["service_records"].create_index(["org_id", "kind", "asset_id"])
    # Records made here and not yet pushed upstream: the sync agent's queue stays small.
    db.execute(
        "CREATE INDEX service_records_outbox ON service_records(updated_at) WHERE outbox = 1"
    )


def _users(db: sqlite_utils.Database) -> None:
    db["users"].create(
        {
            "id": str,
            "org_id": str,
            "username": str,
            "password_hash": str,
            "role": str,
            "created_at": int,
            "updated_at": int,
            "disabled_at": int,
        },
        pk="id",
        not_null={"org_id", "username", "password_hash", "role", "created_at", "updated_at"},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["users"].create_index(["username"], unique=True)
    # Only a SHA-256 of the session cookie is kept, as for API keys.
    db["sessions"].create(
        {
            "token_hash": str,
            "user_id": str,
            "csrf": str,
            "created_at": int,
            "seen_at": int,
            "expires_at": int,
        },
        pk="token_hash",
        not_null={"user_id", "csrf", "created_at", "seen_at", "expires_at"},
        foreign_keys=[("user_id", "users", "id")],
    )
    db["sessions"].create_index(["user_id"])
    db["pinned_points"].create(
        {"org_id": str, "point_id": int, "created_at": int},
        pk=("org_id", "point_id"),
        not_null={"created_at"},
        foreign_keys=[("org_id", "organizations", "id"), ("point_id", "points", "id")],
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("0001_initial", _initial),
    ("0002_idempotency", _idempotency),
    ("0003_provisioning", _provisioning),
    ("0004_boundaries", _boundaries),
    ("0005_components", _components),
    ("0006_sync", _sync),
    ("0007_alarms", _schema_alarms.alarms),
    ("0008_webhooks", _schema_alarms.webhooks),
    ("0009_movements", _movements),
    ("0010_maintenance", _maintenance),
    ("0011_jobs", _schema_jobs.migrate),
    ("0012_notification_channels", _schema_alarms.notification_channels),
    ("0013_users", _users),
    ("0014_job_interruptions", _schema_jobs.interruptions),
)


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in the file (none for a new file)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    if not has_table:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def pending(path: Path) -> list[str]:
    """Names of the migrations this version would apply to the file."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        done = set(applied(conn))
    finally:
        conn.close()
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(path: Path) -> list[str]:
    """Apply every pending migration to the file; returns the names applied."""
    db = sqlite_utils.Database(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at INTEGER)"
        )
        done = set(applied(db.conn))
        ran = []
        with db.atomic():
            for name, step in MIGRATIONS:
                if name in done:
                    continue
                try:
                    with db.atomic():
                        step(db)
                        db["_migrations"].insert(
                            {"name": name, "applied_at": int(time.time() * 1000)}
                        )
                except Exception as error:
                    reason = f"migration {name} failed ({type(error).__name__}: {error})"
                    raise DatabaseRefused(path, f"{reason}; the file is unchanged") from error
                ran.append(name)
        return ran
    finally:
        db.close()
