"""Physical buses: a device's connection settings, the bus they put it on, and its client.

Devices that share a serial port, or a TCP endpoint (a gateway to RS-485
units), share one bus, hence one connection and one queue of transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.framer import FramerType

from drivers.modbus.planner import DEFAULT_GAPS, Limits

TRANSPORTS: Final = ("modbus_tcp", "modbus_rtu", "modbus_rtu_over_tcp")
# Bits per character on an 8N1/8E1 line (start, 8 data, parity or stop, stop).
BITS_PER_CHAR: Final = 11
# The spec's fixed 3.5-character silence above 19,200 baud.
MIN_INTER_FRAME_S: Final = 0.00175


class ConnectionSettingsError(ValueError):
    """A device's connection settings are invalid; the message names the field."""


class ModbusConnection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the gateway reaches one Modbus device (snake_case, as the API carries it)."""

    host: str | None = None
    port: int | str | None = None  # TCP port number, or the serial device path for RTU
    unit_id: Annotated[int, msgspec.Meta(ge=0, le=255)] = 1
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    baudrate: Annotated[int, msgspec.Meta(ge=300, le=921_600)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    max_block: Annotated[int, msgspec.Meta(ge=1, le=2000)] | None = None
    max_gap: Annotated[int, msgspec.Meta(ge=0, le=125)] | None = None
    one_per_request: bool = False
    inter_frame_ms: Annotated[float, msgspec.Meta(ge=0, le=1000)] | None = None


@dataclass(frozen=True, slots=True)
class BusKey:
    """Identifies a physical bus: the transport and where it is."""

    transport: str
    address: str

    def __str__(self) -> str:
        return f"{self.transport}:{self.address}"


def parse_connection(transport: str, raw: dict[str, Any]) -> ModbusConnection:
    """Validate a device's `connection` for its transport."""
    if transport not in TRANSPORTS:
        raise ConnectionSettingsError(f"type {transport!r} is not a Modbus transport")
    try:
        conn = msgspec.convert(raw, ModbusConnection)
    except msgspec.ValidationError as error:
        raise ConnectionSettingsError(f"connection: {str(error).replace('`', '')}") from None
    if transport == "modbus_rtu":
        if not isinstance(conn.port, str) or not conn.port:
            raise ConnectionSettingsError("connection: port must be the serial device path")
    else:
        if not conn.host:
            raise ConnectionSettingsError("connection: host is required")
        port = 502 if conn.port is None else conn.port
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConnectionSettingsError("connection: port must be a TCP port number (1-65535)")
        conn = msgspec.structs.replace(conn, port=port)
    return conn


def bus_key(transport: str, conn: ModbusConnection) -> BusKey:
    """The bus a device sits on."""
    if transport == "modbus_rtu":
        return BusKey(transport, str(conn.port))
    return BusKey(transport, f"{conn.host}:{conn.port}")


def limits(transport: str, conn: ModbusConnection, profile_max_block: int | None) -> Limits:
    """Request limits: the device's own settings over its profile's over the transport's."""
    max_block = conn.max_block or profile_max_block
    return Limits(
        max_block=max_block,
        max_gap=DEFAULT_GAPS[transport] if conn.max_gap is None else conn.max_gap,
        one_per_request=conn.one_per_request,
    )


def inter_frame_s(transport: str, conn: ModbusConnection) -> float:
    """Silence kept between transactions: 3.5 characters on a serial line, none on TCP."""
    if conn.inter_frame_ms is not None:
        return conn.inter_frame_ms / 1000
    if transport == "modbus_tcp":
        return 0.0
    return max(MIN_INTER_FRAME_S, 3.5 * BITS_PER_CHAR / conn.baudrate)


def make_client(key: BusKey, conn: ModbusConnection) -> ModbusBaseClient:
    """A pymodbus async client for the bus; the poller owns retries and reconnects."""
    common: dict[str, Any] = {"timeout": conn.timeout_s, "retries": 0, "reconnect_delay": 0}
    if key.transport == "modbus_rtu":
        return AsyncModbusSerialClient(
            str(conn.port),
            framer=FramerType.RTU,
            baudrate=conn.baudrate,
            parity=conn.parity,
            stopbits=conn.stopbits,
            bytesize=conn.bytesize,
            **common,
        )
    framer = FramerType.RTU if key.transport == "modbus_rtu_over_tcp" else FramerType.SOCKET
    assert conn.host is not None and isinstance(conn.port, int)
    return AsyncModbusTcpClient(conn.host, port=conn.port, framer=framer, **common)
