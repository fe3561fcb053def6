"""Judging movement windows: history before each movement, far-out fences, minimum duration."""

from __future__ import annotations

import pytest

from edge.movements import DAY_MS, MovementSettings, Window, judge, parse_settings

HOUR_MS = 3_600_000


def run(start_h: float, minutes: float, peak: float = 10.0, ongoing: bool = False) -> Window:
    start = int(start_h * HOUR_MS)
    end = start + int(minutes * 60_000)
    return Window(start, None if ongoing else end, end, int(minutes * 60), 1.0, peak, peak / 2)


def test_a_movement_far_longer_than_its_history_is_an_anomaly():
    usual = [run(h, 30 + h % 3) for h in range(10)]
    long_one = run(20, 240)
    found = judge([*usual, long_one], MovementSettings("current_a", 5.0), 0, 30 * HOUR_MS)
    verdicts = {m.window.start_ms: m.anomaly for m in found}
    assert verdicts[long_one.start_ms].reasons == ("duration_above_usual",)
    assert verdicts[long_one.start_ms].baseline_movements == 10
    assert verdicts[long_one.start_ms].duration.median == pytest.approx(31 * 60, rel=0.05)
    assert not any(verdicts[w.start_ms].is_anomaly for w in usual)


def test_peaks_and_short_runs_are_judged_but_an_ongoing_run_is_never_too_short():
    usual = [run(h, 30, peak=10 + h % 2) for h in range(8)]
    spike, short, still_running = run(10, 30, peak=40), run(11, 1), run(12, 1, ongoing=True)
    found = judge([*usual, spike, short, still_running], MovementSettings("a", 5.0), 0, DAY_MS)
    by_start = {m.window.start_ms: m.anomaly.reasons for m in found}
    assert by_start[spike.start_ms] == ("peak_above_usual",)
    assert by_start[short.start_ms] == ("duration_below_usual",)
    assert by_start[still_running.start_ms] == ()


def test_too_little_history_gives_no_verdict():
    found = judge([run(1, 30), run(2, 300)], MovementSettings("a", 5.0), 0, DAY_MS)
    assert [m.anomaly.baseline_movements for m in found] == [0, 1]
    assert not any(m.anomaly.is_anomaly for m in found)
    assert found[1].anomaly.duration is None


def test_only_the_baseline_days_before_a_movement_count_as_its_history():
    old = [run(h, 500) for h in range(6)]  # long runs, more than a day before
    recent = [run(30 + h, 30) for h in range(6)]
    settings = MovementSettings("a", 5.0, baseline_days=1)
    found = judge([*old, *recent, run(40, 30)], settings, 40 * HOUR_MS, 41 * HOUR_MS)
    [last] = found
    assert last.anomaly.baseline_movements == 6
    assert last.anomaly.duration.median == 30 * 60
    assert not last.anomaly.is_anomaly


def test_runs_shorter_than_the_minimum_are_neither_listed_nor_history():
    blips = [run(h, 0.1) for h in range(10)]
    found = judge([*blips, run(11, 30)], MovementSettings("a", 5.0, min_duration_s=60), 0, DAY_MS)
    assert [(m.window.duration_s, m.anomaly.baseline_movements) for m in found] == [(1800, 0)]


def test_only_movements_starting_inside_the_window_are_listed():
    windows = [run(h, 30) for h in range(5)]
    found = judge(windows, MovementSettings("a", 5.0), 2 * HOUR_MS, 4 * HOUR_MS)
    assert [m.window.start_ms for m in found] == [2 * HOUR_MS, 3 * HOUR_MS]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"threshold": 1}, "missing required field metric"),
        ({"metric": "a", "threshold": "high"}, "Expected float"),
        ({"metric": "a", "threshold": 1, "hysteresis": -1}, "hysteresis"),
        ({"metric": "a", "threshold": 1, "baseline_days": 400}, "baseline_days"),
        ({"metric": "a", "threshold": 1, "colour": "red"}, "unknown field colour"),
    ],
)
def test_bad_settings_name_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_settings(raw)
