"""People of the LAN UI: roles, what each may do, and password hashing (Argon2id).

Passwords are hashed with argon2-cffi's defaults (Argon2id, 64 MiB, 3 passes),
memory-hard so a stolen database is slow to brute-force even on GPUs; the
hash string carries its parameters, so raising them later re-hashes on login.
"""

from __future__ import annotations

import re
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES: Final = ("admin", "technician", "viewer")
# Each role may do what the roles after it may, and more.
RANK: Final = {"viewer": 0, "technician": 1, "admin": 2}
USERNAME: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Long enough to resist guessing at the login form's pace; passphrases welcome.
MIN_PASSWORD: Final = 10
MAX_PASSWORD: Final = 1024

_hasher = PasswordHasher()


def may(role: str, needed: str) -> bool:
    """True if `role` includes what `needed` may do."""
    return RANK.get(role, -1) >= RANK[needed]


def check_new(username: str, password: str, role: str) -> None:
    """ValueError naming what is wrong with a new user's name, password or role."""
    if not USERNAME.match(username):
        raise ValueError("username: 1-64 letters, digits or . _ @ -")
    check_password(password)
    if role not in ROLES:
        raise ValueError(f"role: one of {', '.join(ROLES)}")


def check_password(password: str) -> None:
    """ValueError unless the password is long enough (and not absurdly long)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")


def hash_password(password: str) -> str:
    """The Argon2id hash string of a password."""
    return _hasher.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """True if the password matches the hash."""
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """True if the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(hashed)
