"""SQL over the UI's users, their sessions and the points pinned to the overview.

A session is named by a random cookie of which only a SHA-256 is stored (the
token carries 256 bits, so a fast hash is enough, as for API keys). A session
lapses after `idle_ms` without a request or at `expires_at`, whichever comes
first; lapsed rows are deleted as new sessions are made.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

import apsw

from edge import ids
from edge.models import User, UserSession
from edge.store._catalog import Conflict, NotFound, Refused

TOKEN_BYTES: Final = 32
_COLUMNS = "id, org_id, username, role, created_at, updated_at, disabled_at"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: tuple) -> User:
    return User(*row)


def count(conn: apsw.Connection) -> int:
    """How many users exist (of any organization): none means first run."""
    return conn.execute("SELECT count(*) FROM users").fetchone()[0]


def create(
    conn: apsw.Connection,
    org_id: str,
    username: str,
    password_hash: str,
    role: str,
    now: int,
    only_if_first: bool = False,
) -> User:
    """A new user; Conflict if the name is taken, or (only_if_first) if any user exists."""
    if only_if_first and count(conn):
        raise Conflict("the gateway has users already: sign in")
    if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
        raise Conflict(f"the username {username} is taken")
    user = User(ids.new_id("usr"), org_id, username, role, now, now)
    conn.execute(
        "INSERT INTO users (id, org_id, username, password_hash, role, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user.id, org_id, username, password_hash, role, now, now),
    )
    return user


def credentials(conn: apsw.Connection, username: str) -> tuple[User, str] | None:
    """An enabled user and their password hash, by name."""
    row = conn.execute(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = ? AND disabled_at IS NULL",
        (username,),
    ).fetchone()
    return None if row is None else (_user(row[:-1]), row[-1])


def of_org(conn: apsw.Connection, org_id: str) -> list[User]:
    """The org's users by name."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM users WHERE org_id = ? ORDER BY username", (org_id,)
    )
    return [_user(r) for r in rows]


def get(conn: apsw.Connection, org_id: str, user_id: str) -> User:
    """One of the org's users, or NotFound."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM users WHERE org_id = ? AND id = ?", (org_id, user_id)
    ).fetchone()
    if row is None:
        raise NotFound(f"no user {user_id}")
    return _user(row)


def _admins_left(conn: apsw.Connection, org_id: str, without: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM users WHERE org_id = ? AND role = 'admin' AND disabled_at IS NULL "
        "AND id != ?",
        (org_id, without),
    ).fetchone()[0]


def update(
    conn: apsw.Connection,
    org_id: str,
    user_id: str,
    now: int,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    password_hash: str | None = None,
) -> User:
    """Change a user's role, enabled state or password; the last admin cannot be demoted or
    disabled (Refused). Disabling or a new password ends the user's sessions."""
    user = get(conn, org_id, user_id)
    demoted = (role is not None and role != "admin") or disabled
    if user.role == "admin" and demoted and not _admins_left(conn, org_id, user_id):
        raise Refused("the gateway needs at least one enabled admin")
    if role is not None:
        conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))
    if disabled is not None:
        conn.execute(
            "UPDATE users SET disabled_at = ? WHERE id = ?", (now if disabled else None, user_id)
        )
    if password_hash is not None:
        conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
    if disabled or password_hash is not None:
        conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    conn.execute("UPDATE users SET updated_at = ? WHERE id = ?", (now, user_id))
    return get(conn, org_id, user_id)


def start_session(
    conn: apsw.Connection, user_id: str, now: int, lifetime_ms: int, idle_ms: int
) -> str:
    """A new session for the user; returns its token (the cookie), which is not kept."""
    conn.execute("DELETE FROM sessions WHERE expires_at <= ? OR seen_at <= ?", (now, now - idle_ms))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf, created_at, seen_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (_hash(token), user_id, secrets.token_urlsafe(TOKEN_BYTES), now, now, now + lifetime_ms),
    )
    return token


def session(conn: apsw.Connection, token: str, now: int, idle_ms: int) -> UserSession | None:
    """The live session a cookie names (its user enabled), else None."""
    row = conn.execute(
        f"SELECT s.csrf, s.created_at, s.seen_at, s.expires_at, "
        f"{', '.join('u.' + c.strip() for c in _COLUMNS.split(','))} "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND s.expires_at > ? AND s.seen_at > ? AND u.disabled_at IS NULL",
        (_hash(token), now, now - idle_ms),
    ).fetchone()
    if row is None:
        return None
    csrf, created, seen, expires = row[:4]
    return UserSession(_user(row[4:]), csrf, created, seen, expires)


def touch_session(conn: apsw.Connection, token: str, now: int) -> None:
    """Record a request on the session, restarting its idle clock."""
    conn.execute("UPDATE sessions SET seen_at = ? WHERE token_hash = ?", (now, _hash(token)))


def end_session(conn: apsw.Connection, token: str) -> None:
    """Sign a browser out."""
    conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_hash(token),))


def pinned(conn: apsw.Connection, org_id: str) -> list[int]:
    """The org's pinned point ids, oldest pin first."""
    rows = conn.execute(
        "SELECT pp.point_id FROM pinned_points pp JOIN points p ON p.id = pp.point_id "
        "WHERE pp.org_id = ? AND p.deleted_at IS NULL ORDER BY pp.created_at, pp.point_id",
        (org_id,),
    )
    return [r[0] for r in rows]


def pin(conn: apsw.Connection, org_id: str, point_id: int, on: bool, now: int) -> None:
    """Pin a point of the org to the overview, or unpin it."""
    if on:
        if not conn.execute(
            "SELECT 1 FROM points WHERE id = ? AND org_id = ?", (point_id, org_id)
        ).fetchone():
            raise NotFound(f"no point {point_id}")
        conn.execute(
            "INSERT OR IGNORE INTO pinned_points (org_id, point_id, created_at) VALUES (?, ?, ?)",
            (org_id, point_id, now),
        )
    else:
        conn.execute(
            "DELETE FROM pinned_points WHERE org_id = ? AND point_id = ?", (org_id, point_id)
        )
