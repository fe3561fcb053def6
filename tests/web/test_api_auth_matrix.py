"""An auth matrix over every API operation the OpenAPI document lists, in both dialects."""

from __future__ import annotations

import re

from edge.scopes import SCOPES
from tests.web.conftest import error_of

PUBLIC = {
    ("post", "/devices/provision"),
    ("get", "/telemetry/export/download"),
    ("get", "/reports/{report_id}/download"),
    ("get", "/exports/{export_id}/download"),
}


def operations(api) -> list[tuple[str, str]]:
    schema = api.client.get("/api/schemas").json()
    found = []
    for path, item in schema["paths"].items():
        if not path.startswith(("/v1/", "/api/v1/")):
            continue
        for method in ("get", "post", "patch", "delete", "put"):
            if method in item:
                found.append((method, path))
    return found


def test_every_operation_refuses_no_key_a_bad_key_and_a_key_without_its_scope(api):
    ops = operations(api)
    assert len(ops) >= 40, "the OpenAPI document lists too few operations"
    bad = {"Authorization": "Bearer sk_live_" + "x" * 40}
    nobody = api.key(*(SCOPES - {"admin"}))  # every scope but admin: only wrong-scope 403s
    only_read = api.key("public_api.read")
    admin = api.key("admin")
    for method, path in ops:
        url = re.sub(r"\{[^}]+\}", "dev_anything", path)
        bare = path.removeprefix("/api").removeprefix("/v1")
        if (method, bare) in PUBLIC:
            continue
        error_of(api.client.request(method.upper(), url, json={}), 401, "unauthenticated")
        error_of(api.client.request(method.upper(), url, json={}, headers=bad), 401,
                 "unauthenticated")  # fmt: skip
        answer = api.client.request(method.upper(), url, json={}, headers=only_read)
        if bare == "/me":
            assert answer.status_code == 200
            continue
        denied = error_of(answer, 403, "forbidden")
        needed = denied["details"]["required_scope"]
        assert needed in SCOPES
        allowed = api.client.request(method.upper(), url, json={},
                                     headers=admin if needed == "admin" else nobody)  # fmt: skip
        assert allowed.status_code != 403, f"{method} {path} refused a key with every scope"
        assert allowed.status_code < 500, f"{method} {path}: {allowed.text}"
