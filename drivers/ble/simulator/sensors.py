"""What the virtual sensors send: each family's advert format, and the devices that send it.

The formats are written from the vendors' public specifications (bthome.io,
Ruuvi data format 5, Govee H5075) and checked in the tests by the very
parser libraries the driver reads them with. Values follow slow waves, so a
chart moves the way a room does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import AdvertisingType, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

_AD = AdvertisingData.Type
BTHOME_UUID: Final = 0xFCD2
RUUVI_COMPANY: Final = 0x0499
GOVEE_COMPANY: Final = 0xEC88
# Environmental Sensing (0x181A) temperature (0x2A6E, 0.01 °C) and Battery Level (0x2A19).
ENV_SERVICE: Final = "181A"
TEMPERATURE_CHAR: Final = "2A6E"
BATTERY_SERVICE: Final = "180F"
BATTERY_CHAR: Final = "2A19"


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """A virtual sensor: its family, address, advert interval and the centre of its values."""

    family: str
    name: str
    address: str
    interval_s: float = 1.0
    temperature: float = 21.0
    humidity: float = 45.0
    battery: int = 90
    bind_key: bytes | None = None
    # Seconds per full wave of the values; different per sensor so they do not move in step.
    period_s: float = 600.0


DEMO_SENSORS: Final = (
    SensorSpec("bthome", "Cold room", "A4:C1:38:00:00:01", 1.0, 4.0, 80.0, 96, period_s=420),
    SensorSpec("ruuvi", "Server room", "C8:25:2D:00:00:02", 1.0, 24.0, 35.0, 0, period_s=540),
    SensorSpec("govee", "Office", "A4:C1:38:00:00:03", 1.0, 21.5, 45.0, 88, period_s=660),
)


def values(spec: SensorSpec, t: float) -> dict[str, float]:
    """The sensor's values at time t: slow waves around its centre."""
    phase = 2 * math.pi * t / spec.period_s
    return {
        "temperature": round(spec.temperature + 1.5 * math.sin(phase), 2),
        "humidity": round(min(100.0, max(0.0, spec.humidity + 5 * math.cos(phase))), 2),
        "battery": float(spec.battery),
        "pressure": round(1013.0 + 4 * math.sin(phase / 3), 2),
    }


def _structures(*items: tuple[int, bytes]) -> bytes:
    return bytes(AdvertisingData(list(items)))


def _mac(address: str) -> bytes:
    return bytes.fromhex(address.replace(":", ""))


def bthome_payload(v: dict[str, float], address: str, key: bytes | None, counter: int) -> bytes:
    """BTHome v2 service data: battery (0x01), temperature (0x02), humidity (0x03)."""
    objects = (
        struct.pack("<BB", 0x01, int(v["battery"]))
        + struct.pack("<Bh", 0x02, round(v["temperature"] * 100))
        + struct.pack("<BH", 0x03, round(v["humidity"] * 100))
    )
    if key is None:
        return bytes([0x40]) + objects
    info = 0x41  # v2, encrypted
    count = counter.to_bytes(4, "little")
    nonce = _mac(address) + BTHOME_UUID.to_bytes(2, "little") + bytes([info]) + count
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, objects, None)
    return bytes([info]) + sealed[:-4] + count + sealed[-4:]


def ruuvi_payload(v: dict[str, float], address: str, counter: int) -> bytes:
    """Ruuvi data format 5: 24 bytes after the company id."""
    voltage_mv = 2900
    power = ((voltage_mv - 1600) << 5) | ((4 + 40) // 2)  # 11 bits voltage, 5 bits tx power
    return struct.pack(
        ">BhHHhhhHBH6s",
        5,
        round(v["temperature"] / 0.005),
        round(v["humidity"] / 0.0025),
        round(v["pressure"] * 100 - 50000),
        0, 0, 1000,
        power,
        counter % 255,
        counter % 65535,
        _mac(address),
    )  # fmt: skip


def govee_payload(v: dict[str, float]) -> bytes:
    """Govee H5075: 3 bytes of temperature * 10000 + humidity * 10 (bit 23: below zero)."""
    temperature = v["temperature"]
    packed = int(abs(temperature) * 10) * 1000 + int(v["humidity"] * 10)
    if temperature < 0:
        packed |= 0x800000
    return b"\x00" + packed.to_bytes(3, "big") + bytes([int(v["battery"])]) + b"\x00"


def advertising_data(spec: SensorSpec, t: float, counter: int = 0) -> bytes:
    """The AD structures the sensor sends at time t."""
    v = values(spec, t)
    flags = (_AD.FLAGS, bytes([0x06]))
    if spec.family == "bthome":
        data = bthome_payload(v, spec.address, spec.bind_key, counter)
        return _structures(flags, (_AD.SERVICE_DATA_16_BIT_UUID, b"\xd2\xfc" + data))
    if spec.family == "ruuvi":
        data = RUUVI_COMPANY.to_bytes(2, "little") + ruuvi_payload(v, spec.address, counter)
        return _structures(flags, (_AD.MANUFACTURER_SPECIFIC_DATA, data))
    if spec.family == "govee":
        suffix = spec.address.replace(":", "")[-4:]
        govee = GOVEE_COMPANY.to_bytes(2, "little")
        return _structures(
            flags,
            (_AD.COMPLETE_LOCAL_NAME, f"GVH5075_{suffix}".encode()),
            (_AD.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, govee),
            (_AD.MANUFACTURER_SPECIFIC_DATA, govee + govee_payload(v)),
        )  # fmt: skip
    raise ValueError(f"no virtual sensor for the {spec.family} family")


def _device(link: LocalLink, name: str, address: str) -> Device:
    # The address is the device's (static random) address, which its adverts carry.
    host = Host()
    host.controller = Controller(name, link=link)
    return Device(name=name, address=Address(address), host=host)


@dataclass
class GattSensor:
    """A connectable sensor that only tells its temperature and battery over GATT."""

    name: str
    address: str
    temperature: float = 19.5
    battery: int = 77
    reads: int = 0
    connections: int = 0

    def services(self) -> list[Service]:
        def temperature(_connection: object) -> bytes:
            self.reads += 1
            return struct.pack("<h", round(self.temperature * 100))

        def battery(_connection: object) -> bytes:
            return bytes([self.battery])

        read = Characteristic.Properties.READ
        readable = Characteristic.Permissions.READABLE
        return [
            Service(ENV_SERVICE, [Characteristic(
                TEMPERATURE_CHAR, read, readable, CharacteristicValue(read=temperature))]),
            Service(BATTERY_SERVICE, [Characteristic(
                BATTERY_CHAR, read, readable, CharacteristicValue(read=battery))]),
        ]  # fmt: skip


@dataclass
class _Running:
    spec: SensorSpec | GattSensor
    device: Device
    counter: int = 0


@dataclass
class VirtualField:
    """Virtual sensors on one LocalLink, re-advertising new values every `update_s`."""

    link: LocalLink
    sensors: Iterable[SensorSpec] = ()
    gatt_sensors: Iterable[GattSensor] = ()
    update_s: float = 2.0
    _running: list[_Running] = field(default_factory=list)
    _silent: set[str] = field(default_factory=set)
    # GATT connections open now, and the most ever open at once, over all GATT sensors.
    gatt_open: int = 0
    gatt_open_max: int = 0

    def _connected(self, sensor: GattSensor, connection: Any) -> None:
        sensor.connections += 1
        self.gatt_open += 1
        self.gatt_open_max = max(self.gatt_open_max, self.gatt_open)

        def closed(_reason: int) -> None:
            self.gatt_open -= 1

        connection.on(connection.EVENT_DISCONNECTION, closed)

    async def start(self) -> None:
        """Power every sensor on and start its adverts."""
        for spec in self.sensors:
            running = _Running(spec, _device(self.link, spec.name, spec.address))
            self._running.append(running)
            await running.device.power_on()
            await self._advertise(running)
        for gatt in self.gatt_sensors:
            device = _device(self.link, gatt.name, gatt.address)
            device.add_services(gatt.services())
            device.on(Device.EVENT_CONNECTION, lambda c, g=gatt: self._connected(g, c))
            running = _Running(gatt, device)
            self._running.append(running)
            await device.power_on()
            await device.start_advertising(
                advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
                advertising_data=_structures((_AD.FLAGS, b"\x06"),
                                             (_AD.COMPLETE_LOCAL_NAME, gatt.name.encode())),
                auto_restart=True,
                advertising_interval_min=1000, advertising_interval_max=1000,
            )  # fmt: skip

    async def _advertise(self, running: _Running) -> None:
        spec = running.spec
        assert isinstance(spec, SensorSpec)
        running.counter += 1
        ms = spec.interval_s * 1000
        await running.device.start_advertising(
            advertising_type=AdvertisingType.UNDIRECTED,
            advertising_data=advertising_data(spec, time.time(), running.counter),
            advertising_interval_min=ms, advertising_interval_max=ms,
        )  # fmt: skip

    def silence(self, address: str, silent: bool = True) -> None:
        """Stop (or resume) one sensor's adverts at its next update, as a flat battery would."""
        (self._silent.add if silent else self._silent.discard)(address.upper())

    async def run(self) -> None:
        """Keep the values moving until cancelled, then power the sensors off."""
        try:
            while True:
                await asyncio.sleep(self.update_s)
                await self.update()
        finally:
            await self.stop()

    async def update(self) -> None:
        """Send every advertising sensor's current values (and honour `silence`)."""
        for running in self._running:
            if not isinstance(running.spec, SensorSpec):
                continue
            if running.device.is_advertising:
                await running.device.stop_advertising()
            if running.spec.address.upper() not in self._silent:
                await self._advertise(running)

    async def stop(self) -> None:
        """Power every sensor off."""
        running, self._running = self._running, []
        for r in running:
            with contextlib.suppress(Exception):
                await r.device.power_off()
            # Off the link too: a powered-off controller still hears (and is asked about) adverts.
            with contextlib.suppress(KeyError):
                self.link.remove_controller(r.device.host.controller)
