"""The database file: migrations, and refusing files that are not ours without touching them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge.models import Reading
from edge.store import (
    DatabaseRefused,
    Store,
    check_database,
    check_file,
    migrate,
    pending,
    table_stats,
    vacuum,
)
from edge.store._migrations import MIGRATIONS
from tests.store.helpers import make_points


def edge(*args: str, env_data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args, "--data-dir", str(env_data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrations_are_named_recorded_and_run_once(tmp_path):
    path = tmp_path / "edge.db"
    assert migrate(path) == [name for name, _ in MIGRATIONS]
    assert migrate(path) == []
    assert pending(path) == []
    conn = sqlite3.connect(path)
    try:
        recorded = [row[0] for row in conn.execute("SELECT name FROM _migrations")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert recorded == [name for name, _ in MIGRATIONS]
    assert mode == "wal"


def _refused(settings, contents: bytes | None = None) -> tuple[DatabaseRefused, bytes]:
    path = settings.database_path
    path.parent.mkdir(parents=True, exist_ok=True)
    if contents is not None:
        path.write_bytes(contents)
    before = path.read_bytes()
    with pytest.raises(DatabaseRefused) as caught:
        Store.open(settings)
    assert path.read_bytes() == before, "a refused file was modified"
    return caught.value, before


def test_a_file_that_is_not_sqlite_is_refused_untouched(settings):
    refused, _ = _refused(settings, b"these are somebody's notes\n" * 100)
    assert "is not a SQLite database" in str(refused)
    assert "edge db check" in str(refused)


def test_another_programs_database_is_refused_untouched(settings):
    path = settings.database_path
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    refused, _ = _refused(settings)
    assert "another program's SQLite database" in str(refused)


def test_a_database_from_a_newer_version_is_refused(settings):
    path = settings.database_path
    path.parent.mkdir(parents=True)
    migrate(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _migrations (name, applied_at) VALUES ('9999_future', 0)")
    conn.commit()
    conn.close()
    refused, _ = _refused(settings)
    assert "newer gateway" in str(refused)


def test_an_empty_file_becomes_a_new_database(settings):
    settings.database_path.parent.mkdir(parents=True)
    settings.database_path.write_bytes(b"")
    store = Store.open(settings)
    store.close()
    assert check_database(settings.database_path) == []


def _damage(path: Path) -> None:
    """Overwrite a page in the middle of the readings with garbage."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    with path.open("r+b") as f:
        f.seek(page_size * (pages // 2))
        f.write(b"\xa5" * page_size)


def _filled(settings) -> Path:
    store = Store.open(settings)
    (point,) = make_points(store, 1)
    for chunk in range(10):
        store.append_readings(
            [Reading(point.id, (chunk * 5000 + i) * 1000, float(i)) for i in range(5000)]
        )
    store.close()
    return settings.database_path


def test_db_check_reports_a_damaged_page_and_exits_1(settings):
    path = _filled(settings)
    result = edge("db", "check", env_data=path.parent)
    assert (result.returncode, result.stdout.strip()) == (0, f"{path}: ok")
    _damage(path)
    result = edge("db", "check", env_data=path.parent)
    assert result.returncode == 1
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr


def test_cli_refuses_a_foreign_file_with_one_line_naming_db_check(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "edge.db").write_bytes(b"\x00" * 4096)
    result = edge("run", env_data=data)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "is not a SQLite database" in result.stderr
    assert "edge db check" in result.stderr
    assert (data / "edge.db").read_bytes() == b"\x00" * 4096


def test_db_stats_and_vacuum_report_sizes(settings):
    path = _filled(settings)
    stats = {t.name: t for t in table_stats(path)}
    assert stats["readings"].rows == 50_000
    assert stats["readings"].bytes and stats["readings"].bytes > 50_000
    before, after = vacuum(path)
    assert after <= before
    result = edge("db", "stats", env_data=path.parent)
    assert result.returncode == 0
    assert "readings" in result.stdout and "50,000" in result.stdout


def test_db_migrate_on_a_new_dir_creates_the_database(tmp_path):
    result = edge("db", "migrate", env_data=tmp_path / "fresh")
    assert result.returncode == 0
    assert "applied 0001_initial" in result.stdout
    assert edge("db", "migrate", env_data=tmp_path / "fresh").stdout.strip().endswith("up to date")


def test_a_failing_migration_leaves_the_file_as_the_previous_version_wrote_it(
    tmp_path, monkeypatch
):
    path = tmp_path / "edge.db"
    migrate(path)
    before = path.read_bytes()

    def added(db) -> None:
        db["upgrade_probe"].create({"id": int}, pk="id")

    def broken(db) -> None:
        raise ValueError("cannot convert row 7")

    from edge.store import _migrations

    monkeypatch.setattr(
        _migrations,
        "MIGRATIONS",
        (*MIGRATIONS, ("9990_added", added), ("9991_broken", broken)),
    )
    with pytest.raises(DatabaseRefused) as refused:
        migrate(path)
    assert "migration 9991_broken failed (ValueError: cannot convert row 7)" in str(refused.value)
    assert path.read_bytes() == before
    monkeypatch.setattr(_migrations, "MIGRATIONS", MIGRATIONS)
    check_file(path)
    assert pending(path) == []
