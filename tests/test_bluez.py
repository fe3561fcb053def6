"""`edge bluez-check`: BlueZ's Experimental switch read from main.conf and bluetoothd's flags."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge import bluez

BOOT = 1_700_000_000


def fake_proc(tmp_path: Path, *argv: str, started_s: float = 50.0) -> Path:
    """A /proc with one bluetoothd (and an unrelated process) as the kernel lays it out."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text(f"cpu  1 2 3\nbtime {BOOT}\nprocesses 9\n")
    (proc / "self").mkdir()
    for pid, comm, args in ((1, "systemd", ["/sbin/init"]), (412, "bluetoothd", list(argv))):
        entry = proc / str(pid)
        entry.mkdir()
        (entry / "comm").write_text(comm + "\n")
        (entry / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
        fields = ["S", *["0"] * 18, str(int(started_s * 100)), "0"]
        (entry / "stat").write_text(f"{pid} ({comm} odd name) {' '.join(fields)}\n")
    return proc


def main_conf(tmp_path: Path, text: str, mtime: float = BOOT + 10) -> Path:
    path = tmp_path / "main.conf"
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


ON = (
    "[General]\n# Enables D-Bus experimental interfaces\nExperimental = true\n"
    "[Policy]\nAutoEnable=true\n"
)


def test_the_setting_in_main_conf_is_in_effect_when_bluetoothd_started_after_it(tmp_path):
    state = bluez.check(
        main_conf(tmp_path, ON), fake_proc(tmp_path, "/usr/libexec/bluetooth/bluetoothd")
    )
    assert state.configured is True
    assert state.daemon is not None and state.daemon.pid == 412
    assert state.in_effect
    assert state.report()[-1] == "passive BLE scanning is available"


def test_a_change_made_after_bluetoothd_started_needs_a_restart(tmp_path):
    conf = main_conf(tmp_path, ON, mtime=BOOT + 3600)
    state = bluez.check(conf, fake_proc(tmp_path, "/usr/libexec/bluetooth/bluetoothd"))
    assert not state.in_effect
    assert f"{conf} changed after bluetoothd started" in state.report()
    assert state.report()[-1] == "  then: systemctl restart bluetooth"


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/libexec/bluetooth/bluetoothd", "-E"],
        ["/usr/libexec/bluetooth/bluetoothd", "-nE"],
        ["/usr/libexec/bluetooth/bluetoothd", "--experimental", "-d"],
        ["/usr/libexec/bluetooth/bluetoothd", "-p", "a2dp", "-E"],
        ["/usr/libexec/bluetooth/bluetoothd", "-d", "-E"],
    ],
)
def test_the_daemons_experimental_flag_counts_whatever_main_conf_says(tmp_path, argv):
    state = bluez.check(main_conf(tmp_path, "[General]\nName = gw\n"), fake_proc(tmp_path, *argv))
    assert state.configured is None
    assert state.daemon is not None and state.daemon.experimental_flag
    assert state.in_effect


def test_an_option_value_that_contains_e_is_not_the_flag(tmp_path):
    proc = fake_proc(tmp_path, "/usr/libexec/bluetooth/bluetoothd", "-pE", "-dE")
    state = bluez.check(main_conf(tmp_path, "[General]\nExperimental = false\n"), proc)
    assert state.daemon is not None and not state.daemon.experimental_flag
    assert state.configured is False
    assert not state.in_effect
    assert "  set `Experimental = true` under [General] in" in state.report()[-2]


def test_without_bluetoothd_nothing_is_available_and_the_file_is_left_alone(tmp_path):
    conf = main_conf(tmp_path, ON)
    before = conf.read_bytes(), conf.stat().st_mtime_ns
    proc = fake_proc(tmp_path, "/usr/libexec/bluetooth/bluetoothd")
    (proc / "412" / "comm").write_text("bash\n")
    state = bluez.check(conf, proc)
    assert state.daemon is None and not state.in_effect
    assert "bluetoothd is not running (install and start bluez)" in state.report()
    assert (conf.read_bytes(), conf.stat().st_mtime_ns) == before


def test_the_command_exits_1_and_says_what_to_change_when_it_is_off(tmp_path):
    conf = main_conf(tmp_path, "[General]\n", mtime=time.time())
    done = subprocess.run(
        [sys.executable, "-m", "edge", "bluez-check", "--main-conf", str(conf)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == f"{conf}: Experimental = not set (off)"
    assert f"  set `Experimental = true` under [General] in {conf}" in done.stdout
