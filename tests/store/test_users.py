"""The UI's users and sessions in the store: hashes, names, the last admin, expiry."""

from __future__ import annotations

import pytest

from edge.models import Device, Point, now_ms
from edge.store import Conflict, NotFound, Refused

PASSWORD = "correct horse battery"


def test_users_are_checked_named_once_and_authenticated_by_hash(store):
    org = store.organization.id
    user = store.create_user(org, "ana", PASSWORD, "technician")
    assert store.authenticate("ana", PASSWORD) == user
    assert store.authenticate("ana", PASSWORD + "x") is None
    assert store.authenticate("nobody", PASSWORD) is None
    with pytest.raises(Conflict):
        store.create_user(org, "ana", PASSWORD, "viewer")
    for name, password, role in (
        ("bad name!", PASSWORD, "viewer"),
        ("bo", "short", "viewer"),
        ("bo", PASSWORD, "root"),
    ):
        with pytest.raises(ValueError):
            store.create_user(org, name, password, role)
    with pytest.raises(Conflict, match="has users already"):
        store.create_user(org, "eve", PASSWORD, "admin", first=True)


def test_the_last_enabled_admin_stays(store):
    org = store.organization.id
    boss = store.create_user(org, "boss", PASSWORD, "admin")
    with pytest.raises(Refused):
        store.update_user(org, boss.id, role="viewer")
    with pytest.raises(Refused):
        store.update_user(org, boss.id, disabled=True)
    deputy = store.create_user(org, "deputy", PASSWORD, "admin")
    assert store.update_user(org, boss.id, role="viewer").role == "viewer"
    with pytest.raises(Refused):
        store.update_user(org, deputy.id, disabled=True)


def test_sessions_lapse_when_idle_at_their_lifetime_and_with_their_user(store):
    org = store.organization.id
    user = store.create_user(org, "ana", PASSWORD, "technician")
    token = store.start_session(user.id, lifetime_ms=3_600_000, idle_ms=600_000)
    found = store.session(token, idle_ms=600_000)
    assert found is not None and found.user.id == user.id and len(found.csrf) >= 32
    assert store.session(token + "x", idle_ms=600_000) is None
    stored = store._read(lambda c: c.execute("SELECT token_hash FROM sessions").fetchone()[0])
    assert token not in stored  # only a hash is kept
    store._write(lambda c: c.execute("UPDATE sessions SET seen_at = ?", (now_ms() - 700_000,)))
    assert store.session(token, idle_ms=600_000) is None
    assert store.session(token, idle_ms=800_000) is not None
    store._write(lambda c: c.execute("UPDATE sessions SET expires_at = ?", (now_ms() - 1,)))
    assert store.session(token, idle_ms=800_000) is None
    fresh = store.start_session(user.id, lifetime_ms=3_600_000, idle_ms=600_000)
    # Starting a session sweeps lapsed ones.
    assert store._read(lambda c: c.execute("SELECT count(*) FROM sessions").fetchone()[0]) == 1
    store.update_user(org, user.id, disabled=True)
    assert store.session(fresh, idle_ms=600_000) is None
    assert store.authenticate("ana", PASSWORD) is None
    store.end_session(fresh)


def test_points_are_pinned_once_and_unpinned(store):
    org = store.organization.id
    device = store.create_device(Device(id="", org_id=org, name="d", type="http"))
    a, b = store.create_points(org, [Point(0, "", org, device.id, k) for k in ("a", "b")])
    store.pin_point(org, b.id)
    store.pin_point(org, a.id)
    store.pin_point(org, a.id)  # twice is once
    assert sorted(store.pinned_points(org)) == sorted([a.id, b.id])
    store.pin_point(org, b.id, on=False)
    assert store.pinned_points(org) == [a.id]
    with pytest.raises(NotFound):
        store.pin_point(org, 999_999)
