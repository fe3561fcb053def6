"""The local cloud API over real HTTP: dialects, auth, errors, request ids, rate limits, devices."""

from __future__ import annotations

import time

from edge import settings as settings_mod
from edge.scopes import SCOPES
from tests.web.conftest import REQUEST_ID, error_of


def add(api, headers, prefix="/v1", **body):
    body = {"name": "Main incomer", "type": "http", **body}
    response = api.client.post(f"{prefix}/devices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response


def test_both_dialects_serve_one_device_in_their_own_spelling_and_envelope(api):
    headers = api.key("devices.read", "devices.write")
    created = add(api, headers, tags=["hvac"]).json()["data"]
    assert created["id"].startswith("dev_")
    sgt = api.client.get(f"/v1/devices/{created['id']}", headers=headers)
    assert sgt.json()["data"]["site_id"] is None and sgt.json()["meta"]["request_id"]
    assert sgt.headers["etag"] == created["etag"]
    sepolo = api.client.get(
        f"/api/v1/devices/{created['id']}",
        headers={"X-Sepolo-Api-Key": headers["Authorization"][7:]},
    ).json()
    assert sepolo["deviceId"] == created["id"] and sepolo["deviceName"] == "Main incomer"
    assert "siteId" in sepolo and "site_id" not in sepolo
    listed = api.client.get("/api/v1/devices", params={"pageSize": 10}, headers=headers).json()
    assert set(listed) == {"data", "nextCursor", "hasMore"} and listed["hasMore"] is False
    page = api.client.get("/v1/devices", params={"limit": 10}, headers=headers).json()
    assert page["meta"]["pagination"] == {"limit": 10, "next": None, "has_more": False}
    for key in ("request_id", "served_by", "took_ms"):
        assert key in page["meta"]


def test_seed_002s_iter_devices_loop_pages_through_every_device(api):
    headers = api.key("devices.read", "devices.write")
    made = {add(api, headers, name=f"meter {i}").json()["data"]["id"] for i in range(7)}

    def iter_devices():
        cursor = None
        while True:
            params = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = api.client.get("/v1/devices", params=params, headers=headers).json()
            yield from page["data"]
            pg = page["meta"]["pagination"]
            if not pg["has_more"]:
                break
            cursor = pg["next"]

    seen = [d["id"] for d in iter_devices()]
    assert sorted(seen) == sorted(made)


def test_updated_since_lists_changes_and_deletions_in_both_spellings(api):
    headers = api.key("devices.read", "devices.write")
    a = add(api, headers, name="a").json()["data"]
    b = add(api, headers, name="b").json()["data"]
    since = a["updated_at"]
    assert api.client.delete(f"/v1/devices/{b['id']}", headers=headers).status_code == 204
    for prefix, param in (("/v1", "updated_since"), ("/api/v1", "updatedSince")):
        data = api.client.get(f"{prefix}/devices", params={param: since}, headers=headers)
        rows = data.json()["data"]
        assert [r["id"] for r in rows] == [b["id"]]
        assert rows[0]["deleted_at" if prefix == "/v1" else "deletedAt"] is not None
    assert api.client.get("/v1/devices/count", headers=headers).json()["data"]["count"] == 1


def test_a_stale_if_match_is_a_conflict_and_a_fresh_one_succeeds(api):
    headers = api.key("devices.read", "devices.write")
    created = add(api, headers)
    etag, url = created.headers["etag"], f"/v1/devices/{created.json()['data']['id']}"
    renamed = api.client.patch(
        url, json={"name": "Incomer A"}, headers={**headers, "If-Match": etag}
    )
    assert renamed.status_code == 200 and renamed.json()["data"]["name"] == "Incomer A"
    stale = api.client.patch(url, json={"name": "B"}, headers={**headers, "If-Match": etag})
    error_of(stale, 409, "conflict")
    error_of(api.client.patch(url, json={"type": "ble"}, headers=headers), 422, "validation_failed")


def test_an_auth_matrix_over_the_device_endpoints(api):
    writer = api.key("devices.read", "devices.write")
    device_id = add(api, writer).json()["data"]["id"]
    reader = api.key("devices.read")
    stranger_org = api.runtime.store._write(
        lambda c: __import__("edge.store._catalog", fromlist=["x"]).ensure_organization(c, "Other")
    ).id
    stranger = api.key("admin", org_id=stranger_org)
    calls = [
        ("GET", "/devices", None, "devices.read"),
        ("GET", "/devices/count", None, "devices.read"),
        ("GET", f"/devices/{device_id}", None, "devices.read"),
        ("POST", "/devices", {"name": "x", "type": "http"}, "devices.write"),
        ("PATCH", f"/devices/{device_id}", {"name": "y"}, "devices.write"),
        ("DELETE", f"/devices/{device_id}", None, "devices.write"),
        ("GET", "/me", None, "public_api.read"),
    ]
    for prefix in ("/v1", "/api/v1"):
        for method, path, body, scope in calls:
            url = prefix + path
            error_of(api.client.request(method, url, json=body), 401, "unauthenticated")
            bad = {"Authorization": "Bearer sk_live_" + "x" * 40}
            error_of(
                api.client.request(method, url, json=body, headers=bad), 401, "unauthenticated"
            )
            lacking = api.key(*(SCOPES - {scope, "admin"}))
            denied = error_of(api.client.request(method, url, json=body, headers=lacking), 403,
                              "forbidden")  # fmt: skip
            assert denied["details"] == {"required_scope": scope}
            if device_id in path:
                error_of(api.client.request(method, url, json=body, headers=stranger), 404,
                         "not_found")  # fmt: skip
    wrong_tenant = {**reader, "X-SGT-Tenant": "someone-else"}
    error_of(api.client.get("/v1/devices", headers=wrong_tenant), 403, "forbidden")
    org = api.runtime.store.organization
    for tenant in (org.id, org.name):
        assert api.client.get("/v1/devices", headers={**reader, "X-SGT-Tenant": tenant}).is_success


def test_errors_on_api_paths_are_the_api_error_body(api):
    headers = api.key("admin")
    error_of(api.client.get("/v1/nothing-here", headers=headers), 404, "not_found")
    error_of(api.client.put("/v1/devices", headers=headers), 405, "method_not_allowed")
    error_of(api.client.get("/v1/devices", params={"limit": 501}, headers=headers), 400,
             "invalid_request")  # fmt: skip
    error_of(api.client.get("/v1/devices", params={"cursor": "bogus"}, headers=headers), 400,
             "invalid_request")  # fmt: skip
    error_of(api.client.post("/v1/devices", content=b"{nope", headers=headers), 400,
             "invalid_request")  # fmt: skip
    bad_type = api.client.post("/v1/devices", json={"name": "x", "type": "telex"}, headers=headers)
    error_of(bad_type, 422, "validation_failed")
    bad_modbus = api.client.post(
        "/v1/devices", json={"name": "x", "type": "modbus_tcp", "connection": {}}, headers=headers
    )
    assert "host" in error_of(bad_modbus, 422, "validation_failed")["message"]
    assert api.client.get("/v1/devices", headers=headers).json()["data"] == []


def test_me_shows_the_key_as_seed_000_does(api):
    headers = api.key("devices.read", "public_api.read")
    me = api.client.get("/api/v1/me", headers=headers).json()
    assert me["organizationId"] == api.runtime.store.organization.id
    assert me["scopes"] == ["devices.read", "public_api.read"]
    assert me["allowedGroupIds"] == [] and me["allowedCustomerIds"] == []
    assert me["rateLimit"]["requestsPerMinute"] == 600


def test_a_burst_over_the_bucket_gets_429_and_waiting_retry_after_succeeds(
    gateway_factory, tmp_path
):
    settings = settings_mod.load(
        None, {}, data_dir=str(tmp_path / "d"), http={"host": "127.0.0.1", "port": 0},
        api={"read_per_min": 60, "read_burst": 3},
    )  # fmt: skip
    gw = gateway_factory(settings_=settings)
    _, secret = gw.runtime.store.create_api_key(gw.runtime.store.organization.id, "t", ["admin"])
    headers = {"Authorization": f"Bearer {secret}"}
    answers = [gw.client.get("/v1/devices", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit"] == "60"
    assert answers[0].headers["x-ratelimit-remaining"] == "2"
    limited = error_of(answers[3], 429, "rate_limited")
    wait = int(answers[3].headers["retry-after"])
    assert limited["details"]["retry_after_s"] == wait >= 1
    time.sleep(wait)
    assert gw.client.get("/v1/devices", headers=headers).status_code == 200


def test_every_response_carries_a_request_id(api):
    for path in ("/healthz", "/v1/devices", "/api/v1/me", "/v1/missing"):
        assert REQUEST_ID.match(api.client.get(path).headers["x-request-id"])


def test_a_device_whose_points_are_refused_is_not_stored_at_all(api):
    headers = api.key("devices.read", "devices.write")
    twice = [{"key": "flow", "unit": "m3/h"}, {"key": "flow", "unit": "l/s"}]
    refused = api.client.post("/v1/devices", headers=headers,
                              json={"name": "Meter", "type": "http", "points": twice})  # fmt: skip
    error_of(refused, 422, "validation_failed")
    assert "key flow is given twice" in refused.json()["error"]["message"]
    # The device and its points are one transaction: nothing half-made is left behind.
    assert api.client.get("/v1/devices", headers=headers).json()["data"] == []
    assert api.runtime.store.points(api.runtime.store.organization.id) == []
