"""BlueZ's `Experimental` switch, which passive BLE scanning needs: looked at, never changed.

Passive scanning (BlueZ's AdvertisementMonitor API) is experimental in BlueZ 5.5x-5.7x:
bluetoothd offers it only with `Experimental = true` in the `[General]` section of its
main.conf or with `-E`/`--experimental` on its command line. That file belongs to the bluez
package and its administrator, so `edge bluez-check` reports what it finds and says what to
change, and nothing here writes it.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAIN_CONF: Final = Path("/etc/bluetooth/main.conf")
PROC: Final = Path("/proc")
# bluetoothd's short options that take a value (-p/-P plugins, -f the config file), and -d
# (debug), whose value is optional and so only ever attached (-dsrc/adapter.c).
_OPTIONS_WITH_VALUE: Final = frozenset("pPf")
_OPTIONAL_VALUE: Final = frozenset("d")


@dataclass(frozen=True, slots=True)
class Daemon:
    """A running bluetoothd as its command line and start time say."""

    pid: int
    experimental_flag: bool
    config: Path
    started_at: float


@dataclass(frozen=True, slots=True)
class Experimental:
    """What the configuration asks for and what the running daemon was given."""

    config: Path
    # None: the file is absent or has no Experimental key (BlueZ's default: off).
    configured: bool | None
    daemon: Daemon | None
    # The file changed after bluetoothd started, so what it says may not be in effect.
    changed_since_start: bool

    @property
    def in_effect(self) -> bool:
        """True if the running daemon offers experimental interfaces."""
        if self.daemon is None:
            return False
        return self.daemon.experimental_flag or (
            bool(self.configured) and not self.changed_since_start
        )

    def report(self) -> list[str]:
        """Lines for `edge bluez-check`: what was found, then what to do if it is off."""
        setting = {True: "true", False: "false", None: "not set (off)"}[self.configured]
        lines = [f"{self.config}: Experimental = {setting}"]
        if self.daemon is None:
            lines.append("bluetoothd is not running (install and start bluez)")
        else:
            flag = "with" if self.daemon.experimental_flag else "without"
            lines.append(f"bluetoothd (pid {self.daemon.pid}) runs {flag} --experimental")
        if self.changed_since_start:
            lines.append(f"{self.config} changed after bluetoothd started")
        if self.in_effect:
            lines.append("passive BLE scanning is available")
            return lines
        lines.append("passive BLE scanning is NOT available; to enable it:")
        if not self.configured:
            lines.append(f"  set `Experimental = true` under [General] in {self.config}")
        lines.append("  then: systemctl restart bluetooth")
        return lines


def configured(path: Path) -> bool | None:
    """The `[General] Experimental` value in a BlueZ main.conf; None if absent."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return None
    except configparser.Error:
        return None
    value = parser.get("General", "Experimental", fallback=None)
    if value is None:
        return None
    return value.strip().lower() in {"true", "yes", "1", "on"}


def _arguments(argv: list[str]) -> Iterator[tuple[str, str | None]]:
    """(option, value) pairs of a bluetoothd command line, short options unbundled."""
    args = iter(argv[1:])
    for arg in args:
        if arg.startswith("--"):
            name, _, value = arg.partition("=")
            if name in {"--configfile", "--plugin", "--noplugin"} and not value:
                value = next(args, "")
            yield name, value or None
        elif arg.startswith("-") and len(arg) > 1:
            for i, letter in enumerate(arg[1:], start=1):
                if letter in _OPTIONS_WITH_VALUE:
                    yield f"-{letter}", arg[i + 1 :] or next(args, "")
                    break
                if letter in _OPTIONAL_VALUE:
                    yield f"-{letter}", arg[i + 1 :] or None
                    break
                yield f"-{letter}", None


def daemons(proc: Path = PROC) -> Iterator[Daemon]:
    """Every running bluetoothd, read from /proc."""
    boot = _boot_time(proc)
    ticks = 100  # USER_HZ; every Linux architecture the gateway runs on uses 100
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "bluetoothd":
                continue
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
            # Field 22 is the start time; the command (field 2) may hold spaces, so count
            # from the closing parenthesis.
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        options = list(_arguments(argv))
        config = next((v for k, v in options if k in {"-f", "--configfile"} and v), None)
        yield Daemon(
            pid=int(entry.name),
            experimental_flag=any(k in {"-E", "--experimental"} for k, _ in options),
            config=Path(config) if config else MAIN_CONF,
            started_at=boot + int(stat[19]) / ticks,
        )


def _boot_time(proc: Path) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def check(main_conf: Path = MAIN_CONF, proc: Path = PROC) -> Experimental:
    """BlueZ's Experimental setting: in its configuration and in the running daemon."""
    daemon = next(daemons(proc), None)
    config = daemon.config if daemon is not None and main_conf == MAIN_CONF else main_conf
    changed = False
    if daemon is not None:
        try:
            changed = config.stat().st_mtime > daemon.started_at
        except OSError:
            changed = False
    return Experimental(
        config=config, configured=configured(config), daemon=daemon, changed_since_start=changed
    )
