"""The composition root: opens the store and runs the web server, drivers and housekeeping.

This is the only module of `edge` that imports `drivers`, `web` and `sync`.
Stopping (SIGTERM, SIGINT or the `stop` event): the supervisor stops the
tasks newest first, so intake ends before anything else; then the store
commits what is queued and closes, all within `stop_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

import uvicorn

from drivers.ble import demo as ble_demo
from drivers.ble import profiles as ble_profiles
from drivers.modbus import ModbusDriver
from drivers.modbus import profiles as modbus_profiles
from drivers.modbus.bus import TRANSPORTS as MODBUS_TRANSPORTS
from drivers.modbus.demo import DemoPlant
from drivers.modbus.devices import add_from_body as modbus_from_body
from drivers.modbus.probe import probe as modbus_probe
from edge.alarms import AlarmEngine
from edge.devices import add_http_device
from edge.jobs import JobRunner
from edge.runtime import Runtime
from edge.settings import Settings
from edge.store import Store
from edge.supervisor import Supervisor
from sync.agent import SyncAgent
from sync.webhooks import WebhookDispatcher
from web import create_asgi

log = logging.getLogger(__name__)

# Share of the stop budget given to tasks; the rest is the store's to flush and close.
TASK_SHARE: Final = 0.6
# Open HTTP connections get this long to finish after a stop is asked.
HTTP_DRAIN_S: Final = 2.0
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


class ListenError(Exception):
    """The HTTP address cannot be bound."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound now so a busy port fails start-up with a clear message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol says TCP; without it, keep-alive responses wait ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(False)
    return sock


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The gateway owns SIGTERM/SIGINT; uvicorn would re-raise them after its own shutdown.
        yield


class HttpServer:
    """uvicorn serving the app on a socket bound at start-up; restartable by the supervisor."""

    def __init__(self, runtime: Runtime, sock: socket.socket) -> None:
        self._app = create_asgi(runtime)
        self._sock = sock
        self._server: _Uvicorn | None = None

    async def serve(self) -> None:
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=HTTP_DRAIN_S,
            lifespan="on",
        )
        self._server = _Uvicorn(config)
        # uvicorn closes the sockets it is given; a duplicate keeps ours for a restart.
        await self._server.serve(sockets=[self._sock.dup()])
        if not self._server.started:
            raise RuntimeError("the HTTP server did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def _sensor_profiles() -> list[dict[str, Any]]:
    return modbus_profiles.sensor_profiles() + ble_profiles.sensor_profiles()


async def _retention(runtime: Runtime) -> None:
    settings = runtime.settings.retention
    while True:
        dropped = await asyncio.to_thread(runtime.store.apply_retention, settings.days)
        if dropped:
            log.info(
                "retention dropped %d synced readings older than %d days", dropped, settings.days
            )
        await asyncio.sleep(settings.interval_s)


async def serve(
    settings: Settings,
    sock: socket.socket,
    *,
    demo: bool = False,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Runtime], Awaitable[None] | None] | None = None,
    handle_signals: bool = True,
) -> bool:
    """Run the gateway until `stop` is set or a signal arrives; True if the store closed clean."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    store = await asyncio.to_thread(Store.open, settings)
    supervisor = Supervisor(settings.supervisor)
    runtime = Runtime(
        settings,
        store,
        supervisor,
        profiles=modbus_profiles.as_data,
        sensor_profiles=_sensor_profiles,
    )
    budget = settings.supervisor.stop_timeout_s
    try:
        http = HttpServer(runtime, sock)
        supervisor.add("retention", lambda: _retention(runtime))
        supervisor.add("http", http.serve, stop=http.stop)
        if demo:
            plant = DemoPlant(store, store.organization.id)
            await asyncio.to_thread(plant.prepare)
            try:
                await plant.start()  # before the pollers, so they find their devices listening
            except BaseException:
                await plant.stop()
                raise
            supervisor.add("demo-plant", plant.run)
        modbus = ModbusDriver(store, store.organization.id)
        runtime.stats_sources.append(modbus)
        runtime.drivers.append(modbus)
        runtime.device_types["http"] = add_http_device
        runtime.device_types.update(dict.fromkeys(MODBUS_TRANSPORTS, modbus_from_body))
        runtime.probes.update(dict.fromkeys(MODBUS_TRANSPORTS, modbus_probe))
        supervisor.add("modbus", modbus.run)
        ble_plant = ble_demo.BleDemo(store, store.organization.id) if demo else None
        if ble_plant is not None:
            await asyncio.to_thread(ble_plant.prepare)
            supervisor.add("demo-ble", ble_plant.run)
        ble = ble_demo.driver(store, store.organization.id, settings.ble, ble_plant)
        runtime.stats_sources.append(ble)
        runtime.drivers.append(ble)
        runtime.device_types["ble"] = ble.add_from_body
        runtime.discovery.append(ble)
        supervisor.add("ble", ble.run)
        engine = AlarmEngine(runtime)
        supervisor.add("alarms", engine.run)
        agent = SyncAgent(runtime)
        runtime.stats_sources.append(agent)
        runtime.status_sources["sync"] = agent.status
        supervisor.add("sync", agent.run)
        supervisor.add("webhooks", WebhookDispatcher(runtime).run)
        jobs = JobRunner(store, settings)
        supervisor.add("jobs", jobs.run, stop=jobs.stop)
        if handle_signals:
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, stop.set)
        host, port = sock.getsockname()[:2]
        log.info("listening on http://%s:%d/ with data in %s", host, port, settings.data_dir)
        if on_ready is not None:
            result = on_ready(runtime)
            if result is not None:
                await result
        await supervisor.run(stop, grace_s=budget * TASK_SHARE)
    finally:
        if handle_signals:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        clean = await asyncio.to_thread(store.close, budget * (1 - TASK_SHARE))
    if clean:
        log.info("stopped; every accepted reading is committed")
    else:
        log.error("stopped with readings the disk would not take")
    return clean
