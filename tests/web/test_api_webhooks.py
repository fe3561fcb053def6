"""Webhook subscriptions over real HTTP, in both dialects: secrets shown once, If-Match,
validation, tenancy. Sending them is tested in tests/sync/test_webhooks.py."""

from __future__ import annotations

import pytest

from tests.store.helpers import other_org
from tests.web.conftest import error_of

HOOK = {"url": "https://erp.example.com/hooks/edge", "events": ["device.offline", "alarm.raised"]}


def create(api, headers, body=None, prefix: str = "/v1") -> dict:
    made = api.client.post(f"{prefix}/webhooks", json=body or HOOK, headers=headers)
    assert made.status_code == 201, made.text
    return made.json() if prefix == "/api/v1" else made.json()["data"]


def test_a_webhook_shows_its_secret_once_and_is_changed_with_if_match_then_deleted(api):
    headers = api.key("webhooks.write")
    made = api.client.post("/v1/webhooks", json={**HOOK, "description": "ERP"}, headers=headers)
    assert made.status_code == 201, made.text
    hook = made.json()["data"]
    secret = hook.pop("secret")
    assert hook["id"].startswith("wh_") and secret.startswith("whsec_") and len(secret) >= 38
    assert made.headers["etag"] == hook["etag"]
    assert (hook["url"], hook["events"], hook["enabled"]) == (HOOK["url"], HOOK["events"], True)

    url = f"/v1/webhooks/{hook['id']}"
    assert api.client.get(url, headers=headers).json()["data"] == hook
    listed = api.client.get("/v1/webhooks", headers=headers)
    assert listed.json()["data"] == [hook]
    stale = {**headers, "If-Match": hook["etag"]}
    changed = api.client.patch(url, json={"events": ["*"], "enabled": False}, headers=stale)
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["events"] == ["*"] and not changed.json()["data"]["enabled"]
    assert "secret" not in changed.json()["data"]
    error_of(api.client.patch(url, json={"description": "x"}, headers=stale), 409, "conflict")

    fresh = {**headers, "If-Match": changed.headers["etag"]}
    rotated = api.client.patch(url, json={"rotate_secret": True}, headers=fresh)
    new_secret = rotated.json()["data"]["secret"]
    assert new_secret.startswith("whsec_") and new_secret != secret
    for answer in (api.client.get(url, headers=headers),
                   api.client.get("/v1/webhooks", headers=headers)):  # fmt: skip
        assert answer.status_code == 200
        assert secret not in answer.text and new_secret not in answer.text

    assert api.client.delete(url, headers=headers).status_code == 204
    error_of(api.client.get(url, headers=headers), 404, "not_found")
    error_of(api.client.delete(url, headers=headers), 404, "not_found")
    assert api.client.get("/v1/webhooks", headers=headers).json()["data"] == []
    since = api.client.get("/v1/webhooks", params={"updated_since": "2000-01-01T00:00:00Z"},
                           headers=headers).json()["data"]  # fmt: skip
    assert [w["id"] for w in since] == [hook["id"]] and since[0]["deleted_at"]


def test_the_camel_case_dialect_serves_the_same_webhooks(api):
    headers = api.key("webhooks.write")
    hook = create(api, headers, {"url": "http://10.0.0.5:8080/in", "events": ["report.ready"]},
                  prefix="/api/v1")  # fmt: skip
    assert hook["secret"].startswith("whsec_") and hook["createdAt"] and "created_at" not in hook
    listed = api.client.get("/api/v1/webhooks", params={"pageSize": 10}, headers=headers).json()
    assert listed["hasMore"] is False and listed["nextCursor"] is None
    assert [w["id"] for w in listed["data"]] == [hook["id"]] and "secret" not in listed["data"][0]
    same = api.client.get(f"/v1/webhooks/{hook['id']}", headers=headers).json()["data"]
    assert same["updated_at"] == hook["updatedAt"]

    url = f"/api/v1/webhooks/{hook['id']}"
    rotated = api.client.patch(url, json={"rotateSecret": True, "description": "Line 4"},
                               headers=headers).json()  # fmt: skip
    assert rotated["secret"] != hook["secret"] and rotated["description"] == "Line 4"
    queued = api.client.post(f"{url}/test", headers=headers)
    assert queued.status_code == 202, queued.text
    delivery = queued.json()
    assert delivery["id"].startswith("whd_") and delivery["webhookId"] == hook["id"]
    assert (delivery["eventType"], delivery["status"], delivery["attempts"]) == (
        "webhook.test", "pending", 0)  # fmt: skip
    log = api.client.get(f"{url}/deliveries", headers=headers).json()
    assert [d["id"] for d in log["data"]] == [delivery["id"]] and log["hasMore"] is False


def test_webhooks_are_listed_a_keyset_page_at_a_time(api):
    headers = api.key("webhooks.write")
    made = [create(api, headers)["id"] for _ in range(3)]
    first = api.client.get("/v1/webhooks", params={"limit": 2}, headers=headers).json()
    assert first["meta"]["pagination"]["has_more"] is True
    rest = api.client.get("/v1/webhooks", params={"limit": 2, "cursor":
                          first["meta"]["pagination"]["next"]}, headers=headers).json()  # fmt: skip
    assert [w["id"] for w in first["data"] + rest["data"]] == made
    assert rest["meta"]["pagination"] == {"limit": 2, "next": None, "has_more": False}


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://erp.example.com/in", "events": ["*"]},
        {"url": "http://", "events": ["*"]},
        {"url": "erp.example.com/in", "events": ["*"]},
        {"url": "https://erp.example.com/a b", "events": ["*"]},
        {"url": "https://erp.example.com:port/", "events": ["*"]},
        {"url": "https://erp.example.com/in", "events": []},
        {"url": "https://erp.example.com/in", "events": ["device.exploded"]},
        {"url": "https://erp.example.com/in", "events": "device.offline"},
        {"url": "https://erp.example.com/in"},
        {"events": ["*"]},
        {**HOOK, "secret": "whsec_mine"},
    ],
)
def test_a_bad_webhook_is_refused_with_the_error_body_and_nothing_is_made(api, body):
    headers = api.key("webhooks.write")
    error = error_of(api.client.post("/v1/webhooks", json=body, headers=headers), 422,
                     "validation_failed")  # fmt: skip
    assert error["message"]
    assert api.client.get("/v1/webhooks", headers=headers).json()["data"] == []


def test_a_bad_change_is_refused_and_changes_nothing(api):
    headers = api.key("webhooks.write")
    hook = create(api, headers)
    hook.pop("secret")
    url = f"/v1/webhooks/{hook['id']}"
    for body in ({"url": "mailto:ops@example.com"}, {"events": []}, {"events": ["nope.nope"]},
                 {"enabled": "yes"}, {"secret": "whsec_mine"}, {"id": "wh_mine"}):  # fmt: skip
        error_of(api.client.patch(url, json=body, headers=headers), 422, "validation_failed")
    error_of(api.client.patch(url, content=b"{not json", headers=headers), 400, "invalid_request")
    bad_etag = {**headers, "If-Match": "W/whatever"}
    error_of(api.client.patch(url, json={}, headers=bad_etag), 400, "invalid_request")
    assert api.client.get(url, headers=headers).json()["data"] == hook


def test_another_organizations_webhook_is_not_found(api):
    ours = api.key("webhooks.write")
    theirs = api.key("webhooks.write", org_id=other_org(api.runtime.store))
    hook = create(api, ours)
    url = f"/v1/webhooks/{hook['id']}"
    error_of(api.client.get(url, headers=theirs), 404, "not_found")
    error_of(api.client.patch(url, json={"enabled": False}, headers=theirs), 404, "not_found")
    error_of(api.client.post(f"{url}/test", headers=theirs), 404, "not_found")
    error_of(api.client.get(f"{url}/deliveries", headers=theirs), 404, "not_found")
    error_of(api.client.delete(url, headers=theirs), 404, "not_found")
    assert api.client.get("/v1/webhooks", headers=theirs).json()["data"] == []
    assert api.client.get(url, headers=ours).json()["data"]["enabled"] is True


def test_keys_without_the_scope_or_limited_to_groups_may_not_manage_webhooks(api):
    admin = api.key("devices.write", "webhooks.write")
    group = api.client.post("/v1/device-groups", json={"name": "North"}, headers=admin)
    limited = api.key("webhooks.write", groups=(group.json()["data"]["id"],))
    error_of(api.client.get("/v1/webhooks", headers=limited), 403, "forbidden")
    error_of(api.client.post("/v1/webhooks", json=HOOK, headers=limited), 403, "forbidden")
    denied = error_of(api.client.get("/v1/webhooks", headers=api.key("devices.read")), 403,
                      "forbidden")  # fmt: skip
    assert denied["details"]["required_scope"] == "webhooks.write"


def test_a_disabled_webhook_cannot_be_tested_and_a_deleted_one_fails_its_pending_deliveries(api):
    headers = api.key("webhooks.write")
    # Nothing listens on port 9 of loopback: the delivery stays pending, retried later.
    hook = create(api, headers, {"url": "http://127.0.0.1:9/in", "events": ["*"]})
    url = f"/v1/webhooks/{hook['id']}"
    queued = api.client.post(f"{url}/test", headers=headers).json()["data"]
    assert api.client.patch(url, json={"enabled": False}, headers=headers).is_success
    error_of(api.client.post(f"{url}/test", headers=headers), 409, "conflict")
    assert api.client.delete(url, headers=headers).status_code == 204
    error_of(api.client.post(f"{url}/test", headers=headers), 404, "not_found")
    store = api.runtime.store
    failed = store.webhook_delivery(store.organization.id, queued["id"])
    assert failed.status == "failed" and failed.next_attempt_at is None
    assert failed.last_error == "the webhook was deleted"
