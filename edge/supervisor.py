"""The supervisor: named long-running tasks in one event loop, restarted when they crash.

A crash is logged once at ERROR with its traceback; further crashes of the
same task are logged at DEBUG until it has stayed up for `STABLE_AFTER_S`,
which is logged once at INFO as its recovery. Restarts wait an exponential
backoff with full jitter, capped by `restart_max_s`, so a task that crashes
at once does not spin and many tasks do not retry in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from edge.settings import SupervisorSettings
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# A restarted task that stays up this long counts as recovered: backoff resets.
STABLE_AFTER_S: Final = 30.0
# First restart delay; doubles per consecutive crash up to restart_max_s.
FIRST_BACKOFF_S: Final = 0.5
# Even past the stop budget, each task gets this long to unwind after its cancel.
STOP_FLOOR_S: Final = 0.5


@dataclass
class TaskState:
    """What the supervisor knows of one task, for /metrics and the UI."""

    name: str
    restarts: int = 0
    failures: int = 0
    running: bool = False
    last_error: str | None = None


@dataclass
class _Spec:
    name: str
    factory: Callable[[], Awaitable[None]]
    stop: Callable[[], None] | None
    state: TaskState
    task: asyncio.Task[None] | None = field(default=None)


class Supervisor:
    """Starts tasks, restarts them on crashes, and stops them in reverse order."""

    def __init__(self, settings: SupervisorSettings, stable_after_s: float = STABLE_AFTER_S):
        self._settings = settings
        self._stable_after_s = stable_after_s
        self._specs: list[_Spec] = []
        self._stopping = False

    @property
    def tasks(self) -> list[TaskState]:
        """Every task's state, in start order."""
        return [spec.state for spec in self._specs]

    def add(
        self,
        name: str,
        factory: Callable[[], Awaitable[None]],
        stop: Callable[[], None] | None = None,
    ) -> None:
        """Register a task; `stop` asks it to finish on its own before it is cancelled."""
        if any(spec.name == name for spec in self._specs):
            raise ValueError(f"a task named {name!r} exists")
        self._specs.append(_Spec(name, factory, stop, TaskState(name)))

    async def run(self, stop: asyncio.Event, grace_s: float) -> None:
        """Run every task until `stop` is set, then stop them, newest first, within `grace_s`."""
        for spec in self._specs:
            spec.task = asyncio.create_task(self._keep(spec), name=f"supervised:{spec.name}")
        try:
            await stop.wait()
        finally:
            await self._stop_all(grace_s)

    async def _stop_all(self, grace_s: float) -> None:
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        for spec in reversed(self._specs):
            if spec.task is None:
                continue
            if spec.stop is not None and spec.state.running:
                spec.stop()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(
                        asyncio.shield(spec.task), max(0.0, deadline - loop.time())
                    )
            if not await cancel_and_wait(spec.task, max(STOP_FLOOR_S, deadline - loop.time())):
                log.error("task %s did not stop in time", spec.name)

    async def _keep(self, spec: _Spec) -> None:
        loop = asyncio.get_running_loop()
        state = spec.state
        while True:
            started = loop.time()
            watch = loop.call_later(self._stable_after_s, self._recovered, state)
            state.running = True
            try:
                await spec.factory()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                crashed = error
            else:
                if not self._stopping:
                    log.info("task %s finished", state.name)
                return
            finally:
                state.running = False
                watch.cancel()
            if self._stopping:
                return
            if loop.time() - started >= self._stable_after_s:
                state.failures = 0
            state.failures += 1
            state.restarts += 1
            state.last_error = f"{type(crashed).__name__}: {crashed}"
            delay = self._backoff(state.failures)
            if state.failures == 1:
                log.error(
                    "task %s crashed; restarting (further crashes logged at DEBUG until it "
                    "recovers)",
                    state.name,
                    exc_info=crashed,
                )
            else:
                log.debug("task %s crashed again (%s); retry in %.1f s", state.name, crashed, delay)
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        cap = min(self._settings.restart_max_s, FIRST_BACKOFF_S * 2 ** (failures - 1))
        return random.uniform(0, cap)

    def _recovered(self, state: TaskState) -> None:
        if state.failures and state.running:
            log.info("task %s recovered after %d restart(s)", state.name, state.restarts)
            state.failures = 0
            state.last_error = None
