"""Builders for store tests: a device with points in an organization."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edge.models import Device, Page, Point
from edge.store import Store


def make_points(store: Store, count: int, org_id: str | None = None) -> list[Point]:
    """A fresh device in the org (default: the gateway's) with `count` points."""
    org = org_id or store.organization.id
    device = store.create_device(Device(id="", org_id=org, name="meter", type="modbus_tcp"))
    return store.create_points(
        org, [Point(0, "", org, device.id, f"p{i}", "W") for i in range(count)]
    )


def other_org(store: Store, name: str = "Other tenant") -> str:
    """Another organization in the same file."""
    from edge.store import _catalog  # the store's own helper; tests may reach in

    return store._write(lambda c: _catalog.ensure_organization(c, name)).id


def page_through_while(
    fetch: Callable[[str | None], Page], meanwhile: Callable[[threading.Event], None]
) -> list[Any]:
    """Every item of a paged listing, read while `meanwhile` runs in a thread until stopped."""
    stop = threading.Event()
    thread = threading.Thread(target=meanwhile, args=(stop,))
    thread.start()
    items: list[Any] = []
    cursor = None
    try:
        while True:
            page = fetch(cursor)
            items += page.items
            if page.next_cursor is None:
                return items
            cursor = page.next_cursor
    finally:
        stop.set()
        thread.join()
