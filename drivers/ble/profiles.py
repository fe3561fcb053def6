"""The BLE sensor families as `/sensor-profiles` describes them."""

from __future__ import annotations

from typing import Any

from drivers.ble.families import FAMILIES


def sensor_profiles() -> list[dict[str, Any]]:
    """Every BLE family: what it decodes, with which library, what it usually measures."""
    return [
        {
            "id": f"ble.{f.id}",
            "protocol": "ble",
            "family": f.id,
            "name": f.name,
            "manufacturer": f.manufacturer,
            "description": f.description,
            "library": f.library,
            "encrypted": f.encrypted,
            "parameters": ["address", "family", "bind_key"]
            if f.encrypted
            else ["address", "family"],
            "measurements": [{"key": k, "unit": u} for k, u in f.measurements],
        }
        for f in FAMILIES.values()
    ]
