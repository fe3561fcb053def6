"""The simulator as a process: `python -m drivers.modbus.simulator --unit 1=generic_plc ...`.

Prints one line, `listening on tcp://HOST:PORT` (or `listening on serial:PATH`),
once clients can connect, and exits 0 on SIGTERM or SIGINT. Bad arguments get one
line on stderr naming the argument and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Final, NoReturn

from drivers.modbus import profiles
from drivers.modbus.simulator.simulator import UNIT_IDS, Simulator, UnitSpec

# Exit status for bad arguments (argparse's) and for a port that cannot be opened.
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 1


class _Parser(argparse.ArgumentParser):
    """Argument parsing whose errors are one line: the callers read the first line only."""

    def error(self, message: str) -> NoReturn:
        """Print the error on one line and exit with status 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _unit(text: str) -> UnitSpec:
    """Parse `ID=PROFILE` into a UnitSpec, checking the id and that the profile exists."""
    unit_id, sep, profile = text.partition("=")
    if not sep or not unit_id.strip().isdigit() or not profile.strip():
        raise argparse.ArgumentTypeError(f"expected ID=PROFILE, got {text!r}")
    if int(unit_id) not in UNIT_IDS:
        raise argparse.ArgumentTypeError(f"unit id {unit_id} is outside 1-247")
    try:
        profiles.load(profile.strip())
    except profiles.ProfileError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return UnitSpec(int(unit_id), profile.strip())


def _parser() -> _Parser:
    parser = _Parser(prog="python -m drivers.modbus.simulator", description=__doc__)
    parser.add_argument("--unit", type=_unit, action="append", required=True, metavar="ID=PROFILE")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020, help="TCP port; 0 picks a free one")
    parser.add_argument("--framer", choices=("socket", "rtu"), default="socket")
    parser.add_argument("--serial", metavar="PATH", help="serve RTU on this serial port or pty")
    parser.add_argument("--seed", type=int, default=0)
    return parser


async def _run(args: argparse.Namespace) -> int:
    simulator = Simulator(args.unit, seed=args.seed)
    if args.serial:
        serving = simulator.serve_rtu(args.serial)
    else:
        serving = simulator.serve_tcp(args.host, args.port, framer=args.framer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = asyncio.create_task(serving)
    started = asyncio.create_task(simulator.wait_started())
    await asyncio.wait({server, started}, return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        started.cancel()
        error = server.exception()
        print(f"simulator: {error}", file=sys.stderr, flush=True)
        return EXIT_UNAVAILABLE
    if args.serial:
        print(f"listening on serial:{args.serial}", flush=True)
    else:
        print(f"listening on tcp://{args.host}:{simulator.listening_port}", flush=True)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({server, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one simulator process until SIGTERM or SIGINT."""
    parser = _parser()
    args = parser.parse_args(argv)
    ids = [spec.unit_id for spec in args.unit]
    if duplicate := next((i for i in ids if ids.count(i) > 1), None):
        parser.error(f"argument --unit: unit id {duplicate} is given twice")
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
