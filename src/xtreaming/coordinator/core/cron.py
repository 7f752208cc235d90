"""Cron ticks in the site's time zone: which tick of a schedule is due now, and when the next one comes.

Five fields (minute hour day month weekday) or six, the sixth being seconds (``* * * * * */10``: every ten
seconds), as ``croniter`` reads them. Ticks are computed on the site's wall clock (``0 8 * * mon-fri`` is 08:00
in ``XTREAMING_TIME_ZONE``, summer time or not) and returned in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from croniter import croniter

#: A tick is on time until this long after its time: later, it was missed (the ``skip`` policy skips it).
ON_TIME_S: Final = 60.0
#: Missed ticks are counted up to this many (an outage of days under a cron of seconds).
MAX_COUNTED: Final = 10_000


@dataclass(frozen=True, slots=True)
class Due:
    """The tick to run now: the latest one due, how many due ticks before it were missed, and whether it is
    itself late (more than ``ON_TIME_S`` ago)."""

    tick_at: datetime
    missed: int
    late: bool


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is no cron expression we run, or None when it is one."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        return (
            f"cron expression {expression!r} has {len(fields)} fields: give 5 (minute hour day month weekday, "
            "e.g. '0 8 * * mon-fri') or 6, the sixth being seconds (e.g. '* * * * * */10')"
        )
    if not croniter.is_valid(expression):
        return f"cron expression {expression!r} is not valid (e.g. '0 8 * * mon-fri', '*/15 * * * *')"
    return None


def due_tick(expression: str, zone: tzinfo, after: datetime, now: datetime) -> Due | None:
    """The latest tick in ``(after, now]``, or None when none is due."""
    first = _next(expression, zone, after)
    if first > now:
        return None
    floor = now.replace(microsecond=0) + timedelta(seconds=1)  # ticks are whole seconds: the latest one <= now
    latest = croniter(expression, floor.astimezone(zone)).get_prev(datetime).astimezone(UTC)
    missed = 0
    ticks = croniter(expression, first.astimezone(zone))
    at = first
    while at < latest and missed < MAX_COUNTED:
        missed += 1
        at = ticks.get_next(datetime).astimezone(UTC)
    return Due(latest, missed, (now - latest).total_seconds() > ON_TIME_S)


def next_tick(expression: str, zone: tzinfo, after: datetime) -> datetime:
    """The first tick after ``after``, in UTC."""
    return _next(expression, zone, after)


def _next(expression: str, zone: tzinfo, after: datetime) -> datetime:
    return croniter(expression, after.astimezone(zone)).get_next(datetime).astimezone(UTC)
