"""Fixtures for the sync tests: a second gateway run as a real OS process (the upstream), and
fault-injecting proxies on loopback standing for the uplink to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pytest

from tests.sync.proxy import FaultProxy

ROOT: Final = Path(__file__).resolve().parents[2]
HOST: Final = "127.0.0.1"
# Importing the app and opening the store takes about a second; a loaded CI box may take more.
START_TIMEOUT_S: Final = 30.0
# Longer than the gateway's own stop budget (supervisor.stop_timeout_s, 10 s by default).
STOP_TIMEOUT_S: Final = 15.0
# Another process may take the port between choosing it and the upstream binding it.
PORT_ATTEMPTS: Final = 3
# Rate limits no sync test meets unless it lowers them on purpose.
GENEROUS_API: Final = {
    "read_per_min": 1_000_000,
    "read_burst": 100_000,
    "write_per_min": 1_000_000,
    "write_burst": 100_000,
    "ingest_per_min": 1_000_000,
    "ingest_burst": 100_000,
}


class UpstreamProcess:
    """A gateway run with `edge run` as its own OS process, serving the /v1 API on loopback.

    Its data dir and port stay the same across `stop`, `kill`, `start` and `restart`, so a
    proxy or a downstream gateway pointed at it keeps working after it comes back.
    """

    def __init__(self, workdir: Path, settings: Mapping[str, Any], scopes: str) -> None:
        workdir.mkdir(parents=True)
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config = workdir / "config.toml"
        self.stderr_path = workdir / "stderr.log"
        self._settings = settings
        self._chose_port = "port" not in settings.get("http", {})
        self.port = _free_port() if self._chose_port else settings["http"]["port"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._write_config()
        self.key = self._create_key(scopes)
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=10
        )

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without a path."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """The /v1 base URL, as `sync.upstream_url` takes it."""
        return f"{self.url}/v1"

    @property
    def pid(self) -> int | None:
        """The running process's id; None when stopped."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """The process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the process (again) and return once /healthz answers 200."""
        if self.running:
            raise RuntimeError("the upstream is already running")
        attempts = PORT_ATTEMPTS if self._chose_port and self._starts == 0 else 1
        for attempt in range(attempts):
            if attempt:
                self.port = _free_port()
                self._write_config()
            if self._start_once():
                return
        pytest.fail(f"the upstream could not bind a port:\n{self.stderr_tail()}", pytrace=False)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within 15 s; returns the exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL, as a crash or a power cut of the process would; returns the exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        return proc.wait()

    def restart(self) -> None:
        """Stop cleanly, then start again on the same port and data dir."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Close the client and stop the process."""
        self.client.close()
        self.stop()

    def stderr_tail(self, lines: int = 40) -> str:
        """The last lines the process wrote (stdout and stderr), over all its starts."""
        if not self.stderr_path.exists():
            return "(no output)"
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])

    def _write_config(self) -> None:
        defaults: dict[str, Any] = {
            "log_level": "INFO",
            "gateway": {"organization": "Upstream"},
            # Survives a killed process (what the tests do), just not a power cut.
            "store": {"synchronous": "normal"},
            "api": dict(GENEROUS_API),
        }
        merged = {**defaults}
        for name, value in self._settings.items():
            merged[name] = (
                {**merged.get(name, {}), **value} if isinstance(value, Mapping) else value
            )
        merged["data_dir"] = str(self.data_dir)
        merged["http"] = {**merged.get("http", {}), "host": HOST, "port": self.port}
        self.config.write_text(_toml(merged), encoding="utf-8")

    def _create_key(self, scopes: str) -> str:
        result = subprocess.run(
            [*_edge(), "keys", "create", "--scopes", scopes, "--name", "downstream",
             "--config", str(self.config)],
            cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(f"edge keys create failed:\n{result.stderr}", pytrace=False)
        return result.stdout.strip().splitlines()[-1]

    def _start_once(self) -> bool:
        """Start and wait for health; False when the port turned out to be taken."""
        self._starts += 1
        with self.stderr_path.open("ab") as log:
            log.write(f"--- start {self._starts} on port {self.port} ---\n".encode())
            log.flush()
            offset = log.tell()
            self._proc = subprocess.Popen(
                [*_edge(), "run", "--config", str(self.config)],
                cwd=ROOT, env=_environment(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=1) as probe:
            while True:
                code = self._proc.poll()
                if code is not None:
                    self._proc = None
                    with self.stderr_path.open("rb") as log:
                        log.seek(offset)
                        if code == 2 and b"cannot listen on" in log.read():
                            return False
                    pytest.fail(
                        f"the upstream exited with {code} while starting:\n{self.stderr_tail()}",
                        pytrace=False,
                    )
                try:
                    if probe.get(f"{self.url}/healthz").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(
                        f"the upstream did not answer /healthz within {START_TIMEOUT_S:.0f} s:\n"
                        f"{self.stderr_tail()}",
                        pytrace=False,
                    )
                time.sleep(0.05)


def _edge() -> list[str]:
    return [sys.executable, "-m", "edge"]


def _environment() -> dict[str, str]:
    """This environment without EDGE_* variables, which would override the upstream's file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _toml(settings: Mapping[str, Any]) -> str:
    """Settings as TOML: top-level keys first, then one table per section."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in settings.items() if not isinstance(v, Mapping)]
    for name, table in settings.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are a subset of TOML basic strings' (with non-ASCII left as is).
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"no TOML for {value!r}")


@pytest.fixture
def upstream_process(tmp_path: Path) -> Iterator[Callable[..., UpstreamProcess]]:
    """Start upstream gateways as OS processes: `upstream_process(scopes="admin", **settings)`.

    `settings` are TOML sections or top-level keys merged over the defaults (generous `[api]`
    limits, `[gateway] organization = "Upstream"`), e.g. `api={"ingest_per_min": 60}`.
    All are stopped, and their clients closed, at teardown.
    """
    started: list[UpstreamProcess] = []

    def start(*, scopes: str = "admin", **settings: Any) -> UpstreamProcess:
        upstream = UpstreamProcess(tmp_path / f"upstream-{len(started)}", settings, scopes)
        started.append(upstream)
        upstream.start()
        return upstream

    yield start
    for upstream in reversed(started):
        upstream.close()


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Start fault proxies: `fault_proxy(target_url, port=0)`; only the URL's host and port
    count. All are closed at teardown."""
    proxies: list[FaultProxy] = []

    def start(target_url: str, port: int = 0) -> FaultProxy:
        target = urlsplit(target_url)
        if target.hostname is None or target.port is None:
            raise ValueError(f"{target_url!r} names no host and port")
        proxy = FaultProxy(target.hostname, target.port, port=port)
        proxies.append(proxy)
        return proxy.start()

    yield start
    for proxy in reversed(proxies):
        proxy.close()
