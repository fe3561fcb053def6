"""Notification channels over real HTTP and a real mail relay on loopback: alarms from a real
rule reach a webhook, a chat tool and an inbox, filtered by severity, retried, logged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from edge import settings as settings_mod
from tests.bench._common import free_port
from tests.sync.test_agent import wait_for
from tests.sync.test_webhooks import Receiver, verified
from tests.web.conftest import error_of

SCOPES = ("webhooks.write", "devices.write", "telemetry.write", "incidents.read", "events.write")


class Inbox:
    """aiosmtpd's handler: keeps what the relay accepted; answers from a plan (then 250)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.plan: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            if self.plan:
                return self.plan.pop(0)
            self.messages.append(
                (envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default))
            )
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    # aiosmtpd checks its server by connecting to the port it was given, so not port 0.
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def start(gateway_factory, tmp_path: Path):
    """A gateway that polls and retries deliveries in fractions of a second."""

    def started(**notify: Any):
        chosen = settings_mod.load(
            None, {}, data_dir=str(tmp_path / "data"), http={"host": "127.0.0.1", "port": 0},
            webhooks={"retry_base_s": 0.05, "poll_s": 0.05, "timeout_s": 2}, notify=notify,
        )  # fmt: skip
        gw = gateway_factory(settings_=chosen)
        store = gw.runtime.store
        _, key = store.create_api_key(store.organization.id, "t", list(SCOPES))
        gw.headers = {"Authorization": f"Bearer {key}"}
        return gw

    return started


def channel(gw, **body: Any) -> dict:
    made = gw.client.post("/v1/notification-channels", json=body, headers=gw.headers)
    assert made.status_code == 201, made.text
    return made.json()["data"]


def log_of(gw, channel_id: str) -> list[dict]:
    got = gw.client.get(f"/v1/notification-channels/{channel_id}/deliveries", headers=gw.headers)
    assert got.status_code == 200, got.text
    return got.json()["data"]


def raise_alarm(gw, severity: str = "critical") -> str:
    """A threshold rule on a tank's level, and a reading over it: a real alarm.raised."""
    tank = {"name": "Tank", "type": "http", "points": [{"key": "level"}]}
    device = gw.client.post("/v1/devices", json=tank, headers=gw.headers).json()["data"]
    rule = {"name": "High level", "kind": "threshold", "device_id": device["id"],
            "metric": "level", "params": {"op": ">", "value": 80},
            "severity": severity}  # fmt: skip
    made = gw.client.post("/v1/alert-rules", json=rule, headers=gw.headers)
    assert made.status_code == 201, made.text
    time.sleep(0.1)
    reading = {"device_id": device["id"], "metric": "level", "value": 93.0,
               "ts": datetime.now(UTC).isoformat()}  # fmt: skip
    sent = gw.client.post("/v1/telemetry/ingest", json={"readings": [reading]},
                          headers=gw.headers)  # fmt: skip
    assert sent.status_code == 200, sent.text
    return device["id"]


def test_a_webhook_channel_gets_signed_alarms_at_or_above_its_severity(start, receiver):
    gw = start()
    critical = channel(gw, name="Control room", type="webhook", url=receiver.url,
                       min_severity="critical")  # fmt: skip
    assert critical["secret"].startswith("whsec_")
    assert critical["events"] == ["alarm.raised", "alarm.cleared"]
    store, org = gw.runtime.store, gw.runtime.store.organization.id
    store.record_event(org, "alarm.raised", "warning", "Door open", "dev_door")
    store.record_event(org, "device.offline", "critical", "Not an alarm", "dev_meter")
    device = raise_alarm(gw)
    [logged] = wait_for(lambda: [d for d in log_of(gw, critical["id"])
                                 if d["status"] == "delivered"], what="the delivery")  # fmt: skip
    [got] = receiver.received
    assert verified(critical["secret"], got)
    assert got.json["type"] == "alarm.raised" and got.json["data"]["device_id"] == device
    assert got.json["data"]["severity"] == "critical" and logged["id"] == got.json["id"]
    assert len(log_of(gw, critical["id"])) == 1  # the warning and the offline were not sent


def test_a_chat_channel_gets_a_line_a_person_reads(start, receiver):
    gw = start()
    chat = channel(gw, name="Maintenance chat", type="slack", url=receiver.url)
    assert "secret" not in chat
    device = raise_alarm(gw, "warning")
    wait_for(lambda: receiver.accepted(), what="the chat message")
    [got] = receiver.received
    assert "x-webhook-signature" not in got.headers
    text = got.json["text"]
    assert set(got.json) == {"text"}
    assert text.splitlines()[0] == f"[WARNING] High level: level is 93 (> 80) ({device})"
    assert "Event: alarm.raised" in text


def test_an_email_channel_mails_each_recipient_once_through_the_relay(start, relay):
    inbox, port = relay
    gw = start(smtp_host="127.0.0.1", smtp_port=port, smtp_from="gateway@plant.example")
    mail = channel(gw, name="On call", type="email", to=["ops@plant.example",
                   "tech@plant.example", "ops@plant.example"])  # fmt: skip
    assert mail["to"] == ["ops@plant.example", "tech@plant.example"] and mail["url"] is None
    inbox.plan = ["451 4.3.0 try again later"]  # the relay is busy once: retried, not lost
    device = raise_alarm(gw)
    [logged] = wait_for(lambda: [d for d in log_of(gw, mail["id"])
                                 if d["status"] == "delivered"], what="the mail")  # fmt: skip
    assert (logged["attempts"], logged["last_status_code"]) == (2, 250)
    [(recipients, message)] = inbox.messages
    assert recipients == ["ops@plant.example", "tech@plant.example"]
    assert message["From"] == "gateway@plant.example"
    assert message["Subject"].startswith("[CRITICAL]") and device in message["Subject"]
    assert message["Message-ID"] == f"<{logged['id']}@edge-gateway>"
    assert "Event: alarm.raised" in message.get_content()


def test_without_a_relay_an_email_waits_and_says_why(start):
    gw = start()
    mail = channel(gw, name="On call", type="email", to=["ops@plant.example"])
    gw.client.post(f"/v1/notification-channels/{mail['id']}/test", headers=gw.headers)
    [logged] = wait_for(lambda: [d for d in log_of(gw, mail["id"]) if d["attempts"]],
                        what="an attempt")  # fmt: skip
    assert logged["status"] == "pending" and "smtp_host" in logged["last_error"]


def test_channels_and_webhooks_are_listed_apart_and_managed_with_etags(start, receiver):
    gw = start()
    hook = gw.client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]},
                          headers=gw.headers).json()["data"]  # fmt: skip
    made = gw.client.post("/api/v1/notification-channels", json={
        "name": "Chat", "type": "slack", "url": receiver.url, "minSeverity": "error"},
        headers=gw.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    chat = made.json()
    assert chat["minSeverity"] == "error" and chat["id"].startswith("nch_")
    listed = gw.client.get("/v1/notification-channels", headers=gw.headers).json()["data"]
    assert [c["id"] for c in listed] == [chat["id"]]
    hooks = gw.client.get("/v1/webhooks", headers=gw.headers).json()["data"]
    assert [h["id"] for h in hooks] == [hook["id"]]
    error_of(gw.client.get(f"/v1/webhooks/{chat['id']}", headers=gw.headers), 404, "not_found")
    path = f"/v1/notification-channels/{chat['id']}"
    renamed = gw.client.patch(path, json={"name": "Night chat"},
                              headers={**gw.headers, "If-Match": chat["etag"]})  # fmt: skip
    assert renamed.status_code == 200 and renamed.json()["data"]["name"] == "Night chat"
    stale = gw.client.patch(path, json={"enabled": False},
                            headers={**gw.headers, "If-Match": chat["etag"]})  # fmt: skip
    error_of(stale, 409, "conflict")
    assert gw.client.delete(path, headers=gw.headers).status_code == 204
    error_of(gw.client.get(path, headers=gw.headers), 404, "not_found")
    since = gw.client.get("/v1/notification-channels", params={"updated_since": chat["createdAt"]},
                          headers=gw.headers).json()["data"]  # fmt: skip
    assert since[0]["deleted_at"] is not None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "x", "type": "pager", "url": "http://127.0.0.1/"}, "type must be one of"),
        ({"name": "x", "type": "email", "url": "http://127.0.0.1/"}, "not url"),
        ({"name": "x", "type": "email", "to": ["not an address"]}, "not an e-mail address"),
        ({"name": "x", "type": "email"}, "to must list"),
        ({"name": "x", "type": "slack", "url": "ftp://chat/"}, "http or https"),
        ({"name": "x", "type": "slack", "url": "http://h/", "to": ["a@b.c"]}, "not to"),
        ({"name": "x", "type": "webhook", "url": "http://h/", "min_severity": "loud"}, "one of"),
        ({"name": "x", "type": "webhook", "url": "http://h/", "events": ["nope"]}, "unknown"),
        ({"name": "x", "type": "webhook", "url": "http://h/", "colour": 1}, "colour"),
    ],
)
def test_bad_channels_are_refused_with_the_reason(start, body, words):
    gw = start()
    refused = gw.client.post("/v1/notification-channels", json=body, headers=gw.headers)
    assert words in error_of(refused, 422, "validation_failed")["message"].lower()


def test_only_webhook_channels_have_a_secret_to_rotate_and_bounded_keys_may_not_manage_them(
    start, receiver
):
    gw = start()
    hook = channel(gw, name="Hook", type="webhook", url=receiver.url)
    chat = channel(gw, name="Chat", type="slack", url=receiver.url)
    rotated = gw.client.patch(f"/v1/notification-channels/{hook['id']}",
                              json={"rotate_secret": True}, headers=gw.headers)  # fmt: skip
    assert rotated.json()["data"]["secret"] not in (None, hook["secret"])
    refused = gw.client.patch(f"/v1/notification-channels/{chat['id']}",
                              json={"rotate_secret": True}, headers=gw.headers)  # fmt: skip
    error_of(refused, 422, "validation_failed")
    store = gw.runtime.store
    group = store.create_device_group(store.organization.id, "Pumps")
    _, bounded = store.create_api_key(store.organization.id, "b", ["webhooks.write"],
                                      groups=(group.id,))  # fmt: skip
    listed = gw.client.get(
        "/v1/notification-channels", headers={"Authorization": f"Bearer {bounded}"}
    )
    error_of(listed, 403, "forbidden")
