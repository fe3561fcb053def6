"""The one exception for a database file the gateway will not use or could not migrate."""

from __future__ import annotations

from pathlib import Path


class DatabaseRefused(Exception):
    """The file cannot be used as the gateway's database; the message says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}; run `edge db check` for details")
        self.path = path
        self.reason = reason
