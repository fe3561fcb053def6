"""Fixtures for the BLE tests: virtual sensors in their own process behind an HCI socket, and
in-process virtual links."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from drivers.ble.transports import forget_link
from tests.web.conftest import api

__all__ = ["api"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SimulatorProcess:
    """The demo's virtual sensors (and a GATT sensor at C0:00:00:00:00:09) in their own process,
    behind an HCI socket; stop and start it at will (the port stays)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.adapter = f"tcp-client:127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "drivers.ble.simulator", "--hci",
             f"tcp-server:127.0.0.1:{self.port}", "--update-s", "0.5",
             "--gatt", "C0:00:00:00:00:09"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        assert self._process.stdout.readline().startswith(b"listening on")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if process.returncode is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def ble_process() -> Iterator[SimulatorProcess]:
    """A running simulator process; stopped at teardown."""
    simulator = SimulatorProcess()
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def ble_simulator(ble_process: SimulatorProcess) -> str:
    """The adapter a gateway reaches the simulator process with."""
    return ble_process.adapter


@pytest.fixture
def link_name() -> Iterator[str]:
    """A fresh in-process virtual link's name (`local:<name>` as the adapter)."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    forget_link(name)
