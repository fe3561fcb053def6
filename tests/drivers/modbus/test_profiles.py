"""Built-in device profiles: each loads, is internally consistent and decodes as its
document says; broken profile files fail with errors that name the file and the point."""

from __future__ import annotations

import re
import struct
from collections import defaultdict
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import get_args

import pytest

from drivers.modbus import profiles
from drivers.modbus.codec import decode
from drivers.modbus.points import DataType, ModbusPoint, Order
from drivers.modbus.profiles import Profile, ProfileError, load

BUILT_IN = (
    "abb_b23",
    "abb_b24",
    "carlo_gavazzi_em24",
    "eastron_sdm120",
    "eastron_sdm630",
    "generic_plc",
    "schneider_iem3000",
)
ENERGY_UNITS = frozenset({"kWh", "kvarh"})
INSTANTANEOUS_UNITS = frozenset({"V", "A", "W", "var", "VA", "Hz"})
UNITS = INSTANTANEOUS_UNITS | ENERGY_UNITS | {"%", "°C", "m³/h", "m³", "s"}
# Registers one read request may ask for (Modbus Application Protocol, function 03/04).
MODBUS_MAX_READ = 125
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _float32_words(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def _register_clashes(profile: Profile) -> list[str]:
    """Points whose registers (or bits) overlap another point's in the same table.

    `bit` points are the one deliberate overlap: they may share a register with each
    other (different bits) and with a one-register word point holding the whole word.
    """
    clashes = []
    by_table: dict[str, list[ModbusPoint]] = defaultdict(list)
    for point in profile.points:
        by_table[point.table].append(point)
    for table, points in by_table.items():
        words = sorted((p for p in points if p.data_type != "bit"), key=lambda p: p.address)
        for before, after in pairwise(words):
            if after.address < before.end:
                clashes.append(f"{table}: {before.key} and {after.key}")
        seen_bits: dict[tuple[int, int | None], str] = {}
        for flag in (p for p in points if p.data_type == "bit"):
            spot = (flag.address, flag.bit)
            if spot in seen_bits:
                clashes.append(f"{table}: {seen_bits[spot]} and {flag.key}")
            seen_bits[spot] = flag.key
            for word in words:
                whole_word = word.address == flag.address and word.words == 1
                if word.address <= flag.address < word.end and not whole_word:
                    clashes.append(f"{table}: {word.key} and {flag.key}")
    return clashes


def _all_points() -> Iterator[tuple[str, ModbusPoint]]:
    for profile_id in profiles.available():
        for point in load(profile_id).points:
            yield profile_id, point


# --- the built-in set ------------------------------------------------------


def test_the_documented_device_profiles_are_built_in() -> None:
    assert set(BUILT_IN) <= set(profiles.available())


@pytest.mark.parametrize("profile_id", profiles.available())
def test_every_built_in_profile_loads_with_a_header_and_points(profile_id: str) -> None:
    profile = load(profile_id)

    assert profile.id == profile_id
    assert profile.name and profile.manufacturer and profile.description
    assert profile.points


@pytest.mark.parametrize("profile_id", profiles.available())
def test_keys_are_unique_snake_case(profile_id: str) -> None:
    keys = [point.key for point in load(profile_id).points]

    assert len(keys) == len(set(keys))
    assert [key for key in keys if not SNAKE_CASE.match(key)] == []


@pytest.mark.parametrize("profile_id", profiles.available())
def test_no_two_points_overlap_in_a_table_except_status_bits(profile_id: str) -> None:
    assert _register_clashes(load(profile_id)) == []


def test_the_overlap_check_catches_a_point_reaching_into_the_next() -> None:
    clashing = profiles.parse_profile(
        "clash",
        {
            "name": "Clash",
            "manufacturer": "Test",
            "points": [
                {"key": "power", "table": "input", "address": 0, "data_type": "float32"},
                {"key": "energy", "table": "input", "address": 1, "data_type": "float32"},
                {"key": "flag", "table": "input", "address": 0, "data_type": "bit", "bit": 3},
            ],
        },
        "clash.toml",
    )

    assert _register_clashes(clashing) == ["input: power and energy", "input: power and flag"]


@pytest.mark.parametrize("profile_id", profiles.available())
def test_every_point_fits_in_one_request_of_its_profile(profile_id: str) -> None:
    profile = load(profile_id)
    limit = profile.max_block or MODBUS_MAX_READ

    assert [p.key for p in profile.points if p.words > limit] == []


def test_energy_counters_are_kwh_or_kvarh_polled_every_minute_without_deadband() -> None:
    for profile_id, point in _all_points():
        where = f"{profile_id}.{point.key}"
        is_energy = point.unit in ENERGY_UNITS
        assert ("energy" in point.key) == is_energy, where
        if not is_energy:
            continue
        assert point.unit == ("kvarh" if "reactive" in point.key else "kWh"), where
        assert point.interval_s == 60.0, where
        assert point.deadband is None, where


def test_instantaneous_electrical_values_poll_every_second() -> None:
    slow = [
        f"{profile_id}.{point.key}"
        for profile_id, point in _all_points()
        if point.unit in INSTANTANEOUS_UNITS
        and "demand" not in point.key
        and point.interval_s != 1.0
    ]

    assert slow == []


def test_units_come_from_the_gateways_vocabulary() -> None:
    odd = [
        f"{profile_id}.{point.key}: {point.unit}"
        for profile_id, point in _all_points()
        if point.unit is not None and point.unit not in UNITS
    ]

    assert odd == []


def test_only_setpoints_and_commands_are_writable() -> None:
    writable = {(pid, p.key) for pid, p in _all_points() if p.writable}

    assert {pid for pid, _ in writable} == {"generic_plc"}


# --- generic_plc: the every-type fixture ----------------------------------


def test_generic_plc_covers_every_data_type_table_and_order() -> None:
    points = load("generic_plc").points

    assert {p.data_type for p in points} == set(get_args(DataType))
    assert {p.order for p in points} == set(get_args(Order))
    assert {p.table for p in points} == {"coil", "discrete", "input", "holding"}


def test_generic_plc_setpoints_are_writable_within_limits_and_report_on_change() -> None:
    setpoints = [p for p in load("generic_plc").points if p.table == "holding"]

    assert setpoints
    for point in setpoints:
        assert point.writable, point.key
        assert point.min is not None and point.max is not None, point.key
        assert point.min < point.max, point.key
        assert point.deadband == 0.0, point.key


def test_generic_plc_run_commands_are_writable_coils() -> None:
    profile = load("generic_plc")
    coils = [p for p in profile.points if p.table == "coil"]

    assert coils and all(p.writable and p.data_type == "bool" for p in coils)
    assert profile.point("pump_run").table == "coil"


def test_generic_plc_status_word_bits_read_their_flags() -> None:
    profile = load("generic_plc")
    word = 0b1000_0000_0000_0101

    assert decode(profile.point("status_word"), [word]) == word
    assert decode(profile.point("status_ready"), [word]) == 1.0
    assert decode(profile.point("status_running"), [word]) == 0.0
    assert decode(profile.point("status_fault"), [word]) == 1.0
    assert decode(profile.point("status_maintenance_due"), [word]) == 1.0


def test_generic_plc_process_values_decode_with_scale_and_sentinel() -> None:
    profile = load("generic_plc")

    assert decode(profile.point("tank_temperature"), [0xFF9C]) == pytest.approx(-10.0)
    assert decode(profile.point("tank_level"), [655]) == pytest.approx(65.5)
    assert decode(profile.point("tank_level"), [0xFFFF]) is None
    assert decode(profile.point("inlet_flow"), _float32_words(12.5)) == 12.5
    # uint32 in CDAB: low word first.
    assert decode(profile.point("pump_start_count"), [0x0002, 0x0001]) == 0x0001_0002


def test_generic_plc_device_name_is_a_string_of_eight_registers() -> None:
    point = load("generic_plc").point("device_name")
    raw = b"PUMP-ST1".ljust(16, b"\0")
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 16, 2)]

    assert point.words == 8
    assert decode(point, words) == "PUMP-ST1"


def test_generic_plc_energy_counter_reports_kwh_from_wh() -> None:
    point = load("generic_plc").point("import_active_energy")

    assert decode(point, [0, 0, 0x0012, 0xD687]) == pytest.approx(1234.567)


# --- meters: register maps as their documents give them --------------------


def test_sdm630_reads_float32_input_registers_high_word_first() -> None:
    profile = load("eastron_sdm630")
    power = profile.point("total_active_power")

    assert (power.table, power.address, power.data_type, power.order) == (
        "input", 52, "float32", "ABCD"
    )  # fmt: skip
    assert decode(power, _float32_words(-1523.5)) == -1523.5
    assert profile.max_block == 80
    assert profile.point("total_active_energy").address == 342


def test_sdm120_single_phase_map_starts_at_voltage() -> None:
    profile = load("eastron_sdm120")
    addresses = {p.key: p.address for p in profile.points}

    assert addresses["voltage"] == 0
    assert addresses["current"] == 6
    assert addresses["active_power"] == 12
    assert addresses["frequency"] == 70
    assert addresses["import_active_energy"] == 72
    assert addresses["total_active_energy"] == 342


def test_em24_int32_values_arrive_low_word_first_and_scaled() -> None:
    profile = load("carlo_gavazzi_em24")

    assert decode(profile.point("l1_voltage"), [2301, 0]) == pytest.approx(230.1)
    # -123456 = 0xFFFE1DC0 as Watt*10; low word 0x1DC0 comes first.
    assert decode(profile.point("total_active_power"), [0x1DC0, 0xFFFE]) == pytest.approx(-12345.6)
    assert decode(profile.point("import_active_energy"), [0x86A0, 0x0001]) == pytest.approx(10000.0)
    assert decode(profile.point("frequency"), [500]) == pytest.approx(50.0)
    assert profile.max_block == 11


def test_iem3000_reads_at_register_number_minus_one_and_reports_watts() -> None:
    profile = load("schneider_iem3000")
    power = profile.point("total_active_power")

    assert profile.point("l1_current").address == 3000 - 1
    assert power.address == 3060 - 1
    assert decode(power, _float32_words(2.5)) == pytest.approx(2500.0)


def test_iem3000_energy_is_kwh_from_int64_wh_and_not_available_reads_none() -> None:
    point = load("schneider_iem3000").point("import_active_energy")

    assert point.address == 3204 - 1
    assert decode(point, [0, 0, 0x0012, 0xD687]) == pytest.approx(1234.567)
    assert decode(point, [0x8000, 0, 0, 0]) is None


def test_iem3000_float_not_available_reads_none() -> None:
    voltage = load("schneider_iem3000").point("l1_voltage")

    assert decode(voltage, [0xFFC0, 0x0000]) is None


def test_abb_b23_and_b24_share_one_register_map() -> None:
    assert load("abb_b23").points == load("abb_b24").points


def test_abb_scaled_integers_and_invalid_values() -> None:
    profile = load("abb_b23")

    assert decode(profile.point("l1_voltage"), [0, 2305]) == pytest.approx(230.5)
    assert decode(profile.point("l1_current"), [0, 1234]) == pytest.approx(12.34)
    assert decode(profile.point("total_active_power"), [0xFFFF, 0xFF38]) == pytest.approx(-2.0)
    assert decode(profile.point("frequency"), [5001]) == pytest.approx(50.01)
    assert decode(profile.point("frequency"), [0xFFFF]) is None
    assert decode(profile.point("total_power_factor"), [0x7FFF]) is None
    # 123456 = 0x0001E240 hundredths of a kWh.
    assert decode(profile.point("import_active_energy"), [0, 0, 0x0001, 0xE240]) == pytest.approx(
        1234.56
    )


# --- broken and unknown profiles --------------------------------------------


@pytest.fixture
def profile_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A stand-in for the built-in profile folder, so `load` reads files written here."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    monkeypatch.setattr(profiles, "resources", SimpleNamespace(files=lambda _package: tmp_path))
    load.cache_clear()
    yield folder
    load.cache_clear()


GOOD_POINT = 'key = "voltage"\ntable = "input"\naddress = 0\ndata_type = "float32"\n'
HEADER = 'name = "Test meter"\nmanufacturer = "Test"\n'


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ProfileError) as caught:
        load("nope")

    message = str(caught.value)
    assert "'nope'" in message
    for profile_id in BUILT_IN:
        assert profile_id in message


def test_a_bad_data_type_names_the_file_the_point_and_the_field(profile_dir: Path) -> None:
    bad_point = 'key = "flow"\ntable = "input"\naddress = 2\ndata_type = "float33"\n'
    (profile_dir / "bad_meter.toml").write_text(
        f"{HEADER}\n[[points]]\n{GOOD_POINT}\n[[points]]\n{bad_point}", encoding="utf-8"
    )

    with pytest.raises(ProfileError) as caught:
        load("bad_meter")

    message = str(caught.value)
    assert "bad_meter.toml" in message
    assert "'flow'" in message
    assert "float33" in message and "data_type" in message


def test_an_unknown_point_field_names_the_file_the_point_and_the_field(
    profile_dir: Path,
) -> None:
    (profile_dir / "typo_meter.toml").write_text(
        f'{HEADER}\n[[points]]\n{GOOD_POINT}colour = "red"\n', encoding="utf-8"
    )

    with pytest.raises(ProfileError) as caught:
        load("typo_meter")

    message = str(caught.value)
    assert "typo_meter.toml" in message
    assert "'voltage'" in message
    assert "colour" in message


def test_an_invalid_point_combination_names_the_file_and_the_point(profile_dir: Path) -> None:
    (profile_dir / "readonly_meter.toml").write_text(
        f"{HEADER}\n[[points]]\n{GOOD_POINT}writable = true\n", encoding="utf-8"
    )

    with pytest.raises(ProfileError) as caught:
        load("readonly_meter")

    message = str(caught.value)
    assert "readonly_meter.toml" in message and "'voltage'" in message
    assert "read-only" in message


def test_an_unknown_header_field_names_the_file(profile_dir: Path) -> None:
    (profile_dir / "header_meter.toml").write_text(f'{HEADER}vendor = "x"\n', encoding="utf-8")

    with pytest.raises(ProfileError, match=r"header_meter\.toml: unknown field vendor"):
        load("header_meter")


def test_a_key_defined_twice_is_rejected(profile_dir: Path) -> None:
    (profile_dir / "twice_meter.toml").write_text(
        f"{HEADER}\n[[points]]\n{GOOD_POINT}\n[[points]]\n{GOOD_POINT}", encoding="utf-8"
    )

    with pytest.raises(ProfileError, match=r"twice_meter\.toml: point 'voltage' is defined twice"):
        load("twice_meter")


def test_a_file_that_is_not_toml_names_the_file(profile_dir: Path) -> None:
    (profile_dir / "broken_meter.toml").write_text('name = "unterminated\n', encoding="utf-8")

    with pytest.raises(ProfileError, match=r"broken_meter\.toml: not valid TOML"):
        load("broken_meter")


def test_defaults_fill_fields_points_leave_out(profile_dir: Path) -> None:
    (profile_dir / "defaults_meter.toml").write_text(
        f'{HEADER}defaults = {{ table = "input", data_type = "float32", interval_s = 5.0 }}\n'
        'points = [{ key = "voltage", address = 0 }, '
        '{ key = "energy", address = 2, interval_s = 60.0 }]\n',
        encoding="utf-8",
    )

    profile = load("defaults_meter")

    assert profile.point("voltage").interval_s == 5.0
    assert profile.point("energy").interval_s == 60.0
    assert {p.table for p in profile.points} == {"input"}


def test_points_swallowed_by_the_defaults_table_are_an_error_not_an_empty_profile(
    profile_dir: Path,
) -> None:
    (profile_dir / "swallowed_meter.toml").write_text(
        f'{HEADER}[defaults]\ntable = "input"\npoints = [{{ key = "v", address = 0 }}]\n',
        encoding="utf-8",
    )

    with pytest.raises(
        ProfileError, match=r"swallowed_meter\.toml: unknown field defaults\.points"
    ):
        load("swallowed_meter")


def test_a_profile_without_points_is_rejected(profile_dir: Path) -> None:
    (profile_dir / "empty_meter.toml").write_text(HEADER, encoding="utf-8")

    with pytest.raises(ProfileError, match=r"empty_meter\.toml: the profile has no points"):
        load("empty_meter")


def test_64_bit_sentinels_match_exactly() -> None:
    point = ModbusPoint(
        key="e", table="holding", address=0, data_type="uint64",
        not_available=(0xFFFFFFFFFFFFFFFF,),
    )  # fmt: skip
    assert decode(point, [0xFFFF] * 4) is None
    assert decode(point, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE]) == 0xFFFFFFFFFFFFFFFE
