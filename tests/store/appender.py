"""A process that appends readings from several threads and prints each acknowledgement.

`python -m tests.store.appender DATA_DIR RUN` prints `READY`, then one line
`ACK <batch> <first_seq> <count>` after each append returns; batch b's j-th
reading has the value b * 1000 + j, so the parent can check every value.
"""

from __future__ import annotations

import random
import sys
import threading

from edge import settings as settings_mod
from edge.models import Device, Point, Reading
from edge.store import Store

POINTS = 20
THREADS = 4


def main(data_dir: str, run: int) -> None:
    store = Store.open(settings_mod.load(None, {}, data_dir=data_dir))
    org = store.organization.id
    device = next(iter(store.devices(org)), None)
    if device is None:
        points = [Point(0, "", org, "", f"p{i}") for i in range(POINTS)]
        device = store.create_device(Device(id="", org_id=org, name="crash", type="http"), None,
                                     points)  # fmt: skip
    points = [p.id for p in store.points(org, device.id)]
    lock = threading.Lock()

    def appender(thread: int) -> None:
        rng = random.Random(run * 100 + thread)
        k = 0
        while True:
            batch = (run * 10 + thread) * 100_000 + k
            k += 1
            size = rng.randint(1, 400)
            readings = [
                Reading(points[j % POINTS], batch * 1000 + j, float(batch * 1000 + j))
                for j in range(size)
            ]
            seqs = store.append_readings(readings)
            with lock:
                sys.stdout.write(f"ACK {batch} {seqs.start} {len(seqs)}\n")
                sys.stdout.flush()

    sys.stdout.write("READY\n")
    sys.stdout.flush()
    for t in range(THREADS):
        threading.Thread(target=appender, args=(t,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
