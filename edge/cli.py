"""The `edge` command: run, demo, database maintenance, API keys, UI users, settings, the BlueZ
check, version.

Problems a user can fix (a bad setting, a refused database, a busy port) end
with one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from edge import __version__, bluez, gateway, logs, scopes, users
from edge import settings as settings_mod
from edge.settings import ConfigError, Settings
from edge.store import (
    Conflict,
    DatabaseRefused,
    NotFound,
    Store,
    check_database,
    migrate,
    table_stats,
    vacuum,
)
from edge.store import check_file as check_store_file

# Exit codes: 1 for a refused database or failed check, 2 for usage and settings errors.
EXIT_REFUSED = 1
EXIT_USAGE = 2


def _config_path(args: argparse.Namespace) -> Path | None:
    if args.config:
        return Path(args.config)
    if "EDGE_CONFIG" in os.environ:
        return Path(os.environ["EDGE_CONFIG"])
    return settings_mod.DEFAULT_CONFIG if settings_mod.DEFAULT_CONFIG.exists() else None


def _settings(args: argparse.Namespace, defaults: dict | None = None) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "port", None) is not None:
        overrides["http"] = {"port": args.port}
    return settings_mod.load(_config_path(args), defaults=defaults, **overrides)


def _serve(settings: Settings, *, demo: bool) -> int:
    logs.configure(settings.log_level)
    check_store_file(settings.database_path)
    sock = gateway.bind(settings.http.host, settings.http.port)
    try:
        clean = asyncio.run(gateway.serve(settings, sock, demo=demo))
    finally:
        sock.close()
    return 0 if clean else 1


def cmd_run(args: argparse.Namespace) -> int:
    return _serve(_settings(args), demo=False)


def cmd_demo(args: argparse.Namespace) -> int:
    throwaway = None
    defaults: dict = {"http": {"host": "127.0.0.1"}, "log_level": "INFO"}
    if not args.data_dir and "EDGE_DATA_DIR" not in os.environ:
        throwaway = tempfile.mkdtemp(prefix="edge-demo-")
        defaults["data_dir"] = throwaway
    try:
        settings = _settings(args, defaults)
        print(
            f"Demo gateway on http://{settings.http.host}:{settings.http.port}/ "
            f"(data in {settings.data_dir}); Ctrl-C stops it.",
            flush=True,
        )
        return _serve(settings, demo=True)
    finally:
        if throwaway:
            shutil.rmtree(throwaway, ignore_errors=True)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    path = _settings(args).database_path
    path.parent.mkdir(parents=True, exist_ok=True)
    check_store_file(path)
    applied = migrate(path)
    print(f"{path}: applied {', '.join(applied)}" if applied else f"{path}: up to date")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    path = _settings(args).database_path
    problems = check_database(path)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{path}: ok")
    return EXIT_REFUSED if problems else 0


def cmd_db_stats(args: argparse.Namespace) -> int:
    path = _settings(args).database_path
    rows = table_stats(path)
    width = max(len(t.name) for t in rows)
    print(f"{'table':<{width}}  {'rows':>12}  {'bytes':>14}")
    for t in rows:
        size = f"{t.bytes:,}" if t.bytes is not None else "-"
        print(f"{t.name:<{width}}  {t.rows:>12,}  {size:>14}")
    print(f"file: {path} ({path.stat().st_size:,} bytes)")
    return 0


def cmd_db_vacuum(args: argparse.Namespace) -> int:
    path = _settings(args).database_path
    before, after = vacuum(path)
    print(f"{path}: {before:,} -> {after:,} bytes")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    try:
        wanted = scopes.parse(args.scopes)
    except ValueError as error:
        raise ConfigError(f"--scopes: {error}") from None
    groups, customers = _ids(args.groups), _ids(args.customers)
    settings = _settings(args)
    store = Store.open(settings)
    try:
        key, secret = store.create_api_key(
            store.organization.id, args.name, wanted, groups=groups, customers=customers
        )
    except NotFound as error:
        raise ConfigError(f"--groups: {error}") from None
    finally:
        store.close()
    print(f"Created API key {key.id} ({key.name}) with scopes: {', '.join(key.scopes)}")
    if groups or customers:
        print(f"It sees only devices in groups {groups or 'any'} at customers {customers or 'any'}")
    print("It is shown once and stored only as a hash; keep it now:")
    print(secret)
    return 0


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def cmd_keys_list(args: argparse.Namespace) -> int:
    store = Store.open(_settings(args))
    try:
        keys = store.api_keys(store.organization.id)
    finally:
        store.close()
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        limits = f" device={key.device_id}" if key.device_id else ""
        limits += f" groups={','.join(key.allowed_group_ids)}" if key.allowed_group_ids else ""
        limits += (
            f" customers={','.join(key.allowed_customer_ids)}" if key.allowed_customer_ids else ""
        )
        print(f"{key.id}  {key.prefix}…  {state:7}  {key.name}  [{', '.join(key.scopes)}]{limits}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    store = Store.open(_settings(args))
    try:
        revoked = store.revoke_api_key(store.organization.id, args.key_id)
    finally:
        store.close()
    if not revoked:
        print(f"edge: no active key {args.key_id}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"Revoked {args.key_id}; requests with it now get 401 (within 5 s on a running gateway).")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


def cmd_users_create(args: argparse.Namespace) -> int:
    password = _password(args)
    store = Store.open(_settings(args))
    try:
        user = store.create_user(store.organization.id, args.username, password, args.role)
    except (ValueError, Conflict) as error:
        raise ConfigError(str(error)) from None
    finally:
        store.close()
    print(f"Created {user.role} {user.username} ({user.id}); they can sign in to the web UI.")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    store = Store.open(_settings(args))
    try:
        found = store.users(store.organization.id)
    finally:
        store.close()
    for user in found:
        state = "disabled" if user.disabled_at else "enabled"
        print(f"{user.id}  {user.username:24}  {user.role:10}  {state}")
    return 0


# Settings whose values `edge settings` does not print.
SECRET_SETTINGS = frozenset({"sync.api_key", "notify.smtp_password"})


def cmd_settings(args: argparse.Namespace) -> int:
    current = _settings(args)
    for info in settings_mod.describe():
        value = current
        for part in info.key.split("."):
            value = getattr(value, part)
        if info.key in SECRET_SETTINGS and value:
            value = "(set, not shown)"
        print(f"{info.key} = {value!r}    # {info.env}: {info.help}")
    return 0


def cmd_bluez_check(args: argparse.Namespace) -> int:
    state = bluez.check(Path(args.main_conf))
    print("\n".join(state.report()))
    return 0 if state.in_effect else EXIT_REFUSED


def cmd_version(args: argparse.Namespace) -> int:
    print(f"edge-gateway {__version__}")
    return 0


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"TOML settings file (default: $EDGE_CONFIG, else {settings_mod.DEFAULT_CONFIG} "
        "if it exists)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="override data_dir")


def build_parser() -> argparse.ArgumentParser:
    """The `edge` argument parser, every command with its own --help."""
    parser = argparse.ArgumentParser(
        prog="edge", description="The edge gateway: drivers, local store, web UI and API, sync."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the gateway (as the service does)")
    _add_config(run)
    run.set_defaults(func=cmd_run)

    demo = commands.add_parser(
        "demo", help="run the gateway with simulated devices on a throwaway database"
    )
    _add_config(demo)
    demo.add_argument(
        "--port", type=int, help="HTTP port (default: $EDGE_HTTP_PORT, else 8080; 0 picks one)"
    )
    demo.set_defaults(func=cmd_demo)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, func, text in (
        ("migrate", cmd_db_migrate, "apply pending schema migrations"),
        ("check", cmd_db_check, "verify the file's integrity (exit 1 on problems)"),
        ("stats", cmd_db_stats, "rows and bytes per table"),
        ("vacuum", cmd_db_vacuum, "rebuild the file to return free space to the disk"),
    ):
        sub = db_commands.add_parser(name, help=text, description=text)
        _add_config(sub)
        sub.set_defaults(func=func)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser(
        "create", help="create an API key and print it once, alone on the last line"
    )
    _add_config(create)
    create.add_argument(
        "--scopes", required=True, help="comma-separated scopes, e.g. devices.read,telemetry.read"
    )
    create.add_argument("--name", default="cli", help="a label for the key (default: cli)")
    create.add_argument(
        "--groups", help="comma-separated device group ids: the key sees only their devices"
    )
    create.add_argument(
        "--customers",
        help="comma-separated customer ids: the key sees only devices at their sites",
    )
    create.set_defaults(func=cmd_keys_create)
    listing = key_commands.add_parser("list", help="list the keys (never their secrets)")
    _add_config(listing)
    listing.set_defaults(func=cmd_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id (key_...)")
    _add_config(revoke)
    revoke.add_argument("key_id", help="the key's id, as `edge keys list` shows it")
    revoke.set_defaults(func=cmd_keys_revoke)

    people = commands.add_parser("users", help="people who sign in to the web UI")
    user_commands = people.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = user_commands.add_parser(
        "create", help="create a UI user; the password is asked twice (or read from stdin)"
    )
    _add_config(add)
    add.add_argument("username", help="the name they sign in with")
    add.add_argument("--role", choices=users.ROLES, default="admin", help="default: admin")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of stdin"
    )
    add.set_defaults(func=cmd_users_create)
    people_list = user_commands.add_parser("list", help="list the UI users and their roles")
    _add_config(people_list)
    people_list.set_defaults(func=cmd_users_list)

    show = commands.add_parser("settings", help="print every setting's value and help")
    _add_config(show)
    show.set_defaults(func=cmd_settings)

    bluez_check = commands.add_parser(
        "bluez-check",
        help="say whether BlueZ offers passive BLE scanning (Experimental); changes nothing",
    )
    bluez_check.add_argument(
        "--main-conf", default=str(bluez.MAIN_CONF), help="BlueZ's main.conf (default: %(default)s)"
    )
    bluez_check.set_defaults(func=cmd_bluez_check)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `edge` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except gateway.ListenError as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseRefused as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
