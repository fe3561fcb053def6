"""The datastore pymodbus reads and writes: the units' register images behind the faults.

Each request's PDU calls `async_getValues` / `async_setValues` here; returning an
`ExcCodes` member makes pymodbus answer with that exception code, which is how
unknown addresses, read-only points, marked addresses and over-long reads are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext

from drivers.modbus.points import BIT_TABLES
from drivers.modbus.simulator.faults import Faults
from drivers.modbus.simulator.image import RegisterImage

# The table each function code addresses (22 is mask write, 23 read/write multiple).
TABLE_OF: Final = {
    1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input",
    3: "holding", 6: "holding", 16: "holding", 22: "holding", 23: "holding",
}  # fmt: skip
# Function codes whose reads the block limit applies to.
READS: Final = frozenset({1, 2, 3, 4, 23})


class UnitsContext(ModbusServerContext):
    """Reads and writes against each unit's image, refusing what the device or the faults would."""

    def __init__(self, images: Mapping[int, RegisterImage], faults: Callable[[], Faults]) -> None:
        # The base initialiser would log a deprecation warning and want datastore devices.
        # The server converts any context into its own SimCore, except one flagged as the
        # pre-3.10 simulator, which it uses as given: that is how these methods get called.
        self.old_simulator = True
        self.simdevices = []
        self._images = images
        self._faults = faults

    def device_ids(self) -> list[int]:
        """Unit ids served."""
        return list(self._images)

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        """The registers (or bits) a read asks for, or the exception code it draws."""
        table = TABLE_OF.get(func_code)
        image = self._images.get(device_id)
        if table is None or image is None:
            return ExcCodes.ILLEGAL_FUNCTION
        faults = self._faults()
        if func_code in READS and faults.too_long(count):
            return ExcCodes.ILLEGAL_ADDRESS
        if not image.covers(table, address, count) or faults.refuses(
            device_id, table, address, count
        ):
            return ExcCodes.ILLEGAL_ADDRESS
        words = image.read(table, address, count)
        return [bool(w) for w in words] if table in BIT_TABLES else words

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        """Store a write, or the exception code it draws (read-only points refuse it)."""
        table = TABLE_OF.get(func_code)
        image = self._images.get(device_id)
        if table is None or image is None:
            return ExcCodes.ILLEGAL_FUNCTION
        count = len(values)
        if (
            not image.covers(table, address, count)
            or not image.writable(table, address, count)
            or self._faults().refuses(device_id, table, address, count)
        ):
            return ExcCodes.ILLEGAL_ADDRESS
        image.write(table, address, [int(v) for v in values])
        return None
