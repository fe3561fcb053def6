"""Sensor families: which advert is whose, and what it measures, through the maintained parsers.

Each family wraps its parser library (bthome-ble, xiaomi-ble, ruuvitag-ble,
govee-ble, inkbird-ble); the libraries know the vendors' formats, their
models and their encryption, so nothing here decodes bytes by hand. A
`Decoder` holds one library object per sensor, because the libraries keep
state (encryption counters, model detection, pending adverts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bluetooth_sensor_state_data import BluetoothData
from bthome_ble import BTHomeBluetoothDeviceData
from govee_ble import GoveeBluetoothDeviceData
from inkbird_ble import INKBIRDBluetoothDeviceData
from ruuvitag_ble import RuuvitagBluetoothDeviceData
from xiaomi_ble import XiaomiBluetoothDeviceData

from drivers.ble.adverts import Advert

log = logging.getLogger(__name__)

# The parsers report the advert's RSSI as `signal_strength`; the gateway's point is `rssi`.
RSSI: Final = "rssi"
_RENAMED: Final = {"signal_strength": RSSI}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One value an advert carried, with its unit (None for counts and states)."""

    key: str
    value: float
    unit: str | None


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one advert said: its measurements, and whether it could not be read."""

    measurements: tuple[Measurement, ...]
    model: str | None = None
    # An encrypted advert the bind key (or its absence) does not open: no values at all.
    locked: bool = False


@dataclass(frozen=True, slots=True)
class Family:
    """A sensor family: its parser, how BlueZ pre-filters its adverts, what it usually measures."""

    id: str
    name: str
    manufacturer: str
    description: str
    library: str
    make: Callable[[bytes | None], BluetoothData]
    # Passive scanning on BlueZ only reports adverts matching one of these.
    or_patterns: tuple[OrPattern, ...]
    measurements: tuple[tuple[str, str | None], ...]
    encrypted: bool = False


def _sd16(uuid16: int) -> OrPattern:
    return OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, uuid16.to_bytes(2, "little"))


def _name(name: str) -> OrPattern:
    return OrPattern(0, AdvertisementDataType.COMPLETE_LOCAL_NAME, name.encode())


def _mfr(company: int) -> OrPattern:
    return OrPattern(
        0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, company.to_bytes(2, "little")
    )


FAMILIES: Final = {
    f.id: f
    for f in (
        Family(
            "bthome",
            "BTHome",
            "BTHome",
            "BTHome v1/v2 service data (0xFCD2), AES-CCM "
            "encrypted with a bind key or plain: Shelly BLU, ATC/pvvx firmware, DIY sensors",
            "bthome-ble",
            lambda key: BTHomeBluetoothDeviceData(bindkey=key),
            (_sd16(0xFCD2), _sd16(0x181C), _sd16(0x181E)),
            (("temperature", "°C"), ("humidity", "%"), ("battery", "%"), (RSSI, "dBm")),
            encrypted=True,
        ),
        Family(
            "xiaomi",
            "Xiaomi MiBeacon",
            "Xiaomi",
            "MiBeacon v2-v5 service data (0xFE95), "
            "encrypted ones with the device's bind key: LYWSD03MMC, CGG1, MiFlora, ...",
            "xiaomi-ble",
            lambda key: XiaomiBluetoothDeviceData(bindkey=key),
            (_sd16(0xFE95),),
            (("temperature", "°C"), ("humidity", "%"), ("battery", "%"), (RSSI, "dBm")),
            encrypted=True,
        ),
        Family(
            "ruuvi",
            "RuuviTag",
            "Ruuvi",
            "Ruuvi data formats 3, 5 and 6 (manufacturer 0x0499)",
            "ruuvitag-ble",
            lambda key: RuuvitagBluetoothDeviceData(),
            (_mfr(0x0499),),
            (
                ("temperature", "°C"),
                ("humidity", "%"),
                ("pressure", "hPa"),
                ("voltage", "mV"),
                ("movement_counter", None),
                (RSSI, "dBm"),
            ),
        ),
        Family(
            "govee",
            "Govee",
            "Govee",
            "Govee thermo-hygrometers and probes (H5072, H5075, "
            "H5101, H5179, H5183, ...) in manufacturer data",
            "govee-ble",
            lambda key: GoveeBluetoothDeviceData(),
            (_mfr(0xEC88), _mfr(0x0001), _mfr(0x8801)),
            (("temperature", "°C"), ("humidity", "%"), ("battery", "%"), (RSSI, "dBm")),
        ),
        Family(
            "inkbird",
            "INKBIRD",
            "INKBIRD",
            "INKBIRD IBS-TH, IBS-TH2, ITH-11-B, IBT-2X/4XS/6XS "
            "sensors and probes in manufacturer data",
            "inkbird-ble",
            lambda key: INKBIRDBluetoothDeviceData(),
            # The "company id" of INKBIRD adverts is measurement data, so passive scans can only
            # match the models' local names, and only when the name is in the advert itself.
            tuple(_name(n) for n in ("sps", "tps", "ith-11-b", "ibs-p02b")),
            (("temperature", "°C"), ("humidity", "%"), ("battery", "%"), (RSSI, "dBm")),
        ),
    )
}


class FamilyError(ValueError):
    """An unknown family or a bind key that is not 16 bytes of hex."""


def family(family_id: str) -> Family:
    """The family by id."""
    try:
        return FAMILIES[family_id]
    except KeyError:
        raise FamilyError(
            f"unknown BLE family {family_id!r}; known: {', '.join(FAMILIES)}"
        ) from None


def parse_bind_key(raw: Any) -> bytes | None:
    """A bind key from its hex form (32 hex digits; Xiaomi's legacy keys are 24)."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise FamilyError("bind_key must be a hex string")
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise FamilyError("bind_key must be hex digits") from None
    if len(key) not in (12, 16):
        raise FamilyError("bind_key must be 16 bytes (32 hex digits), or 12 for old Xiaomi")
    return key


def detect(advert: Advert) -> str | None:
    """The family whose parser takes this advert, if any."""
    info = advert.service_info()
    for fam in FAMILIES.values():
        try:
            if fam.make(None).supported(info):
                return fam.id
        except Exception:  # a parser choking on a stranger's advert is not our failure
            log.debug("%s parser refused an advert of %s", fam.id, advert.address, exc_info=True)
    return None


class Decoder:
    """One sensor's parser: the library object, kept across adverts."""

    def __init__(self, family_id: str, bind_key: bytes | None = None) -> None:
        self.family = family(family_id)
        self._parser = self.family.make(bind_key)

    def decode(self, advert: Advert) -> Decoded | None:
        """The advert's measurements; None if it is not this family's advert."""
        info = advert.service_info()
        parser = self._parser
        if not parser.supported(info):
            return None
        update = parser.update(info)
        locked = _encrypted(parser) and not getattr(parser, "bindkey_verified", True)
        out: dict[str, Measurement] = {}
        for device_key, value in update.entity_values.items():
            number = _number(value.native_value)
            if number is None:
                continue  # the parser saw the field but it held no reading (e.g. invalid)
            description = update.entity_descriptions.get(device_key)
            unit = description.native_unit_of_measurement if description else None
            key = _key(device_key.key)
            out[key] = Measurement(key, number, str(unit) if unit is not None else None)
        for device_key, state in update.binary_entity_values.items():
            if isinstance(state.native_value, bool):
                key = _key(device_key.key)
                out[key] = Measurement(key, float(state.native_value), None)
        if locked:
            out = {k: m for k, m in out.items() if k == RSSI}
        model = update.devices[None].model if None in update.devices else None
        return Decoded(tuple(out.values()), model, locked)


def _key(raw: Any) -> str:
    name = str(getattr(raw, "value", raw))  # some parsers key by a device-class enum
    return _RENAMED.get(name, name)


def _encrypted(parser: BluetoothData) -> bool:
    scheme = getattr(parser, "encryption_scheme", None)
    return scheme is not None and str(getattr(scheme, "value", scheme)).lower() != "none"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None
