"""Changes made in memory under the coordinator's lock, made durable outside it, in the order they were made.

A lease request's settlement and leases are worked out under the lock; waiting for the log to confirm the
results (Kafka's round trip) and committing the store transaction happen once the lock is let go, so that
nothing else waits on them. Each such change takes a ticket as it lets the lock go (``issue``): tickets commit
one at a time, in issue order (``turn``), because each change was worked out on top of the ones before it.

When a change fails before it is stored, memory is ahead of the store. Every change worked out on that memory
(its generation, which a reload replaces) must fail too: it may carry the failed one's effects, such as a
partition's finished offsets. ``fail`` marks the generation; a later ticket of it is refused at its turn.
Whoever reloads memory first waits for every ticket issued to be done (``drain``): a refused change's results
may still be on their way to the log, and the reload reads them back.

A change stored slowly holds up every change behind it (a log that does not confirm, a store that does not commit,
each until its own timeout): whoever waits longer than ``SLOW_WAIT_S`` says so in the log, again every
``SLOW_WAIT_S``, naming the change being stored and for how long, so that a coordinator that stopped answering
leases says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

log = logging.getLogger("xtreaming.coordinator")

#: A wait for the changes before it to be stored that lasts this long is logged (and every as long again).
SLOW_WAIT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class Ticket:
    """A change's place in the commit order, and the generation of memory it was worked out on."""

    number: int
    generation: int


class CommitOrder:
    """Tickets committed in issue order (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._issued = 0
        self._done = 0
        self._failed: dict[int, str] = {}
        self._storing: int | None = None  # the ticket whose change is being stored
        self._since = time.monotonic()  # when it got its turn, or when the last turn ended

    @property
    def issued(self) -> int:
        """How many tickets were issued so far (``wait_through`` takes it)."""
        with self._changed:
            return self._issued

    def issue(self, generation: int) -> Ticket:
        """The next ticket, for a change worked out on memory of ``generation``: taken holding the coordinator's
        lock, so that tickets come in the order the changes were made."""
        with self._changed:
            ticket = Ticket(self._issued, generation)
            self._issued += 1
            return ticket

    @contextmanager
    def turn(self, ticket: Ticket) -> Iterator[str | None]:
        """Wait until every earlier ticket is done; the block commits ``ticket``'s change, and ``ticket`` is done
        when it ends, whatever happens in it. It gets why the change must not be stored (an earlier change of its
        generation failed), or None."""
        with self._changed:
            self._wait(lambda: self._done >= ticket.number, f"change {ticket.number}")
            refused = self._failed.get(ticket.generation)
            self._storing, self._since = ticket.number, time.monotonic()
        try:
            yield refused
        finally:
            with self._changed:
                self._done = ticket.number + 1
                self._storing, self._since = None, time.monotonic()
                self._changed.notify_all()

    def fail(self, generation: int, why: str) -> None:
        """A change of ``generation`` failed before it was stored: every later one of it is refused."""
        with self._changed:
            self._failed.setdefault(generation, why)

    def failed(self, generation: int) -> str | None:
        """Why a change of ``generation`` failed as it was stored, or None."""
        with self._changed:
            return self._failed.get(generation)

    def wait_through(self, issued: int) -> None:
        """Wait until the first ``issued`` tickets are done."""
        with self._changed:
            self._wait(lambda: self._done >= issued, "a commit of offsets")

    def drain(self) -> None:
        """Wait until every ticket issued so far is done."""
        with self._changed:
            self._wait(lambda: self._done >= self._issued, "a write holding the lock")

    def _wait(self, done: Callable[[], bool], who: str) -> None:
        """Wait (``_changed`` held) until ``done()``, saying in the log every ``SLOW_WAIT_S`` without a change stored
        that it still waits, and on what."""
        started = time.monotonic()
        while not done():
            if self._changed.wait(SLOW_WAIT_S) or done():
                continue
            now = time.monotonic()
            if self._storing is not None:
                why = (
                    f"change {self._storing} has been storing for {now - self._since:.1f} s (the log's confirmation "
                    "of its results, or its state store transaction, is slow)"
                )
            else:
                why = (
                    f"change {self._done} has not come to be stored {now - self._since:.1f} s after the one before "
                    "it was (its thread stopped before storing it: a bug)"
                )
            log.warning("%s has waited %.1f s for the changes before it to be stored: %s", who, now - started, why)
