"""Public identifiers: a resource prefix and a ULID (`dev_01HW3K9F2X...`)."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    """A fresh, time-ordered id such as `evt_01HW3K9F2XQ4T7...`."""
    return f"{prefix}_{ULID()}"
