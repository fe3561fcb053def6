"""Migrations 0007, 0008 and 0012: alert rules and alarms, webhook subscriptions and their
deliveries, and notification channels (which are subscriptions with a transport)."""

from __future__ import annotations

import sqlite_utils


def alarms(db: sqlite_utils.Database) -> None:
    """Migration 0007: alert rules, their alarms and the operators' trail."""
    # Alert rules evaluated on the gateway, the alarms they raise, and the operators' trail.
    db["alert_rules"].create(
        {
            "id": str,
            "org_id": str,
            "name": str,
            "kind": str,
            "device_id": str,
            "metric": str,
            "params": str,
            "severity": str,
            "enabled": int,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
            "version": int,
        },
        pk="id",
        not_null={"org_id", "name", "kind", "params", "severity", "created_at", "updated_at"},
        defaults={"params": "{}", "enabled": 1, "version": 1},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["alert_rules"].create_index(["org_id", "updated_at", "id"])
    db["alarms"].create(
        {
            "id": str,
            "org_id": str,
            "rule_id": str,
            "device_id": str,
            "metric": str,
            "severity": str,
            "message": str,
            "value": float,
            "raised_at": int,
            "acked_at": int,
            "acked_by": str,
            "cleared_at": int,
            "cleared_by": str,
            "updated_at": int,
        },
        pk="id",
        not_null={"org_id", "rule_id", "severity", "message", "raised_at", "updated_at"},
        foreign_keys=[("org_id", "organizations", "id"), ("rule_id", "alert_rules", "id")],
    )
    db["alarms"].create_index(["org_id", "raised_at", "id"])
    db["alarms"].create_index(["rule_id", "cleared_at"])
    # synced_at: when the sync agent carried a person's action to the upstream's alarm.
    db["alarm_notes"].create(
        {
            "id": str,
            "alarm_id": str,
            "action": str,
            "actor": str,
            "text": str,
            "ts": int,
            "synced_at": int,
        },
        pk="id",
        not_null={"alarm_id", "action", "actor", "ts"},
        foreign_keys=[("alarm_id", "alarms", "id")],
    )
    db["alarm_notes"].create_index(["alarm_id", "ts"])


def webhooks(db: sqlite_utils.Database) -> None:
    """Migration 0008: webhook subscriptions and their durable delivery log."""
    # Subscriptions; the secret is kept as is, since every delivery is signed with it.
    db["webhooks"].create(
        {
            "id": str,
            "org_id": str,
            "url": str,
            "events": str,
            "description": str,
            "enabled": int,
            "secret": str,
            "created_at": int,
            "updated_at": int,
            "deleted_at": int,
            "version": int,
        },
        pk="id",
        not_null={"org_id", "url", "events", "secret", "created_at", "updated_at", "version"},
        defaults={"events": "[]", "enabled": 1, "version": 1},
        foreign_keys=[("org_id", "organizations", "id")],
    )
    db["webhooks"].create_index(["org_id", "updated_at", "id"])
    # One row per event per subscribed webhook; seq (the rowid) is the order a URL gets them in.
    db["webhook_deliveries"].create(
        {
            "seq": int,
            "id": str,
            "org_id": str,
            "webhook_id": str,
            "event_id": str,
            "type": str,
            "status": str,
            "attempts": int,
            "last_status_code": int,
            "last_error": str,
            "next_attempt_at": int,
            "created_at": int,
            "updated_at": int,
            "delivered_at": int,
        },
        pk="seq",
        not_null={
            "id",
            "org_id",
            "webhook_id",
            "event_id",
            "type",
            "status",
            "attempts",
            "created_at",
            "updated_at",
        },
        defaults={"status": "pending", "attempts": 0},
        foreign_keys=[("org_id", "organizations", "id"), ("webhook_id", "webhooks", "id")],
    )
    db["webhook_deliveries"].create_index(["id"], unique=True)
    db["webhook_deliveries"].create_index(["webhook_id", "seq"])
    db["webhook_deliveries"].create_index(["updated_at"])
    # The dispatcher's queue: only pending rows, so finding each URL's next one stays cheap.
    db.execute(
        "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(webhook_id, seq) "
        "WHERE status = 'pending'"
    )


def notification_channels(db: sqlite_utils.Database) -> None:
    """Migration 0012: notification channels, as subscription rows with a transport."""
    # A notification channel is a subscription row with a transport (webhook, slack, email),
    # so channels share the webhooks' durable delivery log, ordering and retries.
    db["webhooks"].add_column("kind", str, not_null_default="webhook")
    db["webhooks"].add_column("transport", str, not_null_default="webhook")
    db["webhooks"].add_column("name", str)
    db["webhooks"].add_column("min_severity", str)
    db["webhooks"].add_column("config", str, not_null_default="{}")
