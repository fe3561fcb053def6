"""WebhookDispatcher: turns recorded events into webhook deliveries and sends them, signed.

Notification channels ride on the same deliveries: a `webhook` channel is sent
exactly as below, a `slack` channel gets `{"text": ...}` (what chat tools'
incoming webhooks take), and an `email` channel a mail through `sync.mail`.

The store makes the deliveries (`Store.fan_out_webhook_events`: one per event
per subscribed webhook, durably, from a watermark over the events table);
this module sends them and records every attempt, so after a restart pending
deliveries go on and delivered ones are never sent again.

What a receiver gets: `POST <url>` with `Content-Type: application/json` and

    {"id": "whd_...", "type": "device.offline", "created_at": "2026-05-24T10:00:00.000Z",
     "data": {"id": "evt_...", "type": "device.offline", "severity": "warning",
              "message": "...", "device_id": "dev_...", "ts": "2026-05-24T10:00:00.000Z",
              "data": {...}}}

(the same bytes on every attempt), and the headers

    X-Webhook-Id: whd_...            the delivery id, the same on every attempt: dedupe on it
    X-Webhook-Event: device.offline  the event type
    X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

To verify: take `t` and `v1` from the header, compute HMAC-SHA256 keyed with
the whole secret (`whsec_...`, UTF-8) over `t`, a dot and the raw body bytes,
compare it with `v1` in constant time, and refuse a `t` more than a few
minutes from now, so a captured request cannot be replayed later.

Retries: an answer other than 2xx (redirects are not followed), a transport
error, or no answer within `[webhooks] timeout_s` is retried after
`retry_base_s` x 1, 3, 12, 60, 360, 720, 1440, 2880, 2880 ... (10 s, 30 s,
2 min, 10 min, 1 h, 2 h, 4 h, 8 h by default), each +-20 %; after
`max_attempts` the delivery is `failed`. One URL gets its deliveries one at a
time, oldest first: a delivery waiting for its retry holds back the later ones
to that URL, so a receiver sees events in the order they happened.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import httpx
import msgspec

from edge import __version__
from edge.models import now_ms
from edge.runtime import Runtime
from edge.store import DueDelivery
from sync import mail

log = logging.getLogger(__name__)

# Multiples of retry_base_s after the 1st, 2nd, ... failed attempt; the last one repeats.
RETRY_STEPS: Final = (1, 3, 12, 60, 360, 720, 1440, 2880)
# Receivers that failed together (one outage) are not retried in step.
JITTER: Final = 0.2
# Events turned into deliveries per write transaction.
FAN_OUT_BATCH: Final = 500
# Receivers sent to at once (each still gets one request at a time).
MAX_RECEIVERS: Final = 8
# Delivered and failed deliveries stay in the log this long, then make room.
KEEP_MS: Final = 30 * 86_400_000
PRUNE_EVERY_S: Final = 3600.0
# Enough of a refusing receiver's answer to tell why, not enough to fill the disk.
ERROR_EXCERPT: Final = 200
DELIVERED, FAILED, PENDING = "delivered", "failed", "pending"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Webhook-Signature value of `body` sent at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(delivery: DueDelivery) -> bytes:
    """The JSON body of a delivery: the same bytes on every attempt."""
    e = delivery.event
    data = {"id": e.id, "type": e.type, "severity": e.severity, "message": e.message,
            "device_id": e.device_id, "ts": _iso(e.ts_ms), "data": e.data}  # fmt: skip
    return msgspec.json.encode(
        {"id": delivery.id, "type": e.type, "created_at": _iso(delivery.created_at), "data": data}
    )


def retry_delay_s(attempts: int, base_s: float, rng: random.Random) -> float:
    """The pause after `attempts` failed attempts (1 or more)."""
    step = RETRY_STEPS[min(attempts, len(RETRY_STEPS)) - 1]
    return base_s * step * rng.uniform(1 - JITTER, 1 + JITTER)


def _where(url: str) -> str:
    """A URL for the log: no credentials, no query (either may hold a receiver's token)."""
    parts = urlsplit(url)
    if parts.scheme == "mailto":
        return url
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


async def _excerpt(response: httpx.Response) -> str:
    seen = b""
    async for chunk in response.aiter_bytes():
        seen += chunk
        if len(seen) >= ERROR_EXCERPT:
            break
    return seen[:ERROR_EXCERPT].decode("utf-8", "replace").strip()


class WebhookDispatcher:
    """Follows the events table into deliveries and sends them, one at a time per URL."""

    def __init__(self, runtime: Runtime, rng: random.Random | None = None) -> None:
        self._store = runtime.store
        self._settings = runtime.settings.webhooks
        self._rng = rng or random.Random()
        self._user_agent = f"edge-gateway/{__version__} ({runtime.store.gateway_id})"
        # URLs whose last attempt failed: logged once at ERROR, then quietly until they answer.
        self._failing: set[str] = set()
        self._pruned_at = -PRUNE_EVERY_S
        self._mailer = mail.Mailer(runtime.settings.notify, self._settings.timeout_s)

    async def run(self) -> None:
        """Make and send deliveries until cancelled."""
        busy: dict[str, asyncio.Task[None]] = {}
        headers = {"User-Agent": self._user_agent, "Content-Type": "application/json"}
        async with (
            httpx.AsyncClient(
                headers=headers, timeout=self._settings.timeout_s, follow_redirects=False
            ) as client,
            asyncio.TaskGroup() as senders,
        ):
            while True:
                await self._prune()
                await self._fan_out()
                for due in await asyncio.to_thread(self._store.due_webhook_deliveries, now_ms()):
                    if due.url in busy or len(busy) >= MAX_RECEIVERS:
                        continue
                    busy[due.url] = senders.create_task(self._drain(client, due.url))
                    busy[due.url].add_done_callback(lambda _, url=due.url: busy.pop(url, None))
                await asyncio.sleep(self._settings.poll_s)

    async def _fan_out(self) -> None:
        read = FAN_OUT_BATCH
        while read == FAN_OUT_BATCH:
            read = await asyncio.to_thread(self._store.fan_out_webhook_events, FAN_OUT_BATCH)

    async def _drain(self, client: httpx.AsyncClient, url: str) -> None:
        """Send a URL's due deliveries in order until none is due.

        Each is read afresh here, not taken from the caller's listing: that may predate the
        previous sender's last record, and a delivery recorded as delivered is never resent.
        """
        while found := await asyncio.to_thread(
            self._store.due_webhook_deliveries, now_ms(), url, 1
        ):
            await self._attempt(client, found[0])

    async def _send(
        self, client: httpx.AsyncClient, delivery: DueDelivery
    ) -> tuple[int | None, str | None]:
        """One attempt by the delivery's transport: (HTTP or SMTP status, error)."""
        if delivery.transport == "email":
            return await self._mailer.send(delivery.id, delivery.config["to"], delivery.event)
        headers = {"X-Webhook-Id": delivery.id, "X-Webhook-Event": delivery.event.type}
        if delivery.transport == "slack":
            body = msgspec.json.encode({"text": mail.text(delivery.event)})
        else:
            body = payload(delivery)
            headers["X-Webhook-Signature"] = signature(delivery.secret, body, int(time.time()))
        return await self._post(client, delivery.url, body, headers)

    async def _attempt(self, client: httpx.AsyncClient, delivery: DueDelivery) -> None:
        code, error = await self._send(client, delivery)
        attempts = delivery.attempts + 1
        next_at = None
        if code is not None and 200 <= code < 300:
            status = DELIVERED
        elif attempts >= self._settings.max_attempts:
            status = FAILED
        else:
            status = PENDING
            delay = retry_delay_s(attempts, self._settings.retry_base_s, self._rng)
            next_at = now_ms() + round(delay * 1000)
        self._log(delivery, status, attempts, error)
        await asyncio.to_thread(
            self._store.webhook_attempted, delivery.id, status, code, error, next_at
        )

    async def _post(
        self, client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """(HTTP status, error) of one attempt; the status is None when nothing answered."""
        timeout = self._settings.timeout_s
        try:
            async with (
                asyncio.timeout(timeout),
                client.stream("POST", url, content=body, headers=headers) as response,
            ):
                if response.is_success:
                    return response.status_code, None
                code, excerpt = response.status_code, await _excerpt(response)
                return code, f"HTTP {code}: {excerpt}" if excerpt else f"HTTP {code}"
        except TimeoutError:
            return None, f"no answer within {timeout:g} s"
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            kind = type(error).__name__
            return None, f"{kind}: {error}" if str(error) else kind

    def _log(self, delivery: DueDelivery, status: str, attempts: int, error: str | None) -> None:
        url, where = delivery.url, _where(delivery.url)
        if status == DELIVERED:
            if url in self._failing:
                self._failing.discard(url)
                log.info("webhook receiver %s accepts deliveries again", where)
            return
        if url not in self._failing:
            self._failing.add(url)
            log.error("webhook delivery %s to %s failed (attempt %d, %s): %s",
                      delivery.id, where, attempts, status, error)  # fmt: skip
        else:
            log.debug("webhook delivery %s to %s failed again (attempt %d, %s): %s",
                      delivery.id, where, attempts, status, error)  # fmt: skip

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        dropped = await asyncio.to_thread(self._store.prune_webhook_deliveries, now_ms() - KEEP_MS)
        if dropped:
            log.info("dropped %d webhook deliveries finished more than 30 days ago", dropped)
