"""Trying a Modbus device before it is stored: what the add-device wizard's test shows."""

from __future__ import annotations

import pytest

from drivers.modbus import profiles
from drivers.modbus.probe import probe
from tests.drivers.modbus.test_sunspec import sunspec_server


def _body(port: int, **more):
    return {
        "type": "modbus_tcp",
        "connection": {"host": "127.0.0.1", "port": port, "unit_id": 1, "timeout_s": 0.3},
        **more,
    }


def test_probe_reads_every_point_of_the_profile_once(run, modbus_server):
    server = modbus_server({1: "eastron_sdm120"}, frozen=True)
    found = run(probe(_body(server.port, profile="eastron_sdm120")))
    assert found["ok"] and found["error"] is None
    profile = profiles.load("eastron_sdm120")
    assert {v["key"] for v in found["values"]} == {p.key for p in profile.points}
    voltage = next(v for v in found["values"] if v["key"] == "voltage")
    assert voltage["value"] == pytest.approx(server.simulator.value(1, "voltage"), rel=1e-6)
    assert found["points"] == []  # a profile's points are stored from the profile


def test_probe_says_plainly_when_the_unit_or_the_host_does_not_answer(run, modbus_server):
    server = modbus_server({1: "eastron_sdm120"})
    silent = run(
        probe(
            {
                **_body(server.port, profile="eastron_sdm120"),
                "connection": {
                    "host": "127.0.0.1",
                    "port": server.port,
                    "unit_id": 7,
                    "timeout_s": 0.3,
                },
            }
        )
    )
    assert not silent["ok"] and silent["values"] == []
    server.stop()
    closed = run(probe(_body(server.port, profile="eastron_sdm120")))
    assert not closed["ok"] and "cannot connect" in closed["error"]


def test_probe_refuses_a_body_without_points_or_a_valid_connection(run):
    with pytest.raises(ValueError, match="needs a profile or at least one point"):
        run(probe(_body(502)))
    with pytest.raises(ValueError, match="host is required"):
        run(probe({"type": "modbus_tcp", "connection": {}, "profile": "eastron_sdm120"}))


def test_sunspec_discovery_of_a_device_without_the_marker_is_an_answer_not_an_error(
    run, modbus_server
):
    server = modbus_server({1: "eastron_sdm120"})
    found = run(probe(_body(server.port, discover="sunspec")))
    assert not found["ok"] and "not a SunSpec device" in found["error"]


def test_sunspec_discovery_previews_the_declared_points_and_returns_them_to_store(run):
    async def scenario():
        async with sunspec_server(40000) as port:
            return await probe(_body(port, discover="sunspec"))

    found = run(scenario())
    assert found["ok"]
    shown = {v["key"]: v["value"] for v in found["values"]}
    assert shown["m103_PhVphA"] == pytest.approx(230.1)
    assert shown["m103_WH"] == 100_000
    assert shown["m1_Md"] == "Symo 10.0-3-M"
    stored = {p["key"]: p for p in found["points"]}
    assert stored["m103_A"]["scale"] == pytest.approx(0.01)
    assert set(stored) == set(shown)
