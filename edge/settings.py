"""Gateway settings: one TOML file, then `EDGE_*` environment variables, loaded once.

Settings are frozen typed objects passed down explicitly; nothing reads the
environment after `load()`. A key `[section] key` is overridden by
`EDGE_SECTION_KEY`, a top-level `key` by `EDGE_KEY`. Every setting carries its
help text in its `Meta`, which `describe()` lists and the README's settings
table must match.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

DEFAULT_CONFIG = Path("/etc/edge-gateway/edge.toml")


class ConfigError(Exception):
    """A settings problem, worded as one line naming the file (or variable) and key."""


def _s(description: str, **constraints: Any) -> msgspec.Meta:
    return msgspec.Meta(description=description, **constraints)


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class GatewaySettings(_Section):
    organization: Annotated[
        str, _s("Name of the organization that owns this gateway's data.", min_length=1)
    ] = "Default organization"


class HttpSettings(_Section):
    host: Annotated[str, _s("Address the web UI and API listen on.", min_length=1)] = "0.0.0.0"
    port: Annotated[
        int, _s("TCP port of the web UI and API; 0 takes any free port.", ge=0, le=65535)
    ] = 8080


class StoreSettings(_Section):
    synchronous: Annotated[
        Literal["full", "normal"],
        _s(
            "SQLite fsync policy: full survives power cuts, normal only process crashes "
            "(fewer writes on SD cards)."
        ),
    ] = "full"
    readers: Annotated[int, _s("Reader connections kept open for queries.", ge=1, le=64)] = 4
    cache_mb: Annotated[int, _s("Page cache per connection, in MiB.", ge=1, le=4096)] = 16


class WriterSettings(_Section):
    max_batch: Annotated[
        int, _s("Most readings committed in one transaction.", ge=1, le=1_000_000)
    ] = 20_000
    queue_max: Annotated[
        int,
        _s(
            "Readings that may wait uncommitted (e.g. while the disk is full) "
            "before new ones are refused.",
            ge=1,
        ),
    ] = 500_000
    retry_s: Annotated[
        float, _s("Pause before retrying a write the disk refused, in seconds.", gt=0, le=300)
    ] = 1.0


class RetentionSettings(_Section):
    days: Annotated[
        int, _s("Synced readings older than this many days are dropped; 0 keeps all.", ge=0)
    ] = 90
    interval_s: Annotated[int, _s("How often retention runs, in seconds.", ge=10, le=86_400)] = 3600


class SupervisorSettings(_Section):
    restart_max_s: Annotated[
        float, _s("Longest pause before restarting a crashed task, in seconds.", gt=0, le=3600)
    ] = 60.0
    stop_timeout_s: Annotated[
        float, _s("Time allowed for a clean stop on SIGTERM, in seconds.", gt=0, le=300)
    ] = 10.0


class ApiSettings(_Section):
    read_per_min: Annotated[int, _s("API reads (GET, HEAD) allowed per key per minute.", ge=1)] = (
        600
    )
    read_burst: Annotated[int, _s("API reads a key may make at once.", ge=1)] = 120
    write_per_min: Annotated[
        int, _s("API writes (POST, PATCH, DELETE) allowed per key per minute.", ge=1)
    ] = 120
    write_burst: Annotated[int, _s("API writes a key may make at once.", ge=1)] = 30
    ingest_per_min: Annotated[
        int, _s("Telemetry ingest requests allowed per key per minute.", ge=1)
    ] = 10_000
    ingest_burst: Annotated[int, _s("Telemetry ingest requests a key may make at once.", ge=1)] = (
        2_000
    )
    report_per_hour: Annotated[int, _s("Report runs a key may start per hour.", ge=1)] = 30
    report_burst: Annotated[int, _s("Report runs a key may start at once.", ge=1)] = 5


class SyncSettings(_Section):
    upstream_url: Annotated[
        str,
        _s(
            "Base URL of the upstream's /v1 API (e.g. https://api.example.com/v1); empty: no "
            "upstream, readings are kept until one is set."
        ),
    ] = ""
    api_key: Annotated[str, _s("API key the gateway presents to the upstream (Bearer).")] = ""
    tenant: Annotated[str, _s("X-SGT-Tenant sent upstream; empty: none.")] = ""
    batch_size: Annotated[int, _s("Most readings pushed in one request.", ge=1, le=1000)] = 1000
    in_flight: Annotated[int, _s("Push requests sent concurrently.", ge=1, le=32)] = 8
    idle_s: Annotated[
        float, _s("Pause before looking for new readings when all are pushed, in seconds.", gt=0)
    ] = 1.0
    pull_interval_s: Annotated[
        float, _s("Pause between pulls of devices, sites and groups, in seconds.", gt=0)
    ] = 60.0
    timeout_s: Annotated[float, _s("Timeout of one upstream request, in seconds.", gt=0)] = 30.0
    backoff_max_s: Annotated[
        float, _s("Longest pause between retries while the upstream fails, in seconds.", gt=0)
    ] = 300.0


class WebhooksSettings(_Section):
    retry_base_s: Annotated[
        float,
        _s(
            "First pause before retrying a failed webhook delivery, in seconds; later pauses "
            "grow from it (x3, x12, x60, ... x2880), with jitter.",
            gt=0,
            le=3600,
        ),
    ] = 10.0
    max_attempts: Annotated[
        int, _s("Attempts at a webhook delivery before it is marked failed.", ge=1, le=20)
    ] = 10
    timeout_s: Annotated[
        float, _s("Time one webhook delivery attempt may take, in seconds.", gt=0, le=60)
    ] = 10.0
    poll_s: Annotated[
        float,
        _s(
            "Pause before looking again for new events and due webhook deliveries, in seconds.",
            gt=0,
            le=60,
        ),
    ] = 1.0


class NotifySettings(_Section):
    smtp_host: Annotated[
        str, _s("Mail relay that e-mail notification channels send through; empty: none.")
    ] = ""
    smtp_port: Annotated[int, _s("TCP port of the mail relay.", ge=1, le=65535)] = 25
    smtp_starttls: Annotated[
        bool, _s("Upgrade the relay connection with STARTTLS before sending.")
    ] = False
    smtp_username: Annotated[str, _s("User name for the relay; empty: no login.")] = ""
    smtp_password: Annotated[str, _s("Password for the relay.")] = ""
    smtp_from: Annotated[str, _s("Sender address of notification e-mails.", min_length=3)] = (
        "edge-gateway@localhost"
    )


class JobsSettings(_Section):
    keep_s: Annotated[
        float,
        _s(
            "How long a finished report or export file is kept before it is deleted, in seconds.",
            gt=0,
        ),
    ] = 86_400.0
    link_ttl_s: Annotated[
        float,
        _s(
            "How long a report or export download URL is valid, in seconds (never past the "
            "file's expiry).",
            gt=0,
        ),
    ] = 3600.0
    poll_s: Annotated[
        float,
        _s(
            "Pause before looking again for queued jobs and expired files, in seconds.", gt=0, le=60
        ),
    ] = 1.0


class BleSettings(_Section):
    enabled: Annotated[bool, _s("Listen to BLE sensors at all.")] = True
    transport: Annotated[
        Literal["bluez", "bumble-virtual", "usb"],
        _s(
            "How the gateway reaches its radio: bluez (the system's BlueZ over D-Bus), "
            "bumble-virtual (a Bumble virtual controller: tests and the demo) or usb (Bumble "
            "driving a USB HCI dongle directly, for gateways without BlueZ)."
        ),
    ] = "bluez"
    adapter: Annotated[
        str,
        _s(
            "The adapter: a BlueZ name (hci0) for bluez; a Bumble HCI transport "
            "(tcp-client:HOST:PORT, or local:NAME for an in-process link) for bumble-virtual; "
            "the dongle (usb:0, usb:VID:PID) for usb.",
            min_length=1,
        ),
    ] = "hci0"
    passive: Annotated[
        bool,
        _s("Scan passively (BlueZ >= 5.56 with Experimental); active scans still run on demand."),
    ] = True
    watchdog_s: Annotated[
        float, _s("Restart the scanner after this many seconds without any advert.", gt=0)
    ] = 90.0
    stale_multiple: Annotated[
        float,
        _s("A sensor is stale after this many of its learned advert intervals of silence.", ge=1),
    ] = 10.0
    stale_default_s: Annotated[
        float,
        _s(
            "A sensor whose advert interval is not learned yet is stale after this many seconds.",
            gt=0,
        ),
    ] = 900.0


class UiSettings(_Section):
    session_idle_min: Annotated[
        int, _s("A UI session ends after this many minutes without a request.", ge=1, le=10_080)
    ] = 60
    session_max_h: Annotated[
        int, _s("A UI session ends this many hours after sign-in, however busy.", ge=1, le=720)
    ] = 12


class Settings(_Section):
    data_dir: Annotated[
        str, _s("Directory holding the database and other state.", min_length=1)
    ] = "/var/lib/edge-gateway"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], _s("Least severe log level written.")
    ] = "INFO"
    gateway: GatewaySettings = GatewaySettings()
    http: HttpSettings = HttpSettings()
    store: StoreSettings = StoreSettings()
    writer: WriterSettings = WriterSettings()
    retention: RetentionSettings = RetentionSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    api: ApiSettings = ApiSettings()
    sync: SyncSettings = SyncSettings()
    webhooks: WebhooksSettings = WebhooksSettings()
    notify: NotifySettings = NotifySettings()
    jobs: JobsSettings = JobsSettings()
    ble: BleSettings = BleSettings()
    ui: UiSettings = UiSettings()

    @property
    def database_path(self) -> Path:
        """The SQLite file inside the data dir."""
        return Path(self.data_dir) / "edge.db"


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One setting as the README and `edge settings` describe it."""

    key: str
    toml: str
    env: str
    type: str
    default: Any
    help: str


def _type_name(t: msgspec.inspect.Type) -> str:
    if isinstance(t, msgspec.inspect.Metadata):
        return _type_name(t.type)
    if isinstance(t, msgspec.inspect.LiteralType):
        return "one of " + ", ".join(str(v) for v in t.values)
    names = {
        msgspec.inspect.IntType: "int",
        msgspec.inspect.FloatType: "float",
        msgspec.inspect.StrType: "str",
        msgspec.inspect.BoolType: "bool",
    }
    return names.get(type(t), type(t).__name__)


def _description(t: msgspec.inspect.Type) -> str:
    if isinstance(t, msgspec.inspect.Metadata):
        return (t.extra_json_schema or {}).get("description", "")
    return ""


def _leaves() -> Iterator[tuple[tuple[str, ...], msgspec.inspect.Type]]:
    """(path, type) of every setting, sections first-level only."""
    for field in _struct_fields(Settings):
        if isinstance(field.type, msgspec.inspect.StructType):
            for sub in _struct_fields(field.type.cls):
                yield (field.name, sub.name), sub.type
        else:
            yield (field.name,), field.type


def _struct_fields(struct: type[msgspec.Struct]) -> tuple[msgspec.inspect.Field, ...]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return info.fields


def _env_name(path: tuple[str, ...]) -> str:
    return "EDGE_" + "_".join(path).upper()


def _toml_key(path: tuple[str, ...]) -> str:
    return f"[{path[0]}] {path[1]}" if len(path) == 2 else path[0]


def describe() -> list[SettingInfo]:
    """Every setting: TOML key, environment variable, type, default and help."""
    defaults = msgspec.to_builtins(Settings())
    out = []
    for path, ftype in _leaves():
        default = defaults
        for part in path:
            default = default[part]
        out.append(
            SettingInfo(
                key=".".join(path),
                toml=_toml_key(path),
                env=_env_name(path),
                type=_type_name(ftype),
                default=default,
                help=_description(ftype),
            )
        )
    return out


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _explain(error: msgspec.ValidationError) -> tuple[tuple[str, ...], str]:
    """Split msgspec's message into the key path and a lower-case reason."""
    match = _AT.match(str(error))
    assert match is not None
    what = match["what"].replace("`", "")
    path = tuple(p for p in (match["path"] or "").split(".") if p)
    unknown = re.match(r"Object contains unknown field (\S+)", what)
    if unknown:
        return (*path, unknown[1]), "unknown setting" if path else "unknown section or setting"
    return path, what[0].lower() + what[1:]


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for path, _ in _leaves():
        name = _env_name(path)
        if name not in environ:
            continue
        try:
            value = msgspec.convert(environ[name], _python_type(path), strict=False)
        except msgspec.ValidationError as error:
            raise ConfigError(f"{name}: {_explain(error)[1]}") from None
        section = overrides
        for part in path[:-1]:
            section = section.setdefault(part, {})
        section[path[-1]] = msgspec.to_builtins(value)
    return overrides


def _python_type(path: tuple[str, ...]) -> Any:
    struct: Any = Settings
    for part in path[:-1]:
        struct = struct.__annotations__[part]
        struct = _resolve(struct)
    return _resolve(struct.__annotations__[path[-1]])


def _resolve(annotation: Any) -> Any:
    if isinstance(annotation, str):
        return eval(annotation, globals())
    return annotation


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    defaults: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings from `defaults`, then the TOML file, then `EDGE_*` variables, then `overrides`.

    Raises ConfigError with a one-line message naming the file or variable and the key.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot be read ({error})") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
    merged = _merge(_merge(_merge(defaults or {}, raw), _from_environment(environ)), overrides)
    try:
        return msgspec.convert(merged, Settings)
    except msgspec.ValidationError as error:
        key, reason = _explain(error)
        if key and _env_name(key) in environ:
            raise ConfigError(f"{_env_name(key)}: {reason}") from None
        raise ConfigError(f"{where}: {_toml_key(key) if key else 'file'}: {reason}") from None
