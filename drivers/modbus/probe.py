"""Trying a Modbus device before it is stored: connect, read its points once, decode them.

This is the add-device wizard's "test connection" and "preview values": one
client of its own (the device is not on a poller yet), the same planner and
codec as polling, and an answer in plain words rather than an exception.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import msgspec
from pymodbus.exceptions import ModbusException

from drivers.modbus import codec, sunspec
from drivers.modbus.bus import bus_key, limits, make_client, parse_connection
from drivers.modbus.devices import resolve_points
from drivers.modbus.planner import Block, plan
from drivers.modbus.points import ModbusPoint

# A probe that has not finished by then is reported as a timeout, however many blocks remain.
PROBE_TIMEOUT_S: Final = 20.0


async def probe(body: dict[str, Any]) -> dict[str, Any]:
    """Connect, find the points (the profile's and the body's, or SunSpec discovery) and read
    each once; ValueError for a body that names no valid connection or points."""
    transport = body.get("type") or ""
    conn = parse_connection(transport, body.get("connection") or {})
    discover = body.get("discover") == "sunspec"
    if discover:
        points: list[ModbusPoint] = []
        max_block = None
    else:
        points, max_block = resolve_points(body.get("profile"), body.get("points") or ())
    key = bus_key(transport, conn)
    client = make_client(key, conn)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            if not await client.connect():
                return _failed(f"cannot connect to {key.address}", started)

            async def read(block: Block) -> list[int] | list[bool]:
                call = {
                    "coil": client.read_coils,
                    "discrete": client.read_discrete_inputs,
                    "holding": client.read_holding_registers,
                    "input": client.read_input_registers,
                }[block.table]
                response = await call(block.start, count=block.count, device_id=conn.unit_id)
                if response.isError():
                    raise sunspec.SunSpecError(
                        f"unit {conn.unit_id} answers exception {response.exception_code} to "
                        f"{block.table} {block.start}-{block.start + block.count - 1}"
                    )
                if block.table in ("coil", "discrete"):
                    return list(response.bits[: block.count])
                return list(response.registers)

            if discover:

                async def registers(address: int, count: int) -> list[int]:
                    return await read(Block("holding", address, count, ()))  # type: ignore[return-value]

                points = list((await sunspec.discover(registers)).points)
            values = []
            for block in plan(points, limits(transport, conn, max_block)):
                words = await read(block)
                for point in block.points:
                    value = codec.decode(point, block.slice(point, words))
                    values.append(
                        {
                            "key": point.key,
                            "value": value,
                            "unit": point.unit,
                            "writable": point.writable,
                        }
                    )
    except TimeoutError:
        return _failed(f"unit {conn.unit_id} at {key.address} does not answer", started)
    except (ModbusException, sunspec.SunSpecError, OSError) as error:
        return _failed(str(error), started)
    finally:
        client.close()
    return {
        "ok": True,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "error": None,
        "values": values,
        "points": [msgspec.to_builtins(p) for p in points] if discover else [],
    }


def _failed(error: str, started: float) -> dict[str, Any]:
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return {"ok": False, "latency_ms": elapsed, "error": error, "values": [], "points": []}
