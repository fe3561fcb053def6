"""Annotations and annotation classes over real HTTP in both dialects: CRUD with ETags,
If-Match conflicts, soft deletes, filters, keyset pages and boundaries."""

from __future__ import annotations

from tests.web.conftest import error_of
from tests.web.jobs_helpers import device

SCOPES = ("devices.read", "devices.write", "telemetry.read", "telemetry.write")


def note(dev: str, day: int, text: str = "Pump serviced", **extra) -> dict:
    return {"device_id": dev, "from": f"2026-01-{day:02d}T00:00:00Z",
            "to": f"2026-01-{day:02d}T06:00:00Z", "text": text, **extra}  # fmt: skip


def test_an_annotation_is_created_read_changed_with_if_match_and_deleted(api):
    headers = api.key(*SCOPES)
    dev = device(api.client, headers, "Pump")
    cls = api.client.post("/v1/annotation-classes", headers=headers,
                          json={"name": "Maintenance", "colour": "#1f77b4"})  # fmt: skip
    assert cls.status_code == 201, cls.text
    class_id = cls.json()["data"]["id"]
    body = {"deviceId": dev, "fromUtc": "2026-01-05T08:00:00Z", "toUtc": "2026-01-05T09:30:00Z",
            "classId": class_id, "text": "Seal replaced"}  # fmt: skip
    made = api.client.post("/api/v1/annotations", json=body, headers=headers)
    assert made.status_code == 201, made.text
    annotation = made.json()
    assert annotation["id"].startswith("ann_") and made.headers["etag"] == annotation["etag"]
    assert (annotation["from"], annotation["to"]) == ("2026-01-05T08:00:00.000Z",
                                                      "2026-01-05T09:30:00.000Z")  # fmt: skip
    assert annotation["author"].startswith("key_") and annotation["classId"] == class_id

    url = f"/v1/annotations/{annotation['id']}"
    assert api.client.get(url, headers=headers).json()["data"]["text"] == "Seal replaced"
    stale = {**headers, "If-Match": annotation["etag"]}
    moved = api.client.patch(url, json={"to": "2026-01-05T10:00:00Z"}, headers=stale)
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["to"] == "2026-01-05T10:00:00.000Z"
    error_of(api.client.patch(url, json={"text": "Again"}, headers=stale), 409, "conflict")
    fresh = {**headers, "If-Match": moved.headers["etag"]}
    changed = api.client.patch(url, json={"text": "Seal and bearing", "class_id": None},
                               headers=fresh)  # fmt: skip
    assert changed.json()["data"]["class_id"] is None
    assert api.client.delete(url, headers=headers).status_code == 204
    error_of(api.client.get(url, headers=headers), 404, "not_found")
    error_of(api.client.patch(url, json={"text": "x"}, headers=headers), 404, "not_found")
    params = {"updatedSince": "2000-01-01T00:00:00Z"}
    since = api.client.get("/api/v1/annotations", params=params, headers=headers).json()["data"]
    assert [a["id"] for a in since] == [annotation["id"]] and since[0]["deletedAt"]
    assert api.client.get("/v1/annotations", headers=headers).json()["data"] == []


def test_annotations_filter_by_device_class_and_window_and_page_by_cursor(api):
    headers = api.key(*SCOPES)
    pump, fan = device(api.client, headers, "Pump"), device(api.client, headers, "Fan")
    fault = api.client.post("/v1/annotation-classes", json={"name": "Fault"},
                            headers=headers).json()["data"]["id"]  # fmt: skip
    ids = []
    for day in range(1, 8):
        extra = {"class_id": fault} if day % 2 else {}
        made = api.client.post("/v1/annotations", json=note(pump, day, **extra), headers=headers)
        ids.append(made.json()["data"]["id"])
    api.client.post("/v1/annotations", json=note(fan, 3), headers=headers)

    seen, cursor = [], None
    while True:
        params = {"device_id": pump, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/v1/annotations", params=params, headers=headers).json()
        assert len(page["data"]) <= 3
        seen += [(a["updated_at"], a["id"]) for a in page["data"]]
        cursor = page["meta"]["pagination"]["next"]
        if not page["meta"]["pagination"]["has_more"]:
            break
    # Each once, in (updated_at, id) order across pages.
    assert seen == sorted(seen) and sorted(i for _, i in seen) == sorted(ids)
    window = {"deviceId": pump, "from": "2026-01-03T03:00:00Z", "to": "2026-01-05T00:00:00Z"}
    overlapping = api.client.get("/api/v1/annotations", params=window, headers=headers).json()
    # The 3rd (which overlaps the window's start) and the 4th.
    assert {a["id"] for a in overlapping["data"]} == set(ids[2:4])
    by_class = api.client.get("/v1/annotations", params={"class_id": fault}, headers=headers)
    assert {a["id"] for a in by_class.json()["data"]} == set(ids[0::2])
    camel = api.client.get("/api/v1/annotations", params={"pageSize": 2}, headers=headers).json()
    assert camel["hasMore"] is True and len(camel["data"]) == 2


def test_bad_annotations_get_the_error_body(api):
    headers = api.key(*SCOPES)
    dev = device(api.client, headers, "Pump")
    post = lambda body: api.client.post("/v1/annotations", json=body, headers=headers)  # noqa: E731
    error_of(post({"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "text": "x"}),
             422, "validation_failed")  # fmt: skip
    error_of(post({**note(dev, 1), "text": ""}), 422, "validation_failed")
    error_of(post({**note(dev, 1), "to": "2026-01-01T00:00:00Z"}), 400, "invalid_request")
    error_of(post({**note(dev, 1), "to": None}), 400, "invalid_request")
    error_of(post({**note(dev, 1), "class_id": "acl_nope"}), 422, "validation_failed")
    error_of(post({**note(dev, 1), "mood": "sad"}), 422, "validation_failed")
    error_of(post(note("dev_nope", 1)), 404, "not_found")
    made = post(note(dev, 1)).json()["data"]
    url = f"/v1/annotations/{made['id']}"
    inverted = api.client.patch(url, json={"to": "2025-12-31T00:00:00Z"}, headers=headers)
    error_of(inverted, 422, "validation_failed")
    error_of(api.client.patch(url, json={"device_id": dev}, headers=headers), 422,
             "validation_failed")  # fmt: skip
    error_of(api.client.patch(url, json={"text": "x"}, headers={**headers, "If-Match": "x"}),
             400, "invalid_request")  # fmt: skip
    error_of(api.client.get("/v1/annotations", params={"from": "yesterday"}, headers=headers),
             400, "invalid_request")  # fmt: skip
    reader = api.key("telemetry.read")
    error_of(api.client.post("/v1/annotations", json=note(dev, 2), headers=reader), 403,
             "forbidden")  # fmt: skip


def test_annotation_classes_have_unique_names_etags_and_soft_deletes(api):
    headers = api.key(*SCOPES)
    post = lambda body: api.client.post("/api/v1/annotation-classes", json=body, headers=headers)  # noqa: E731
    made = post({"name": "Fault", "colour": "#d62728", "description": "Something broke"})
    assert made.status_code == 201, made.text
    fault = made.json()
    error_of(post({"name": "Fault"}), 409, "conflict")
    error_of(post({"name": "Bad colour", "colour": "red"}), 422, "validation_failed")
    error_of(post({"name": "  "}), 422, "validation_failed")
    other = post({"name": "Test run"}).json()
    url = f"/v1/annotation-classes/{other['id']}"
    error_of(api.client.patch(url, json={"name": "Fault"}, headers=headers), 409, "conflict")
    stale = {**headers, "If-Match": other["etag"]}
    renamed = api.client.patch(url, json={"name": "Commissioning"}, headers=stale)
    assert renamed.status_code == 200 and renamed.headers["etag"] != other["etag"]
    error_of(api.client.patch(url, json={"colour": "#fff"}, headers=stale), 409, "conflict")
    listed = api.client.get("/v1/annotation-classes", headers=headers).json()["data"]
    assert [c["name"] for c in listed] == ["Fault", "Commissioning"]
    assert api.client.delete(f"/v1/annotation-classes/{fault['id']}",
                             headers=headers).status_code == 204  # fmt: skip
    assert post({"name": "Fault"}).status_code == 201  # the name is free again
    params = {"updated_since": "2000-01-01T00:00:00Z"}
    since = api.client.get("/v1/annotation-classes", params=params, headers=headers)
    since = since.json()["data"]
    assert sorted((c["name"], c["deleted_at"] is not None) for c in since) == [
        ("Commissioning", False), ("Fault", False), ("Fault", True)]  # fmt: skip
    bounded_group = api.runtime.store.create_device_group(api.runtime.store.organization.id, "N")
    bounded = api.key(*SCOPES, groups=(bounded_group.id,))
    error_of(api.client.post("/v1/annotation-classes", json={"name": "Mine"}, headers=bounded),
             403, "forbidden")  # fmt: skip
    assert len(api.client.get("/v1/annotation-classes", headers=bounded).json()["data"]) == 2


def test_annotations_stay_inside_a_keys_boundary_and_device_credentials_cannot_write(api):
    headers = api.key(*SCOPES)
    store = api.runtime.store
    group = store.create_device_group(store.organization.id, "North")
    mine = device(api.client, headers, "Mine", group_id=group.id)
    theirs = device(api.client, headers, "Theirs")
    hidden = api.client.post("/v1/annotations", json=note(theirs, 1), headers=headers).json()
    bounded = api.key(*SCOPES, groups=(group.id,))
    error_of(api.client.post("/v1/annotations", json=note(theirs, 2), headers=bounded), 404,
             "not_found")  # fmt: skip
    assert api.client.post("/v1/annotations", json=note(mine, 2), headers=bounded).is_success
    listed = api.client.get("/v1/annotations", headers=bounded).json()["data"]
    assert [a["device_id"] for a in listed] == [mine]
    error_of(api.client.get(f"/v1/annotations/{hidden['data']['id']}", headers=bounded), 404,
             "not_found")  # fmt: skip
    _, secret = store.create_api_key(store.organization.id, "device", ["telemetry.write"], mine)
    device_key = {"Authorization": f"Bearer {secret}"}
    error_of(api.client.post("/v1/annotations", json=note(mine, 3), headers=device_key), 403,
             "forbidden")  # fmt: skip


def test_an_annotation_keeps_a_class_deleted_since_and_stays_editable(api):
    headers = api.key(*SCOPES)
    dev = device(api.client, headers, "Pump")
    cls = api.client.post("/v1/annotation-classes", json={"name": "Shift"}, headers=headers)
    class_id = cls.json()["data"]["id"]
    made = api.client.post("/v1/annotations", json=note(dev, 1, class_id=class_id),
                           headers=headers).json()["data"]  # fmt: skip
    assert api.client.delete(f"/v1/annotation-classes/{class_id}", headers=headers).is_success
    url = f"/v1/annotations/{made['id']}"
    edited = api.client.patch(url, json={"text": "Night shift"}, headers=headers)
    assert edited.status_code == 200 and edited.json()["data"]["class_id"] == class_id
    error_of(api.client.patch(url, json={"class_id": class_id}, headers=headers), 422,
             "validation_failed")  # fmt: skip
    inverted = {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    error_of(api.client.get("/v1/annotations", params=inverted, headers=headers), 400,
             "invalid_request")  # fmt: skip
