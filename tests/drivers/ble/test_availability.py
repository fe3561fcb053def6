"""Advert intervals learned from the gaps between adverts; staleness as a multiple of them."""

from __future__ import annotations

from drivers.ble.adverts import Advert
from drivers.ble.availability import Availability
from drivers.ble.scanner import Matcher


def test_the_interval_is_the_median_gap_and_stale_is_a_multiple_of_it():
    a = Availability(stale_multiple=5, default_stale_s=900, since=0.0)
    assert a.stale_after_s == 900  # nothing learned yet: the default
    for t in (10.0, 12.0, 14.0, 14.02, 16.0, 30.0, 32.0):  # a repeat and one missed advert
        a.heard(t)
    assert a.interval_s == 2.0
    assert a.stale_after_s == 10.0
    assert not a.check(41.9)
    assert a.check(42.1) and a.online is False
    assert not a.check(50.0)  # reported once
    assert a.heard(60.0)  # back: True once
    assert not a.heard(62.0)


def test_a_sensor_heard_right_after_start_is_online_and_one_never_heard_goes_stale():
    a = Availability(stale_multiple=5, default_stale_s=900, since=100.0)
    assert a.heard(100.01) and a.online
    never = Availability(stale_multiple=5, default_stale_s=900, since=100.0)
    assert not never.check(999.0)
    assert never.check(1000.1) and never.online is False


def test_matchers_narrow_by_address_service_data_and_manufacturer():
    advert = Advert("A4:C1:38:00:00:01", -50, service_data={"0000fcd2-x": b""},
                    manufacturer_data={0x0499: b""})  # fmt: skip
    assert Matcher().matches(advert)
    assert Matcher(address="a4:c1:38:00:00:01").matches(advert)
    assert not Matcher(address="A4:C1:38:00:00:02").matches(advert)
    assert Matcher(service_data_uuid="0000fcd2-x", manufacturer_id=0x0499).matches(advert)
    assert not Matcher(manufacturer_id=0xEC88).matches(advert)
