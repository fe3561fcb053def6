"""The Litestar application: routes, dependencies and error handling."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide

from edge.runtime import Runtime
from web import metrics
from web.health import HealthController


def create_app(runtime: Runtime) -> Litestar:
    """The gateway's web app, bound to a running gateway."""
    registry = metrics.registry_for(runtime)
    return Litestar(
        route_handlers=[HealthController],
        dependencies={
            "runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False),
            "registry": Provide(lambda: registry, use_cache=True, sync_to_thread=False),
        },
        openapi_config=None,
        # The gateway configures logging once, from its settings.
        logging_config=None,
    )
