"""Provisioning over HTTP: seed 001's round trip, one use per token, a device-bound key."""

from __future__ import annotations

from tests.web.conftest import error_of

READING = {"metric": "temp_c", "ts": "2026-05-24T10:00:00Z", "value": 21.5}


def test_seed_001s_registration_round_trip_gives_the_device_a_key_for_its_own_data(api):
    admin = api.key("devices.write", "devices.read", "telemetry.read")
    made = api.client.post("/api/v1/devices/registration/tokens",
                           json={"deviceName": "warehouse-gateway-01"}, headers=admin)  # fmt: skip
    assert made.status_code == 201, made.text
    reg = made.json()
    assert reg["deviceName"] == "warehouse-gateway-01" and reg["deviceId"].startswith("dev_")
    assert reg["provisionEndpoint"].endswith("/api/v1/devices/provision")
    assert reg["expiresAt"].endswith("Z")

    exchanged = api.client.post("/api/v1/devices/provision", json={"token": reg["token"]})
    assert exchanged.status_code == 201, exchanged.text
    device_key = {"Authorization": f"Bearer {exchanged.json()['apiKey']}"}
    assert exchanged.json()["scopes"] == ["telemetry.write"]

    again = api.client.post("/api/v1/devices/provision", json={"token": reg["token"]})
    error_of(again, 401, "unauthenticated")
    error_of(api.client.post("/v1/devices/provision", json={"token": "reg_forged"}), 401,
             "unauthenticated")  # fmt: skip

    own = {"readings": [{"device_id": reg["deviceId"], **READING}]}
    assert api.client.post("/v1/telemetry/ingest", json=own, headers=device_key).is_success
    other = api.client.post("/v1/devices", json={"name": "x", "type": "http"},
                            headers=admin).json()["data"]  # fmt: skip
    theirs = {"readings": [{"device_id": other["id"], **READING}]}
    error_of(api.client.post("/v1/telemetry/ingest", json=theirs, headers=device_key), 403,
             "forbidden")  # fmt: skip
    error_of(api.client.get("/v1/devices", headers=device_key), 403, "forbidden")


def test_an_expired_token_is_refused(api):
    admin = api.key("devices.write")
    reg = api.client.post("/v1/devices/registration/tokens",
                          json={"device_name": "d", "expires_in_seconds": 60},
                          headers=admin).json()["data"]  # fmt: skip
    api.runtime.store._write(lambda c: c.execute("UPDATE registration_tokens SET expires_at = 0"))
    error_of(api.client.post("/v1/devices/provision", json={"token": reg["token"]}), 401,
             "unauthenticated")  # fmt: skip
    error_of(api.client.post("/v1/devices/registration/tokens", json={}, headers=admin), 422,
             "validation_failed")  # fmt: skip
