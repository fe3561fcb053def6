"""The Store's part for what the gateway knows of its world: organizations, sites, groups,
devices, components and points (SQL in `_catalog`, `_points` and
`_components`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw
import msgspec

from edge.models import (
    Component,
    Device,
    DeviceGroup,
    Organization,
    Owner,
    Page,
    Point,
    Site,
)
from edge.store import _catalog, _components, _points
from edge.store._catalog import DeviceFilter
from edge.store._facade import Facade


class CatalogFacade(Facade):
    """Organizations, sites, device groups, devices, components and points."""

    def organization_of(self, org_id: str) -> Organization:
        """An organization by id."""
        return self._read(lambda c: _catalog.organization(c, org_id))

    def create_site(self, owner: Owner, name: str, customer_id: str | None = None) -> Site:
        """A new site in the org, serving an external customer if named."""
        return self._write(lambda c: _catalog.create_site(c, owner, name, customer_id))

    def create_device_group(self, owner: Owner, name: str) -> DeviceGroup:
        """A new device group in the org."""
        return self._write(lambda c: _catalog.create_device_group(c, owner, name))

    def upsert_grouping(self, table: str, org_id: str, row: dict[str, Any]) -> None:
        """Create or update a site (`sites`) or device group (`device_groups`) by its id."""
        self._write(lambda c: _catalog.upsert_grouping(c, table, org_id, row))

    def grouping(self, table: str, owner: Owner, object_id: str) -> Site | DeviceGroup:
        """One site (`sites`) or device group (`device_groups`) of the org."""
        return self._read(lambda c: _catalog.grouping(c, table, owner, object_id))

    def grouping_page(
        self,
        table: str,
        owner: Owner,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of sites (`sites`) or device groups (`device_groups`)."""
        return self._updated_page(
            lambda c, after, n: _catalog.grouping_page(c, table, owner, updated_since, after, n),
            cursor,
            limit,
        )

    def create_device(
        self, device: Device, owner: Owner | None = None, points: Sequence[Point] = ()
    ) -> Device:
        """Register a device with its points, in one transaction (a crash leaves both or
        neither); its id is kept if given (devices synced from upstream keep theirs).

        A bounded `owner` must place it in one of its groups / at a site of its customers.
        """

        def write(conn: apsw.Connection) -> tuple[Device, list[Point]]:
            made = _catalog.create_device(conn, device, owner)
            mine = [msgspec.structs.replace(p, device_id=made.id) for p in points]
            return made, _points.create_points(conn, made.org_id, mine)

        made, created = self._write(write)
        self._writer.known_points.update(p.id for p in created)
        return made

    def device(self, owner: Owner, device_id: str) -> Device:
        """One of the org's (boundary's) devices, or NotFound."""
        return self._read(lambda c: _catalog.device(c, owner, device_id))

    def update_device(
        self, owner: Owner, device_id: str, expected_version: int | None = None, **changes: Any
    ) -> Device:
        """Change a device's fields; its version and updated_at advance (Conflict if stale)."""
        return self._write(
            lambda c: _catalog.update_device(c, owner, device_id, changes, expected_version)
        )

    def delete_device(self, owner: Owner, device_id: str) -> Device:
        """Soft-delete a device; it stays visible to `updated_since` listings as deleted."""
        return self._write(lambda c: _catalog.delete_device(c, owner, device_id))

    def device_page(
        self,
        owner: Owner,
        where: DeviceFilter | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of the org's devices in (updated_at, id) order."""
        where = where or DeviceFilter()
        return self._updated_page(
            lambda c, after, n: _catalog.device_page(c, owner, where, after, n), cursor, limit
        )

    def count_devices(self, owner: Owner) -> int:
        """How many live devices the org (boundary) has."""
        return self._read(lambda c: _catalog.count_devices(c, owner))

    def devices(self, org_id: str) -> list[Device]:
        """The org's devices."""
        return self._read(lambda c: _catalog.devices(c, org_id))

    def create_component(self, owner: Owner, component: Component) -> Component:
        """Add a part to one of the owner's devices (Refused if a sensor is not its point)."""
        return self._write(lambda c: _components.create(c, owner, component))

    def component(self, owner: Owner, component_id: str) -> Component:
        """One live component of the owner's devices, or NotFound."""
        return self._read(lambda c: _components.get(c, owner, component_id))

    def component_page(
        self,
        owner: Owner,
        device_id: str | None = None,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of components in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _components.page(c, owner, device_id, updated_since, after, n),
            cursor,
            limit,
        )

    def update_component(
        self, owner: Owner, component_id: str, expected_version: int | None = None, **changes: Any
    ) -> Component:
        """Change a component's fields; Conflict if `expected_version` is stale."""
        return self._write(
            lambda c: _components.update(c, owner, component_id, changes, expected_version)
        )

    def upsert_component(self, org_id: str, row: dict[str, Any], sensor_keys: list[str]) -> bool:
        """Create or update a component pulled from the upstream (its sensors by key); False
        if its device is not here yet."""
        return self._write(lambda c: _components.upsert(c, org_id, row, sensor_keys))

    def delete_component(self, owner: Owner, component_id: str) -> Component:
        """Soft-delete a component."""
        return self._write(lambda c: _components.delete(c, owner, component_id))

    def create_points(self, org_id: str, points: list[Point]) -> list[Point]:
        """Add points to the org's devices; they may receive readings once this returns."""
        created = self._write(lambda c: _points.create_points(c, org_id, points))
        self._writer.known_points.update(p.id for p in created)
        return created

    def points(self, owner: Owner, device_id: str | None = None) -> list[Point]:
        """The org's (boundary's) points, of one device if given."""
        return self._read(lambda c: _points.points(c, owner, device_id))
