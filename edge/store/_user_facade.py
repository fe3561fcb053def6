"""The Store's part for the LAN UI: users, their sessions, and points pinned to the overview
(SQL in `_users`; password hashing in `edge.users`)."""

from __future__ import annotations

import functools
from typing import Final

import apsw

from edge import users
from edge.models import User, UserSession, now_ms
from edge.store import _users
from edge.store._facade import Facade

# A session's idle clock is written at most this often: a write per page view would cost
# more than the page.
TOUCH_EVERY_MS: Final = 30_000


class UserFacade(Facade):
    """Users, sessions and pinned points."""

    def user_count(self) -> int:
        """How many users exist; none means the first visit creates the admin."""
        return self._read(_users.count)

    def create_user(
        self, org_id: str, username: str, password: str, role: str, *, first: bool = False
    ) -> User:
        """A new user (ValueError names a bad field; Conflict if the name is taken, or, with
        `first`, if any user exists already)."""
        users.check_new(username, password, role)
        hashed = users.hash_password(password)
        return self._write(
            lambda c: _users.create(c, org_id, username, hashed, role, now_ms(), first)
        )

    def authenticate(self, username: str, password: str) -> User | None:
        """The enabled user with this name and password, else None."""
        found = self._read(lambda c: _users.credentials(c, username))
        if found is None:
            users.verify_password(_dummy_hash(), password)  # same time as a wrong password
            return None
        user, hashed = found
        if not users.verify_password(hashed, password):
            return None
        if users.needs_rehash(hashed):
            self.update_user(user.org_id, user.id, password=password, keep_sessions=True)
        return user

    def users(self, org_id: str) -> list[User]:
        """The org's users by name."""
        return self._read(lambda c: _users.of_org(c, org_id))

    def user(self, org_id: str, user_id: str) -> User:
        """One of the org's users, or NotFound."""
        return self._read(lambda c: _users.get(c, org_id, user_id))

    def update_user(
        self,
        org_id: str,
        user_id: str,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        keep_sessions: bool = False,
    ) -> User:
        """Change a user's role, enabled state or password (Refused for the last admin)."""
        if role is not None and role not in users.ROLES:
            raise ValueError(f"role: one of {', '.join(users.ROLES)}")
        hashed = None
        if password is not None:
            users.check_password(password)
            hashed = users.hash_password(password)

        def change(conn: apsw.Connection) -> User:
            if keep_sessions and hashed is not None:
                conn.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ? AND org_id = ?",
                    (hashed, user_id, org_id),
                )
                return _users.get(conn, org_id, user_id)
            return _users.update(
                conn, org_id, user_id, now_ms(), role=role, disabled=disabled, password_hash=hashed
            )

        return self._write(change)

    def start_session(self, user_id: str, lifetime_ms: int, idle_ms: int) -> str:
        """A new session; returns the token for the cookie (only its hash is kept)."""
        return self._write(
            lambda c: _users.start_session(c, user_id, now_ms(), lifetime_ms, idle_ms)
        )

    def session(self, token: str, idle_ms: int) -> UserSession | None:
        """The live session a cookie names; its idle clock restarts (written at most every
        30 s)."""
        now = now_ms()
        found = self._read(lambda c: _users.session(c, token, now, idle_ms))
        if found is not None and now - found.seen_at >= TOUCH_EVERY_MS:
            self._write(lambda c: _users.touch_session(c, token, now))
        return found

    def end_session(self, token: str) -> None:
        """Sign a browser out."""
        self._write(lambda c: _users.end_session(c, token))

    def pinned_points(self, org_id: str) -> list[int]:
        """Points pinned to the overview, oldest pin first."""
        return self._read(lambda c: _users.pinned(c, org_id))

    def pin_point(self, org_id: str, point_id: int, on: bool = True) -> None:
        """Pin a point of the org to the overview (on) or unpin it."""
        self._write(lambda c: _users.pin(c, org_id, point_id, on, now_ms()))


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a login's timing tells no names apart."""
    return users.hash_password("not a password of anyone's")
