"""A BlueZ stand-in for bleak's own BlueZ backend: python-dbusmock's bluez5 template on a private
D-Bus daemon. Sensors are Device1 objects made here, since the template's AddDevice gives
ServiceData the wrong type; adverts are InterfacesAdded and PropertiesChanged signals, as
bluetoothd sends them."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from dbus_fast import BusType, Variant
from dbus_fast.aio import MessageBus

# Debian's python3-dbusmock runs under the system Python (it needs dbus-python and GLib).
SYSTEM_PYTHON = "/usr/bin/python3"
DEVICE = "org.bluez.Device1"
MOCK = "org.freedesktop.DBus.Mock"


def available() -> str | None:
    """Why the mock cannot run here, or None if it can."""
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed (Debian package dbus-daemon)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dbusmock"], capture_output=True,
                           check=False)  # fmt: skip
    if probe.returncode != 0:
        return "python-dbusmock is not installed (Debian package python3-dbusmock)"
    return None


@contextlib.contextmanager
def private_bluez(folder: Path) -> Iterator[str]:
    """A private bus with a mock bluetoothd on it; yields the bus address."""
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1",
         f"--address=unix:path={folder / 'bus'}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    mock = None
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().decode().strip()
        env = {"DBUS_SYSTEM_BUS_ADDRESS": address, "PATH": "/usr/bin:/bin"}
        mock = subprocess.Popen(
            [SYSTEM_PYTHON, "-m", "dbusmock", "--system", "--template", "bluez5"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        yield address
    finally:
        for process in (mock, daemon):
            if process is not None:
                process.terminate()
                process.wait(5)
        if daemon.stdout is not None:
            daemon.stdout.close()


class Bluetoothd:
    """Drives the mock: adapters, and sensors that advertise."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    @classmethod
    async def connect(cls, address: str) -> Bluetoothd:
        bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
        return cls(bus)

    async def _mock(self, path: str):
        for _ in range(100):
            try:
                intro = await self._bus.introspect("org.bluez", path)
                break
            except Exception:  # the mock is still starting
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the mock bluetoothd did not come up")
        return self._bus.get_proxy_object("org.bluez", path, intro)

    async def add_adapter(self, name: str = "hci0") -> None:
        root = await self._mock("/")
        await root.get_interface("org.bluez.Mock").call_add_adapter(name, "edge-gateway")

    async def advertise(
        self, address: str, rssi: int, service_data: dict[str, bytes], name: str = "",
        adapter: str = "hci0",
    ) -> None:  # fmt: skip
        """A sensor's first advert: its Device1 object appears."""
        path = f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"
        props = {
            "Address": Variant("s", address), "AddressType": Variant("s", "public"),
            "Alias": Variant("s", name or address), "Name": Variant("s", name),
            "Adapter": Variant("o", f"/org/bluez/{adapter}"), "Paired": Variant("b", False),
            "Connected": Variant("b", False), "Trusted": Variant("b", False),
            "Blocked": Variant("b", False), "LegacyPairing": Variant("b", False),
            "ServicesResolved": Variant("b", False), "RSSI": Variant("n", rssi),
            "UUIDs": Variant("as", []), "ManufacturerData": Variant("a{qv}", {}),
            "ServiceData": Variant("a{sv}", {k: Variant("ay", v) for k, v in service_data.items()}),
        }  # fmt: skip
        root = (await self._mock("/")).get_interface(MOCK)
        await root.call_add_object(path, DEVICE, props, [])
        await root.call_emit_signal(
            "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", "oa{sa{sv}}",
            [Variant("o", path), Variant("a{sa{sv}}", {DEVICE: props})],
        )  # fmt: skip

    async def readvertise(
        self, address: str, rssi: int, service_data: dict[str, bytes], adapter: str = "hci0"
    ) -> None:
        """A later advert: the properties that changed, signalled."""
        path = f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"
        changed = {
            "RSSI": Variant("n", rssi),
            "ServiceData": Variant("a{sv}", {k: Variant("ay", v) for k, v in service_data.items()}),
        }
        device = (await self._mock(path)).get_interface(MOCK)
        await device.call_emit_signal(
            "org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as",
            [Variant("s", DEVICE), Variant("a{sv}", changed), Variant("as", [])],
        )  # fmt: skip

    async def close(self) -> None:
        self._bus.disconnect()
        await self._bus.wait_for_disconnect()


async def release_bleak() -> None:
    """Close bleak's BlueZ manager of this loop: bleak keeps one D-Bus connection (and a task
    watching it) per event loop for the loop's life, which a test's loop must not outlive."""
    from bleak.backends.bluezdbus import manager

    instance = manager._global_instances.pop(asyncio.get_running_loop(), None)
    if instance is None or instance._bus is None:
        return
    instance._bus.disconnect()
    watcher = instance._bus_watcher_task
    if watcher is not None:
        await asyncio.wait({watcher}, timeout=5)
