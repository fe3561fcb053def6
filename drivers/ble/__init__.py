"""BLE sensors: one scanner per adapter, adverts parsed by family, GATT polls, a virtual radio."""

from drivers.ble.devices import add_device
from drivers.ble.driver import BleDriver

__all__ = ["BleDriver", "add_device"]
