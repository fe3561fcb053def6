"""The sync agent killed mid-push: a downstream gateway process, fed readings at a steady rate,
is SIGKILLed and restarted again and again while it pushes through a proxy to an upstream
gateway process; afterwards both databases are read back reading by reading."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from typing import Any, Final

import httpx
import pytest

from edge import settings as settings_mod
from edge.store import Store
from sync.agent import BACKLOG_EVERY_S
from tests.sync.conftest import UpstreamProcess
from tests.sync.test_faults import (
    INGEST,
    assert_exactly_once,
    expected,
    held_readings,
    ingests,
    readings,
    upstream_held,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

KILLS: Final = 20
# The downstream lives this long (uniformly drawn) between becoming ready and its SIGKILL.
LIFE_S: Final = (0.1, 1.5)
# Set to replay a run: its seed is printed at the start of each run.
SEED_VARIABLE: Final = "SYNC_CRASH_SEED"
# Ingested while the uplink is down, so the first lives already have a backlog to push.
PREFILL: Final = 30_000
# The steady feed: FEED_SIZE readings every FEED_EVERY_S while the downstream is up.
FEED_SIZE: Final = 150
FEED_EVERY_S: Final = 0.1
# Small batches, several in flight, each crossing a slow link: a kill nearly always finds
# batches recorded, sent and not yet acknowledged.
SYNC: Final = {"batch_size": 100, "in_flight": 4, "idle_s": 0.05, "pull_interval_s": 600.0,
               "timeout_s": 2.0, "backoff_max_s": 1.0}  # fmt: skip
LINK_DELAY_S: Final = 0.02
# A fed request may wait this long for the downstream to come back before the test gives up.
FEED_PATIENCE_S: Final = 60.0


class Feeder:
    """Ingests readings into the downstream at a steady rate from its own thread, as a LAN
    client would: each request is sent again, with the same Idempotency-Key, until the
    downstream acknowledges it (200), so readings 0 .. `acknowledged` are the acknowledged ones.
    """

    def __init__(self, down: UpstreamProcess, device_id: str, start: int) -> None:
        self._down = down
        self._device_id = device_id
        self.acknowledged = start
        self.attempts_failed = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._give_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crash-feeder")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the request under way (acknowledged) and stop."""
        self._stop.set()
        self._thread.join(FEED_PATIENCE_S + 10)
        assert not self._thread.is_alive(), "the feeder is stuck"
        assert self.error is None, self.error

    def abandon(self) -> None:
        """Stop at once, the request under way acknowledged or not (the test failed anyway)."""
        self._give_up.set()
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self._down.key}"}
        with httpx.Client(base_url=self._down.url, headers=headers, timeout=5) as client:
            while not self._stop.is_set() and self.error is None:
                began = time.monotonic()
                self._post(client, self.acknowledged)
                self._stop.wait(max(0.0, FEED_EVERY_S - (time.monotonic() - began)))

    def _post(self, client: httpx.Client, first: int) -> None:
        body = {"readings": readings(self._device_id, first, FEED_SIZE)}
        key = {"Idempotency-Key": f"feed-{first}"}
        deadline = time.monotonic() + FEED_PATIENCE_S
        while time.monotonic() < deadline and not self._give_up.is_set():
            try:
                answer = client.post(INGEST, json=body, headers=key)
            except httpx.TransportError:
                answer = None  # killed, or not back yet
            if answer is not None and answer.status_code == 200:
                self.acknowledged = first + FEED_SIZE
                return
            if answer is not None and answer.status_code != 409:  # 409: still in progress
                self.error = f"ingest of {first}.. answered {answer.status_code}: {answer.text}"
                return
            self.attempts_failed += 1
            self._give_up.wait(0.05)
        if not self._give_up.is_set():
            self.error = f"ingest of {first}.. not acknowledged within {FEED_PATIENCE_S:g} s"


def unsynced(down: UpstreamProcess) -> tuple[tuple[int, int | None], list[Any], int]:
    """A stopped downstream's backlog, batches still recorded, and quarantined readings."""
    settings = settings_mod.load(
        None, {}, data_dir=str(down.data_dir), gateway={"organization": "Downstream"}
    )
    store = Store.open(settings)
    try:
        return store.backlog(), store.sync_pending(), store.quarantine_count()
    finally:
        store.close()


def test_sigkills_during_the_push_lose_and_duplicate_no_acknowledged_reading(
    upstream_process, fault_proxy
):
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**32))
    print(f"crash seed {seed} (replay with {SEED_VARIABLE}={seed})")
    rng = random.Random(seed)
    upstream = upstream_process()
    proxy = fault_proxy(upstream.url)
    proxy.delay_s = LINK_DELAY_S
    proxy.mode = "refuse"
    # The downstream is the same kind of process: `edge run --config` on its own data dir.
    down = upstream_process(
        gateway={"organization": "Downstream"},
        store={"synchronous": "full"},
        sync={"upstream_url": f"{proxy.url}/v1", "api_key": upstream.key, **SYNC},
    )
    made = down.client.post("/v1/devices", json={"name": "Incomer", "type": "http"})
    assert made.status_code == 201, made.text
    device_id = made.json()["data"]["id"]
    for first in range(0, PREFILL, 1000):
        answer = down.client.post(INGEST, json={"readings": readings(device_id, first, 1000)})
        assert answer.status_code == 200, answer.text
    proxy.mode = "pass"

    feeder = Feeder(down, device_id, PREFILL)
    feeder.start()
    pushed_per_life = []
    try:
        for _ in range(KILLS):
            mark = len(proxy.requests)
            time.sleep(rng.uniform(*LIFE_S))
            assert down.kill() == -9
            pushed_per_life.append(len(ingests(proxy.requests[mark:])))
            down.start()
    except BaseException:
        feeder.abandon()
        raise
    feeder.stop()
    fed_until = time.monotonic()
    print(f"fed {feeder.acknowledged} readings; {feeder.attempts_failed} feed attempts failed; "
          f"pushes per life: {pushed_per_life}")  # fmt: skip

    def drained() -> bool:
        status = down.client.get("/v1/admin/sync").json()["data"]
        # The backlog count is refreshed every BACKLOG_EVERY_S, between rounds that may each
        # wait out a timeout: only a count taken after the last feed says the push is done.
        fresh = time.monotonic() - fed_until > BACKLOG_EVERY_S + SYNC["timeout_s"] + 1
        return fresh and status["backlog_readings"] == 0

    wait_for(drained, "the downstream to push its backlog", timeout=90)
    assert down.stop() == 0, down.stderr_tail()

    assert unsynced(down) == ((0, None), [], 0)
    wanted = expected(device_id, 0, feeder.acknowledged)
    here = held_readings(down.data_dir, "Downstream")
    assert_exactly_once(here, wanted)
    assert_exactly_once(upstream_held(upstream), wanted)

    resent = [k for k, n in Counter(s.header("Idempotency-Key") for s in
              ingests(proxy.requests)).items() if n > 1]  # fmt: skip
    print(f"{len(resent)} batches were sent more than once")
    # The kills did land while batches were under way, not while the downstream idled.
    assert sum(1 for n in pushed_per_life if n) >= KILLS * 3 // 4, pushed_per_life
    assert resent, "no batch was ever sent twice: no kill caught a batch under way"
