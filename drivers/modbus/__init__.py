"""Modbus TCP, RTU and RTU-over-TCP: points as data, a request planner, one poller per bus."""

from drivers.modbus.devices import add_device
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.units import WriteFailed, WriteRefused

__all__ = ["ModbusDriver", "WriteFailed", "WriteRefused", "add_device"]
