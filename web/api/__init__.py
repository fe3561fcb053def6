"""The local cloud API: one set of handlers served under both dialects' base paths."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from web.api.admin import QuarantineController, SyncStatusController
from web.api.alarms import (
    AlertRulesController,
    AlertsController,
    EventsController,
    IncidentsController,
)
from web.api.annotations import AnnotationClassesController, AnnotationsController
from web.api.auth import guard
from web.api.channels import NotificationChannelsController
from web.api.components import ComponentsController
from web.api.devices import DevicesController
from web.api.dialect import DIALECTS, Dialect
from web.api.exports import ExportsController
from web.api.identity import IdentityController
from web.api.maintenance import (
    AppointmentsController,
    AssetsController,
    CustomersController,
    PartsController,
    ServiceReportsController,
    ServiceVisitsController,
    VendorsController,
)
from web.api.movements import MovementsController
from web.api.nearby import NearbyController
from web.api.provisioning import ProvisioningController
from web.api.readings import ReadingsController
from web.api.reporting import ReportingController
from web.api.reports import ReportsController
from web.api.telemetry import DeviceTelemetryController, TelemetryController
from web.api.telemetry_export import TelemetryExportController
from web.api.topology import (
    DeviceGroupsController,
    DeviceProfilesController,
    SensorProfilesController,
    SensorsController,
    SitesController,
)
from web.api.webhooks import WebhooksController

CONTROLLERS = (
    AlertRulesController,
    EventsController,
    AlertsController,
    IncidentsController,
    SyncStatusController,
    QuarantineController,
    IdentityController,
    ProvisioningController,
    DevicesController,
    TelemetryController,
    DeviceTelemetryController,
    MovementsController,
    TelemetryExportController,
    ReadingsController,
    SitesController,
    DeviceGroupsController,
    SensorsController,
    ComponentsController,
    DeviceProfilesController,
    SensorProfilesController,
    WebhooksController,
    NotificationChannelsController,
    ReportsController,
    ExportsController,
    AnnotationsController,
    AnnotationClassesController,
    AssetsController,
    ServiceReportsController,
    ServiceVisitsController,
    AppointmentsController,
    CustomersController,
    VendorsController,
    PartsController,
    ReportingController,
    NearbyController,
)


def routers() -> list[Router]:
    """A router per dialect, each carrying every controller."""
    return [_router(dialect) for dialect in DIALECTS]


def _router(dialect: Dialect) -> Router:
    return Router(
        path=dialect.prefix,
        route_handlers=list(CONTROLLERS),
        guards=[guard],
        dependencies={"dialect": Provide(lambda: dialect, use_cache=True, sync_to_thread=False)},
    )
