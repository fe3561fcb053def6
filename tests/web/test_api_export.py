"""/telemetry/export over real HTTP: signed links, their public CSV download, tampering,
expiry, a restart in between, and streaming more rows than a store page; and the Signer."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import pytest

from edge import gateway
from edge.runtime import Runtime
from edge.signing import KEY_BYTES, Signer
from tests.store.helpers import other_org
from tests.web.conftest import error_of
from web.api import telemetry_export

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)
SCOPES = ("devices.write", "devices.read", "telemetry.write", "telemetry.read")


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def stamp(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ingest(client: httpx.Client, headers: dict[str, str], readings: list[dict]) -> None:
    for start in range(0, len(readings), 1000):
        answer = client.post("/v1/telemetry/ingest", headers=headers,
                             json={"readings": readings[start:start + 1000]})  # fmt: skip
        assert answer.status_code == 200, answer.text


def add_meter(client: httpx.Client, headers: dict[str, str]) -> str:
    """A device with two metrics over three minutes, one corrected value and one comm error."""
    device = client.post("/v1/devices", json={"name": "Main incomer", "type": "http"},
                         headers=headers).json()["data"]["id"]  # fmt: skip
    r = {"device_id": device}
    ingest(client, headers, [
        {**r, "metric": "power_kw", "ts": at(0), "value": 10.5},
        {**r, "metric": "power_kw", "ts": at(60), "value": 11.0},
        {**r, "metric": "power_kw", "ts": at(120), "value": 11.5},
        {**r, "metric": "voltage", "ts": at(0), "value": 230.0},
        {**r, "metric": "voltage", "ts": at(60), "value": 231.5},
        {**r, "metric": "voltage", "ts": at(120), "quality": "comm_error"},
        {**r, "metric": "power_kw", "ts": at(3600), "value": 99.0},  # at `to`: excluded
    ])  # fmt: skip
    ingest(client, headers, [{**r, "metric": "power_kw", "ts": at(60), "value": 12.25,
                              "correction": True}])  # fmt: skip
    return device


def expected_rows(device: str) -> list[list[str]]:
    return [
        [device, "power_kw", stamp(0), "10.5", "good", "false"],
        [device, "voltage", stamp(0), "230.0", "good", "false"],
        [device, "power_kw", stamp(60), "12.25", "good", "true"],
        [device, "voltage", stamp(60), "231.5", "good", "false"],
        [device, "power_kw", stamp(120), "11.5", "good", "false"],
        [device, "voltage", stamp(120), "", "comm_error", "false"],
    ]


def rows_of(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    header, *rows = csv.reader(io.StringIO(answer.text))
    assert header == ["device_id", "metric", "ts", "value", "quality", "correction"]
    return rows


def bare(url: str) -> tuple[str, dict[str, str]]:
    """A download URL's path and query parameters."""
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query))


def download(client: httpx.Client, path: str, query: dict[str, Any]) -> httpx.Response:
    """GET a download with no API key, the query encoded exactly as given."""
    return client.get(f"{path}?{urlencode(query, quote_via=quote)}")


@pytest.fixture
def meter(api):
    headers = api.key(*SCOPES)
    return api, headers, add_meter(api.client, headers)


def test_a_signed_link_downloads_exactly_the_ingested_rows_with_no_api_key(meter):
    api, headers, device = meter
    asked = time.time()
    answer = api.client.get("/v1/telemetry/export", headers=headers, params={
        "device_id": device, "from": at(0), "to": at(3600), "format": "csv"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["meta"]["request_id"] == answer.headers["x-request-id"]
    link = body["data"]
    assert {k: link[k] for k in ("format", "device_id", "from", "to", "metrics")} == {
        "format": "csv", "device_id": device, "from": stamp(0), "to": stamp(3600),
        "metrics": None}  # fmt: skip
    expires = datetime.fromisoformat(link["expires_at"]).timestamp()
    assert asked + 3600 - 5 <= expires <= time.time() + 3600
    assert link["url"].startswith(f"{api.url}/v1/telemetry/export/download?")
    got = httpx.get(link["url"])  # a client of its own: nothing but the URL
    assert rows_of(got) == expected_rows(device)
    assert got.headers["content-disposition"] == (
        f'attachment; filename="{device}_20260524T100000Z_20260524T110000Z.csv"')  # fmt: skip


def test_the_camel_case_dialect_exports_the_chosen_metrics(meter):
    api, headers, device = meter
    link = api.client.get(
        "/api/v1/telemetry/export",
        headers=headers,
        params={"deviceId": device, "metrics": "voltage", "fromUtc": at(0), "toUtc": at(3600)},
    ).json()
    assert set(link) == {"url", "expiresAt", "format", "deviceId", "metrics", "from", "to"}
    assert link["deviceId"] == device and link["metrics"] == ["voltage"]
    assert urlsplit(link["url"]).path == "/api/v1/telemetry/export/download"
    assert rows_of(api.client.get(link["url"])) == [
        row for row in expected_rows(device) if row[1] == "voltage"]  # fmt: skip
    single = api.client.get(
        "/api/v1/telemetry/export",
        headers=headers,
        params={"deviceId": device, "metric": "power_kw", "fromUtc": at(30), "toUtc": at(3601)},
    ).json()
    assert [(r[1], r[2], r[3]) for r in rows_of(api.client.get(single["url"]))] == [
        ("power_kw", stamp(60), "12.25"), ("power_kw", stamp(120), "11.5"),
        ("power_kw", stamp(3600), "99.0")]  # fmt: skip


def test_any_change_to_a_link_is_forbidden(meter):
    api, headers, device = meter
    url = api.client.get(
        "/v1/telemetry/export",
        headers=headers,
        params={"device_id": device, "metric": "voltage", "from": at(0), "to": at(3600)},
    ).json()["data"]["url"]
    path, query = bare(url)
    assert set(query) == {"org_id", "device_id", "metrics", "from", "to", "format", "expires",
                          "signature"}  # fmt: skip
    assert len(rows_of(download(api.client, path, query))) == 3
    changed = {"org_id": "org_other", "device_id": "dev_other", "metrics": "power_kw",
               "from": stamp(-60), "to": stamp(7200), "format": "parquet",
               "expires": str(int(query["expires"]) + 86_400),
               "signature": query["signature"][:-1] + ("0" if query["signature"][-1] != "0"
                                                       else "1")}  # fmt: skip
    for name, value in changed.items():
        denied = error_of(download(api.client, path, {**query, name: value}), 403, "forbidden")
        assert "not valid or has expired" in denied["message"]
    for name in query:
        less = {k: v for k, v in query.items() if k != name}
        error_of(download(api.client, path, less), 403, "forbidden")
    error_of(download(api.client, path, {**query, "extra": "1"}), 403, "forbidden")
    repeated = f"{path}?{urlencode(query, quote_via=quote)}&metrics=power_kw"
    error_of(api.client.get(repeated), 403, "forbidden")
    other_dialect = path.replace("/v1/", "/api/v1/", 1)
    error_of(download(api.client, other_dialect, query), 403, "forbidden")
    error_of(api.client.get(path), 403, "forbidden")


def test_an_expired_link_is_forbidden(meter, settings):
    api, headers, device = meter
    url = api.client.get(
        "/v1/telemetry/export",
        headers=headers,
        params={"device_id": device, "from": at(0), "to": at(3600)},
    ).json()["data"]["url"]
    path, query = bare(url)
    del query["signature"], query["expires"]
    signer = Signer(settings.data_dir)  # the gateway's own key, read from its data dir
    soon = int(time.time()) + 60
    fresh = {**query, "expires": soon, "signature": signer.sign("GET", path, query, soon)}
    assert len(rows_of(download(api.client, path, fresh))) == 6
    past = int(time.time()) - 1
    stale = {**query, "expires": past, "signature": signer.sign("GET", path, query, past)}
    error_of(download(api.client, path, stale), 403, "forbidden")


def test_a_link_to_a_deleted_device_is_not_found(meter):
    api, headers, device = meter
    url = api.client.get(
        "/v1/telemetry/export",
        headers=headers,
        params={"device_id": device, "from": at(0), "to": at(3600)},
    ).json()["data"]["url"]
    assert api.client.delete(f"/v1/devices/{device}", headers=headers).status_code == 204
    error_of(api.client.get(url), 404, "not_found")


def test_export_parameters_are_checked(meter):
    api, headers, device = meter
    window = {"device_id": device, "from": at(0), "to": at(3600)}
    for prefix in ("/v1", "/api/v1"):
        url = f"{prefix}/telemetry/export"
        parquet = error_of(api.client.get(url, params={**window, "format": "parquet"},
                                          headers=headers), 400, "invalid_request")  # fmt: skip
        assert parquet["details"] == {"param": "format", "supported": ["csv"]}
        assert "supported format is csv" in parquet["message"]
        year = {**window, "to": (T0 + timedelta(days=367)).isoformat()}
        too_long = error_of(api.client.get(url, params=year, headers=headers), 400,
                            "invalid_request")  # fmt: skip
        assert too_long["details"] == {"max_days": 366}
        no_device = {k: v for k, v in window.items() if k != "device_id"}
        error_of(api.client.get(url, params=no_device, headers=headers), 400, "invalid_request")
        unknown = {**window, "device_id": "dev_unknown"}
        error_of(api.client.get(url, params=unknown, headers=headers), 404, "not_found")
        stranger = api.key("telemetry.read", org_id=other_org(api.runtime.store))
        error_of(api.client.get(url, params=window, headers=stranger), 404, "not_found")
    a_year = {**window, "to": (T0 + timedelta(days=366)).isoformat()}
    assert api.client.get("/v1/telemetry/export", params=a_year, headers=headers).is_success


def test_the_download_streams_page_by_page_more_rows_than_one_page(api, monkeypatch):
    headers = api.key(*SCOPES)
    device = api.client.post("/v1/devices", json={"name": "Logger", "type": "http"},
                             headers=headers).json()["data"]["id"]  # fmt: skip
    power = [{"device_id": device, "metric": "power_kw", "ts": at(i), "value": i * 0.5}
             for i in range(1200)]  # fmt: skip
    voltage = [{"device_id": device, "metric": "voltage", "ts": at(4 * i), "value": 200.0 + i}
               for i in range(300)]  # fmt: skip
    ingest(api.client, headers, power + voltage)
    monkeypatch.setattr(telemetry_export, "EXPORT_PAGE", 500)
    store = api.runtime.store
    fetched: list[int] = []
    real_range = store.range

    def counted_range(*args: Any) -> Any:
        page = real_range(*args)
        fetched.append(len(page.items))
        return page

    monkeypatch.setattr(store, "range", counted_range)
    url = api.client.get(
        "/v1/telemetry/export",
        headers=headers,
        params={"device_id": device, "from": at(0), "to": at(1200)},
    ).json()["data"]["url"]
    got = api.client.get(url)
    assert "content-length" not in got.headers  # sent as it was read, not measured first
    rows = rows_of(got)
    assert len(rows) == 1500
    want = sorted([(i, "power_kw", str(i * 0.5)) for i in range(1200)]
                  + [(4 * i, "voltage", str(200.0 + i)) for i in range(300)])  # fmt: skip
    assert [(r[2], r[1], r[3]) for r in rows] == [(stamp(s), m, v) for s, m, v in want]
    assert sorted(fetched) == [200, 300, 500, 500]


@contextlib.contextmanager
def serving_once(settings) -> Iterator[tuple[httpx.Client, Runtime]]:
    """A gateway that stops for good when the block ends: the first half of a restart."""
    sock = gateway.bind("127.0.0.1", 0)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready: dict[str, Runtime] = {}
    started = threading.Event()

    def on_ready(runtime: Runtime) -> None:
        ready["runtime"] = runtime
        started.set()

    def main() -> None:
        try:
            loop.run_until_complete(gateway.serve(settings, sock, stop=stop, on_ready=on_ready,
                                                  handle_signals=False))  # fmt: skip
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            started.set()

    thread = threading.Thread(target=main, name="test-gateway-once")
    thread.start()
    started.wait(30)
    client = httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=10)
    try:
        yield client, ready["runtime"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        client.close()
        sock.close()


def test_a_link_signed_before_a_restart_still_works_after_it(gateway_factory, settings):
    with serving_once(settings) as (client, runtime):
        store = runtime.store
        _, secret = store.create_api_key(store.organization.id, "t", list(SCOPES))
        headers = {"Authorization": f"Bearer {secret}"}
        device = add_meter(client, headers)
        url = client.get(
            "/v1/telemetry/export",
            headers=headers,
            params={"device_id": device, "from": at(0), "to": at(3600)},
        ).json()["data"]["url"]
    key = (Path(settings.data_dir) / "signing.key").read_bytes()
    restarted = gateway_factory()
    path, query = bare(url)
    assert rows_of(download(restarted.client, path, query)) == expected_rows(device)
    assert (Path(settings.data_dir) / "signing.key").read_bytes() == key


def test_the_signing_key_is_made_on_first_use_owner_only_and_reused(tmp_path):
    signer = Signer(tmp_path)
    assert not signer.path.exists()
    until = int(time.time()) + 60
    params = {"device_id": "dev_1", "from": "2026-05-24T10:00:00.000Z"}
    signature = signer.sign("GET", "/v1/x", params, until)
    assert signer.path.stat().st_mode & 0o777 == 0o600
    assert len(signer.path.read_bytes()) == KEY_BYTES
    again = Signer(tmp_path)
    assert again.verify("GET", "/v1/x", params, until, signature)
    assert not again.verify("POST", "/v1/x", params, until, signature)
    assert not again.verify("GET", "/v1/y", params, until, signature)
    assert not again.verify("GET", "/v1/x", {**params, "device_id": "dev_2"}, until, signature)
    assert not again.verify("GET", "/v1/x", params, until + 1, signature)
    assert not again.verify("GET", "/v1/x", params, until, signature, now=until)
    assert not again.verify("GET", "/v1/x", params, until, "é" + signature[1:])
    assert not Signer(tmp_path / "elsewhere").verify("GET", "/v1/x", params, until, signature)


def test_a_damaged_signing_key_is_replaced_with_a_warning(tmp_path, caplog):
    (tmp_path / "signing.key").write_bytes(b"short")
    signer = Signer(tmp_path)
    with caplog.at_level(logging.WARNING, logger="edge.signing"):
        signature = signer.sign("GET", "/v1/x", {}, 2_000_000_000)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "damaged (5 bytes)" in caplog.records[0].getMessage()
    key = signer.path.read_bytes()
    assert len(key) == KEY_BYTES and key != b"short"
    assert signer.path.stat().st_mode & 0o777 == 0o600
    assert Signer(tmp_path).verify("GET", "/v1/x", {}, 2_000_000_000, signature, now=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.key"]
