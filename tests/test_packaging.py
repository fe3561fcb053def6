"""The Debian package's metadata held to the code: version, config path, stop timeout, lock.

Building and installing the package is `make deb-test` (packaging/install-test.sh), which CI
runs after these; here are the checks that need no build.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import edge
from edge import settings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "packaging" / "edge-gateway.service"
ARCHES = ("amd64", "arm64")


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> values (keys such as DeviceAllow repeat)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


def seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "ms": 0.001}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert match and match[2] in units, f"cannot read the time span {value!r}"
    return float(match[1]) * units[match[2]]


def test_the_changelog_names_the_version_in_edge_init():
    top = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    match = re.match(r"edge-gateway \(([^)]+)\) ", top)
    assert match, top
    assert match[1] == edge.__version__, (
        f"debian/changelog is at {match[1]}, edge/__init__.py at {edge.__version__}: "
        f"add an entry (dch -v {edge.__version__})"
    )


def test_the_unit_runs_the_packaged_config_which_is_the_default_config_path():
    service = unit_settings(UNIT)["Service"]
    assert service["ExecStart"] == [f"/usr/bin/edge run --config {settings.DEFAULT_CONFIG}"]
    installed = (ROOT / "debian" / "edge-gateway.install").read_text().splitlines()
    config = settings.DEFAULT_CONFIG
    assert f"packaging/{config.name} {config.parent.relative_to('/')}/" in installed
    assert service["ConfigurationDirectory"] == [settings.DEFAULT_CONFIG.parent.name]


def test_the_packaged_config_loads_and_keeps_state_where_the_unit_gives_it():
    loaded = settings.load(ROOT / "packaging" / "edge.toml", environ={})
    service = unit_settings(UNIT)["Service"]
    assert Path(loaded.data_dir) == Path("/var/lib") / service["StateDirectory"][0]
    assert service["User"] == ["edge-gateway"]


def test_the_unit_waits_longer_for_a_stop_than_the_gateway_takes():
    service = unit_settings(UNIT)["Service"]
    stop = seconds(service["TimeoutStopSec"][0])
    packaged = settings.load(ROOT / "packaging" / "edge.toml", environ={})
    for budget in (
        packaged.supervisor.stop_timeout_s,
        settings.Settings().supervisor.stop_timeout_s,
    ):
        # Margin for the interpreter's own exit after the store has closed.
        assert stop >= budget + 5, f"TimeoutStopSec={stop} leaves no margin over {budget} s"
    assert service["KillMode"] == ["mixed"]


def test_the_unit_is_hardened_as_the_package_promises():
    service = unit_settings(UNIT)["Service"]
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "DevicePolicy": "closed",
        "Restart": "on-failure",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == [value], key
    assert service["SystemCallFilter"][0] == "@system-service"
    assert set(service["RestrictAddressFamilies"][0].split()) <= {
        "AF_UNIX", "AF_INET", "AF_INET6", "AF_BLUETOOTH"
    }  # fmt: skip
    devices = [rule.split() for rule in service["DeviceAllow"]]
    assert devices and all(re.fullmatch(r"char-tty\w+", d) and m == "rw" for d, m in devices)


def locked(arch: str) -> dict[str, str]:
    text = (ROOT / "packaging" / f"requirements-{arch}.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, re.M)
    return {canonicalize_name(name): version for name, version in pins}


@pytest.mark.parametrize("arch", ARCHES)
def test_the_lock_holds_every_runtime_dependency_at_an_allowed_version(arch):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = locked(arch)
    text = (ROOT / "packaging" / f"requirements-{arch}.txt").read_text()
    assert text.count("--hash=sha256:") >= len(pins), "the lock is not hash-locked"
    for line in project["dependencies"]:
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is not in requirements-{arch}.txt: run make lock"
        assert wanted.specifier.contains(pins[name], prereleases=True), (
            f"requirements-{arch}.txt pins {name}=={pins[name]}, pyproject wants {wanted}: "
            "run make lock"
        )


def test_the_maintainer_scripts_are_valid_shell():
    for name in ("postinst", "prerm", "postrm"):
        script = ROOT / "debian" / f"edge-gateway.{name}"
        done = subprocess.run(
            ["sh", "-n", str(script)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{script.name}: {done.stderr}"
