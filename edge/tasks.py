"""Task helpers shared by the supervisor and the drivers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

T = TypeVar("T")

# A cancel is repeated after this long: on Python 3.11 a cancel that lands while
# asyncio.wait_for is handing over a result is lost (fixed in 3.12), and
# libraries such as pymodbus wait that way on every request. Long enough for
# clean-up code (see `finish`) to run between two cancels.
RECANCEL_S: Final = 0.5


async def cancel_and_wait(task: asyncio.Task[object], timeout: float | None = None) -> bool:
    """Cancel a task until it ends, at most `timeout` seconds; True if it ended."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while not task.done():
        if deadline is not None and loop.time() >= deadline:
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    if not task.cancelled():
        task.exception()  # retrieved, so a crash on the way out is not reported as unhandled
    return True


async def finish(coro: Coroutine[Any, Any, T]) -> T:
    """Run clean-up to its end even if the caller is cancelled meanwhile; then re-raise."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result
