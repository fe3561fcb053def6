"""Webhook deliveries to a real receiver on loopback: signed, retried, in order, durable across
restarts; and every event type the gateway records can be subscribed to."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edge import settings as settings_mod
from edge.models import now_ms
from edge.settings import Settings
from edge.store import EVENT_TYPES, Store
from sync.webhooks import payload, retry_delay_s, signature
from tests.store.helpers import other_org
from tests.sync.test_agent import wait_for
from tests.web.test_api_export import serving_once

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    """One request the receiver got, and the status it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on loopback that records every POST and answers from a plan (then 200)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.received: list[Received] = []
        self.plan: list[int] = []
        self.delay_s = delay_s
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with owner._lock:
                    status = owner.plan.pop(0) if owner.plan else 200
                    owner.received.append(Received({k.lower(): v for k, v in self.headers.items()},
                                                   body, status))  # fmt: skip
                    owner.in_flight += 1
                    owner.most_in_flight = max(owner.most_in_flight, owner.in_flight)
                time.sleep(owner.delay_s)
                with owner._lock:
                    owner.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def accepted(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def verified(secret: str, request: Received, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute the signature over "<t>.<raw body>" and check t."""
    fields = dict(part.split("=", 1) for part in request.headers["x-webhook-signature"].split(","))
    mac = hmac.new(secret.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256)
    fresh = abs(time.time() - int(fields["t"])) <= tolerance_s
    return hmac.compare_digest(mac.hexdigest(), fields["v1"]) and fresh


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def fast(tmp_path: Path, **webhooks: Any) -> Settings:
    """Settings that poll and retry in fractions of a second."""
    return settings_mod.load(
        None, {}, data_dir=str(tmp_path / "data"), http={"host": "127.0.0.1", "port": 0},
        webhooks={"retry_base_s": 0.05, "poll_s": 0.05, "timeout_s": 2, **webhooks},
    )  # fmt: skip


@pytest.fixture
def start(gateway_factory, tmp_path):
    """Start a gateway with fast webhook settings; it carries `headers` with webhooks.write."""

    def started(**webhooks: Any):
        gw = gateway_factory(settings_=fast(tmp_path, **webhooks))
        store = gw.runtime.store
        _, key = store.create_api_key(store.organization.id, "t", ["webhooks.write"])
        gw.headers = {"Authorization": f"Bearer {key}"}
        return gw

    return started


def subscribe(client, headers, url: str, events: list[str]) -> dict:
    made = client.post("/v1/webhooks", json={"url": url, "events": events}, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()["data"]


def log_of(client, headers, hook_id: str) -> list[dict]:
    answer = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def settled(client, headers, hook_id: str, count: int, status: str = "delivered") -> list[dict]:
    """The delivery log once `count` deliveries have reached `status`."""
    return wait_for(
        lambda: (
            (log := log_of(client, headers, hook_id))
            and sum(d["status"] == status for d in log) == count
            and log
        ),
        what=f"{count} deliveries {status}",
    )


def test_a_test_delivery_arrives_signed_with_the_secret_shown_at_creation(start, receiver):
    gw = start()
    hook = subscribe(gw.client, gw.headers, receiver.url, ["device.offline"])
    queued = gw.client.post(f"/v1/webhooks/{hook['id']}/test", headers=gw.headers)
    assert queued.status_code == 202, queued.text
    delivery = queued.json()["data"]
    [logged] = settled(gw.client, gw.headers, hook["id"], 1)
    assert logged["id"] == delivery["id"]
    assert (logged["attempts"], logged["last_status_code"]) == (1, 200)
    assert logged["delivered_at"] and logged["next_attempt_at"] is None

    [got] = receiver.received
    assert verified(hook["secret"], got)
    assert not verified("whsec_" + "x" * 43, got)
    assert got.headers["x-webhook-id"] == delivery["id"]
    assert got.headers["x-webhook-event"] == "webhook.test"
    assert got.headers["content-type"] == "application/json"
    body = got.json
    assert (body["id"], body["type"]) == (delivery["id"], "webhook.test")
    assert body["created_at"].endswith("Z") and body["data"]["data"] == {"webhook_id": hook["id"]}
    assert set(body["data"]) == {"id", "type", "severity", "message", "device_id", "ts", "data"}


def test_a_subscribed_event_is_delivered_and_others_are_not(start, receiver):
    gw = start()
    store = gw.runtime.store
    org = store.organization.id
    hook = subscribe(gw.client, gw.headers, receiver.url, ["device.offline"])
    store.record_event(org, "device.online", "info", "Meter answers again", "dev_meter")
    store.record_event(other_org(store), "device.offline", "warning", "Not ours", "dev_theirs")
    event = store.record_event(org, "device.offline", "warning", "Meter does not answer",
                               "dev_meter", {"reason": "timeout"})  # fmt: skip
    [logged] = settled(gw.client, gw.headers, hook["id"], 1)
    # One URL's deliveries go in order: anything made for the earlier events came first.
    [got] = receiver.received
    assert logged["event_id"] == event.id and logged["event_type"] == "device.offline"
    assert got.json["data"] == {
        "id": event.id, "type": "device.offline", "severity": "warning",
        "message": "Meter does not answer", "device_id": "dev_meter",
        "ts": got.json["data"]["ts"], "data": {"reason": "timeout"},
    }  # fmt: skip
    assert got.json["id"] == logged["id"] == got.headers["x-webhook-id"]
    assert verified(hook["secret"], got)


def test_a_failing_receiver_is_retried_until_it_accepts(start, receiver):
    gw = start()
    receiver.plan = [500, 503]
    hook = subscribe(gw.client, gw.headers, receiver.url, ["*"])
    gw.runtime.store.record_event(gw.runtime.store.organization.id, "alarm.raised", "critical",
                                  "Pump current above 40 A")  # fmt: skip
    [logged] = settled(gw.client, gw.headers, hook["id"], 1)
    assert (logged["attempts"], logged["last_status_code"], logged["last_error"]) == (3, 200, None)
    assert [r.status for r in receiver.received] == [500, 503, 200]
    assert len({r.body for r in receiver.received}) == 1
    assert {r.headers["x-webhook-id"] for r in receiver.received} == {logged["id"]}
    assert all(verified(hook["secret"], r) for r in receiver.received)


def test_a_delivery_nobody_accepts_fails_after_its_last_attempt(start):
    gw = start(max_attempts=3)
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    hook = subscribe(gw.client, gw.headers, f"http://127.0.0.1:{closed}/in", ["*"])
    gw.client.post(f"/v1/webhooks/{hook['id']}/test", headers=gw.headers)
    [logged] = settled(gw.client, gw.headers, hook["id"], 1, status="failed")
    assert (logged["attempts"], logged["last_status_code"]) == (3, None)
    assert "Connect" in logged["last_error"] and logged["next_attempt_at"] is None


def test_one_url_gets_its_deliveries_one_at_a_time_in_order(start):
    slow = Receiver(delay_s=0.1)
    try:
        gw = start()
        store = gw.runtime.store
        hook = subscribe(gw.client, gw.headers, slow.url, ["device.offline"])
        for n in range(6):
            store.record_event(store.organization.id, "device.offline", "warning", f"#{n}",
                               data={"n": n})  # fmt: skip
        settled(gw.client, gw.headers, hook["id"], 6)
        assert [r.json["data"]["data"]["n"] for r in slow.received] == list(range(6))
        assert slow.most_in_flight == 1
    finally:
        slow.close()


def test_deliveries_survive_restarts_and_a_delivered_one_is_never_sent_again(
    gateway_factory, tmp_path, receiver
):
    settings = fast(tmp_path, retry_base_s=0.2)
    receiver.plan = [500] * 1000
    with serving_once(settings) as (client, runtime):
        store = runtime.store
        _, key = store.create_api_key(store.organization.id, "t", ["webhooks.write"])
        headers = {"Authorization": f"Bearer {key}"}
        hook = subscribe(client, headers, receiver.url, ["device.offline"])
        first = store.record_event(store.organization.id, "device.offline", "warning", "first")
        wait_for(lambda: any(d["attempts"] for d in log_of(client, headers, hook["id"])),
                 what="a failed attempt")  # fmt: skip
    receiver.plan = []
    # Recorded while the gateway is down: the next one finds it past the watermark.
    store = Store.open(settings)
    second = store.record_event(store.organization.id, "device.offline", "warning", "second")
    store.close()
    with serving_once(settings) as (client, _):
        settled(client, headers, hook["id"], 2)
    assert [r.json["data"]["id"] for r in receiver.accepted()] == [first.id, second.id]

    again = gateway_factory(settings_=settings)
    third = again.runtime.store.record_event(again.runtime.store.organization.id,
                                             "device.offline", "warning", "third")  # fmt: skip
    log = settled(again.client, headers, hook["id"], 3)
    # In order per URL: had the delivered ones been sent again, they would have come first.
    assert [r.json["data"]["id"] for r in receiver.accepted()] == [first.id, second.id, third.id]
    assert [d["event_id"] for d in log] == [third.id, second.id, first.id]


def test_retries_back_off_from_the_base_with_jitter():
    rng = random.Random(7)
    delays = [retry_delay_s(n, 10.0, rng) for n in range(1, 10)]
    for got, want in zip(delays, (10, 30, 120, 600, 3600, 7200, 14400, 28800, 28800), strict=True):
        assert want * 0.8 <= got <= want * 1.2


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_raw_body(store):
    org = store.organization.id
    hook, secret = store.create_webhook(org, "http://127.0.0.1:9/in", ["*"])
    store.queue_webhook_test(org, hook.id)
    [due] = store.due_webhook_deliveries(now_ms() + 1)
    body = payload(due)
    assert payload(due) == body and json.loads(body)["id"] == due.id
    mac = hmac.new(secret.encode(), b"1716549600." + body, hashlib.sha256).hexdigest()
    assert signature(secret, body, 1716549600) == f"t=1716549600,v1={mac}"


def test_finished_deliveries_are_pruned_and_pending_ones_kept(store):
    org = store.organization.id
    hook, _ = store.create_webhook(org, "http://127.0.0.1:9/in", ["*"])
    done = store.queue_webhook_test(org, hook.id)
    store.webhook_attempted(done.id, "delivered", 200)
    waiting = store.queue_webhook_test(org, hook.id)
    assert store.prune_webhook_deliveries(now_ms() + 1) == 1
    assert [d.id for d in store.webhook_deliveries(org, hook.id).items] == [waiting.id]


def _recorded_types() -> set[str]:
    """Event types passed as literals to the functions that record events, anywhere."""
    recorders = {"record_event", "event_row", "_event", "_record"}
    found = set()
    for package in ("edge", "drivers", "web", "sync"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                names = {getattr(n, "attr", getattr(n, "id", None))
                         for n in (node.func, *node.args[:1])}  # fmt: skip
                if names & recorders:
                    found |= {a.value for a in node.args if isinstance(a, ast.Constant)
                              and isinstance(a.value, str)
                              and re.fullmatch(r"[a-z]+\.[a-z_]+", a.value)}  # fmt: skip
    return found


def test_every_event_type_the_gateway_records_can_be_subscribed_to():
    recorded = _recorded_types()
    assert {"device.offline", "sync.uplink_lost", "store.disk_full"} <= recorded
    assert recorded - EVENT_TYPES == set()
