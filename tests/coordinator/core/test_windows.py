"""Time windows: parsing, edges at 00:00 and 23:59, midnight crossing, the limit in force."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.coordinator.builders import SITE, at, window
from xtreaming.coordinator.core.windows import Limit, Window, limit_in_force, wall_clock
from xtreaming.errors import InvalidWindow, XtreamingError

MONDAY, TUESDAY, FRIDAY, SATURDAY, SUNDAY = 0, 1, 4, 5, 6
# 2025-03-03 is a Monday; 2025-03-07 a Friday; 2025-03-09 a Sunday.


def covers(w: Window, moment: str) -> bool:
    return w.covers(wall_clock(at(moment), SITE))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("25:00", "06:00", "start '25:00' is not HH:MM (00:00 to 23:59)"),
        ("24:00", "06:00", "start '24:00' is not HH:MM (00:00 to 23:59)"),
        ("8:00", "18:00", "start '8:00' is not HH:MM (00:00 to 23:59)"),
        ("08:60", "18:00", "start '08:60' is not HH:MM (00:00 to 23:59)"),
        ("08:00", "24:01", "end '24:01' is not HH:MM (00:00 to 24:00)"),
        ("08:00", "", "end '' is not HH:MM (00:00 to 24:00)"),
        ("08:00", "08:00", "end equals start (08:00); for the whole day use 00:00–24:00"),
    ],
)
def test_parse_refuses_bad_times_naming_the_field(start: str, end: str, message: str) -> None:
    with pytest.raises(InvalidWindow) as caught:
        Window.parse([MONDAY], start, end, 4)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("weekdays", "max_workers", "message"),
    [
        ([], 4, "no weekdays: give at least one of 0..6 (Monday=0)"),
        ([0, 7], 4, "weekday 7 is not in 0..6 (Monday=0)"),
        ([-1], 4, "weekday -1 is not in 0..6 (Monday=0)"),
        ([0], -1, "max_workers -1 is negative"),
    ],
)
def test_parse_refuses_bad_days_and_limits(weekdays: list[int], max_workers: int, message: str) -> None:
    with pytest.raises(InvalidWindow) as caught:
        Window.parse(weekdays, "08:00", "18:00", max_workers)
    assert str(caught.value) == message


def test_invalid_window_is_a_value_error_of_ours() -> None:
    assert issubclass(InvalidWindow, ValueError)
    assert issubclass(InvalidWindow, XtreamingError)


def test_a_window_reads_back_as_typed() -> None:
    w = Window.parse([FRIDAY, MONDAY, FRIDAY], "22:00", "06:00", 2)
    assert (w.weekdays, w.start, w.end, w.label, w.max_workers) == (
        frozenset({MONDAY, FRIDAY}),
        "22:00",
        "06:00",
        "22:00–06:00",
        2,
    )
    assert w.crosses_midnight


def test_whole_day_is_00_00_to_24_00() -> None:
    w = window("00:00", "24:00", max_workers=1, days=[MONDAY])
    assert not w.crosses_midnight
    assert covers(w, "2025-03-03T00:00")
    assert covers(w, "2025-03-03T23:59:59")
    assert not covers(w, "2025-03-04T00:00")
    assert not covers(w, "2025-03-02T23:59")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2025-03-03T07:59:59", False),
        ("2025-03-03T08:00", True),
        ("2025-03-03T17:59:59", True),
        ("2025-03-03T18:00", False),
        ("2025-03-04T10:00", False),  # Tuesday: not one of the window's days
    ],
)
def test_a_day_window_covers_from_start_up_to_end(moment: str, expected: bool) -> None:
    assert covers(window("08:00", "18:00", max_workers=4, days=[MONDAY]), moment) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2025-03-03T00:00", True),
        ("2025-03-03T05:59", True),
        ("2025-03-03T06:00", False),
        ("2025-03-02T23:59:59", False),  # Sunday night is not Monday
    ],
)
def test_a_window_starting_at_00_00_opens_at_midnight_of_its_day(moment: str, expected: bool) -> None:
    assert covers(window("00:00", "06:00", max_workers=4, days=[MONDAY]), moment) is expected


@pytest.mark.parametrize(
    ("end", "moment", "expected"),
    [
        ("23:59", "2025-03-03T23:58:59", True),
        ("23:59", "2025-03-03T23:59", False),
        ("24:00", "2025-03-03T23:59", True),
        ("24:00", "2025-03-03T23:59:59", True),
        ("24:00", "2025-03-04T00:00", False),
        ("00:00", "2025-03-03T23:59:59", True),
        ("00:00", "2025-03-04T00:00", False),
    ],
)
def test_the_23_59_edge(end: str, moment: str, expected: bool) -> None:
    assert covers(window("20:00", end, max_workers=4, days=[MONDAY]), moment) is expected


def test_a_window_of_the_last_minute_covers_only_23_59() -> None:
    w = window("23:59", "24:00", max_workers=0, days=[MONDAY])
    assert [covers(w, m) for m in ("2025-03-03T23:58:59", "2025-03-03T23:59", "2025-03-04T00:00")] == [
        False,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2025-03-07T21:59:59", False),
        ("2025-03-07T22:00", True),
        ("2025-03-07T23:59:59", True),
        ("2025-03-08T00:00", True),  # Saturday, still Friday's window
        ("2025-03-08T05:59:59", True),
        ("2025-03-08T06:00", False),
        ("2025-03-07T03:00", False),  # Friday early morning belongs to Thursday's night
        ("2025-03-08T22:00", False),  # Saturday night: not a window day
    ],
)
def test_a_window_crossing_midnight_belongs_to_the_day_it_starts(moment: str, expected: bool) -> None:
    assert covers(window("22:00", "06:00", max_workers=2, days=[FRIDAY]), moment) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2025-03-09T22:00", True),  # Sunday
        ("2025-03-10T00:00", True),  # Monday, after Sunday's start
        ("2025-03-10T05:59", True),
        ("2025-03-10T06:00", False),
        ("2025-03-10T22:00", False),  # Monday night: Monday is not a window day
        ("2025-03-03T03:00", True),  # the Monday a week earlier, too
    ],
)
def test_a_sunday_window_crosses_into_monday(moment: str, expected: bool) -> None:
    assert covers(window("22:00", "06:00", max_workers=2, days=[SUNDAY]), moment) is expected


def test_the_smallest_max_among_open_windows_applies() -> None:
    business = window("08:00", "18:00", max_workers=4)
    lunch = window("12:00", "14:00", max_workers=2)
    night = window("22:00", "06:00", max_workers=16)
    windows = [business, lunch, night]
    assert limit_in_force(8, windows, at("2025-03-04T10:00"), SITE) == Limit(4, business)
    assert limit_in_force(8, windows, at("2025-03-04T12:30"), SITE) == Limit(2, lunch)
    assert limit_in_force(8, windows, at("2025-03-04T23:00"), SITE) == Limit(16, night)
    assert limit_in_force(8, windows, at("2025-03-04T20:00"), SITE) == Limit(8, None)


def test_a_window_may_raise_the_limit_above_the_default() -> None:
    night = window("22:00", "06:00", max_workers=16)
    assert limit_in_force(8, [night], at("2025-03-04T02:00"), SITE).max_workers == 16


def test_equal_smallest_windows_report_the_first_given() -> None:
    first = window("08:00", "18:00", max_workers=4)
    second = window("09:00", "12:00", max_workers=4)
    assert limit_in_force(8, [first, second], at("2025-03-04T10:00"), SITE).window == first


def test_the_limit_is_read_on_the_site_clock_whatever_the_zone_of_now() -> None:
    business = window("08:00", "18:00", max_workers=4, days=[TUESDAY])
    utc_noon = datetime(2025, 3, 4, 12, 0, tzinfo=ZoneInfo("UTC"))  # 09:00 in São Paulo
    utc_late = datetime(2025, 3, 4, 21, 0, tzinfo=ZoneInfo("UTC"))  # 18:00 in São Paulo
    assert limit_in_force(8, [business], utc_noon, SITE) == Limit(4, business)
    assert limit_in_force(8, [business], utc_late, SITE) == Limit(8)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        limit_in_force(8, [], datetime(2025, 3, 4, 10, 0), SITE)
