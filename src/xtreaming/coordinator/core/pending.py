"""A queue's pending messages: their lease order, and the rule that holds one of them back.

The rule, defined here once (``leasable``) and applied by the scheduler's batches, a queue's
``readiness`` and the explanations: a message may be leased when its back-off (``not_before``) has
passed (``is_backing_off``), its key is not in flight, and no earlier message with the same key is
still waiting (``not_held_by_key``). Only the *first* waiting message of each key can ever be next,
so whether a queue has work is read from those alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Final

from xtreaming.broker.port import Headers


@dataclass(slots=True)
class PendingMessage:
    """A message read from the log and waiting for a worker; ``not_before`` is its back-off deadline.

    The scheduler reads its position, key, attempt and back-off; the coordinator also keeps the
    message's value and headers and its error history here, so a message waiting, leased and
    settled is this one object (its topic is its queue's). Treat it as immutable (a retry is a
    ``dataclasses.replace``): not ``frozen``, as one is built per message read and a frozen
    ``__init__`` costs a third more.
    """

    partition: int
    offset: int
    key: bytes | None
    attempt: int = 1
    not_before: datetime | None = None
    #: The message's value and headers as read from the log (the scheduler never looks at them).
    value: bytes = field(default=b"", compare=False, repr=False)
    headers: Headers = field(default=(), compare=False, repr=False)
    #: ``attempt N: detail`` of each failed attempt, oldest first (the DLQ record's history).
    errors: tuple[str, ...] = field(default=(), compare=False)
    #: The lease order as one integer, offset then partition (a partition number is a 32-bit
    #: integer in Kafka): queues of thousands re-sort often, and integers compare fastest.
    order: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.not_before is not None and self.not_before.utcoffset() is None:
            raise ValueError(f"message {self.partition}/{self.offset}: not_before must be timezone-aware")
        self.order = (self.offset << 32) | self.partition


class LeaseOrder(tuple[PendingMessage, ...]):
    """Messages known to be sorted by (offset, partition): made only by ``in_lease_order`` and ``without``.

    A queue rebuilt from another (``dataclasses.replace``, a lease, a completion) hands its messages
    on in this type, so they are not sorted again.
    """

    __slots__ = ()


def in_lease_order(messages: Iterable[PendingMessage]) -> LeaseOrder:
    """``messages`` sorted by (offset, partition): offset order within each partition, lagging partitions first."""
    if isinstance(messages, LeaseOrder):
        return messages
    return LeaseOrder(sorted(messages, key=order_of))


def merged(messages: LeaseOrder, added: Iterable[PendingMessage]) -> LeaseOrder:
    """``messages`` with ``added`` in their places (timsort merges the two runs)."""
    return LeaseOrder(sorted((*messages, *added), key=order_of))


def without(messages: tuple[PendingMessage, ...], leased: Collection[PendingMessage]) -> tuple[PendingMessage, ...]:
    """``messages`` less those at the positions (partition, offset) of ``leased``, order (and ``LeaseOrder``) kept."""
    # A lease normally carries the very objects of the queue's messages: match them by identity,
    # which costs no tuple per message, and fall back on positions for copies.
    taken = {id(m) for m in leased}
    kept = [m for m in messages if id(m) not in taken]
    if len(kept) != len(messages) - len(taken):
        positions = {(m.partition, m.offset) for m in leased}
        kept = [m for m in messages if (m.partition, m.offset) not in positions]
    return LeaseOrder(kept) if isinstance(messages, LeaseOrder) else tuple(kept)


def is_backing_off(message: PendingMessage, now: datetime) -> bool:
    """Its back-off has not passed at ``now``: a retried message may be leased from ``not_before`` on."""
    not_before = message.not_before
    return not_before is not None and not_before > now


def not_held_by_key(messages: Iterable[PendingMessage], keys_in_flight: Collection[bytes]) -> Iterator[PendingMessage]:
    """The ``messages`` (in lease order) their key does not hold back: each one without a key, and the first
    of each key not in flight; a later message of a key waits for the earlier one (so one key's messages
    run in offset order, one at a time), whether that one is leased with it, in back-off or still waiting."""
    met: set[bytes] = set()
    for message in messages:
        key = message.key
        if key is not None:
            if key in keys_in_flight or key in met:
                continue
            met.add(key)
        yield message


def leasable(
    messages: Iterable[PendingMessage], keys_in_flight: Collection[bytes], now: datetime
) -> Iterator[PendingMessage]:
    """The ``messages`` (in lease order) nothing holds back at ``now``: neither their key nor a back-off."""
    for message in not_held_by_key(messages, keys_in_flight):
        not_before = message.not_before
        if not_before is None or not_before <= now:  # not ``is_backing_off``, inlined (a test checks they agree)
            yield message


def readiness(messages: LeaseOrder, keys_in_flight: Collection[bytes]) -> tuple[datetime | None, bool]:
    """``(ready_at, waits_for_keys)`` for a queue's messages, by the rule of ``leasable``.

    ``ready_at``: when every message its key does not hold back is in back-off, the earliest of their
    deadlines (from then on one is leasable); else None. ``waits_for_keys``: there are messages and every
    one has its key in flight, so none can be leased before a task of the queue ends.
    """
    until: datetime | None = None
    for message in not_held_by_key(messages, keys_in_flight):  # usually ends at the first message
        not_before = message.not_before
        if not_before is None:
            return None, False
        if until is None or not_before < until:
            until = not_before
    return until, until is None and bool(messages)


#: Field getters, for a sort key and for ``map`` into C-level consumers (``Counter``, ``dict.pop``);
#: a list comprehension reads a field faster. ``order_of``: the lease order, offset then partition.
partition_of: Final = attrgetter("partition")
attempt_of: Final = attrgetter("attempt")
key_of: Final = attrgetter("key")
order_of: Final = attrgetter("order")
