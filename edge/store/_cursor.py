"""Opaque keyset cursors: the last row's sort key, packed and base64url-encoded."""

from __future__ import annotations

import base64
import binascii

import msgspec


class InvalidCursor(ValueError):
    """The cursor was not made by this store (or was damaged in transit)."""


def encode(*key: int | str) -> str:
    """A cursor resuming after the row with this sort key."""
    return base64.urlsafe_b64encode(msgspec.msgpack.encode(key)).rstrip(b"=").decode()


def decode(token: str, *types: type) -> tuple:
    """The sort key inside a cursor, checked against the expected types."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = msgspec.msgpack.decode(raw, type=tuple[*types])  # type: ignore[valid-type]
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidCursor("the cursor is not valid") from None
    return key
