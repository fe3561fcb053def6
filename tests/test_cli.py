"""The `edge` command as a user runs it: help, keys, demo, a clean stop on SIGTERM."""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edge import __version__
from edge.cli import build_parser, main
from edge.store import check_database

STOP_BUDGET_S = 10


def edge(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _command_paths(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _command_paths(sub, (*prefix, name))


def test_every_command_has_help(capsys):
    paths = list(_command_paths(build_parser()))
    assert ("db", "vacuum") in paths and ("keys", "create") in paths
    for path in [(), *paths]:
        with pytest.raises(SystemExit) as caught:
            main([*path, "--help"])
        assert caught.value.code == 0
        assert "usage: edge" in capsys.readouterr().out


def test_version_prints_the_package_version():
    result = edge("version")
    assert (result.returncode, result.stdout) == (0, f"edge-gateway {__version__}\n")


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(tmp_path):
    result = edge("keys", "create", "--scopes", "devices.read,telemetry.read",
                  "--name", "scada", "--data-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    secret = result.stdout.splitlines()[-1]
    assert re.fullmatch(r"sk_live_[A-Za-z0-9_-]{32,}", secret)
    assert "devices.read, telemetry.read" in result.stdout
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("edge.db*"))
    assert secret.encode() not in raw
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw


def test_keys_create_refuses_an_unknown_scope_in_one_line(tmp_path):
    result = edge("keys", "create", "--scopes", "devices.read,devices.destroy",
                  "--data-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("edge: --scopes: unknown scope devices.destroy")
    assert result.stderr.count("\n") == 1


def test_a_busy_port_fails_start_up_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = edge("demo", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"edge: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def _start_demo(*args: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "demo", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        match = re.search(r"listening on (http://[\d.]+:\d+)/", line)
        if match:
            return proc, match[1], lines
    proc.kill()
    raise AssertionError("the demo never listened:\n" + "".join(lines))


def _wait_for_readings(url: str, at_least: float) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics").text
        match = re.search(r"^edge_readings_written_total ([0-9.e+]+)$", text, re.M)
        if match and float(match[1]) >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError("no readings were written")


def test_sigterm_stops_intake_flushes_and_exits_within_ten_seconds(tmp_path):
    proc, url, lines = _start_demo("--data-dir", str(tmp_path))
    _wait_for_readings(url, 300)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=STOP_BUDGET_S + 5)
    assert time.monotonic() - started < STOP_BUDGET_S
    assert proc.returncode == 0, out
    assert "every accepted reading is committed" in out
    assert "Traceback" not in "".join(lines) + out
    assert check_database(tmp_path / "edge.db") == []
    assert not (tmp_path / "edge.db-wal").exists() or (tmp_path / "edge.db-wal").stat().st_size == 0


def test_demo_without_a_data_dir_uses_a_throwaway_one(tmp_path):
    proc, url, lines = _start_demo()
    banner = "".join(lines)
    data = Path(re.search(r"data in (\S+)\)", banner)[1])
    assert data.is_dir()
    _wait_for_readings(url, 100)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=STOP_BUDGET_S + 5)
    assert proc.returncode == 0
    assert not data.exists()


def test_keys_are_listed_without_secrets_and_revoked_by_id(tmp_path):
    made = edge("keys", "create", "--scopes", "devices.read", "--name", "scada",
                "--data-dir", str(tmp_path))  # fmt: skip
    secret = made.stdout.splitlines()[-1]
    listed = edge("keys", "list", "--data-dir", str(tmp_path)).stdout
    assert "scada" in listed and "active" in listed and secret not in listed
    key_id = listed.split()[0]
    assert edge("keys", "revoke", key_id, "--data-dir", str(tmp_path)).returncode == 0
    assert "revoked" in edge("keys", "list", "--data-dir", str(tmp_path)).stdout
    again = edge("keys", "revoke", key_id, "--data-dir", str(tmp_path))
    assert again.returncode == 1 and again.stderr.startswith("edge: no active key")


def test_keys_can_be_limited_to_customers_and_existing_groups_only(tmp_path):
    unknown = edge("keys", "create", "--scopes", "devices.read", "--groups", "grp_nope",
                   "--data-dir", str(tmp_path))  # fmt: skip
    assert unknown.returncode == 2
    assert unknown.stderr == "edge: --groups: no device group grp_nope\n"
    made = edge("keys", "create", "--scopes", "devices.read", "--customers", "cus_a, cus_b",
                "--data-dir", str(tmp_path))  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = edge("keys", "list", "--data-dir", str(tmp_path)).stdout
    assert "customers=cus_a,cus_b" in listed
