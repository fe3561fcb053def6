"""The maintenance surface of seed 000 over real HTTP, in both dialects: assets and their
hierarchy, service reports and visits, appointments, customers, vendors and parts."""

from __future__ import annotations

from tests.web.conftest import error_of

WRITE = (
    "assets.read",
    "assets.write",
    "customers.read",
    "customers.write",
    "vendors.read",
    "vendors.write",
    "inventory.read",
    "inventory.write",
    "appointments.read",
    "appointments.write",
    "service_reports.read",
    "service_reports.write",
    "service_visits.read",
    "service_visits.write",
    "devices.read",
    "devices.write",
)


def post(api, headers, path: str, body: dict) -> dict:
    answer = api.client.post(f"/v1{path}", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def all_pages(api, headers, path: str, params: dict, camel: bool) -> list[str]:
    seen, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = api.client.get(path, params=query, headers=headers).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["nextCursor"] if camel else page["meta"]["pagination"]["next"]
        more = page["hasMore"] if camel else page["meta"]["pagination"]["has_more"]
        assert more == (cursor is not None)
        if not cursor:
            return seen


def test_every_maintenance_endpoint_answers_the_seed_example_shape(api):
    headers = api.key(*WRITE)
    device = post(api, headers, "/devices", {"name": "Cooling sensor", "type": "http"})
    customer = post(api, headers, "/customers", {"name": "Acme", "external_id": "C-1",
                                                 "external_system": "sap"})  # fmt: skip
    vendor = post(api, headers, "/vendors", {"name": "Bearings Ltd"})
    part = post(api, headers, "/inventory/parts", {"name": "Bearing", "vendor_id": vendor["id"],
                                                   "unit_price": 12.5})  # fmt: skip
    asset = post(api, headers, "/assets", {"name": "Cooling line 4", "device_id": device["id"],
                                           "customer_id": customer["id"]})  # fmt: skip
    assert asset["id"].startswith("ast_") and customer["id"].startswith("cus_")
    assert vendor["id"].startswith("ven_") and part["id"].startswith("prt_")

    one = api.client.get(f"/api/v1/assets/{asset['id']}", headers=headers).json()
    assert {"assetId": asset["id"], "name": "Cooling line 4", "deviceId": device["id"],
            "isActive": True}.items() <= one.items()  # fmt: skip
    report = api.client.post("/api/v1/service-reports", headers=headers, json={
        "assetId": asset["id"], "state": 2, "notes": "Replaced bearing",
        "partsUsed": [{"partId": part["id"], "quantity": 2}]})  # fmt: skip
    assert report.status_code == 201, report.text
    made = report.json()
    assert made["serviceReportId"].startswith("svr_")
    fetched = api.client.get(f"/api/v1/service-reports/{made['serviceReportId']}",
                             headers=headers).json()  # fmt: skip
    assert {"serviceReportId": made["serviceReportId"], "assetId": asset["id"],
            "stateText": "Completed"}.items() <= fetched.items()  # fmt: skip
    assert fetched["partsUsed"] == [{"partId": part["id"], "quantity": 2}]
    visit = post(
        api,
        headers,
        "/service-visits",
        {"asset_id": asset["id"], "started_at": "2026-05-13T08:00:00Z"},
    )
    appointment = post(api, headers, "/appointments", {"title": "Yearly check",
                                                       "starts_at": "2026-06-01T09:00:00Z",
                                                       "user_id": "usr_1"})  # fmt: skip
    assert visit["id"].startswith("vis_") and appointment["id"].startswith("apt_")

    lists = {"/assets": asset, "/service-reports": made, "/service-visits": visit,
             "/appointments": appointment, "/customers": customer, "/vendors": vendor,
             "/inventory/parts": part}  # fmt: skip
    for path, expected in lists.items():
        camel = api.client.get(f"/api/v1{path}", headers=headers).json()
        assert set(camel) == {"data", "nextCursor", "hasMore"}, path
        assert [r["id"] for r in camel["data"]] == [expected["id"]], path
        snake = api.client.get(f"/v1{path}", headers=headers).json()
        assert snake["meta"]["pagination"]["has_more"] is False
        assert snake["data"][0]["id"] == expected["id"] and "updated_at" in snake["data"][0]
    children = api.client.get(f"/api/v1/assets/{asset['id']}/children", headers=headers).json()
    assert children == {"data": [], "nextCursor": None, "hasMore": False}


def test_assets_form_a_hierarchy_and_filter_by_group_customer_and_status(api):
    headers = api.key(*WRITE)
    group = api.client.post("/v1/device-groups", json={"name": "North"}, headers=headers)
    group_id = group.json()["data"]["id"]
    line = post(api, headers, "/assets", {"name": "Line", "group_id": group_id,
                                          "customer_id": "cus_a"})  # fmt: skip
    pump = post(api, headers, "/assets", {"name": "Pump", "parent_id": line["id"]})
    motor = post(api, headers, "/assets", {"name": "Motor", "parent_id": pump["id"],
                                           "is_active": False})  # fmt: skip
    kids = api.client.get(f"/v1/assets/{line['id']}/children", headers=headers).json()["data"]
    assert [k["id"] for k in kids] == [pump["id"]]
    assert [
        a["id"]
        for a in api.client.get(
            "/api/v1/assets", params={"status": "inactive"}, headers=headers
        ).json()["data"]
    ] == [motor["id"]]
    active = api.client.get("/api/v1/assets", params={"status": "active"}, headers=headers)
    assert {a["id"] for a in active.json()["data"]} == {line["id"], pump["id"]}
    by_group = api.client.get("/api/v1/assets", params={"groupId": group_id}, headers=headers)
    assert [a["id"] for a in by_group.json()["data"]] == [line["id"]]
    by_customer = api.client.get("/v1/assets", params={"customer_id": "cus_a"}, headers=headers)
    assert [a["id"] for a in by_customer.json()["data"]] == [line["id"]]
    error_of(api.client.get("/v1/assets", params={"status": "broken"}, headers=headers), 400,
             "invalid_request")  # fmt: skip
    looped = api.client.patch(f"/v1/assets/{line['id']}", json={"parent_id": motor["id"]},
                              headers=headers)  # fmt: skip
    assert "ancestor" in error_of(looped, 422, "validation_failed")["message"]
    error_of(api.client.get("/v1/assets/ast_nope/children", headers=headers), 404, "not_found")
    error_of(api.client.delete(f"/v1/assets/{pump['id']}", headers=headers), 422,
             "validation_failed")  # fmt: skip


def test_cursor_pages_walk_every_record_once_in_both_dialects(api):
    headers = api.key(*WRITE)
    parent = post(api, headers, "/assets", {"name": "Plant"})
    made = [post(api, headers, "/assets", {"name": f"Unit {i}", "parent_id": parent["id"]})["id"]
            for i in range(7)]  # fmt: skip
    camel = all_pages(api, headers, "/api/v1/assets", {"pageSize": 3}, camel=True)
    snake = all_pages(api, headers, "/v1/assets", {"limit": 2}, camel=False)
    assert camel == snake == [parent["id"], *made]
    kids = all_pages(api, headers, f"/api/v1/assets/{parent['id']}/children", {"pageSize": 2},
                     camel=True)  # fmt: skip
    assert kids == made
    starts = [f"2026-03-0{day}T00:00:00Z" for day in range(1, 6)]
    visits = [post(api, headers, "/service-visits", {"asset_id": made[0], "started_at": at})["id"]
              for at in starts]  # fmt: skip
    window = {"fromUtc": "2026-03-02T00:00:00Z", "toUtc": "2026-03-05T00:00:00Z", "pageSize": 1}
    assert all_pages(api, headers, "/api/v1/service-visits", window, camel=True) == visits[1:4]
    error_of(api.client.get("/v1/assets", params={"cursor": "bogus"}, headers=headers), 400,
             "invalid_request")  # fmt: skip


def test_master_data_carries_etags_and_soft_deletes_show_in_updated_since(api):
    headers = api.key(*WRITE)
    for path, body, change in (
        ("/assets", {"name": "Compressor"}, {"name": "Compressor 2"}),
        ("/customers", {"name": "Acme"}, {"external_system": "dynamics"}),
        ("/vendors", {"name": "Parts Co"}, {"website": "https://parts.example"}),
        ("/inventory/parts", {"name": "Filter"}, {"quantity": 4}),
        (
            "/appointments",
            {"title": "Check", "starts_at": "2026-05-01T08:00:00Z"},
            {"starts_at": "2026-05-02T08:00:00.000Z"},
        ),
    ):
        made = api.client.post(f"/v1{path}", json=body, headers=headers)
        url = f"/v1{path}/{made.json()['data']['id']}"
        stale = {**headers, "If-Match": made.headers["etag"]}
        changed = api.client.patch(url, json=change, headers=stale)
        assert changed.status_code == 200, changed.text
        assert changed.json()["data"][next(iter(change))] == next(iter(change.values()))
        error_of(api.client.patch(url, json=change, headers=stale), 409, "conflict")
        error_of(api.client.patch(url, json={"colour": "red"}, headers=headers), 422,
                 "validation_failed")  # fmt: skip
        assert api.client.delete(url, headers=headers).status_code == 204
        error_of(api.client.get(url, headers=headers), 404, "not_found")
        assert api.client.get(f"/v1{path}", headers=headers).json()["data"] == []
        since = api.client.get(f"/api/v1{path}", params={"updatedSince": "2000-01-01T00:00:00Z"},
                               headers=headers).json()["data"]  # fmt: skip
        assert [r["deletedAt"] is not None for r in since] == [True], path


def test_bad_bodies_get_the_error_body_and_change_nothing(api):
    headers = api.key(*WRITE)
    asset = post(api, headers, "/assets", {"name": "Press"})
    for path, body, status in (
        ("/assets", {}, 422),
        ("/assets", {"name": ""}, 422),
        ("/assets", {"name": "x", "colour": "red"}, 422),
        ("/assets", {"name": "x", "device_id": "dev_nope"}, 404),
        ("/assets", {"name": "x", "parent_id": "ast_nope"}, 404),
        ("/assets", {"name": "x", "next_service_at": "tomorrow"}, 422),
        ("/assets", {"name": "x", "next_service_at": "2026-05-01T00:00:00"}, 422),
        ("/service-reports", {"notes": "no asset"}, 422),
        ("/service-reports", {"asset_id": asset["id"], "state": 9}, 422),
        ("/service-reports", {"asset_id": asset["id"], "parts_used": [{"part_id": "prt_x"}]}, 404),
        ("/service-reports", {"asset_id": asset["id"], "id": "ast_wrong"}, 422),
        ("/service-visits", {"asset_id": asset["id"]}, 422),
        (
            "/service-visits",
            {"asset_id": asset["id"], "started_at": "2026-05-01T00:00:00Z", "status": "lost"},
            422,
        ),
        ("/inventory/parts", {"name": "x", "vendor_id": "ven_nope"}, 404),
        ("/inventory/parts", {"name": "x", "quantity": -1}, 422),
    ):
        answer = api.client.post(f"/v1{path}", json=body, headers=headers)
        error_of(answer, status, {404: "not_found", 422: "validation_failed"}[status])
    error_of(api.client.post("/v1/assets", content=b"{", headers=headers), 400, "invalid_request")
    error_of(api.client.post("/v1/assets", json=[1], headers=headers), 400, "invalid_request")
    assert [a["id"] for a in api.client.get("/v1/assets", headers=headers).json()["data"]] == [
        asset["id"]
    ]
    assert api.client.get("/v1/service-reports", headers=headers).json()["data"] == []
    error_of(api.client.patch(f"/v1/assets/{asset['id']}", json={"name": "y"},
                              headers={**headers, "If-Match": "nonsense"}), 400,
             "invalid_request")  # fmt: skip


def test_a_service_report_resent_under_its_id_is_stored_once(api):
    headers = api.key(*WRITE)
    asset = post(api, headers, "/assets", {"name": "Boiler"})
    body = {"serviceReportId": "svr_01TABLET0000000000000001", "assetId": asset["id"],
            "createdOn": "2026-05-13T10:00:00Z", "technician": "Kim"}  # fmt: skip
    first = api.client.post("/api/v1/service-reports", json=body, headers=headers)
    again = api.client.post("/api/v1/service-reports", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    other = api.client.post("/api/v1/service-reports", json={**body, "technician": "Lee"},
                            headers=headers)  # fmt: skip
    error_of(other, 409, "conflict")
    listed = api.client.get("/api/v1/service-reports", headers=headers).json()["data"]
    assert [r["serviceReportId"] for r in listed] == [body["serviceReportId"]]
    assert listed[0]["createdOn"] == "2026-05-13T10:00:00.000Z"


def test_windows_and_filters_of_reports_visits_appointments_customers_and_parts(api):
    headers = api.key(*WRITE)
    device = post(api, headers, "/devices", {"name": "Meter", "type": "http"})
    asset = post(api, headers, "/assets", {"name": "Chiller"})
    other = post(api, headers, "/assets", {"name": "Boiler", "device_id": device["id"]})
    old = post(
        api,
        headers,
        "/service-reports",
        {"asset_id": asset["id"], "state": 2, "created_on": "2025-01-10T00:00:00Z"},
    )
    new = post(
        api,
        headers,
        "/service-reports",
        {"device_id": device["id"], "created_on": "2026-05-10T00:00:00Z"},
    )

    def ids(path: str, **params) -> list[str]:
        answer = api.client.get(f"/api/v1{path}", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["data"]]

    assert ids("/service-reports", fromUtc="2026-01-01T00:00:00Z") == [new["id"]]
    assert ids("/service-reports", toUtc="2026-01-01T00:00:00Z") == [old["id"]]
    assert ids("/service-reports", assetId=asset["id"]) == [old["id"]]
    assert ids("/service-reports", deviceId=device["id"]) == [new["id"]]
    assert ids("/service-reports", state=2) == [old["id"]]
    v1 = post(api, headers, "/service-visits", {"asset_id": asset["id"],
                                                "started_at": "2026-03-01T00:00:00Z"})  # fmt: skip
    v2 = post(api, headers, "/service-visits", {"asset_id": other["id"],
                                                "started_at": "2026-04-01T00:00:00Z"})  # fmt: skip
    assert ids("/service-visits", fromUtc="2026-03-15T00:00:00Z",
               toUtc="2026-04-15T00:00:00Z") == [v2["id"]]  # fmt: skip
    assert ids("/service-visits", toUtc="2026-03-15T00:00:00Z") == [v1["id"]]
    assert ids("/service-visits", deviceId=device["id"]) == []
    assert ids("/service-visits", assetId=other["id"]) == [v2["id"]]
    too_long = {"fromUtc": "2025-01-01T00:00:00Z", "toUtc": "2026-01-03T00:00:00Z"}
    for path in ("/service-visits", "/appointments"):
        body = error_of(api.client.get(f"/api/v1{path}", params=too_long, headers=headers),
                        400, "invalid_request")  # fmt: skip
        assert body["details"]["max_days"] == 366
        error_of(api.client.get(f"/v1{path}", params={"from": "2026-02-01T00:00:00Z",
                                                      "to": "2026-01-01T00:00:00Z"},
                                headers=headers), 400, "invalid_request")  # fmt: skip
    ok = {"fromUtc": "2025-01-01T00:00:00Z", "toUtc": "2026-01-02T00:00:00Z"}  # 366 days
    assert api.client.get("/api/v1/service-visits", params=ok, headers=headers).status_code == 200
    a1 = post(api, headers, "/appointments", {"title": "A", "user_id": "usr_1",
                                              "starts_at": "2026-06-01T09:00:00Z"})  # fmt: skip
    post(api, headers, "/appointments", {"title": "B", "user_id": "usr_2",
                                         "starts_at": "2026-06-02T09:00:00Z"})  # fmt: skip
    assert ids("/appointments", userId="usr_1") == [a1["id"]]
    sap = post(api, headers, "/customers", {"name": "Acme", "external_system": "sap"})
    post(api, headers, "/customers", {"name": "Beta", "external_system": "dynamics"})
    assert ids("/customers", externalSystem="sap") == [sap["id"]]
    vendor = post(api, headers, "/vendors", {"name": "V"})
    bolt = post(api, headers, "/inventory/parts", {"name": "Bolt", "vendor_id": vendor["id"]})
    nut = post(api, headers, "/inventory/parts", {"name": "Nut", "is_active": False})
    assert ids("/inventory/parts", vendorId=vendor["id"]) == [bolt["id"]]
    assert ids("/inventory/parts", status="inactive") == [nut["id"]]
    assert set(ids("/inventory/parts", status="all")) == {bolt["id"], nut["id"]}


def test_each_resource_needs_its_scope(api):
    headers = api.key(*WRITE)
    asset = post(api, headers, "/assets", {"name": "Press"})
    reader = api.key("assets.read", "service_reports.read")
    assert api.client.get(f"/api/v1/assets/{asset['id']}", headers=reader).status_code == 200
    for method, path, needed in (
        ("POST", "/api/v1/assets", "assets.write"),
        ("POST", "/api/v1/service-reports", "service_reports.write"),
        ("GET", "/api/v1/service-visits", "service_visits.read"),
        ("POST", "/v1/service-visits", "service_visits.write"),
        ("GET", "/api/v1/appointments", "appointments.read"),
        ("GET", "/api/v1/customers", "customers.read"),
        ("PATCH", f"/v1/customers/{asset['id']}", "customers.write"),
        ("GET", "/api/v1/vendors", "vendors.read"),
        ("GET", "/api/v1/inventory/parts", "inventory.read"),
        ("DELETE", f"/v1/inventory/parts/{asset['id']}", "inventory.write"),
        ("GET", "/api/v1/reporting/assets-summary", "reporting.read"),
    ):
        denied = error_of(api.client.request(method, path, json={}, headers=reader), 403,
                          "forbidden")  # fmt: skip
        assert denied["details"]["required_scope"] == needed


def test_seed_000_examples_answer_their_shapes_on_an_empty_gateway(api):
    secret = api.key(*WRITE, "reporting.read")["Authorization"].removeprefix("Bearer ")
    sepolo = {"X-Sepolo-Api-Key": secret}
    empty = {"data": [], "nextCursor": None, "hasMore": False}
    for path in ("/assets", "/service-reports", "/service-visits", "/appointments", "/customers",
                 "/vendors", "/inventory/parts"):  # fmt: skip
        assert api.client.get(f"/api/v1{path}", headers=sepolo).json() == empty, path
    summary = api.client.get("/api/v1/reporting/assets-summary", headers=sepolo).json()
    assert summary == {
        "totalAssets": 0,
        "activeAssets": 0,
        "inactiveAssets": 0,
        "withDevices": 0,
        "overdueService": 0,
        "totalMaintenanceCost": 0,
    }
    performance = api.client.get("/api/v1/reporting/service-performance", headers=sepolo).json()
    assert set(performance) == {"totalVisits", "completedVisits", "openVisits", "estimatedCost",
                                "actualCost"}  # fmt: skip
    assert api.client.get("/api/v1/reporting/telemetry-daily", headers=sepolo).json() == []
    asset = api.client.post("/api/v1/assets", json={"name": "Cooling line 4"}, headers=sepolo)
    report = api.client.post("/api/v1/service-reports", json={"assetId": asset.json()["assetId"]},
                             headers=sepolo)  # fmt: skip
    assert report.status_code == 201 and report.json()["serviceReportId"].startswith("svr_")


def test_a_visit_may_be_changed_with_if_match_and_a_report_not_at_all(api):
    headers = api.key(*WRITE)
    asset = post(api, headers, "/assets", {"name": "Chiller"})
    made = api.client.post("/v1/service-visits", json={"asset_id": asset["id"],
                           "started_at": "2026-03-01T08:00:00Z"}, headers=headers)  # fmt: skip
    url = f"/v1/service-visits/{made.json()['data']['id']}"
    stale = {**headers, "If-Match": made.headers["etag"]}
    done = api.client.patch(
        url,
        json={"status": "completed", "actual_cost": 80, "ended_at": "2026-03-01T10:00:00Z"},
        headers=stale,
    )
    assert done.status_code == 200, done.text
    assert done.json()["data"]["status"] == "completed"
    assert done.json()["data"]["ended_at"] == "2026-03-01T10:00:00.000Z"
    error_of(api.client.patch(url, json={"notes": "late"}, headers=stale), 409, "conflict")
    error_of(api.client.patch(url, json={"status": "lost"}, headers=headers), 422,
             "validation_failed")  # fmt: skip
    error_of(api.client.delete(url, headers=headers), 405, "method_not_allowed")
    report = post(api, headers, "/service-reports", {"asset_id": asset["id"]})
    for method in ("PATCH", "DELETE"):
        error_of(api.client.request(method, f"/v1/service-reports/{report['id']}", json={},
                                    headers=headers), 405, "method_not_allowed")  # fmt: skip
