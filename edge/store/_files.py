"""The checks a database file passes before the gateway writes to it.

A file that is not SQLite, is another program's SQLite database, is damaged,
or was written by a newer gateway is refused with a message; it is never
migrated or overwritten.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.store._migrations import APPLICATION_ID, MIGRATIONS, applied
from edge.store._refused import DatabaseRefused

_HEADER = b"SQLite format 3\x00"


def check_file(path: Path) -> None:
    """Raise DatabaseRefused unless the file is absent, empty, or a database of ours."""
    try:
        with path.open("rb") as f:
            header = f.read(len(_HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise DatabaseRefused(path, "is a directory, not a database file") from None
    except OSError as error:
        raise DatabaseRefused(path, f"cannot be read ({error.strerror})") from None
    if not header:
        return
    if header != _HEADER:
        raise DatabaseRefused(path, "is not a SQLite database")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise DatabaseRefused(path, f"cannot be opened ({error})") from None
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and tables:
            raise DatabaseRefused(path, "is another program's SQLite database")
        known = {name for name, _ in MIGRATIONS}
        newer = [name for name in applied(conn) if name not in known]
        if newer:
            raise DatabaseRefused(
                path, f"was written by a newer gateway (migration {newer[0]} is unknown)"
            )
    except sqlite3.DatabaseError as error:
        raise DatabaseRefused(path, f"is damaged ({error})") from None
    finally:
        conn.close()
