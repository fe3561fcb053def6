"""SQL over API keys: only a SHA-256 of each secret is stored.

Secrets carry 32+ random characters (190+ bits), so a fast hash is enough:
there is nothing to brute-force, and lookups stay a single indexed probe.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Final

import apsw
import msgspec

from edge import ids
from edge.models import ApiKey, now_ms

SECRET_PREFIX: Final = "sk_live_"
# 40 url-safe characters: 240 bits, beyond seed 001's "sk_live_ + 32 characters".
SECRET_BYTES: Final = 30


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    conn: apsw.Connection,
    org_id: str,
    name: str,
    scopes: list[str],
    device_id: str | None = None,
    groups: Sequence[str] = (),
    customers: Sequence[str] = (),
) -> tuple[ApiKey, str]:
    """Store a new key; returns its record and the secret, which is not kept."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey(
        id=ids.new_id("key"),
        org_id=org_id,
        name=name,
        prefix=secret[: len(SECRET_PREFIX) + 4],
        scopes=sorted(set(scopes)),
        created_at=now_ms(),
        device_id=device_id,
        allowed_group_ids=sorted(set(groups)),
        allowed_customer_ids=sorted(set(customers)),
    )
    conn.execute(
        "INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, scopes, created_at, "
        "device_id, allowed_group_ids, allowed_customer_ids) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.id,
            org_id,
            name,
            key.prefix,
            _hash(secret),
            msgspec.json.encode(key.scopes).decode(),
            key.created_at,
            device_id,
            msgspec.json.encode(key.allowed_group_ids).decode(),
            msgspec.json.encode(key.allowed_customer_ids).decode(),
        ),
    )
    return key, secret


_COLUMNS = (
    "id, org_id, name, prefix, scopes, created_at, last_used_at, revoked_at, device_id, "
    "allowed_group_ids, allowed_customer_ids"
)


def _key(row: tuple) -> ApiKey:
    key_id, org, name, prefix, scopes, created, used, revoked, device, groups, customers = row
    decode = msgspec.json.decode
    return ApiKey(
        key_id, org, name, prefix, decode(scopes), created, used, revoked, device,
        decode(groups), decode(customers),
    )  # fmt: skip


def of_org(conn: apsw.Connection, org_id: str) -> list[ApiKey]:
    """The org's keys, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE org_id = ? ORDER BY created_at DESC", (org_id,)
    )
    return [_key(row) for row in rows]


def by_secret(conn: apsw.Connection, secret: str) -> ApiKey | None:
    """The unrevoked key with this secret, if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL",
        (_hash(secret),),
    ).fetchone()
    return None if row is None else _key(row)


def revoke(conn: apsw.Connection, org_id: str, key_id: str) -> bool:
    """Revoke a key of the org; False if there is no such live key."""
    conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND org_id = ? AND revoked_at IS NULL",
        (now_ms(), key_id, org_id),
    )
    return conn.changes() > 0


def touch(conn: apsw.Connection, key_id: str, ts_ms: int) -> None:
    """Record when a key was last used."""
    conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (ts_ms, key_id))


def create_registration(conn: apsw.Connection, org_id: str, device_id: str, expires_at: int) -> str:
    """A one-time registration token for a device; only its hash is kept."""
    token = "reg_" + secrets.token_urlsafe(SECRET_BYTES)
    conn.execute(
        "INSERT INTO registration_tokens (id, org_id, device_id, token_hash, created_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (ids.new_id("regt"), org_id, device_id, _hash(token), now_ms(), expires_at),
    )
    return token


def redeem_registration(conn: apsw.Connection, token: str, now: int) -> tuple[str, str] | None:
    """Use a token once: (org id, device id) if it was unused and unexpired, else None."""
    row = conn.execute(
        "SELECT id, org_id, device_id FROM registration_tokens WHERE token_hash = ? "
        "AND used_at IS NULL AND expires_at > ?",
        (_hash(token), now),
    ).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE registration_tokens SET used_at = ? WHERE id = ?", (now, row[0]))
    return row[1], row[2]
