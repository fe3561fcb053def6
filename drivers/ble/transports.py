"""The three ways to a radio: BlueZ over D-Bus, a Bumble virtual controller, a USB HCI dongle.

Each ends in bleak: BlueZ through bleak's own backend, Bumble through
`BumbleScanner` / `BumbleClient`. `local:NAME` joins an in-process
`LocalLink` by name, so tests and simulators in the same process share one
virtual radio without sockets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.backends.scanner import AdvertisementDataCallback
from bumble.link import LocalLink

from drivers.ble.bumble_radio import BumbleClient, BumbleRadio, BumbleScanner
from drivers.ble.scanner import Mode, ScannerFactory
from edge.settings import BleSettings

LOCAL_PREFIX: Final = "local:"
# In-process virtual links by name (tests, simulators in the gateway's process).
_LINKS: dict[str, LocalLink] = {}


def local_link(name: str) -> LocalLink:
    """The in-process virtual link of this name (made on first use)."""
    return _LINKS.setdefault(name, LocalLink())


def forget_link(name: str) -> None:
    """Drop a named link (a test's, once it ends)."""
    _LINKS.pop(name, None)


@dataclass
class Radio:
    """An adapter as the driver uses it: a scanner factory and how to open GATT clients."""

    adapter: str
    scanner: ScannerFactory
    client_kwargs: dict[str, Any]
    bumble: BumbleRadio | None = None

    async def close(self) -> None:
        """Release the radio (a Bumble host's transport); the next scan opens it again."""
        if self.bumble is not None:
            await self.bumble.close()


def open_radio(settings: BleSettings, patterns: Iterable[OrPattern]) -> Radio:
    """The radio the settings name (nothing is opened until the scanner starts)."""
    if settings.transport == "bluez":
        return _bluez(settings.adapter, list(patterns))
    if settings.transport == "usb":
        spec = (
            settings.adapter if settings.adapter.startswith("usb:") else f"usb:{settings.adapter}"
        )
        return _bumble(BumbleRadio(spec), spec)
    if settings.adapter.startswith(LOCAL_PREFIX):
        name = settings.adapter.removeprefix(LOCAL_PREFIX)
        return _bumble(BumbleRadio(link=local_link(name)), settings.adapter)
    return _bumble(BumbleRadio(settings.adapter), settings.adapter)


def _bluez(adapter: str, patterns: list[OrPattern]) -> Radio:
    def make(callback: AdvertisementDataCallback, mode: Mode) -> BleakScanner:
        bluez: dict[str, Any] = {"adapter": adapter}
        if mode == "passive":
            bluez["or_patterns"] = patterns
        return BleakScanner(callback, scanning_mode=mode, bluez=bluez)  # type: ignore[arg-type]

    return Radio(adapter, make, {"bluez": {"adapter": adapter}})


def _bumble(radio: BumbleRadio, name: str) -> Radio:
    def make(callback: AdvertisementDataCallback, mode: Mode) -> BleakScanner:
        return BleakScanner(callback, scanning_mode=mode, backend=BumbleScanner, radio=radio)

    return Radio(name, make, {"backend": BumbleClient, "radio": radio}, radio)
