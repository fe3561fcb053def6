"""Killing a writing process at random moments loses nothing it acknowledged."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from edge import settings as settings_mod
from edge.store import Store

KILLS = 20


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_reading(tmp_path):
    data = tmp_path / "data"
    rng = random.Random(os.environ.get("CRASH_SEED", "edge"))
    acked: dict[int, tuple[int, int]] = {}  # first_seq -> (batch, count)
    high = 0
    for run in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store.appender", str(data), str(run)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        # The random moment is counted from the first acknowledgement, so a slow start (a
        # loaded machine) does not end a run before it has written anything.
        first_ack = child.stdout.readline()
        time.sleep(rng.uniform(0.02, 0.6))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        lines = (first_ack + out).split("\n")[:-1]  # the last piece may be a half-written line
        this_run = []
        for line in lines:
            _, batch, first, count = line.split()
            acked[int(first)] = (int(batch), int(count))
            this_run.append(int(first))
        assert this_run, f"run {run} acknowledged nothing before the kill"
        assert min(this_run) > high, "a sequence number was reused after a crash"
        high = max(f + acked[f][1] - 1 for f in this_run)

        store = Store.open(settings_mod.load(None, {}, data_dir=str(data)))
        try:
            assert store.integrity_check() == ["ok"]
            values = {}
            after = 0
            while batch_items := store.outbox_batch(after, 50_000):
                values.update((item.seq, item.value) for item in batch_items)
                after = batch_items[-1].seq
        finally:
            store.close()
        for first, (batch, count) in acked.items():
            for j in range(count):
                assert values.get(first + j) == float(batch * 1000 + j), (
                    f"run {run}: acknowledged reading {first + j} lost or changed"
                )
