"""Settings: TOML, then EDGE_* variables; one-line errors naming the file and key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from edge import settings as settings_mod
from edge.settings import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_load_without_a_file():
    loaded = settings_mod.load(None, {})
    assert loaded.http.port == 8080
    assert loaded.data_dir == "/var/lib/edge-gateway"


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, 'data_dir = "/srv/a"\n[http]\nport = 9000\nhost = "10.0.0.2"\n')
    loaded = settings_mod.load(path, {"EDGE_HTTP_PORT": "9100", "EDGE_DATA_DIR": "/srv/b"})
    assert (loaded.http.port, loaded.http.host, loaded.data_dir) == (9100, "10.0.0.2", "/srv/b")


def test_explicit_overrides_beat_environment_and_defaults_lose_to_everything(tmp_path):
    path = write(tmp_path, "[writer]\nmax_batch = 100\n")
    loaded = settings_mod.load(
        path,
        {"EDGE_WRITER_MAX_BATCH": "200"},
        defaults={"writer": {"max_batch": 50}, "log_level": "DEBUG"},
        writer={"max_batch": 300},
    )
    assert loaded.writer.max_batch == 300
    assert loaded.log_level == "DEBUG"


def test_settings_are_frozen():
    loaded = settings_mod.load(None, {})
    with pytest.raises(AttributeError):
        loaded.http.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[http]\nport = "abc"\n', "config.toml: [http] port: expected int, got str"),
        ("[http]\nport = 70000\n", "config.toml: [http] port: expected int <= 65535"),
        ("[http]\nprot = 1\n", "config.toml: [http] prot: unknown setting"),
        ("[htp]\nport = 1\n", "config.toml: htp: unknown section or setting"),
        ('log_level = "LOUD"\n', "config.toml: log_level: invalid enum value 'LOUD'"),
        ("[http\n", "config.toml: not valid TOML"),
    ],
)
def test_bad_file_names_the_file_and_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        settings_mod.load(path, {})
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path) in message
    assert expected in message


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match=r"^EDGE_HTTP_PORT: expected int, got str$"):
        settings_mod.load(None, {"EDGE_HTTP_PORT": "eighty"})


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        settings_mod.load(tmp_path / "absent.toml", {})


def test_cli_bad_config_is_one_line_and_exit_code_2(tmp_path):
    path = write(tmp_path, "[writer]\nmax_batch = -5\n")
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"edge: {path}: [writer] max_batch: expected int >= 1"
    assert result.stdout == ""


def _readme_settings() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([^`]+)` \| `(EDGE_[A-Z_]+)` \|.*\| (.+) \|$", line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


def test_every_setting_has_help_and_a_readme_row():
    documented = _readme_settings()
    described = settings_mod.describe()
    assert described, "no settings described"
    for info in described:
        assert info.help, f"{info.key} has no help text"
        assert info.toml in documented, f"README's settings table lacks {info.toml}"
        assert documented[info.toml][0] == info.env
    assert set(documented) == {i.toml for i in described}, "README documents unknown settings"


def test_describe_defaults_match_the_struct():
    defaults = msgspec.to_builtins(settings_mod.Settings())
    for info in settings_mod.describe():
        value = defaults
        for part in info.key.split("."):
            value = value[part]
        assert info.default == value
