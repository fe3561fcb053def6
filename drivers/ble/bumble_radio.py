"""Bumble as a radio for bleak: a Bumble host on an HCI controller, and bleak backends over it.

The controller is a USB HCI dongle (`usb:0`), a virtual controller reached
over an HCI transport (`tcp-client:127.0.0.1:PORT`, as `edge demo`'s
simulator serves one), or a controller on an in-process `LocalLink` (tests).
`BumbleScanner` and `BumbleClient` subclass bleak's backend interfaces, so
the scanner, the parsers and the GATT poller run the same code on Bumble as
on BlueZ.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any, Final

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_16, normalize_uuid_32
from bumble.controller import Controller
from bumble.core import AdvertisingData, PhysicalTransport
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport

log = logging.getLogger(__name__)

# The gateway's own (random static) address on a Bumble controller.
GATEWAY_ADDRESS: Final = "F0:ED:6E:00:00:01"
# Advertiser addresses remembered (with their type) for GATT connections; oldest go first.
ADDRESSES_KEPT: Final = 2048
# How long a GATT connection may take to come up before it counts as failed.
CONNECT_TIMEOUT_S: Final = 10.0
_AD = AdvertisingData.Type


class BumbleRadio:
    """One Bumble host: the adapter for a USB dongle, a virtual controller or a LocalLink."""

    def __init__(
        self, spec: str = "", link: LocalLink | None = None, address: str = GATEWAY_ADDRESS
    ) -> None:
        if not spec and link is None:
            raise ValueError("a Bumble radio needs an HCI transport or a LocalLink")
        self.spec = spec
        self._link = link
        self._address = address
        self._transport: Any = None
        self.device: Device | None = None
        # One GATT connection at a time per adapter: small controllers have few slots.
        self.gatt_lock = asyncio.Lock()
        # Each advertiser's address with its type (public or random), as last heard.
        self.addresses: dict[str, Address] = {}

    async def open(self) -> Device:
        """Open the transport (or join the link) and power the host on."""
        if self.device is not None:
            return self.device
        if self._link is not None:
            host = Host()
            host.controller = Controller("gateway", link=self._link)
        else:
            self._transport = await open_transport(self.spec)
            host = Host(self._transport.source, self._transport.sink)
        device = Device(name="edge-gateway", address=Address(self._address), host=host)
        self.device = device
        try:
            await device.power_on()
        except BaseException:
            await self.close()  # a half-open transport would be leaked by the next try
            raise
        return device

    async def close(self) -> None:
        """Power off and close the transport."""
        device, self.device = self.device, None
        try:
            if device is not None:
                await device.power_off()
                if self._link is not None:
                    self._link.remove_controller(device.host.controller)
        finally:
            if self._transport is not None:
                transport, self._transport = self._transport, None
                await transport.close()


def _uuid_list(payload: bytes, size: int) -> list[str]:
    parts = [payload[i : i + size] for i in range(0, len(payload) - size + 1, size)]
    return [_uuid(p) for p in parts]


def _uuid(raw: bytes) -> str:
    if len(raw) == 2:
        return normalize_uuid_16(int.from_bytes(raw, "little"))
    if len(raw) == 4:
        return normalize_uuid_32(int.from_bytes(raw, "little"))
    return str(uuid.UUID(bytes=raw[::-1]))


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    """bleak's AdvertisementData from a Bumble advertising report (AD structures, LE order)."""
    name = None
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    uuids: list[str] = []
    tx_power = None
    for ad_type, payload in adv.data.ad_structures:
        if ad_type in (_AD.COMPLETE_LOCAL_NAME, _AD.SHORTENED_LOCAL_NAME):
            name = payload.decode("utf-8", "replace")
        elif ad_type == _AD.MANUFACTURER_SPECIFIC_DATA and len(payload) >= 2:
            manufacturer[int.from_bytes(payload[:2], "little")] = payload[2:]
        elif ad_type == _AD.SERVICE_DATA_16_BIT_UUID and len(payload) >= 2:
            service_data[_uuid(payload[:2])] = payload[2:]
        elif ad_type == _AD.SERVICE_DATA_32_BIT_UUID and len(payload) >= 4:
            service_data[_uuid(payload[:4])] = payload[4:]
        elif ad_type == _AD.SERVICE_DATA_128_BIT_UUID and len(payload) >= 16:
            service_data[_uuid(payload[:16])] = payload[16:]
        elif ad_type in (_AD.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                         _AD.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS):  # fmt: skip
            uuids += _uuid_list(payload, 2)
        elif ad_type in (_AD.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                         _AD.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS):  # fmt: skip
            uuids += _uuid_list(payload, 16)
        elif ad_type == _AD.TX_POWER_LEVEL and payload:
            tx_power = int.from_bytes(payload[:1], "little", signed=True)
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=list(dict.fromkeys(uuids)),
        tx_power=tx_power,
        rssi=adv.rssi,
        platform_data=(adv,),
    )


def address_of(adv: Advertisement) -> str:
    """The advertiser's address without Bumble's type suffix."""
    return adv.address.to_string(with_type_qualifier=False)


class BumbleScanner(BaseBleakScanner):
    """bleak's scanner interface over a BumbleRadio (`BleakScanner(..., backend=BumbleScanner,
    radio=radio)`)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        radio: BumbleRadio,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._radio = radio
        self._active = scanning_mode == "active"
        self._device: Device | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        device = await self._radio.open()
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        self._device = device
        await device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        if device.is_scanning:
            await device.stop_scanning()

    def _on_advertisement(self, adv: Advertisement) -> None:
        if adv.is_scan_response and not self._active:
            # A passive scan sends no scan requests, so no response is an answer to one (Bumble's
            # emulated controller sends them anyway); the advert itself was reported already.
            return
        data = advertisement_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = address_of(adv)
        addresses = self._radio.addresses
        addresses.pop(address, None)
        addresses[address] = adv.address
        if len(addresses) > ADDRESSES_KEPT:
            addresses.pop(next(iter(addresses)))
        device = self.create_or_update_device(address, address, data.local_name, adv, data)
        self.call_detection_callbacks(device, data)


class BumbleClient(BaseBleakClient):
    """bleak's GATT client interface over a BumbleRadio (`BleakClient(device,
    backend=BumbleClient, radio=radio)`); reads and writes, no pairing or notifications."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        radio: BumbleRadio,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = CONNECT_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._radio = radio
        self._connection: Connection | None = None
        self._peer: Peer | None = None

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        device = await self._radio.open()
        timeout = kwargs.get("timeout", self._timeout)
        try:
            peer = self._radio.addresses.get(self.address.upper()) or Address(self.address)
            connection = await device.connect(peer, transport=PhysicalTransport.LE, timeout=timeout)
        except Exception as error:
            raise BleakError(f"{self.address}: connection failed: {error}") from error
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        await peer.discover_services()
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            await service.discover_characteristics()
            bservice = BleakGATTService(service, service.handle, _bleak_uuid(service.uuid))
            collection.add_service(bservice)
            for char in service.characteristics:
                bchar = BleakGATTCharacteristic(
                    char, char.handle, _bleak_uuid(char.uuid), _properties(char.properties),
                    lambda: self.mtu_size - 3, bservice,
                )  # fmt: skip
                collection.add_characteristic(bchar)
        self._peer = peer
        self.services = collection

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is not None:
            await connection.disconnect()
            self._connection = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not used by the gateway's GATT polls")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not used by the gateway's GATT polls")

    def _peer_or_fail(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._peer_or_fail().read_value(characteristic.handle))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._peer_or_fail().read_value(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        await self._peer_or_fail().write_value(characteristic.handle, bytes(data), response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        await self._peer_or_fail().write_value(descriptor.handle, bytes(data), True)

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: Any,
                           **kwargs: Any) -> None:  # fmt: skip
        raise NotImplementedError("notifications are not used by the GATT poller")

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        raise NotImplementedError("notifications are not used by the GATT poller")


def _bleak_uuid(value: Any) -> str:
    raw = bytes(value)
    return _uuid(raw)


_PROPERTY_NAMES: Final = {
    0x02: "read", 0x04: "write-without-response", 0x08: "write", 0x10: "notify",
    0x20: "indicate",
}  # fmt: skip


def _properties(flags: int) -> list[Any]:
    return [name for bit, name in _PROPERTY_NAMES.items() if int(flags) & bit]
