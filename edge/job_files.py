"""Where report and export files live, and how one is written: whole or not at all.

Files sit under the data dir, `reports/<id>.csv` and `exports/<id>.zip`, named
in the store by that relative path. A file is written beside its final name
(`.part`), flushed to disk and renamed into place, so a download never sees
half a file and a crash leaves only a leftover that `leftovers` finds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

DIRS: Final = {"report": "reports", "export": "exports"}
SUFFIXES: Final = {"report": ".csv", "export": ".zip"}
PARTIAL: Final = ".part"


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with a Z, as the API writes times."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day(ms: int) -> str:
    """The UTC calendar day of an epoch-ms time (YYYY-MM-DD)."""
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


class JobFiles:
    """The jobs' directories under a data dir."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir)

    def name_for(self, kind: str, job_id: str) -> str:
        """The relative file name of a job's output."""
        return f"{DIRS[kind]}/{job_id}{SUFFIXES[kind]}"

    def path(self, name: str) -> Path:
        """The absolute path of a relative file name; ValueError if it leaves its directory."""
        path = (self.root / name).resolve()
        if path.parent not in {(self.root / d).resolve() for d in DIRS.values()}:
            raise ValueError(f"{name} is not a job file")
        return path

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[BinaryIO]:
        """A file to write `name` into; it takes the name only if the block ends without error."""
        final = self.path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(final.name + PARTIAL)
        try:
            with partial.open("wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            partial.replace(final)
        finally:
            partial.unlink(missing_ok=True)

    def size(self, name: str) -> int:
        """The size of a finished file in bytes."""
        return self.path(name).stat().st_size

    def delete(self, name: str) -> None:
        """Remove a file (gone already is fine)."""
        self.path(name).unlink(missing_ok=True)

    def leftovers(self, keep: set[str]) -> list[str]:
        """Files in the jobs' directories that no ready job holds (partials, crashed runs)."""
        found = []
        for directory in DIRS.values():
            folder = self.root / directory
            if folder.is_dir():
                found += [f"{directory}/{p.name}" for p in folder.iterdir() if p.is_file()]
        return sorted(set(found) - keep)
