"""Run virtual BLE sensors behind an HCI transport: `python -m drivers.ble.simulator --hci
tcp-server:127.0.0.1:9100` serves a virtual controller that a gateway (transport bumble-virtual,
adapter tcp-client:127.0.0.1:9100) scans with, as it would a dongle."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport import open_transport

from drivers.ble.simulator.sensors import DEMO_SENSORS, GattSensor, VirtualField


async def _main(hci: str, update_s: float, gatt: list[str]) -> None:
    link = LocalLink()
    transport = await open_transport(hci)
    Controller("gateway", host_source=transport.source, host_sink=transport.sink, link=link)
    field = VirtualField(link, DEMO_SENSORS, [GattSensor(f"Probe {a[-2:]}", a) for a in gatt],
                         update_s=update_s)  # fmt: skip
    await field.start()
    print(f"listening on {hci}", flush=True)
    try:
        await field.run()
    finally:
        await transport.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m drivers.ble.simulator")
    parser.add_argument("--hci", required=True, help="Bumble transport, e.g. tcp-server:_:9100")
    parser.add_argument("--update-s", type=float, default=2.0, help="seconds between new values")
    parser.add_argument("--gatt", action="append", default=[], help="address of a GATT sensor")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.hci, args.update_s, args.gatt))
    sys.exit(0)


if __name__ == "__main__":
    main()
