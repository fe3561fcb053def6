"""The demo plant: simulated meters and a PLC in their own processes, and their devices.

`edge demo` shows live Modbus data with nothing attached: each simulator is a
separate process serving one profile on a loopback port, exactly as a meter
behind a serial device server would answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from dataclasses import dataclass
from typing import Final

from drivers.modbus.devices import add_device
from edge.store import Store
from edge.tasks import finish

log = logging.getLogger(__name__)

# (device name, profile) of each simulated machine.
MACHINES: Final = (
    ("Main incomer", "eastron_sdm630"),
    ("HVAC feeder", "carlo_gavazzi_em24"),
    ("Lighting board", "schneider_iem3000"),
    ("Pump station PLC", "generic_plc"),
)
# The pump station's movements: its inlet flow walks around 12 m³/h; above 13.5 it is pumping.
PUMP_MOVEMENT: Final = {"metric": "inlet_flow", "threshold": 13.5, "hysteresis": 1.0,
                        "min_duration_s": 5.0, "baseline_days": 30}  # fmt: skip
MOVING: Final = "Pump station PLC"
# A simulator process prints its "listening on" line well within this.
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True, slots=True)
class _Machine:
    name: str
    profile: str
    port: int


class DemoPlant:
    """Owns the simulator processes; `prepare` points the store's demo devices at them."""

    def __init__(self, store: Store, org_id: str) -> None:
        self._store = store
        self._org_id = org_id
        self._machines = [_Machine(name, profile, _free_port()) for name, profile in MACHINES]
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    def prepare(self) -> None:
        """Create the demo devices, or point existing ones at this run's ports."""
        existing = {d.name: d for d in self._store.devices(self._org_id)}
        for machine in self._machines:
            connection = {"host": "127.0.0.1", "port": machine.port, "unit_id": 1}
            device = existing.get(machine.name)
            if device is None:
                device = add_device(
                    self._store, self._org_id, name=machine.name, transport="modbus_tcp",
                    connection=connection, profile=machine.profile,
                )  # fmt: skip
            elif device.connection != connection:
                self._store.update_device(self._org_id, device.id, connection=connection)
            if machine.name == MOVING and device.movement is None:
                self._store.update_device(self._org_id, device.id, movement=PUMP_MOVEMENT)

    async def start(self) -> None:
        """Start every simulator and wait until each listens."""
        for machine in self._machines:
            if machine.name not in self._processes:
                await self._spawn(machine)

    async def run(self) -> None:
        """Keep the simulators running until cancelled; if one dies, stop the rest and raise."""
        try:
            await self.start()
            log.info("demo plant: %d simulated machines running", len(self._processes))
            waits = [asyncio.create_task(p.wait()) for p in self._processes.values()]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            raise RuntimeError("a demo simulator exited")
        finally:
            await finish(self.stop())

    async def stop(self) -> None:
        """Stop every simulator (SIGTERM, then SIGKILL after a grace period)."""
        processes = list(self._processes.values())
        self._processes.clear()
        await self._stop(processes)

    async def _spawn(self, machine: _Machine) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "drivers.modbus.simulator",
            "--port", str(machine.port), "--unit", f"1={machine.profile}",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # Held before the first await, so a stop during start-up still ends this process.
        self._processes[machine.name] = process
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if not line.startswith(b"listening on"):
            raise RuntimeError(f"the {machine.profile} simulator did not start")

    async def _stop(self, processes: list[asyncio.subprocess.Process]) -> None:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
