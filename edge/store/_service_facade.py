"""The Store's part for maintenance: records of every kind (SQL in `_service`), the
outbox of records made here, and the reporting figures (SQL in `_reporting`)."""

from __future__ import annotations

from typing import Any

import apsw

from edge.maintenance import KINDS, AssetsSummary, Record, ServicePerformance, TelemetryDay
from edge.models import Owner, Page, now_ms
from edge.store import _reporting, _service
from edge.store._catalog import device
from edge.store._facade import Facade
from edge.store._service import RecordFilter


class ServiceFacade(Facade):
    """Assets, customers, vendors, parts, appointments, service reports and visits."""

    def create_record(
        self,
        owner: Owner,
        kind: str,
        fields: dict[str, Any],
        record_id: str | None = None,
    ) -> tuple[Record, bool]:
        """A new record of `kind` and True; a resent create (same id, same fields) answers
        the stored one and False. Records of kinds made on site wait to be pushed."""
        spec = KINDS[kind]
        return self._write(
            lambda c: _service.create(c, owner, spec, fields, record_id, outbox=spec.pushed)
        )

    def record(self, owner: Owner, kind: str, record_id: str) -> Record:
        """One live record of `kind` the owner may see, or NotFound."""
        return self._read(lambda c: _service.get(c, owner, KINDS[kind], record_id))

    def record_page(
        self,
        owner: Owner,
        kind: str,
        where: RecordFilter | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of records of `kind` in (updated_at, id) order."""
        where = where or RecordFilter()
        return self._updated_page(
            lambda c, after, n: _service.page(c, owner, KINDS[kind], where, after, n),
            cursor,
            limit,
        )

    def child_assets(
        self, owner: Owner, asset_id: str, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A keyset page of an asset's live children (NotFound if it is not the owner's)."""
        self.record(owner, "assets", asset_id)
        return self.record_page(owner, "assets", RecordFilter({"parent_id": asset_id}), cursor,
                                limit)  # fmt: skip

    def update_record(
        self,
        owner: Owner,
        kind: str,
        record_id: str,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> Record:
        """Change a record's fields; Conflict if `expected_version` is stale."""
        return self._write(
            lambda c: _service.update(c, owner, KINDS[kind], record_id, changes, expected_version)
        )

    def delete_record(self, owner: Owner, kind: str, record_id: str) -> Record:
        """Soft-delete a record."""
        return self._write(lambda c: _service.delete(c, owner, KINDS[kind], record_id))

    def upsert_record(
        self, org_id: str, kind: str, record_id: str, fields: dict[str, Any], deleted: bool
    ) -> None:
        """Create or update a record pulled from the upstream (Refused if it does not fit)."""
        self._write(lambda c: _service.upsert(c, org_id, KINDS[kind], record_id, fields, deleted))

    def unpushed_records(
        self, after: tuple[int, str] | None = None, limit: int = 100
    ) -> list[Record]:
        """Service reports and visits made here that the upstream does not hold yet, oldest
        first, after an (updated_at, id)."""
        return self._read(lambda c: _service.unpushed(c, after, limit))

    def mark_record_pushed(self, record_id: str, version: int) -> None:
        """The upstream holds this version of the record (a newer one still waits)."""
        self._write(lambda c: _service.mark_pushed(c, record_id, version))

    def assets_summary(self, owner: Owner) -> AssetsSummary:
        """Counts of the owner's assets and the actual cost of their service visits."""
        return self._read(lambda c: _reporting.assets_summary(c, owner, now_ms()))

    def service_performance(self, owner: Owner, start_ms: int, end_ms: int) -> ServicePerformance:
        """Service visits started in [start, end), by status, with their costs."""
        return self._read(lambda c: _reporting.service_performance(c, owner, start_ms, end_ms))

    def telemetry_daily(
        self, owner: Owner, start_ms: int, end_ms: int, device_id: str | None = None
    ) -> list[TelemetryDay]:
        """Per device and UTC day: good readings and each metric's average (NotFound for a
        device the owner may not see)."""

        def query(conn: apsw.Connection) -> list[TelemetryDay]:
            if device_id is not None:
                device(conn, owner, device_id)
            return _reporting.telemetry_daily(conn, owner, start_ms, end_ms, device_id)

        return self._read(query)
