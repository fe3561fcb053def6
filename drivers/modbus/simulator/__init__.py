"""Simulated Modbus devices: pymodbus servers that serve device profiles' register maps.

Values move plausibly (counters rise, voltages hover near nominal) and faults can
be injected while the servers run: dead and slow units, refused addresses and a
block limit. `edge demo` runs these as separate processes
(`python -m drivers.modbus.simulator`); tests run them in-process too.
"""

from drivers.modbus.simulator.faults import Faults
from drivers.modbus.simulator.simulator import Simulator, UnitSpec

__all__ = ["Faults", "Simulator", "UnitSpec"]
