"""/healthz, /readyz and /metrics over real HTTP from a running gateway."""

from __future__ import annotations

import re
import time

from edge import settings as settings_mod
from edge.models import Reading
from tests.conftest import fill
from tests.store.helpers import make_points


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} missing from /metrics"
    return float(match[1])


def test_a_running_demo_answers_health_ready_and_metrics(gateway_factory):
    gw = gateway_factory(demo=True)
    assert gw.client.get("/healthz").json() == {"status": "ok"}
    ready = gw.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    deadline = time.monotonic() + 10
    while True:
        response = gw.client.get("/metrics")
        written = metric(response.text, "edge_readings_written_total")
        if written >= 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.headers["content-type"].startswith("text/plain")
    assert written >= 200, "the demo plant's readings did not arrive"
    text = response.text
    assert metric(text, "edge_writer_queue_depth") >= 0
    assert metric(text, "edge_writer_commit_seconds_count") >= 2
    assert metric(text, 'edge_database_bytes{file="db"}') > 0
    assert metric(text, 'edge_task_restarts_total{task="http"}') == 0
    assert metric(text, 'edge_task_running{task="modbus"}') == 1
    assert metric(text, "edge_disk_full") == 0


def test_readyz_turns_503_while_the_disk_is_full_and_back_after(gateway_factory, small_disk):
    settings = settings_mod.load(
        None,
        {},
        data_dir=str(small_disk / "data"),
        http={"host": "127.0.0.1", "port": 0},
        writer={"retry_s": 0.05},
    )
    gw = gateway_factory(settings_=settings)
    store = gw.runtime.store
    (point,) = make_points(store, 1)
    ballast = fill(small_disk)
    futures = []
    t = 0
    while not store.disk_full:
        futures.append(store._writer.submit_readings([Reading(point.id, t, 1.0)] * 50))
        t += 1
        time.sleep(0.002)
        assert t < 20_000, "the disk never filled"
    ready = gw.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "reason": "the disk refuses writes"}
    assert metric(gw.client.get("/metrics").text, "edge_disk_full") == 1
    ballast.unlink()
    for future in futures:
        future.result(20)
    assert gw.client.get("/readyz").status_code == 200


def test_the_listening_socket_says_tcp_so_asyncio_turns_nagle_off_for_each_connection():
    import socket

    from edge import gateway

    sock = gateway.bind("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY on accepted sockets only for proto IPPROTO_TCP; without
        # it every keep-alive response waited ~40 ms for the client's delayed ACK.
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
