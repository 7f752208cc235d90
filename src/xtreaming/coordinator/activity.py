"""What a queue has been doing lately: messages finished, succeeded and failed per second and per minute, its
last error and last success, and how fast one of its workers goes.

Pure bookkeeping, fed where outcomes settle (``settlement.py``) and where tasks are leased; read by the
screen's figures (speeds over 10 s, 1 min and 1 h, the "failing" state) and, once a minute, by the figure
history (``figure_history.py``). Two small rings per queue: per-second counts for the last minute and
per-minute counts for the last hour, so no figure ever walks more than 60 buckets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from xtreaming.coordinator.attempt_errors import split_attempt_error

#: The per-second ring covers this many seconds (the 10 s and 1 min speeds).
SECONDS_KEPT: Final = 60
#: The per-minute ring covers this many minutes (the 1 h speed; the history writer reads the minute just ended).
MINUTES_KEPT: Final = 61
#: A queue whose attempts failed and that succeeded in none for this long is failing.
FAILING_AFTER: Final = timedelta(seconds=60)
#: A queue that finished nothing for this long has every speed at 0 (``is_still``): the 1 h speed's whole span,
#: counted in whole minutes (``hourly_rate``), and a minute more.
STILL_AFTER: Final = timedelta(minutes=MINUTES_KEPT)
#: The longest error kept (the screen shows the last one next to "failing").
MAX_ERROR_CHARS: Final = 500
#: A worker's speed is measured over the tasks settled in this many minutes.
WORKER_SPEED_MINUTES: Final = 10


@dataclass(slots=True)
class Second:
    """One second's counts: messages finished (ok or dead), succeeded (ok), and failed attempts (retried or dead)."""

    second: int
    finished: int = 0
    ok: int = 0
    failed: int = 0


@dataclass(slots=True)
class Minute:
    """One minute's counts (as ``Second``), the tasks settled in it (their messages finished and their time
    from lease to settlement, for a worker's speed) and the most workers seen running in it."""

    minute: int
    #: The first second anything was counted in this minute: the 1 h speed's span starts there.
    first_second: int
    finished: int = 0
    ok: int = 0
    failed: int = 0
    task_messages: int = 0
    task_seconds: float = 0.0
    workers: int = 0


@dataclass(slots=True)
class QueueActivity:
    """A queue's recent activity (see the module docstring). Not thread-safe: the coordinator's lock guards it."""

    seconds: deque[Second] = field(default_factory=deque)
    minutes: deque[Minute] = field(default_factory=deque)
    last_ok_at: datetime | None = None
    last_failure_at: datetime | None = None
    #: The latest failed attempt's error, at most ``MAX_ERROR_CHARS``, without its "attempt N: "
    #: (``attempt_errors.py``), and that attempt's number: a view words the attempt in its own language.
    last_error: str | None = None
    last_error_attempt: int | None = None
    #: When a message of the queue last finished (ok, dead or duplicate).
    last_finished_at: datetime | None = None

    def settled(self, now: datetime, *, ok: int, dead: int, retried: int, error: str | None = None) -> None:
        """Count messages settled now: ``ok`` and ``dead`` finished, ``retried`` failed and pending again;
        ``error``: the latest failure's (``attempt N: detail``), when some failed."""
        failed = dead + retried
        if not (ok or failed):
            return
        second, minute = self._buckets(now)
        second.finished += ok + dead
        second.ok += ok
        second.failed += failed
        minute.finished += ok + dead
        minute.ok += ok
        minute.failed += failed
        if ok:
            self.last_ok_at = now
        if failed:
            self.last_failure_at = now
            if error is not None:
                attempt, detail = split_attempt_error(error)
                self.last_error, self.last_error_attempt = detail[:MAX_ERROR_CHARS], attempt
        if ok or dead:
            self.last_finished_at = now

    def finished_without_running(self, now: datetime) -> None:
        """Messages finished as duplicates: they count for when the queue last finished something, not for speed."""
        self.last_finished_at = now

    def task_settled(self, now: datetime, messages: int, spent_s: float) -> None:
        """A task settled now, having finished ``messages`` in ``spent_s`` since its lease (a worker's speed)."""
        _, minute = self._buckets(now)
        minute.task_messages += messages
        minute.task_seconds += max(0.0, spent_s)

    def running(self, now: datetime, workers: int) -> None:
        """The queue runs ``workers`` tasks now (noted as a task is leased): the minute's most."""
        minute = self._minute(now)
        minute.workers = max(minute.workers, workers)

    def rate(self, now: datetime, window_s: int) -> float:
        """Messages finished per second over the last ``window_s`` seconds (at most ``SECONDS_KEPT``), counted
        from the first second counted when the queue started finishing less than that ago; 0 when none."""
        if not self.seconds:  # most queues, most of the time: nothing lately
            return 0.0
        second = _second(now)
        self._trim(second)
        recent = [s for s in self.seconds if s.second > second - window_s]
        if not recent:
            return 0.0
        span = max(1, min(window_s, second - self.seconds[0].second + 1))
        return sum(s.finished for s in recent) / span

    def hourly_rate(self, now: datetime) -> float:
        """Messages finished per second over the last hour, as ``rate`` does (from the per-minute ring)."""
        if not self.minutes:
            return 0.0
        second = _second(now)
        self._trim(second)
        recent = [m for m in self.minutes if m.minute > second // 60 - 60]
        if not recent:
            return 0.0
        span = max(1, min(3600, second - self.minutes[0].first_second + 1))
        return sum(m.finished for m in recent) / span

    def worker_speed(self, now: datetime) -> float | None:
        """Messages one worker of the queue finishes per second, from the tasks settled in the last
        ``WORKER_SPEED_MINUTES`` minutes; None when none settled then (or took no time)."""
        if not self.minutes:
            return None
        first = _second(now) // 60 - WORKER_SPEED_MINUTES
        recent = [m for m in self.minutes if m.minute > first]
        seconds = sum(m.task_seconds for m in recent)
        return sum(m.task_messages for m in recent) / seconds if seconds > 0 else None

    def is_failing(self, now: datetime) -> bool:
        """Whether attempts failed and none succeeded since: the last failure is newer than the last success,
        and no attempt succeeded in the last ``FAILING_AFTER`` (one failure among many successes is not it)."""
        if self.last_failure_at is None:
            return False
        if self.last_ok_at is None:
            return True
        return self.last_failure_at > self.last_ok_at and self.last_ok_at <= now - FAILING_AFTER

    def is_still(self, now: datetime) -> bool:
        """Whether what the screen shows of it stays as it is until something happens to it: no message finished in
        the last ``STILL_AFTER``, so the speeds (counting finished messages only) are 0 from now on, and
        ``is_failing`` no longer turns (its last success, if any, is older than ``FAILING_AFTER``). Leases and
        failed attempts alone leave it still (``screen_rows.py`` keeps a still queue's row)."""
        return self.last_finished_at is None or self.last_finished_at <= now - STILL_AFTER

    def minute(self, minute: int) -> Minute | None:
        """The counts of ``minute`` (minutes since the epoch) while the ring holds it; None when none were counted."""
        for bucket in reversed(self.minutes):  # the minute asked for is nearly always the last or the one before
            if bucket.minute == minute:
                return bucket
            if bucket.minute < minute:
                return None
        return None

    def _buckets(self, now: datetime) -> tuple[Second, Minute]:
        second = _second(now)
        seconds = self.seconds
        if not seconds or seconds[-1].second != second:
            seconds.append(Second(second))
            self._trim(second)
        return seconds[-1], self._minute(now)

    def _minute(self, now: datetime) -> Minute:
        second = _second(now)
        minutes = self.minutes
        if not minutes or minutes[-1].minute != second // 60:
            minutes.append(Minute(second // 60, second))
            while minutes and minutes[0].minute <= second // 60 - MINUTES_KEPT:
                minutes.popleft()
        return minutes[-1]

    def _trim(self, second: int) -> None:
        seconds = self.seconds
        while seconds and seconds[0].second <= second - SECONDS_KEPT:
            seconds.popleft()


def _second(now: datetime) -> int:
    return int(now.timestamp())
