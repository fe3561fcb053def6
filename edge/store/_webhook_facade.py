"""The Store's part for webhooks and notification channels: subscriptions and their durable
deliveries."""

from __future__ import annotations

from typing import Any

from edge.models import Page
from edge.store import _channels, _webhooks
from edge.store._channels import Channel
from edge.store._facade import Facade
from edge.store._webhooks import DueDelivery, Webhook, WebhookDelivery


class WebhookFacade(Facade):
    """Webhook subscriptions and their deliveries."""

    def create_webhook(
        self, org_id: str, url: str, events: list[str], description: str | None = None
    ) -> tuple[Webhook, str]:
        """A new webhook and its signing secret (Refused for a bad url or unknown events)."""
        return self._write(lambda c: _webhooks.create(c, org_id, url, events, description))

    def webhook(self, org_id: str, webhook_id: str) -> Webhook:
        """One live webhook of the org, or NotFound."""
        return self._read(lambda c: _webhooks.get(c, org_id, webhook_id))

    def webhook_page(
        self,
        org_id: str,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of the org's webhooks in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _webhooks.page(c, org_id, updated_since, after, n), cursor, limit
        )

    def update_webhook(
        self,
        org_id: str,
        webhook_id: str,
        expected_version: int | None = None,
        rotate_secret: bool = False,
        **changes: Any,
    ) -> tuple[Webhook, str | None]:
        """Change a webhook (Conflict if stale); with `rotate_secret`, also its new secret."""
        return self._write(
            lambda c: _webhooks.update(
                c, org_id, webhook_id, changes, expected_version, rotate_secret
            )
        )

    def delete_webhook(self, org_id: str, webhook_id: str) -> Webhook:
        """Soft-delete a webhook; its pending deliveries fail."""
        return self._write(lambda c: _webhooks.delete(c, org_id, webhook_id))

    def queue_webhook_test(self, org_id: str, webhook_id: str) -> WebhookDelivery:
        """Queue a `webhook.test` delivery to this webhook (Conflict if it is disabled)."""
        return self._write(lambda c: _webhooks.queue_test(c, org_id, webhook_id))

    def webhook_deliveries(
        self, org_id: str, webhook_id: str, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A keyset page of a webhook's deliveries, newest first."""
        return self._page(
            lambda c, after, n: _webhooks.deliveries(c, org_id, webhook_id, after, n),
            cursor,
            (int,),
            lambda d: (d.seq,),
            limit,
        )

    # Notification channels: rows of the same table, sharing the delivery log.

    def create_channel(self, org_id: str, channel: Channel) -> tuple[Channel, str | None]:
        """A new notification channel; a webhook channel's signing secret is returned once."""
        return self._write(lambda c: _channels.create(c, org_id, channel))

    def channel(self, org_id: str, channel_id: str) -> Channel:
        """One live channel of the org, or NotFound."""
        return self._read(lambda c: _channels.get(c, org_id, channel_id))

    def channel_page(
        self,
        org_id: str,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of the org's channels in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _channels.page(c, org_id, updated_since, after, n), cursor, limit
        )

    def update_channel(
        self,
        org_id: str,
        channel_id: str,
        expected_version: int | None = None,
        rotate_secret: bool = False,
        **changes: Any,
    ) -> tuple[Channel, str | None]:
        """Change a channel (Conflict if stale); with `rotate_secret`, also its new secret."""
        return self._write(
            lambda c: _channels.update(
                c, org_id, channel_id, changes, expected_version, rotate_secret
            )
        )

    def delete_channel(self, org_id: str, channel_id: str) -> Channel:
        """Soft-delete a channel; its pending deliveries fail."""
        return self._write(lambda c: _channels.delete(c, org_id, channel_id))

    def queue_channel_test(self, org_id: str, channel_id: str) -> WebhookDelivery:
        """Queue a `webhook.test` delivery to this channel (Conflict if it is disabled)."""
        return self._write(lambda c: _channels.queue_test(c, org_id, channel_id))

    def channel_deliveries(
        self, org_id: str, channel_id: str, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A keyset page of a channel's deliveries, newest first."""
        return self._page(
            lambda c, after, n: _channels.deliveries(c, org_id, channel_id, after, n),
            cursor,
            (int,),
            lambda d: (d.seq,),
            limit,
        )

    def webhook_delivery(self, org_id: str, delivery_id: str) -> WebhookDelivery:
        """One delivery of the org, or NotFound."""
        return self._read(lambda c: _webhooks.delivery(c, org_id, delivery_id))

    def fan_out_webhook_events(self, limit: int) -> int:
        """Turn up to `limit` newly recorded events into deliveries; returns the events read."""
        if not self._read(_webhooks.events_waiting):
            return 0
        return self._write(lambda c: _webhooks.fan_out(c, limit))

    def due_webhook_deliveries(
        self, now: int, url: str | None = None, limit: int = 100
    ) -> list[DueDelivery]:
        """Each URL's next delivery (or `url`'s) if it is due, with the secret to sign it."""
        return self._read(lambda c: _webhooks.due(c, now, url, limit))

    def webhook_attempted(
        self,
        delivery_id: str,
        status: str,
        status_code: int | None = None,
        error: str | None = None,
        next_attempt_at: int | None = None,
    ) -> None:
        """Record an attempt: `status` delivered, failed, or pending until `next_attempt_at`."""
        self._write(
            lambda c: _webhooks.attempted(
                c, delivery_id, status, status_code, error, next_attempt_at
            )
        )

    def prune_webhook_deliveries(self, before: int) -> int:
        """Drop delivered and failed deliveries last changed before `before`."""
        return self._write(lambda c: _webhooks.prune(c, before))
