"""The sync agent over a faulty uplink: a downstream gateway in this process pushes through a
fault proxy to an upstream gateway process, whose database is then read reading by reading."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest

from edge import __version__
from edge import settings as settings_mod
from edge.store import Store
from tests.conftest import RunningGateway
from tests.sync.conftest import GENEROUS_API, UpstreamProcess
from tests.sync.proxy import FaultProxy, Seen

T = TypeVar("T")

INGEST: Final = "/v1/telemetry/ingest"
METRIC: Final = "power_kw"
# Readings one second apart from yesterday on: well inside retention on both gateways.
T0_MS: Final = (time.time_ns() // 1_000_000_000 - 86_400) * 1000
# Wider than any test's readings, for reading them all back.
WINDOW_MS: Final = (T0_MS - 86_400_000, T0_MS + 30 * 86_400_000)
# The largest page the store hands out.
PAGE: Final = 10_000

Held = tuple[str, str, int, float | None]


def wait_for(check: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` and its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} ({value!r})")
        time.sleep(0.05)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def readings(device_id: str, start: int, count: int) -> list[dict[str, Any]]:
    """Readings `start`.. of a device: reading i is at T0 + i s and has the value i."""
    return [
        {"device_id": device_id, "metric": METRIC, "ts": iso(T0_MS + i * 1000), "value": float(i)}
        for i in range(start, start + count)
    ]


def expected(device_id: str, start: int, count: int) -> list[Held]:
    """What `held_readings` returns for `readings(device_id, start, count)`."""
    return [(device_id, METRIC, T0_MS + i * 1000, float(i)) for i in range(start, start + count)]


def held_readings(data_dir: Path, organization: str) -> list[Held]:
    """Every reading in a stopped gateway's database, duplicates included, as (device id, metric,
    ts ms, value) sorted."""
    settings = settings_mod.load(
        None, {}, data_dir=str(data_dir), gateway={"organization": organization}
    )
    store = Store.open(settings)
    try:
        org = store.organization.id
        found: list[Held] = []
        for point in store.points(org):
            cursor = None
            while True:
                page = store.range(org, point.id, *WINDOW_MS, cursor, PAGE)
                found += [(point.device_id, point.key, r.ts_ms, r.value) for r in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
    finally:
        store.close()
    return sorted(found, key=lambda r: (r[0], r[1], r[2]))


def assert_exactly_once(held: list[Held], wanted: list[Held]) -> None:
    """`held` is `wanted`, each reading once: no duplicate, no loss, no changed value."""
    twice = [key for key, n in Counter(r[:3] for r in held).items() if n > 1]
    assert not twice, f"{len(twice)} readings held more than once, e.g. {twice[:3]}"
    missing = set(wanted) - set(held)
    assert not missing, f"{len(missing)} of {len(wanted)} readings lost, e.g. {sorted(missing)[:3]}"
    extra = set(held) - set(wanted)
    assert not extra, f"{len(extra)} readings nobody sent, e.g. {sorted(extra)[:3]}"
    assert len(held) == len(wanted)


def upstream_held(upstream: UpstreamProcess) -> list[Held]:
    """Stop the upstream and read back every reading it holds."""
    assert upstream.stop() == 0, upstream.stderr_tail()
    return held_readings(upstream.data_dir, "Upstream")


def upstream_count(upstream: UpstreamProcess, device_id: str) -> int:
    """How many readings of the device the running upstream serves, through its own API."""
    params = {"device_id": device_id, "metric": METRIC, "from": iso(WINDOW_MS[0]),
              "to": iso(T0_MS + 20 * 86_400_000), "limit": 500}  # fmt: skip
    count = 0
    while True:
        page = upstream.client.get("/v1/telemetry", params=params)
        assert page.status_code == 200, page.text
        count += len(page.json()["data"])
        params["cursor"] = page.json()["meta"]["pagination"]["next"]
        if not params["cursor"]:
            return count


def ingests(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if (s.method, s.target) == ("POST", INGEST)]


@dataclass
class Downstream:
    """A gateway in this process syncing through the proxy, with one HTTP device to feed."""

    gateway: RunningGateway
    headers: dict[str, str]
    device_id: str

    @property
    def store(self) -> Store:
        return self.gateway.runtime.store

    def ingest(self, start: int, count: int) -> None:
        """Ingest readings `start`.. 1,000 per request, as a LAN client would."""
        for first in range(start, start + count, 1000):
            body = {"readings": readings(self.device_id, first, min(1000, start + count - first))}
            answer = self.gateway.client.post(INGEST, json=body, headers=self.headers)
            assert answer.status_code == 200, answer.text

    def status(self) -> dict[str, Any]:
        answer = self.gateway.client.get("/v1/admin/sync", headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    def agent_status(self) -> dict[str, Any]:
        """The agent's own status, as the status page and `/admin/sync` take it."""
        return self.gateway.runtime.status_sources["sync"]()

    def drained(self) -> bool:
        return self.store.backlog()[0] == 0 and not self.store.sync_pending()

    def events(self, type_: str) -> list[str]:
        return [e.message for e in self.store.events(self.store.organization.id) if e.type == type_]


@pytest.fixture
def uplink(upstream_process, fault_proxy) -> tuple[UpstreamProcess, FaultProxy]:
    """An upstream gateway process and the proxy standing for the uplink to it."""
    upstream = upstream_process()
    return upstream, fault_proxy(upstream.url)


@pytest.fixture
def downstream(gateway_factory, tmp_path, uplink) -> Callable[..., Downstream]:
    """Start the downstream with `[sync]` settings over quick defaults; it has pulled once, so
    the only requests it sends afterwards are its pushes (the next pull is minutes away)."""
    upstream, proxy = uplink

    def start(**sync: Any) -> Downstream:
        quick = {"upstream_url": f"{proxy.url}/v1", "api_key": upstream.key, "idle_s": 0.05,
                 "pull_interval_s": 600.0, "timeout_s": 1.0, "backoff_max_s": 1.0}  # fmt: skip
        settings = settings_mod.load(
            None,
            {},
            data_dir=str(tmp_path / "downstream"),
            http={"host": "127.0.0.1", "port": 0},
            gateway={"organization": "Downstream"},
            api=dict(GENEROUS_API),
            sync={**quick, **sync},
        )
        gateway = gateway_factory(settings_=settings)
        store = gateway.runtime.store
        _, key = store.create_api_key(store.organization.id, "lan client", ["admin"])
        headers = {"Authorization": f"Bearer {key}"}
        made = gateway.client.post(
            "/v1/devices", json={"name": "Incomer", "type": "http"}, headers=headers
        )
        assert made.status_code == 201, made.text
        down = Downstream(gateway, headers, made.json()["data"]["id"])
        wait_for(lambda: down.status()["last_pull_at"], "the downstream's first pull")
        return down

    return start


def registered(down: Downstream) -> int:
    """Push a first reading, so the device is registered upstream; returns how many were sent."""
    down.ingest(0, 1)
    wait_for(lambda: down.status()["readings_sent"] == 1, "the first reading to be pushed")
    return 1


def test_429_retry_after_is_waited_out_then_every_reading_arrives_once(uplink, downstream):
    upstream, proxy = uplink
    # One batch at a time, so each 429 is answered to the batch sent after the previous wait.
    down = downstream(batch_size=250, in_flight=1)
    sent = registered(down)
    mark = len(proxy.requests)
    proxy.answer(429, {"Retry-After": "1"}, times=3)
    began = time.monotonic()
    down.ingest(sent, 999)
    wait_for(down.drained, "the backlog to drain")
    elapsed = time.monotonic() - began

    seen = proxy.requests[mark:]
    assert ingests(seen) == seen, "only pushes were expected"
    limited = [s for s in seen if s.fate == "answered"]
    assert len(limited) == 3
    retry = next(s for s in seen if s.fate == "forwarded" and s.at > limited[-1].at)
    gaps = [b.at - a.at for a, b in pairwise([*limited, retry])]
    assert min(gaps) >= 0.98, f"a retry came sooner than Retry-After allows: gaps {gaps}"
    assert elapsed >= 3.0
    # The refused batch goes again under the same key: it is the same batch.
    assert len({s.header("Idempotency-Key") for s in [*limited, retry]}) == 1
    assert down.status()["readings_sent"] == 1000
    assert_exactly_once(upstream_held(upstream), expected(down.device_id, 0, 1000))


OUTAGE_S: Final = 4.0
# Backoff rounds in OUTAGE_S: the pauses are uniform in [0, 1] then [0, 2] (backoff_max_s), so
# 15 rounds in 4 s has odds of about one in a million; each round sends at most `in_flight`
# requests. An agent that does not back off sends hundreds.
MAX_ROUNDS: Final = 15


def test_503s_are_backed_off_reported_as_an_outage_then_every_reading_arrives_once(
    uplink, downstream
):
    upstream, proxy = uplink
    in_flight = 4
    down = downstream(batch_size=500, in_flight=in_flight, backoff_max_s=2.0)
    sent = registered(down)
    mark = len(proxy.requests)
    busy = {"error": {"code": "unavailable", "message": "down for maintenance"}}
    proxy.answer(503, body=busy, times=None)
    began = time.monotonic()
    down.ingest(sent, 4999)

    offline = wait_for(lambda: (s := down.status())["state"] == "offline" and s, "offline")
    assert offline["offline_since_at"] and offline["last_error"], offline
    # The message as the status page shows it (see the next test for /admin/sync's own).
    assert "503 down for maintenance" in down.agent_status()["last_error"]
    time.sleep(max(0.0, began + OUTAGE_S - time.monotonic()))
    proxy.clear_answers()
    outage = [s for s in proxy.requests[mark:] if s.fate == "answered"]
    assert ingests(outage) == outage
    assert in_flight < len(outage) <= in_flight * MAX_ROUNDS, f"{len(outage)} in {OUTAGE_S} s"

    wait_for(down.drained, "the backlog to drain")
    online = wait_for(lambda: (s := down.status())["state"] == "online" and s, "online")
    assert online["offline_since_at"] is None and online["readings_sent"] == 5000
    restored = wait_for(lambda: down.events("sync.uplink_restored"), "uplink_restored")
    assert len(restored) == 1 and "reachable again" in restored[0]
    lost = down.events("sync.uplink_lost")
    assert len(lost) == 1 and "503 down for maintenance" in lost[0]
    assert_exactly_once(upstream_held(upstream), expected(down.device_id, 0, 5000))


def test_admin_sync_shows_the_last_error_message(uplink, downstream):
    _, proxy = uplink
    down = downstream()
    proxy.mode = "refuse"
    down.ingest(0, 1)
    offline = wait_for(lambda: (s := down.status())["state"] == "offline" and s, "offline")
    assert "ConnectError" in down.agent_status()["last_error"]
    assert "ConnectError" in offline["last_error"], offline


def fated(proxy: FaultProxy, mark: int, fate: str) -> int:
    return len([s for s in proxy.requests[mark:] if s.fate == fate])


def test_resets_timeouts_and_lost_answers_neither_lose_nor_duplicate_a_reading(uplink, downstream):
    upstream, proxy = uplink
    down = downstream(batch_size=200, in_flight=4, timeout_s=1.0)
    fed = registered(down)
    for mode, fate in (("reset", "reset"), ("blackhole", "blackholed")):
        proxy.mode = mode
        mark = len(proxy.requests)
        down.ingest(fed, 1000)
        fed += 1000
        wait_for(lambda: fated(proxy, mark, fate) >= 6, f"six {fate} pushes")  # noqa: B023
    # Answers lost on the way back: each push reaches the upstream after 0.75 s and is stored
    # there, and its answer would reach the downstream after 1.5 s, past its 1 s timeout.
    mark = len(proxy.requests)
    proxy.mode = "pass"
    proxy.delay_s = 0.75
    down.ingest(fed, 1000)
    fed += 1000

    def resent() -> set[str | None]:
        keys = Counter(s.header("Idempotency-Key") for s in ingests(proxy.requests[mark:]))
        return {key for key, n in keys.items() if n >= 2}

    wait_for(resent, "a push stored upstream to be sent again")
    acknowledged = down.status()["readings_sent"]
    stored = upstream_count(upstream, down.device_id)
    assert stored > acknowledged, "the upstream should hold readings whose answer was lost"
    proxy.delay_s = 0.0
    wait_for(down.drained, "the backlog to drain")
    assert down.status()["readings_sent"] == fed
    assert_exactly_once(upstream_held(upstream), expected(down.device_id, 0, fed))


CATCH_UP: Final = 100_000


def test_a_long_outage_catches_up_gzipped_and_exactly_once(uplink, downstream):
    upstream, proxy = uplink
    down = downstream(backoff_max_s=2.0, timeout_s=10.0)
    proxy.mode = "refuse"
    down.ingest(0, CATCH_UP)
    assert down.store.backlog()[0] == CATCH_UP
    wait_for(lambda: down.status()["state"] == "offline", "offline")
    proxy.mode = "pass"
    wait_for(down.drained, "the catch-up", timeout=60)

    pushes = ingests(proxy.requests)
    assert pushes and all(s.fate == "forwarded" for s in pushes)
    assert [s for s in pushes if s.header("Content-Encoding") != "gzip"] == []
    per_reading = proxy.bytes_forwarded_up / CATCH_UP
    assert per_reading < 20, f"{per_reading:.1f} bytes per reading on the wire"
    assert_exactly_once(upstream_held(upstream), expected(down.device_id, 0, CATCH_UP))


def test_the_upstream_sees_the_gateways_user_agent_on_every_request(uplink, downstream):
    upstream, proxy = uplink
    down = downstream()
    down.ingest(0, 10)
    wait_for(down.drained, "the backlog to drain")
    agent = f"edge-gateway/{__version__} ({down.store.gateway_id})"
    assert re.fullmatch(r"edge-gateway/\d+\.\d+\.\d+\S* \(gw_\w+\)", agent)
    seen = proxy.requests
    kinds = {(s.method, re.sub(r"/dev_\w+", "/{id}", s.target.split("?")[0])) for s in seen}
    assert {("GET", "/v1/devices"), ("GET", "/v1/devices/{id}"), ("POST", "/v1/devices"),
            ("POST", INGEST)} <= kinds  # fmt: skip
    assert {s.header("User-Agent") for s in seen} == {agent}
    assert {s.header("Authorization") for s in seen} == {f"Bearer {upstream.key}"}
    assert_exactly_once(upstream_held(upstream), expected(down.device_id, 0, 10))
