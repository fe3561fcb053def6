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


@pytest.fixture
def ble_simulator() -> Iterator[str]:
    """The demo's virtual sensors (and a GATT sensor at C0:00:00:00:00:09) in a process; yields
    the adapter a gateway reaches them with."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.ble.simulator", "--hci", f"tcp-server:127.0.0.1:{port}",
         "--update-s", "0.5", "--gatt", "C0:00:00:00:00:09"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(b"listening on")
        yield f"tcp-client:127.0.0.1:{port}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if process.returncode is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def link_name() -> Iterator[str]:
    """A fresh in-process virtual link's name (`local:<name>` as the adapter)."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    forget_link(name)
