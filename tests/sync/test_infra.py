"""The sync tests' own parts work: the upstream gateway process and each fault of the proxy."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.sync.proxy import Seen


@pytest.fixture
def link(upstream_process, fault_proxy):
    """An upstream process, a proxy in front of it, and a client going through the proxy."""
    upstream = upstream_process()
    proxy = fault_proxy(upstream.url)
    client = httpx.Client(
        base_url=proxy.url, headers={"Authorization": f"Bearer {upstream.key}"}, timeout=10
    )
    yield upstream, proxy, client
    client.close()


def test_upstream_answers_me_with_its_key_through_the_proxy(link):
    upstream, proxy, client = link
    me = client.get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["data"]["scopes"] == ["admin"]
    assert me.json()["data"]["organization_name"] == "Upstream"
    assert upstream.client.get("/v1/me").json()["data"] == me.json()["data"]
    assert proxy.requests == [Seen("GET", "/v1/me", "forwarded")]
    assert upstream.pid is not None and upstream.api_url == f"{upstream.url}/v1"


def test_refuse_makes_connects_fail_until_pass_again(link):
    _, proxy, client = link
    assert client.get("/v1/me").status_code == 200  # leaves a pooled connection to be cut
    proxy.mode = "refuse"
    with pytest.raises(httpx.ConnectError):
        client.get("/v1/me")
    proxy.mode = "pass"
    assert client.get("/v1/me").status_code == 200
    assert proxy.connections == 2


def test_reset_cuts_the_request_with_a_read_error(link):
    _, proxy, client = link
    proxy.mode = "reset"
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get("/v1/me")
    assert proxy.requests[-1].fate == "reset"
    proxy.mode = "pass"
    assert client.get("/v1/me").status_code == 200


def test_blackhole_makes_the_client_time_out(link):
    _, proxy, client = link
    proxy.mode = "blackhole"
    with pytest.raises(httpx.ReadTimeout):
        client.get("/v1/me", timeout=0.5)
    assert proxy.requests[-1].fate == "blackholed"
    proxy.mode = "pass"
    assert client.get("/v1/me").status_code == 200


def test_injected_503s_are_given_on_a_kept_alive_connection_then_requests_go_through(link):
    _, proxy, client = link
    assert client.get("/v1/me").status_code == 200
    proxy.answer(503, body={"error": {"code": "unavailable"}}, times=2)
    codes = [client.get("/v1/me").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert proxy.requests_answered == 2
    assert [seen.fate for seen in proxy.requests] == [
        "forwarded", "answered", "answered", "forwarded"
    ]  # fmt: skip
    assert proxy.connections == 1


def test_injected_429_carries_retry_after(link):
    _, proxy, client = link
    proxy.answer(429, {"Retry-After": "1"})
    limited = client.get("/v1/me")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
    assert client.get("/v1/me").status_code == 200
    assert proxy.requests_answered == 1


def test_delay_is_added_each_way(link):
    _, proxy, client = link
    assert client.get("/v1/me").status_code == 200
    proxy.delay_s = 0.3
    began = time.monotonic()
    assert client.get("/v1/me").status_code == 200
    assert time.monotonic() - began >= 0.6


def test_bytes_forwarded_up_count_the_posted_body(link):
    upstream, proxy, client = link
    device = upstream.client.post("/v1/devices", json={"name": "Meter", "type": "http"})
    assert device.status_code == 201, device.text
    readings = [
        {"device_id": device.json()["data"]["id"], "metric": "power_kw",
         "ts": f"2026-05-24T10:00:{i:02d}Z", "value": float(i)}
        for i in range(60)
    ]  # fmt: skip
    body = json.dumps({"readings": readings}).encode()
    before = proxy.bytes_forwarded_up
    pushed = client.post(
        "/v1/telemetry/ingest", content=body, headers={"Content-Type": "application/json"}
    )
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["data"] == {"accepted": 60}
    assert proxy.bytes_forwarded_up - before >= len(body)


def test_upstream_keeps_port_key_and_data_across_a_kill_and_a_restart(link):
    upstream, _, client = link
    device = upstream.client.post("/v1/devices", json={"name": "Meter", "type": "http"})
    assert device.status_code == 201, device.text
    port, pid = upstream.port, upstream.pid
    assert upstream.kill() == -9
    with pytest.raises(httpx.TransportError):
        client.get("/v1/me")
    upstream.restart()
    assert (upstream.port, upstream.running) == (port, True) and upstream.pid != pid
    listed = client.get("/v1/devices")
    assert listed.status_code == 200, listed.text
    assert [d["name"] for d in listed.json()["data"]] == ["Meter"]
