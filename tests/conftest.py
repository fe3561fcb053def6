"""Shared fixtures: real SQLite files in temporary dirs, a running gateway over real HTTP,
and a guard that fails any test leaving threads, tasks, connections or sockets behind."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from edge import gateway
from edge import settings as settings_mod
from edge.runtime import Runtime
from edge.settings import Settings
from edge.store import Store

ROOT = Path(__file__).resolve().parent.parent
# Threads and sockets may take a moment to wind down after a clean stop.
LEAK_GRACE_S = 2.0


def _sockets() -> set[str]:
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"{fd.name}->{target}")
    return found


def _describe(fd_socket: str) -> str:
    """Name a leaked socket by its TCP endpoints and state, when it is a TCP socket."""
    inode = fd_socket.split("[")[-1].rstrip("]")
    states = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] == inode:
                local, remote = (int(f.split(":")[1], 16) for f in fields[1:3])
                state = states.get(fields[3], fields[3])
                return f"{fd_socket} tcp port {local} -> {remote} {state}"
    return fd_socket


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves threads, apsw connections or sockets open."""
    threads = set(threading.enumerate())
    sockets = _sockets()
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    while True:
        # A socket only garbage refers to is closed by the collector, so it is no leak: asyncio
        # drops (without closing) a connection accepted in the same tick its server closes.
        gc.collect()
        extra_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        extra_sockets = _sockets() - sockets
        connections = apsw.connections()
        if not (extra_threads or extra_sockets or connections) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    problems = []
    if extra_threads:
        problems.append(f"threads left running: {[t.name for t in extra_threads]}")
    if connections:
        problems.append(f"{len(connections)} apsw connection(s) left open")
        for conn in connections:
            conn.close()
    if extra_sockets:
        problems.append(f"sockets left open: {[_describe(s) for s in sorted(extra_sockets)]}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine in a fresh loop and fail if it leaves tasks pending."""

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        async def guarded() -> Any:
            result = await coro
            await asyncio.sleep(0)
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:
                for task in pending:
                    task.cancel()
                pytest.fail(f"tasks left pending: {[t.get_name() for t in pending]}")
            return result

        return asyncio.run(guarded())

    return runner


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a temporary data dir and an OS-chosen HTTP port."""
    return settings_mod.load(
        None, {}, data_dir=str(tmp_path / "data"), http={"host": "127.0.0.1", "port": 0}
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """An open store on a fresh SQLite file."""
    opened = Store.open(settings)
    yield opened
    opened.close()


@dataclass
class RunningGateway:
    """A gateway serving real HTTP on loopback, inside the test process."""

    url: str
    runtime: Runtime
    client: httpx.Client


@pytest.fixture
def gateway_factory(settings: Settings) -> Iterator[Callable[..., RunningGateway]]:
    """Start gateways (demo source optional) on their own loop thread; all stop at teardown."""
    stops: list[Callable[[], None]] = []

    def start(demo: bool = False, settings_: Settings | None = None) -> RunningGateway:
        chosen = settings_ or settings
        sock = gateway.bind(chosen.http.host, chosen.http.port)
        ready: dict[str, Any] = {}
        started = threading.Event()
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()

        def on_ready(runtime: Runtime) -> None:
            ready["runtime"] = runtime
            started.set()

        def main() -> None:
            try:
                loop.run_until_complete(
                    gateway.serve(
                        chosen, sock, demo=demo, stop=stop, on_ready=on_ready, handle_signals=False
                    )
                )
            finally:
                # Wait for to_thread workers, so none outlives the test as a "leak".
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()
                started.set()

        thread = threading.Thread(target=main, name="test-gateway")
        thread.start()
        started.wait(30)
        port = sock.getsockname()[1]
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

        def shutdown() -> None:
            # The server goes first: it closes its own idle keep-alive connections. Closing the
            # client first could leave the server's side in CLOSE_WAIT on a loop that has ended.
            loop.call_soon_threadsafe(stop.set)
            thread.join(30)
            client.close()
            sock.close()

        stops.append(shutdown)
        if "runtime" not in ready:
            raise RuntimeError("the gateway did not start")
        return RunningGateway(f"http://127.0.0.1:{port}", ready["runtime"], client)

    yield start
    for shutdown in reversed(stops):
        shutdown()


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MiB filesystem (tmpfs), so the disk really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of the filesystem with a ballast file."""
    ballast = directory / "ballast"
    with ballast.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return ballast


class ModbusServer:
    """A simulator serving on loopback from its own loop thread; stop and start it at will."""

    def __init__(self, simulator: Any, framer: str) -> None:
        self.simulator = simulator
        self.framer = framer
        self.port = 0
        self._task: asyncio.Task[Any] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="modbus-server", daemon=True
        )
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> int:
        """Serve (on the same port as before, if it ran already); returns the port."""

        async def begin() -> int:
            self.simulator.started.clear()
            self._task = asyncio.create_task(
                self.simulator.serve_tcp("127.0.0.1", self.port, framer=self.framer)
            )
            await asyncio.wait_for(self.simulator.wait_started(), 10)
            return self.simulator.listening_port

        self.port = self._call(begin())
        return self.port

    def stop(self) -> None:
        """Stop serving; connected clients see the connection drop."""

        async def end() -> None:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None

        self._call(end())

    def close(self) -> None:
        """Stop serving and end the loop thread."""
        self.stop()
        self._call(self._loop.shutdown_default_executor())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def modbus_server() -> Iterator[Callable[..., ModbusServer]]:
    """Start simulators of profiles (with faults) on loopback; all stop at teardown."""
    from drivers.modbus.simulator import Simulator, UnitSpec

    servers: list[ModbusServer] = []

    def start(
        units: dict[int, str], faults: Any = None, framer: str = "socket", frozen: bool = False
    ) -> ModbusServer:
        simulator = Simulator([UnitSpec(u, p) for u, p in units.items()], faults)
        if frozen:  # values stay put, so what was read can be compared exactly
            simulator.tick = lambda dt_s: None
        server = ModbusServer(simulator, framer)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()
