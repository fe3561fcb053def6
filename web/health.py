"""Liveness, readiness and metrics endpoints for systemd, load balancers and Prometheus."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from edge.runtime import Runtime
from web import metrics


class HealthController(Controller):
    """`/healthz`, `/readyz` and `/metrics`."""

    include_in_schema = False

    @get("/healthz", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @get("/readyz", sync_to_thread=True)
    def readyz(self, runtime: NamedDependency[Runtime]) -> Response[dict[str, str]]:
        """The store takes writes: 200, else 503 with the reason."""
        store = runtime.store
        if store.writable():
            return Response({"status": "ready"}, status_code=HTTP_200_OK)
        reason = "the disk refuses writes" if store.disk_full else "the store is not writable"
        return Response(
            {"status": "unavailable", "reason": reason}, status_code=HTTP_503_SERVICE_UNAVAILABLE
        )

    @get("/metrics", sync_to_thread=True, media_type=CONTENT_TYPE_LATEST)
    def metrics(self, registry: NamedDependency[CollectorRegistry]) -> bytes:
        """Prometheus text exposition."""
        return metrics.render(registry)
