"""The supervisor: restarts with backoff, logs a crash loop once, stops newest first."""

from __future__ import annotations

import asyncio
import logging

from edge import settings as settings_mod
from edge.supervisor import Supervisor


def supervisor(stable_after_s: float = 0.2) -> Supervisor:
    settings = settings_mod.load(None, {}, supervisor={"restart_max_s": 0.05})
    return Supervisor(settings.supervisor, stable_after_s=stable_after_s)


def test_a_crashing_task_restarts_and_is_logged_once_until_it_recovers(run, caplog):
    caplog.set_level(logging.DEBUG, logger="edge.supervisor")
    sup = supervisor()
    attempts = 0
    healthy = asyncio.Event()

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 4:
            raise ConnectionError(f"bus gone ({attempts})")
        healthy.set()
        await asyncio.Event().wait()

    sup.add("flaky", flaky)

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(sup.run(stop, grace_s=1))
        await asyncio.wait_for(healthy.wait(), 5)
        await asyncio.sleep(0.4)  # past stable_after_s: counts as recovered
        stop.set()
        await runner

    run(scenario())
    (state,) = sup.tasks
    assert (state.restarts, state.failures, state.running) == (4, 0, False)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage().startswith("task flaky crashed")
    assert errors[0].exc_info is not None
    assert sum("crashed again" in r.getMessage() for r in caplog.records) == 3
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["task flaky recovered after 4 restart(s)"]


def test_other_tasks_run_on_while_one_crashes(run):
    sup = supervisor()
    ticks = 0

    async def broken() -> None:
        raise RuntimeError("always")

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(sup.run(stop, grace_s=1))
        await asyncio.sleep(0.5)
        stop.set()
        await runner

    sup.add("broken", broken)
    sup.add("steady", steady)
    run(scenario())
    broken_state, steady_state = sup.tasks
    assert broken_state.restarts >= 3
    assert broken_state.last_error == "RuntimeError: always"
    assert steady_state.restarts == 0 and ticks > 20


def test_stop_asks_newest_task_first_then_cancels_what_lingers(run):
    sup = supervisor()
    order: list[str] = []

    def make(name: str):
        done = asyncio.Event()

        async def body() -> None:
            try:
                await done.wait()
            finally:
                order.append(name)

        def stop() -> None:
            done.set()

        return body, stop

    intake, intake_stop = make("intake")
    web, web_stop = make("web")

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            order.append("stubborn")

    sup.add("stubborn", stubborn)
    sup.add("web", web, stop=web_stop)
    sup.add("intake", intake, stop=intake_stop)

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(sup.run(stop, grace_s=1))
        await asyncio.sleep(0.05)
        stop.set()
        await runner

    run(scenario())
    assert order == ["intake", "web", "stubborn"]


def test_a_task_that_returns_is_not_restarted(run):
    sup = supervisor()
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1

    sup.add("once", once)

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(sup.run(stop, grace_s=1))
        await asyncio.sleep(0.2)
        stop.set()
        await runner

    run(scenario())
    assert calls == 1 and sup.tasks[0].restarts == 0
