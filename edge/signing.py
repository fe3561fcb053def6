"""The gateway's signing key and the time-limited signatures made with it (download links).

A signature is HMAC-SHA256 over the method, the path, every parameter (sorted,
percent-encoded, so no two different requests share a message) and the expiry.
The key is 32 random bytes in `signing.key` in the data directory, created on
first use with mode 0600 and kept across restarts, so links outlive a restart;
deleting the file revokes every link.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlencode

log = logging.getLogger(__name__)

KEY_FILE: Final = "signing.key"
KEY_BYTES: Final = 32
# Anyone who can read the key can forge links: owner only.
KEY_MODE: Final = 0o600


class Signer:
    """Signs and verifies requests with the key kept in a data directory."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / KEY_FILE
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def sign(self, method: str, path: str, params: Mapping[str, str], expires_at: int) -> str:
        """The signature (hex) of a request valid until `expires_at` (epoch seconds)."""
        return hmac.new(self._secret(), _message(method, path, params, expires_at),
                        hashlib.sha256).hexdigest()  # fmt: skip

    def verify(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        expires_at: int,
        signature: str,
        now: float | None = None,
    ) -> bool:
        """True if `signature` is this request's and `expires_at` has not passed."""
        expected = self.sign(method, path, params, expires_at).encode()
        valid = hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
        return valid and (time.time() if now is None else now) < expires_at

    def _secret(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = _load_or_create(self.path)
            return self._key


def _message(method: str, path: str, params: Mapping[str, str], expires_at: int) -> bytes:
    query = urlencode(sorted(params.items()), quote_via=quote)
    return f"{method.upper()}\n{path}\n{query}\n{expires_at}".encode()


def _load_or_create(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return _create(path, replace=False)
    if len(key) != KEY_BYTES:
        log.warning("signing key %s is damaged (%d bytes); replacing it, which invalidates "
                    "every link signed with the old one", path, len(key))  # fmt: skip
        return _create(path, replace=True)
    if path.stat().st_mode & 0o077:
        path.chmod(KEY_MODE)
    return key


def _create(path: Path, replace: bool) -> bytes:
    """Write a new key beside `path`, then move it into place whole: no reader sees half a key."""
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            partial.replace(path)
            return key
        try:
            # A link fails if the file appeared meanwhile: then the first key made wins.
            os.link(partial, path)
        except FileExistsError:
            return _load_or_create(path)
        return key
    finally:
        partial.unlink(missing_ok=True)
