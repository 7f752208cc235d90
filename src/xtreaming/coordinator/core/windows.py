"""Per-base time windows (weekdays, HH:MM–HH:MM in the site time zone) and the worker limit in force.

A window covers whole minutes from ``start`` up to, not including, ``end``. When ``end`` is
earlier than ``start`` the window crosses midnight and belongs to the weekday it *starts* on:
22:00–06:00 on Friday covers Friday 22:00 to Saturday 05:59:59. ``end`` may be ``24:00`` (or
``00:00``) for "until midnight", so the whole day is ``00:00–24:00``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final, NamedTuple

from xtreaming.errors import InvalidWindow

MINUTES_PER_DAY: Final = 24 * 60
WEEKDAYS: Final = range(7)
#: Python's numbering (``datetime.weekday()``), spelled out in error messages.
WEEKDAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class WallClock(NamedTuple):
    """A moment as the site's clocks show it: weekday (Monday=0) and minute of the day (0..1439)."""

    weekday: int
    minute: int


def wall_clock(at: datetime, time_zone: tzinfo) -> WallClock:
    """The site's weekday and minute at ``at``; raises ValueError for a naive datetime."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime {at.isoformat()} is naive; give a timezone-aware datetime")
    local = at.astimezone(time_zone)
    return WallClock(local.weekday(), local.hour * 60 + local.minute)


@dataclass(frozen=True, slots=True)
class Window:
    """Limits a base to ``max_workers`` on ``weekdays`` from ``start_minute`` to ``end_minute``."""

    weekdays: frozenset[int]
    start_minute: int
    end_minute: int
    max_workers: int

    def __post_init__(self) -> None:
        if not self.weekdays:
            raise InvalidWindow("no weekdays: give at least one of 0..6 (Monday=0)")
        for day in sorted(self.weekdays):
            if day not in WEEKDAYS:
                raise InvalidWindow(f"weekday {day} is not in 0..6 (Monday=0)")
        if self.start_minute not in range(MINUTES_PER_DAY):
            raise InvalidWindow(f"start_minute {self.start_minute} is not in 0..1439")
        if self.end_minute not in range(MINUTES_PER_DAY + 1):
            raise InvalidWindow(f"end_minute {self.end_minute} is not in 0..1440")
        if self.end_minute == self.start_minute:
            raise InvalidWindow(f"end equals start ({self.start}); for the whole day use 00:00–24:00")
        if self.max_workers < 0:
            raise InvalidWindow(f"max_workers {self.max_workers} is negative")

    @classmethod
    def parse(cls, weekdays: Iterable[int], start: str, end: str, max_workers: int) -> Window:
        """Build a window from operator input; raises InvalidWindow naming the field that is wrong."""
        return cls(
            weekdays=frozenset(weekdays),
            start_minute=_parse_hhmm("start", start, allow_midnight_end=False),
            end_minute=_parse_hhmm("end", end, allow_midnight_end=True),
            max_workers=max_workers,
        )

    @property
    def start(self) -> str:
        return _format_hhmm(self.start_minute)

    @property
    def end(self) -> str:
        return _format_hhmm(self.end_minute)

    @property
    def label(self) -> str:
        """``08:00–18:00``, as explanations show it."""
        return f"{self.start}–{self.end}"

    @property
    def crosses_midnight(self) -> bool:
        return self.end_minute < self.start_minute

    def covers(self, clock: WallClock) -> bool:
        """True when the window is open at ``clock`` (see ``wall_clock``)."""
        if not self.crosses_midnight:
            return clock.weekday in self.weekdays and self.start_minute <= clock.minute < self.end_minute
        if clock.weekday in self.weekdays and clock.minute >= self.start_minute:
            return True
        # The tail after midnight belongs to the day the window started on: yesterday.
        return (clock.weekday - 1) % 7 in self.weekdays and clock.minute < self.end_minute


@dataclass(frozen=True, slots=True)
class Limit:
    """The most workers a base may run now, and the window that sets it (None: the base's default)."""

    max_workers: int
    window: Window | None = None


def limit_at(max_workers: int, windows: Iterable[Window], clock: WallClock) -> Limit:
    """The smallest ``max_workers`` among the windows open at ``clock``, else the default ``max_workers``.

    Among open windows with the same smallest max, the first one given is reported.
    """
    found: Window | None = None
    for window in windows:
        if window.covers(clock) and (found is None or window.max_workers < found.max_workers):
            found = window
    return Limit(max_workers) if found is None else Limit(found.max_workers, found)


def limit_in_force(max_workers: int, windows: Iterable[Window], at: datetime, time_zone: tzinfo) -> Limit:
    """``limit_at`` for an aware datetime, read on the clocks of ``time_zone`` (the site's zone)."""
    return limit_at(max_workers, windows, wall_clock(at, time_zone))


def _parse_hhmm(field: str, text: str, *, allow_midnight_end: bool) -> int:
    if allow_midnight_end and text == "24:00":
        return MINUTES_PER_DAY
    match = _HHMM.fullmatch(text)
    if match is None:
        accepted = "00:00 to 24:00" if allow_midnight_end else "00:00 to 23:59"
        raise InvalidWindow(f"{field} {text!r} is not HH:MM ({accepted})")
    return int(match[1]) * 60 + int(match[2])


def _format_hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
