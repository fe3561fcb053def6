"""Stopping tasks that swallow a cancel, as libraries using asyncio.wait_for can on 3.11."""

from __future__ import annotations

import asyncio

from edge.tasks import cancel_and_wait


def test_a_task_that_swallows_cancels_is_cancelled_again_until_it_stops(run):
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed >= 3:
                    raise

    async def scenario() -> bool:
        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        return await cancel_and_wait(task, timeout=5)

    assert run(scenario()) is True
    assert swallowed == 3


def test_a_task_that_will_not_stop_is_given_up_on_after_the_timeout(run):
    async def scenario() -> bool:
        release = asyncio.Event()

        async def deaf() -> None:
            while not release.is_set():
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    continue

        task = asyncio.create_task(deaf())
        await asyncio.sleep(0)
        ended = await cancel_and_wait(task, timeout=0.3)
        release.set()  # let it end by itself, so nothing is left running
        while task.cancelling():
            task.uncancel()
        await task
        return ended

    assert run(scenario()) is False
