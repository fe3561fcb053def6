"""Virtual BLE sensors on a Bumble link: BTHome (plain or encrypted), Ruuvi, Govee and a GATT
sensor, each a Bumble device with its own emulated controller, advertising changing values."""

from drivers.ble.simulator.sensors import (
    DEMO_SENSORS,
    GattSensor,
    SensorSpec,
    VirtualField,
    advertising_data,
)

__all__ = ["DEMO_SENSORS", "GattSensor", "SensorSpec", "VirtualField", "advertising_data"]
