"""Fixtures for the API tests: a running gateway and keys with chosen scopes."""

from __future__ import annotations

import re

import httpx
import pytest

REQUEST_ID = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")


@pytest.fixture
def api(gateway_factory, settings):
    gw = gateway_factory()
    store = gw.runtime.store

    def key(
        *scopes: str, org_id: str | None = None, groups: tuple = (), customers: tuple = ()
    ) -> dict[str, str]:
        _, secret = store.create_api_key(
            org_id or store.organization.id, "test", list(scopes), groups=groups,
            customers=customers,
        )  # fmt: skip
        return {"Authorization": f"Bearer {secret}"}

    gw.key = key
    return gw


def error_of(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert REQUEST_ID.match(body["request_id"])
    return body
