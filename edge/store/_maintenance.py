"""`edge db` maintenance on the file itself, through sqlite-utils: check, stats, vacuum.

These work on a stopped or a running gateway's file (WAL lets them read
beside the writer); none of them creates or migrates a file.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from edge.store._files import DatabaseRefused, check_file
from edge.store._migrations import pending


@dataclass(frozen=True, slots=True)
class TableStats:
    """Rows and bytes (table plus its indexes) of one table."""

    name: str
    rows: int
    bytes: int | None


def _open_existing(path: Path, *, read_only: bool) -> sqlite_utils.Database:
    if not path.exists():
        raise DatabaseRefused(path, "does not exist")
    check_file(path)
    mode = "ro" if read_only else "rw"
    return sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode={mode}", uri=True))


def check(path: Path) -> list[str]:
    """Every problem found in the file; empty when it is sound and up to date."""
    try:
        db = _open_existing(path, read_only=True)
    except DatabaseRefused as refused:
        return [f"{refused.path}: {refused.reason}"]
    try:
        problems = [
            row[0] for row in db.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"
        ]
        problems += [
            f"foreign key: {table} row {rowid} points at a missing {parent}"
            for table, rowid, parent, _ in db.execute("PRAGMA foreign_key_check").fetchall()
        ]
    except sqlite3.DatabaseError as error:
        problems = [f"{path}: is damaged ({error})"]
    finally:
        db.close()
    if not problems:
        problems += [f"migration {name} is not applied yet" for name in pending(path)]
    return problems


def stats(path: Path) -> list[TableStats]:
    """Row counts and on-disk bytes of every table."""
    db = _open_existing(path, read_only=True)
    try:
        sizes = _sizes(db)
        out = []
        for table in db.tables:
            owned = [table.name, *(index.name for index in table.indexes)]
            size = sum(sizes.get(name, 0) for name in owned) if sizes else None
            out.append(TableStats(table.name, table.count, size))
        return out
    finally:
        db.close()


def _sizes(db: sqlite_utils.Database) -> dict[str, int]:
    try:
        return dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    except sqlite3.OperationalError:  # this SQLite was built without the dbstat table
        return {}


def vacuum(path: Path) -> tuple[int, int]:
    """Rebuild the file to return free pages to the disk; returns sizes before and after."""
    before = path.stat().st_size if path.exists() else 0
    db = _open_existing(path, read_only=False)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.vacuum()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return before, path.stat().st_size
