"""The API's scopes (seed 000's names, extended in the same style)."""

from __future__ import annotations

from typing import Final

SCOPES: Final = frozenset(
    {
        "public_api.read",
        "assets.read",
        "devices.read",
        "devices.write",
        "telemetry.read",
        "telemetry.write",
        "movements.read",
        "incidents.read",
        "events.write",
        "service_reports.read",
        "service_reports.write",
        "service_visits.read",
        "appointments.read",
        "customers.read",
        "vendors.read",
        "inventory.read",
        "reporting.read",
        "reports.write",
        "exports.write",
        "webhooks.write",
        "admin",
        "assets.write",
        "customers.write",
        "vendors.write",
        "inventory.write",
        "appointments.write",
        "service_visits.write",
    }
)


def parse(text: str) -> list[str]:
    """Scopes from a comma-separated list; ValueError names the unknown ones."""
    scopes = sorted({s.strip() for s in text.split(",") if s.strip()})
    if not scopes:
        raise ValueError("no scopes given")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}")
    return scopes
