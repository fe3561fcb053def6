"""Devices: keyset listing for updated_since loops, filters, versions, soft deletes, tenancy."""

from __future__ import annotations

import threading

import pytest

from edge.models import Device
from edge.store import Conflict, DeviceFilter, NotFound
from tests.store.helpers import other_org, page_through_while


def add(store, name: str, **fields) -> Device:
    org = store.organization.id
    return store.create_device(Device(id="", org_id=org, name=name, type="modbus_tcp", **fields))


def test_paging_sees_every_device_once_while_devices_are_added(store):
    org = store.organization.id
    first = [add(store, f"d{i}") for i in range(50)]
    added: list[Device] = []

    def adder(stop: threading.Event) -> None:
        while not stop.is_set() and len(added) < 40:
            added.append(add(store, f"late{len(added)}"))

    items = page_through_while(lambda cursor: store.device_page(org, cursor=cursor, limit=7), adder)
    seen = [d.id for d in items]
    assert len(seen) == len(set(seen)), "a device was listed twice"
    assert {d.id for d in first} <= set(seen), "a device was skipped"


def test_filters_combine_and_deleted_devices_show_only_to_updated_since(store):
    org = store.organization.id
    site = store.create_site(org, "Plant")
    a = add(store, "a", site_id=site.id, tags=["hvac", "roof"])
    b = add(store, "b", tags=["hvac"])
    c = add(store, "c", site_id=site.id)
    assert [d.id for d in store.device_page(org, DeviceFilter(tag="hvac")).items] == [a.id, b.id]
    assert [
        d.id for d in store.device_page(org, DeviceFilter(site_id=site.id, tag="hvac")).items
    ] == [a.id]
    gone = store.delete_device(org, c.id)
    assert c.id not in [d.id for d in store.device_page(org).items]
    since = store.device_page(org, DeviceFilter(updated_since=b.updated_at)).items
    assert [(d.id, d.deleted_at is not None) for d in since] == [(c.id, True)]
    assert gone.version == 2
    with pytest.raises(NotFound):
        store.device(org, c.id)
    assert store.count_devices(org) == 2


def test_a_stale_version_is_a_conflict(store):
    org = store.organization.id
    d = add(store, "a")
    renamed = store.update_device(org, d.id, expected_version=1, name="b")
    assert (renamed.version, renamed.name) == (2, "b")
    with pytest.raises(Conflict):
        store.update_device(org, d.id, expected_version=1, name="c")


def test_another_organization_sees_none_of_it(store):
    d = add(store, "a")
    stranger = other_org(store)
    assert store.device_page(stranger).items == []
    assert store.count_devices(stranger) == 0
    with pytest.raises(NotFound):
        store.update_device(stranger, d.id, name="x")
    with pytest.raises(NotFound):
        store.delete_device(stranger, d.id)
