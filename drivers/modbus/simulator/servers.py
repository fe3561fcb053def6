"""The pymodbus servers a simulator runs, and how they answer: late, never, or from the image.

pymodbus's own request handler answers from `last_pdu` after awaiting the datastore,
so a request arriving meanwhile lends its transaction id to the earlier reply. Here
each request is bound when it arrives and answered by its own task, which is also
where a dead unit stays silent and a slow one waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from drivers.modbus.simulator.context import UnitsContext
from drivers.modbus.simulator.faults import Faults

log = logging.getLogger(__name__)


class _Handler(ServerRequestHandler):
    """One connection (or serial line): hands each decoded request to the server to answer."""

    def handle_later(self) -> None:
        """Answer the request just decoded, bound now rather than when its turn comes."""
        if self.last_pdu is not None:
            self.server.answer_later(self, self.last_pdu, self.last_addr)


class _Answering:
    """Server behaviour shared by TCP and serial: one task per request, faults applied."""

    context: UnitsContext
    trace_packet: Any
    trace_pdu: Any
    trace_connect: Any

    def __init__(self, context: UnitsContext, faults: Callable[[], Faults], **kwargs: Any):
        super().__init__(context, **kwargs)  # type: ignore[call-arg]
        self._faults = faults
        self.answering: set[asyncio.Task[None]] = set()

    def callback_new_connection(self) -> _Handler:
        """A handler for a new client connection (or the serial port)."""
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)

    def answer_later(self, handler: _Handler, pdu: ModbusPDU, addr: tuple | None) -> None:
        """Start answering one request in its own task."""
        task = asyncio.get_running_loop().create_task(self._answer(handler, pdu, addr))
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)

    async def _answer(self, handler: _Handler, pdu: ModbusPDU, addr: tuple | None) -> None:
        faults = self._faults()
        faults.request_count += 1
        unit = pdu.dev_id
        if unit in faults.dead_units or unit not in self.context.device_ids():
            return  # a unit that is off, or not on the bus, sends nothing back
        delay = faults.slow_units.get(unit, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            response = await pdu.datastore_update(self.context, unit)
        except Exception:
            log.exception("unit %d could not answer %s", unit, pdu)
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.transaction_id = pdu.transaction_id
        response.dev_id = unit
        if handler.transport:  # the client may have hung up while the unit was slow
            handler.server_send(response, addr)

    async def stop(self) -> None:
        """Close the listener and its connections, and drop requests still being answered."""
        await self.shutdown()  # type: ignore[attr-defined]
        for task in list(self.answering):
            task.cancel()
        await asyncio.gather(*self.answering, return_exceptions=True)


class TcpServer(_Answering, ModbusTcpServer):
    """Modbus over TCP, framed as Modbus TCP ("socket") or as RTU (a serial device server)."""

    def port(self) -> int:
        """The TCP port listened on (the one chosen when asked for port 0)."""
        return self.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


class SerialServer(_Answering, ModbusSerialServer):
    """Modbus RTU on a serial port or pty."""
