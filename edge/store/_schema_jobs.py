"""Migrations 0011 and 0014: report and export runs (`jobs`), annotations and annotation classes,
and how often a job's run was cut short by the process ending."""

from __future__ import annotations

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    """Create the tables of background jobs and of annotations."""
    # One row per report run or export: its request, its state and, once ready, its file.
    db["jobs"].create(
        {
            "id": str,
            "org_id": str,
            "kind": str,
            "type": str,
            "scope_type": str,
            "scope_id": str,
            "start_ms": int,
            "end_ms": int,
            "params": str,
            "status": str,
            "requested_by": str,
            "boundary": str,
            "error": str,
            "file": str,
            "size_bytes": int,
            "counts": str,
            "created_at": int,
            "started_at": int,
            "completed_at": int,
            "expires_at": int,
            "updated_at": int,
        },
        pk="id",
        not_null={
            "org_id",
            "kind",
            "type",
            "start_ms",
            "end_ms",
            "params",
            "status",
            "requested_by",
            "boundary",
            "counts",
            "created_at",
            "updated_at",
        },
        defaults={"params": "{}", "counts": "{}", "boundary": "{}"},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["jobs"].create_index(["org_id", "kind", "created_at", "id"])
    db["jobs"].create_index(["org_id", "kind", "updated_at", "id"])
    # The runner's queue and the expiry sweep: only jobs still waiting, running or holding a file.
    db.execute(
        "CREATE INDEX jobs_open ON jobs(status, created_at) "
        "WHERE status IN ('queued', 'running', 'ready')"
    )
    db["annotation_classes"].create(
        {
            "id": str,
            "org_id": str,
            "name": str,
            "colour": str,
            "description": str,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
            "version": int,
        },
        pk="id",
        not_null={"org_id", "name", "created_at", "updated_at", "version"},
        defaults={"version": 1},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["annotation_classes"].create_index(["org_id", "updated_at", "id"])
    db.execute(
        "CREATE UNIQUE INDEX annotation_classes_name ON annotation_classes(org_id, name) "
        "WHERE deleted_at IS NULL"
    )
    db["annotations"].create(
        {
            "id": str,
            "org_id": str,
            "device_id": str,
            "start_ms": int,
            "end_ms": int,
            "class_id": str,
            "text": str,
            "author": str,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
            "version": int,
        },
        pk="id",
        not_null={
            "org_id",
            "device_id",
            "start_ms",
            "end_ms",
            "text",
            "author",
            "created_at",
            "updated_at",
            "version",
        },
        defaults={"version": 1},
        foreign_keys=[("org_id", "organizations", "id"), ("device_id", "devices", "id")],
    )
    db["annotations"].create_index(["org_id", "updated_at", "id"])
    db["annotations"].create_index(["device_id", "start_ms"])


def interruptions(db: sqlite_utils.Database) -> None:
    """Count the runs of a job that the process did not live to finish (a crash, a power cut),
    so a job that brings the gateway down is not run again at every start."""
    db["jobs"].add_column("interrupted", int, not_null_default=0)
